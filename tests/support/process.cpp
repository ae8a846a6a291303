#include "tests/support/process.hpp"

#include "app/config.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace bgagent::testing {

std::vector<std::string> child_env(const env_map& extra) {
  env_map all;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // Nothing a developer exported may change a test's outcome.
  for (auto& name : known_variable_names())
    all.erase(name);
  all.erase("BG_AGENT_TEST_DELAY_MS");
  for (auto& kv : extra)
    all[kv.first] = kv.second;
  std::vector<std::string> out;
  for (auto& kv : all)
    out.push_back(kv.first + "=" + kv.second);
  return out;
}

namespace {

int spawn(const std::vector<std::string>& argv, const std::string& cwd,
          const env_map& env, const std::string& out_path,
          const std::string& err_path) {
  auto envs = child_env(env);
  std::vector<char*> args, envp;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : envs)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    setpgid(0, 0);
    if (chdir(cwd.c_str()) != 0)
      _exit(126);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

int decode(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

} // namespace

std::string bgagent_binary() {
  return BGAGENT_BINARY;
}

std::string testbin_binary() {
  return BGAGENT_TESTBIN;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

background_process::background_process(const std::vector<std::string>& argv,
                                       const std::string& cwd,
                                       const env_map& env,
                                       const std::string& name) {
  static int counter = 0;
  auto tag = name + "-" + std::to_string(getpid()) + "-" +
             std::to_string(++counter);
  out_path_ = cwd + "/" + tag + ".out";
  err_path_ = cwd + "/" + tag + ".err";
  pid_ = spawn(argv, cwd, env, out_path_, err_path_);
}

background_process::~background_process() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

bool background_process::running() {
  if (reaped_)
    return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return true;
}

void background_process::signal(int sig) {
  if (!reaped_)
    ::kill(pid_, sig);
}

int background_process::wait(double timeout_seconds) {
  if (!wait_until([&] { return !running(); }, timeout_seconds))
    return -1;
  return decode(status_);
}

std::string background_process::out() const {
  return read_file(out_path_);
}

std::string background_process::err() const {
  return read_file(err_path_);
}

run_result run(const std::vector<std::string>& argv, const std::string& cwd,
               const env_map& env, double timeout_seconds) {
  background_process p(argv, cwd, env, "run");
  run_result r;
  r.exit_code = p.wait(timeout_seconds);
  if (r.exit_code == -1) {
    p.signal(SIGKILL);
    p.wait(10);
    r.exit_code = -1;
  }
  r.out = p.out();
  r.err = p.err();
  return r;
}

run_result run_bgagent(const std::vector<std::string>& args,
                       const std::string& cwd, const env_map& env,
                       double timeout_seconds) {
  std::vector<std::string> argv{bgagent_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, cwd, env, timeout_seconds);
}

run_result run_testbin(const std::vector<std::string>& args,
                       const std::string& cwd, const env_map& env,
                       double timeout_seconds) {
  std::vector<std::string> argv{testbin_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, cwd, env, timeout_seconds);
}

bool wait_until(const std::function<bool()>& pred, double timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration<double>(timeout_seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded())
      out.push_back(std::move(j));
  }
  return out;
}

std::vector<nlohmann::json> audit_events(const std::string& path,
                                         const std::string& event) {
  std::vector<nlohmann::json> out;
  for (auto& j : read_jsonl(path))
    if (j.value("event", "") == event)
      out.push_back(j);
  return out;
}

bool wait_for_output(const background_process& p, const std::string& text,
                     double timeout_seconds) {
  return wait_until(
    [&] {
      return p.out().find(text) != std::string::npos ||
             p.err().find(text) != std::string::npos;
    },
    timeout_seconds);
}

void write_task_file(const std::string& path, int n, const std::string& prefix,
                     const std::string& marker) {
  std::string body;
  for (int i = 1; i <= n; ++i) {
    nlohmann::json j{{"id", prefix + "-" + std::to_string(i)},
                     {"type", "summarize"},
                     {"input", "Task number " + std::to_string(i) +
                                 " of a distributed job. " + marker}};
    body += j.dump() + "\n";
  }
  write_file(path, body);
}

std::map<std::string, int> count_events_by_task(const std::string& audit_path,
                                         const std::string& event) {
  std::map<std::string, int> out;
  for (auto& j : audit_events(audit_path, event))
    ++out[j.value("task_id", "")];
  return out;
}

} // namespace bgagent::testing
