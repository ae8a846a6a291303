// Running bgagent processes from a benchmark and measuring what they cost.
//
// start_child() forks and execs `argv` with `extra_env` added to the current
// environment, in `workdir` when given, with stdout and stderr sent to
// `log_path`; wait_child() waits for it and returns its exit code with the
// wall time since its start and the child's own rusage: user and system CPU
// and peak resident set size, and the CPU time of its busiest thread
// (sampled from /proc/PID/task/*/stat every 20 ms while it runs: the
// serial path that caps the rate whatever the number of cores), and every
// thread's CPU time summed by thread name (where the rest of it went).
// run_measured() is the two in a row. Nothing is
// shared with the child, so the figures are those of the real binary a user
// runs.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "tests/support/loopback_port.hpp"  // free_port(), for servers

namespace bgagent::bench {

struct measured_run {
  int exit_code = -1;  // 128+N when killed by signal N
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system
  double peak_rss_mb = 0;
  double busiest_thread_cpu_seconds = 0;
  std::string busiest_thread; // its name (comm), e.g. "caf.multiplexer"
  // CPU seconds by thread name, summed over the threads of that name
  // ("caf.multiplexer": CAF's scheduler threads).
  struct thread_group {
    double cpu_seconds = 0;
    int threads = 0;
  };
  std::map<std::string, thread_group> cpu_by_thread_name;
};

struct running_child {
  pid_t pid = -1;
  std::chrono::steady_clock::time_point started;
};

using env_list = std::vector<std::pair<std::string, std::string>>;

running_child start_child(const std::vector<std::string>& argv,
                          const env_list& extra_env,
                          const std::string& log_path,
                          const std::string& workdir = {});

measured_run wait_child(const running_child& child);

measured_run run_measured(const std::vector<std::string>& argv,
                          const env_list& extra_env,
                          const std::string& log_path);

}  // namespace bgagent::bench
