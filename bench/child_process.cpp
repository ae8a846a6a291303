#include "bench/child_process.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

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

measured_run wait_child(const running_child& child) {
  int status = 0;
  rusage usage{};
  if (wait4(child.pid, &status, 0, &usage) < 0)
    throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
  measured_run out;
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
