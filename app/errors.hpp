// The errors that end a command, and the exit codes of DESIGN.md section 8.
//
// Contract: a usage_error is bad usage, configuration or input: one line
// naming the file, line, variable or address at fault; exit code 2; nothing
// was changed. Anything else that escapes a command is an internal failure
// (exit code 1).
#pragma once

#include <stdexcept>
#include <string>

namespace bgagent {

namespace exit_code {
constexpr int ok = 0;
constexpr int internal = 1;
constexpr int usage = 2;
constexpr int budget = 3;
constexpr int stopped = 4; // drained or shut down with work left (resumable)
constexpr int unreachable = 5; // the head cannot be reached, or was lost
constexpr int refused = 6;     // the head refused the hello (wrong secret)
} // namespace exit_code

class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A command that must end with a specific exit code and one line.
class exit_error : public std::runtime_error {
public:
  exit_error(int code, const std::string& what)
    : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

private:
  int code_;
};

} // namespace bgagent
