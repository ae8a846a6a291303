#include "app/dotenv.hpp"

#include <cctype>
#include <sstream>

#include "app/errors.hpp"
#include "messages/trim.hpp"

namespace bgagent {

namespace {

bool name_char(char c, bool first) {
  return c == '_' || std::isalpha(static_cast<unsigned char>(c)) ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

} // namespace

std::vector<dotenv_entry> parse_dotenv(const std::string& text,
                                       const std::string& file) {
  std::vector<dotenv_entry> out;
  std::istringstream in(text);
  std::string raw;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    auto where = file + " line " + std::to_string(n) + ": ";
    auto t = trim(raw);
    if (t.empty() || t[0] == '#')
      continue;
    if (t.rfind("export ", 0) == 0 || t.rfind("export\t", 0) == 0)
      t = trim(t.substr(7));
    auto eq = t.find('=');
    if (eq == std::string::npos)
      throw usage_error(where + "expected NAME=VALUE");
    auto name = trim(t.substr(0, eq));
    bool ok = !name.empty();
    for (size_t i = 0; ok && i < name.size(); ++i)
      ok = name_char(name[i], i == 0);
    if (!ok)
      throw usage_error(where + "\"" + name.substr(0, 64) +
                        "\" is not a variable name");
    auto rest = t.substr(eq + 1);
    auto b = rest.find_first_not_of(" \t");
    rest = b == std::string::npos ? std::string() : rest.substr(b);
    std::string value;
    if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) {
      char q = rest[0];
      size_t i = 1;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        char c = rest[i];
        if (c == q) {
          closed = true;
          break;
        }
        if (q == '"' && c == '\\' && i + 1 < rest.size()) {
          char e = rest[++i];
          value += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
          continue;
        }
        value += c;
      }
      if (!closed)
        throw usage_error(where + name + ": the quoted value has no closing " +
                          std::string(1, q) + " (a value spans one line)");
      auto after = trim(rest.substr(i + 1));
      if (!after.empty() && after[0] != '#')
        throw usage_error(where + name + ": text after the closing quote");
    } else {
      // A comment starts at a '#' after a space or tab.
      for (size_t i = 0; i < rest.size(); ++i)
        if (rest[i] == '#' && i > 0 && (rest[i - 1] == ' ' || rest[i - 1] == '\t')) {
          rest = rest.substr(0, i);
          break;
        }
      value = trim(rest);
    }
    out.push_back(dotenv_entry{name, value, n});
  }
  return out;
}

} // namespace bgagent
