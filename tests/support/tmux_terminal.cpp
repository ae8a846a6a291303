#include "tests/support/tmux_terminal.hpp"

#include <unistd.h>

#include <sstream>
#include <stdexcept>

namespace bgagent::testing {

namespace {

std::string tmux_path() {
  for (auto p : {"/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"})
    if (access(p, X_OK) == 0)
      return p;
  throw std::runtime_error("tmux is not installed (scripts/install-deps.sh "
                           "--tests installs it)");
}

constexpr const char* exit_marker = "[exited ";

} // namespace

tmux_terminal::tmux_terminal(const std::vector<std::string>& argv,
                             const std::string& cwd, const env_map& env,
                             int columns, int rows)
  : socket_(cwd + "/.tmux.sock"), cwd_(cwd) {
  // The command, then its exit code on the screen, then the pane stays. The
  // shell traps SIGINT (C-c reaches the whole foreground group) so it lives
  // on to say how the command ended; a trap, unlike an ignore, is not
  // inherited by the command.
  std::vector<std::string> args{tmux_path(), "-S", socket_, "-f",
                                "/dev/null", "new-session", "-d", "-x",
                                std::to_string(columns), "-y",
                                std::to_string(rows), "-c", cwd, "--",
                                "/bin/sh", "-c",
                                std::string("trap true INT; \"$@\"; echo \"") + exit_marker +
                                  "$?]\"; exec sleep 600",
                                "sh"};
  args.insert(args.end(), argv.begin(), argv.end());
  auto r = run(args, cwd, env, 30);
  if (r.exit_code != 0)
    throw std::runtime_error("tmux new-session failed: " + r.err);
}

tmux_terminal::~tmux_terminal() {
  try {
    tmux({"kill-server"});
  } catch (...) {
  }
  unlink(socket_.c_str());
}

std::vector<std::string> tmux_terminal::tmux(std::vector<std::string> args)
  const {
  args.insert(args.begin(), {tmux_path(), "-S", socket_});
  auto r = run(args, cwd_, {}, 30);
  if (r.exit_code != 0)
    throw std::runtime_error("tmux " + args[3] + " failed: " + r.err);
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::vector<std::string> tmux_terminal::screen() const {
  auto rows = tmux({"capture-pane", "-p", "-S", "-"});
  while (!rows.empty() && rows.back().find_first_not_of(' ') ==
                            std::string::npos)
    rows.pop_back();
  return rows;
}

std::optional<int> tmux_terminal::exit_code() const {
  for (auto& row : screen())
    if (row.rfind(exit_marker, 0) == 0)
      return std::stoi(row.substr(std::string(exit_marker).size()));
  return std::nullopt;
}

int tmux_terminal::wait(double timeout_seconds) const {
  std::optional<int> code;
  wait_until([&] { return (code = exit_code()).has_value(); },
             timeout_seconds);
  return code ? *code : -1;
}

void tmux_terminal::send_keys(const std::string& keys) const {
  tmux({"send-keys", keys});
}

std::string joined(const std::vector<std::string>& rows) {
  std::string out;
  for (auto& r : rows)
    out += r + "\n";
  return out;
}

} // namespace bgagent::testing
