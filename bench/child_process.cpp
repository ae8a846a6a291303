#include "bench/child_process.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <dirent.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bgagent::bench {

running_child start_child(const std::vector<std::string>& argv,
                          const env_list& extra_env,
                          const std::string& log_path,
                          const std::string& workdir) {
  std::fflush(stdout);  // or the child inherits (and repeats) buffered output
  running_child child;
  child.started = std::chrono::steady_clock::now();
  child.pid = fork();
  if (child.pid < 0)
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child.pid == 0) {
    if (!workdir.empty() && chdir(workdir.c_str()) != 0)
      _exit(126);
    for (auto& [name, value] : extra_env)
      setenv(name.c_str(), value.c_str(), 1);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return child;
}

namespace {

// utime + stime of each of pid's threads, in seconds, with their names.
struct thread_cpu {
  double seconds = 0;
  std::string name;
};

void sample_threads(pid_t pid, std::map<long, thread_cpu>& seen) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d)
    return;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (auto* e = readdir(d)) {
    if (e->d_name[0] == '.')
      continue;
    // read(2), not a stream: a thread that ends while it is read fails the
    // read with ESRCH, which libstdc++'s filebuf throws.
    std::string text;
    int fd = ::open((dir + "/" + e->d_name + "/stat").c_str(), O_RDONLY);
    if (fd < 0)
      continue;
    char buf[1024];
    ssize_t got = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    if (got <= 0)
      continue;
    text.assign(buf, static_cast<size_t>(got));
    // "tid (comm) state ..." : comm may hold spaces, so parse after ')'.
    auto open = text.find('(');
    auto close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos)
      continue;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int k = 3; k <= 15 && (rest >> field); ++k) {
      if (k == 14)
        utime = std::strtoull(field.c_str(), nullptr, 10);
      if (k == 15)
        stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    auto& t = seen[std::atol(e->d_name)];
    t.seconds = std::max(t.seconds, (utime + stime) / ticks);
    t.name = text.substr(open + 1, close - open - 1);
  }
  closedir(d);
}

} // namespace

measured_run wait_child(const running_child& child) {
  int status = 0;
  rusage usage{};
  std::map<long, thread_cpu> threads;
  for (;;) {
    sample_threads(child.pid, threads);
    pid_t got = wait4(child.pid, &status, WNOHANG, &usage);
    if (got < 0)
      throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
    if (got == child.pid)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  measured_run out;
  for (auto& kv : threads) {
    if (kv.second.seconds > out.busiest_thread_cpu_seconds) {
      out.busiest_thread_cpu_seconds = kv.second.seconds;
      out.busiest_thread = kv.second.name;
    }
    auto& group = out.cpu_by_thread_name[kv.second.name];
    group.cpu_seconds += kv.second.seconds;
    ++group.threads;
  }
  out.wall_seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - child.started)
                         .count();
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                    : 128 + WTERMSIG(status);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  out.cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  out.peak_rss_mb = usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
  return out;
}

measured_run run_measured(const std::vector<std::string>& argv,
                          const env_list& extra_env,
                          const std::string& log_path) {
  return wait_child(start_child(argv, extra_env, log_path));
}

}  // namespace bgagent::bench
