// Reading a `.env` file: NAME=value lines, as the usual dotenv tools read
// them (no library for C++ is packaged in Debian 12).
//
// Contract, per line:
// - blank lines and lines starting with `#` are skipped; `export NAME=...`
//   is NAME=...; NAME is [A-Za-z_][A-Za-z0-9_]*.
// - "double quoted": the text up to the closing quote, with \n, \t, \",
//   \\ unescaped; 'single quoted': the text up to the closing quote, as it
//   is. After the closing quote only spaces and a `# comment` may follow.
// - unquoted: up to a `#` that follows a space or tab (a comment), trimmed;
//   a `#` inside the value (`abc#def`) is kept.
// - a value spans one line: an unterminated quote, a missing `=`, a bad
//   name or text after a closing quote throws usage_error naming the file
//   and line.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace bgagent {

struct dotenv_entry {
  std::string name;
  std::string value;
  int line = 0;
};

// The entries of `text` in order; `file` names it in errors.
std::vector<dotenv_entry> parse_dotenv(const std::string& text,
                                       const std::string& file);

} // namespace bgagent
