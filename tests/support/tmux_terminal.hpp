// A real terminal for tests of what a user sees: tmux, with a private
// server, running one command in a window of a given size.
//
// Contract: the command runs in `cwd` with the environment run() gives
// children plus `env`, on a tmux pane of `columns` x `rows`; screen() is
// what the pane shows (scrollback included), one string per screen row, as
// tmux renders it: a line wider than the pane is two rows, "\r" and erases
// have done their work. The destructor kills the server (and the command).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace bgagent::testing {

class tmux_terminal {
public:
  tmux_terminal(const std::vector<std::string>& argv, const std::string& cwd,
                const env_map& env = {}, int columns = 80, int rows = 24);
  ~tmux_terminal();
  tmux_terminal(const tmux_terminal&) = delete;
  tmux_terminal& operator=(const tmux_terminal&) = delete;

  std::vector<std::string> screen() const;
  // The command's exit code once it has ended.
  std::optional<int> exit_code() const;
  // Waits for the command to end; -1 on timeout.
  int wait(double timeout_seconds) const;
  // Sends keys as tmux's send-keys names them ("C-c").
  void send_keys(const std::string& keys) const;

private:
  std::vector<std::string> tmux(std::vector<std::string> args) const;
  std::string socket_;
  std::string cwd_;
};

// The screen as one text, rows joined by "\n" (for INFO and contains()).
std::string joined(const std::vector<std::string>& rows);

} // namespace bgagent::testing
