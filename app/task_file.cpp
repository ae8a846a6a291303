#include "app/task_file.hpp"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "app/errors.hpp"
#include "messages/sha256.hpp"
#include "messages/utf8.hpp"
#include "providers/task_types.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

constexpr uint32_t max_tokens_limit = 200000;

task parse_task(const json& j, const std::string& where, uint64_t max_input) {
  if (!j.is_object())
    throw usage_error(where + ": a task must be a JSON object");
  auto str_field = [&](const char* name, bool required) -> std::string {
    if (!j.contains(name) || j[name].is_null()) {
      if (required)
        throw usage_error(where + ": missing required field \"" +
                          std::string(name) + "\"");
      return {};
    }
    if (!j[name].is_string())
      throw usage_error(where + ": field \"" + std::string(name) +
                        "\" must be a string");
    return j[name].get<std::string>();
  };
  task t;
  t.type = str_field("type", true);
  if (!is_known_task_type(t.type)) {
    std::string known;
    for (auto& k : known_task_types())
      known += (known.empty() ? "" : ", ") + k;
    throw usage_error(where + ": unknown task type \"" + t.type +
                      "\" (known: " + known + ")");
  }
  t.input = str_field("input", true);
  if (t.input.size() > max_input)
    throw usage_error(where + ": input is " + std::to_string(t.input.size()) +
                      " bytes, more than the limit of " +
                      std::to_string(max_input) +
                      " (BG_AGENT_MAX_INPUT_BYTES)");
  t.id = str_field("id", false);
  if (t.id.size() > 256)
    throw usage_error(where + ": id is longer than 256 characters");
  t.idempotency_key = str_field("idempotency_key", false);
  if (j.contains("max_tokens") && !j["max_tokens"].is_null()) {
    auto& m = j["max_tokens"];
    if (!m.is_number_integer() || m.get<int64_t>() < 1 ||
        m.get<int64_t>() > max_tokens_limit)
      throw usage_error(where + ": max_tokens must be a whole number from 1 "
                                "to " +
                        std::to_string(max_tokens_limit));
    t.max_tokens = static_cast<uint32_t>(m.get<int64_t>());
  }
  if (t.idempotency_key.empty())
    t.idempotency_key = derive_idempotency_key(t.type, t.input);
  if (t.id.empty())
    t.id = "t-" + t.idempotency_key.substr(0, 16);
  return t;
}

// The 1-based line of byte offset `pos` in `text`.
size_t line_of(const std::string& text, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i)
    if (text[i] == '\n')
      ++line;
  return line;
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix,
// and short: it quotes what it read.
std::string parse_error_text(const json::parse_error& e) {
  std::string why = e.what();
  if (auto p = why.find("] "); p != std::string::npos)
    why = why.substr(p + 2);
  // It quotes the file's bytes: valid UTF-8, cut by characters.
  return utf8_clip(sanitize_utf8(why), 160);
}

} // namespace

std::string derive_idempotency_key(const std::string& type,
                                   const std::string& input) {
  return sha256_hex(type + '\x1f' + input);
}

std::vector<task> read_task_file(const std::string& path,
                                 uint64_t max_input_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw usage_error(path + ": cannot open task file");
  std::vector<task> out;
  // Peek at the first non-blank character: '[' means one JSON array, which
  // must be read whole; JSON Lines are streamed line by line so that a big
  // file is never held twice. No seeking back: the file may be a pipe
  // (`--tasks /dev/stdin`); the blank lines skipped still count for the
  // line numbers in errors.
  int first = EOF;
  size_t skipped_lines = 0;
  while ((first = in.peek()) != EOF && std::isspace(first))
    skipped_lines += in.get() == '\n';
  if (first == EOF)
    return out;
  if (first == '[') {
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    json arr;
    try {
      arr = json::parse(text);
    } catch (const json::parse_error& e) {
      throw usage_error(path + " line " +
                        std::to_string(skipped_lines + line_of(text, e.byte)) +
                        ": malformed JSON (" + parse_error_text(e) + ")");
    }
    for (size_t i = 0; i < arr.size(); ++i)
      out.push_back(parse_task(arr[i],
                               path + " element " + std::to_string(i + 1),
                               max_input_bytes));
    return out;
  }
  std::string line;
  size_t n = skipped_lines;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto where = path + " line " + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw usage_error(where + ": malformed JSON (" + parse_error_text(e) +
                        ")");
    }
    out.push_back(parse_task(j, where, max_input_bytes));
  }
  return out;
}

} // namespace bgagent
