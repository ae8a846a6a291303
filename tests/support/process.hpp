// Running the real bgagent binary (and other programs) from tests, the way
// a user would: argv, a working directory, environment variables.
//
// Contract: children start from this process's environment minus every
// variable bgagent reads (so a developer's API key never leaks into a test),
// plus the `env` given. Output goes to files in the working directory so a
// test can read it while the child runs. Nothing here talks to the network.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_port.hpp"  // free_port(), for the tests

namespace bgagent::testing {

using env_map = std::map<std::string, std::string>;

struct run_result {
  int exit_code = -1; // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Paths of the binaries under test (set by tests/CMakeLists.txt): the real
// bgagent, and bgagent-testbin (the same CLI plus the "scripted" provider).
std::string bgagent_binary();
std::string testbin_binary();

// The environment children get: this process's minus every variable
// bgagent reads, plus `extra` ("NAME=value" strings).
std::vector<std::string> child_env(const env_map& extra);

// Runs to completion (killed with SIGKILL after `timeout_seconds`).
run_result run(const std::vector<std::string>& argv, const std::string& cwd,
               const env_map& env = {}, double timeout_seconds = 120);

// Shorthand: run(bgagent_binary() + args), and the same with the testbin.
run_result run_bgagent(const std::vector<std::string>& args,
                       const std::string& cwd, const env_map& env = {},
                       double timeout_seconds = 120);
run_result run_testbin(const std::vector<std::string>& args,
                       const std::string& cwd, const env_map& env = {},
                       double timeout_seconds = 120);

// A child that runs while the test goes on.
class background_process {
public:
  background_process(const std::vector<std::string>& argv,
                     const std::string& cwd, const env_map& env = {},
                     const std::string& name = "bg");
  ~background_process(); // SIGKILLs the child if still running
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;

  int pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for the exit; returns the exit code (128+N for signal N), or -1 on
  // timeout (the child keeps running).
  int wait(double timeout_seconds);
  std::string out() const; // what it printed so far
  std::string err() const;

private:
  int pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
  std::string out_path_, err_path_;
};

// Polls `pred` every 20 ms until it is true or the timeout passes.
bool wait_until(const std::function<bool()>& pred, double timeout_seconds);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

// Every line of a JSON Lines file that parses (a missing file is empty).
std::vector<nlohmann::json> read_jsonl(const std::string& path);

// Lines of `path` whose "event" is `event`.
std::vector<nlohmann::json> audit_events(const std::string& path,
                                         const std::string& event);


// Waits until `text` appears in what `p` printed (stdout or stderr).
bool wait_for_output(const background_process& p, const std::string& text,
                     double timeout_seconds);

// Writes `n` summarize tasks with ids "<prefix>-1".."<prefix>-n" as JSON
// Lines to `path`; `marker` is appended to every input (e.g. "[delay:50]").
void write_task_file(const std::string& path, int n,
                     const std::string& prefix = "t",
                     const std::string& marker = {});

// Task ids per audit event `event`, counted (id -> number of lines).
std::map<std::string, int> count_events_by_task(const std::string& audit_path,
                                         const std::string& event);

} // namespace bgagent::testing
