#include "persistence/process_identity.hpp"

#include <fstream>
#include <sstream>
#include <vector>

namespace bgagent {

namespace {

// Fields 3.. of /proc/PID/stat (after the command name, which may hold
// spaces and parentheses: it ends at the last ')').
std::vector<std::string> stat_fields(int64_t pid) {
  if (pid <= 0)
    return {};
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line))
    return {};
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> out;
  for (std::string f; rest >> f;)
    out.push_back(f);
  return out;
}

// This boot's id: a pid and start tick seen before a reboot name another
// process after it.
const std::string& boot_id() {
  static const std::string id = [] {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string line;
    std::getline(in, line);
    return line;
  }();
  return id;
}

} // namespace

std::string process_start_time(int64_t pid) {
  auto f = stat_fields(pid);
  // Field 22 (starttime) is the 20th after the name; field 3 the state.
  if (f.size() < 20 || f[0] == "Z" || f[0] == "X")
    return {};
  return boot_id() + ":" + f[19];
}

bool process_alive(int64_t pid, const std::string& start) {
  return !start.empty() && process_start_time(pid) == start;
}

} // namespace bgagent
