// The errors that end a command (exit codes: policy/run_end.hpp).
//
// Contract: a usage_error is bad usage, configuration or input: one line
// naming the file, line, variable or address at fault; exit code 2; nothing
// was changed. Anything else that escapes a command is an internal failure
// (exit code 1).
#pragma once

#include <stdexcept>
#include <string>

#include "policy/run_end.hpp" // exit_code

namespace bgagent {

class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The store refused a task of a submission: its id or key is stored with
// other content (--on-conflict error). HTTP answers it 409.
class submission_conflict : public usage_error {
public:
  using usage_error::usage_error;
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
