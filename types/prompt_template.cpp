#include "types/prompt_template.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace bgagent {

namespace {

bool name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
         c == '.';
}

// Calls f(begin, end, name) for each placeholder, `begin`/`end` spanning
// the braces.
template <class F>
void each_placeholder(const std::string& text, F f) {
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t i = pos + 2;
    if (i < text.size() && name_start(text[i])) {
      size_t j = i;
      while (j < text.size() && name_char(text[j]))
        ++j;
      if (text.compare(j, 2, "}}") == 0) {
        f(pos, j + 2, text.substr(i, j - i));
        pos = j + 2;
        continue;
      }
    }
    pos += 1;
  }
}

} // namespace

std::vector<std::string> placeholders(const std::string& text) {
  std::vector<std::string> out;
  each_placeholder(text, [&](size_t, size_t, const std::string& name) {
    if (std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(name);
  });
  return out;
}

std::string render(const std::string& text, const std::string& input,
                   const template_vars& vars) {
  std::string out;
  out.reserve(text.size() + input.size());
  size_t copied = 0;
  each_placeholder(text, [&](size_t begin, size_t end,
                             const std::string& name) {
    out.append(text, copied, begin - copied);
    if (name == "input") {
      out += input;
    } else {
      auto i = vars.find(name);
      if (i == vars.end())
        throw std::out_of_range(name);
      out += i->second;
    }
    copied = end;
  });
  out.append(text, copied, std::string::npos);
  return out;
}

} // namespace bgagent
