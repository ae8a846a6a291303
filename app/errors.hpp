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
} // namespace exit_code

class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace bgagent
