// Running a bgagent process from a benchmark and measuring what it cost.
//
// run_measured() forks, execs `argv` with `extra_env` added to the current
// environment, sends the child's stdout and stderr to `log_path`, waits for
// it and returns its exit code with the wall time and the child's own
// rusage: user and system CPU and peak resident set size. Nothing is shared
// with the child, so the figures are those of the real binary a user runs.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace bgagent::bench {

struct measured_run {
  int exit_code = -1;  // 128+N when killed by signal N
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system
  double peak_rss_mb = 0;
};

using env_list = std::vector<std::pair<std::string, std::string>>;

measured_run run_measured(const std::vector<std::string>& argv,
                          const env_list& extra_env,
                          const std::string& log_path);

}  // namespace bgagent::bench
