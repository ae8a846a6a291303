#include "bench/child_process.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bgagent::bench {

measured_run run_measured(const std::vector<std::string>& argv,
                          const env_list& extra_env,
                          const std::string& log_path) {
  auto started = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
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
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) < 0)
    throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
  measured_run out;
  out.wall_seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - started).count();
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                    : 128 + WTERMSIG(status);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  out.cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  out.peak_rss_mb = usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
  return out;
}

}  // namespace bgagent::bench
