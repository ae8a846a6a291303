#include "app/task_file.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "app/errors.hpp"
#include "messages/json_depth.hpp"
#include "messages/run.hpp"
#include "messages/sha256.hpp"
#include "messages/utf8.hpp"
#include "types/model_list.hpp"
#include "types/openai_batch.hpp"
#include "types/type_registry.hpp"

namespace bgagent {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr uint32_t max_tokens_limit = 200000;

const char* known_fields = "id, type, input, vars, idempotency_key, "
                           "max_tokens, model, fallback_models, priority, "
                           "tags";

// Priorities far from int64's ends: the supervisor's cursor starts above.
constexpr int64_t max_priority = 1000000000;
constexpr size_t max_tags = 16, max_tag_chars = 64;
// A task line is no deeper than an OpenAI Batch line's body (64) allows.
constexpr int max_line_depth = 66;

// `priority` and `tags`, which order and group a task but are not part of
// what it asks (so not of its content hash).
void read_order_fields(const json& j, const std::string& where, task& t) {
  if (j.contains("priority") && !j["priority"].is_null()) {
    auto& p = j["priority"];
    // An unsigned value above int64's range would wrap: check it as one.
    bool out_of_range =
      !p.is_number_integer() ||
      (p.is_number_unsigned() ? p.get<uint64_t>() > uint64_t(max_priority)
                              : p.get<int64_t>() < -max_priority ||
                                  p.get<int64_t>() > max_priority);
    if (out_of_range)
      throw usage_error(where + ": priority must be a whole number from " +
                        std::to_string(-max_priority) + " to " +
                        std::to_string(max_priority));
    t.priority = p.get<int64_t>();
  }
  if (j.contains("tags") && !j["tags"].is_null()) {
    auto& tags = j["tags"];
    if (!tags.is_array() || tags.size() > max_tags)
      throw usage_error(where + ": tags must be a list of at most " +
                        std::to_string(max_tags) + " strings");
    for (auto& tag : tags) {
      if (!tag.is_string() || tag.get_ref<const std::string&>().empty() ||
          utf8_length(tag.get_ref<const std::string&>()) > max_tag_chars ||
          sanitize_utf8(tag.get<std::string>()) != tag.get<std::string>())
        throw usage_error(where + ": each tag must be a string of 1 to " +
                          std::to_string(max_tag_chars) + " characters");
      auto& text = tag.get_ref<const std::string&>();
      if (has_control_chars(text))
        throw usage_error(where + ": a tag may not contain control "
                                  "characters");
      if (std::find(t.tags.begin(), t.tags.end(), text) == t.tags.end())
        t.tags.push_back(text);
    }
  }
}

// `ordered`: the same line in its own key order, for an OpenAI Batch line
// (whose body is sent as written); null for others.
task parse_task(const json& j, const ordered_json* ordered,
                const std::string& where, uint64_t max_input,
                const type_registry& types, const task_type*& type_out) {
  if (!j.is_object())
    throw usage_error(where + ": a task must be a JSON object");
  if (is_batch_line(j)) {
    auto* chat = types.find("chat");
    task t;
    try {
      // (No conditional expression here: it would copy, recursively.)
      if (ordered)
        t = read_batch_line(*ordered, max_tokens_limit, chat->fingerprint);
      else if (deeper_than(j, max_line_depth))
        throw std::invalid_argument("nested more than " +
                                    std::to_string(max_line_depth) +
                                    " levels deep");
      else
        t = read_batch_line(ordered_json(j), max_tokens_limit,
                            chat->fingerprint);
    } catch (const std::invalid_argument& e) {
      throw usage_error(where + ": " + e.what());
    }
    if (t.input.size() > max_input)
      throw usage_error(where + ": body is " + std::to_string(t.input.size()) +
                        " bytes, more than the limit of " +
                        std::to_string(max_input) +
                        " (BG_AGENT_MAX_INPUT_BYTES)");
    type_out = chat;
    return t;
  }
  for (auto& [name, value] : j.items()) {
    static const char* known[] = {"id",         "type",  "input", "vars",
                                  "idempotency_key", "max_tokens", "model",
                                  "fallback_models", "priority", "tags"};
    if (std::find(std::begin(known), std::end(known), name) == std::end(known))
      throw usage_error(where + ": unknown field \"" +
                        utf8_clip(sanitize_utf8(name), 64) + "\" (known: " +
                        known_fields + ")");
  }
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
  auto* type = types.find(t.type);
  if (!type)
    throw usage_error(where + ": unknown task type \"" +
                      utf8_clip(sanitize_utf8(t.type), 64) + "\" (known: " +
                      types.names() + ")");
  if (type->raw)
    throw usage_error(where + ": type \"chat\" takes an OpenAI Batch line "
                              "(custom_id, method, url, body), not input");
  type_out = type;
  t.input = str_field("input", true);
  uint64_t bytes = t.input.size();
  if (j.contains("vars") && !j["vars"].is_null()) {
    auto& v = j["vars"];
    if (!v.is_object())
      throw usage_error(where + ": field \"vars\" must be an object of "
                                "strings");
    for (auto& [name, value] : v.items()) {
      if (!value.is_string())
        throw usage_error(where + ": vars." + utf8_clip(sanitize_utf8(name),
                                                        64) +
                          " must be a string");
      bytes += name.size() + value.get_ref<const std::string&>().size();
      t.vars[name] = value.get<std::string>();
    }
  }
  if (bytes > max_input)
    throw usage_error(where + ": input and vars are " + std::to_string(bytes) +
                      " bytes, more than the limit of " +
                      std::to_string(max_input) +
                      " (BG_AGENT_MAX_INPUT_BYTES)");
  for (auto& name : type->vars)
    if (!t.vars.count(name))
      throw usage_error(where + ": type \"" + t.type + "\" needs vars." +
                        name + " (its prompt uses {{" + name + "}})");
  t.id = str_field("id", false);
  if (t.id.size() > 256)
    throw usage_error(where + ": id is longer than 256 characters");
  if (has_control_chars(t.id))
    throw usage_error(where + ": id may not contain control characters");
  t.idempotency_key = str_field("idempotency_key", false);
  if (t.idempotency_key.rfind("id:", 0) == 0)
    throw usage_error(where + ": idempotency_key may not start with \"id:\" "
                              "(reserved for keys taken from ids)");
  t.model = str_field("model", false);
  if (j.contains("model") && (t.model.empty() || t.model.size() > 200))
    throw usage_error(where + ": field \"model\" must be a model name of 1 "
                              "to 200 characters");
  if (j.contains("fallback_models") && !j["fallback_models"].is_null()) {
    try {
      t.fallback_models = parse_model_list(j["fallback_models"]);
    } catch (const std::invalid_argument& e) {
      throw usage_error(where + ": field \"fallback_models\" " + e.what());
    }
  }
  if (j.contains("max_tokens") && !j["max_tokens"].is_null()) {
    auto& m = j["max_tokens"];
    if (!m.is_number_integer() || m.get<int64_t>() < 1 ||
        m.get<int64_t>() > max_tokens_limit)
      throw usage_error(where + ": max_tokens must be a whole number from 1 "
                                "to " +
                        std::to_string(max_tokens_limit));
    t.max_tokens = static_cast<uint32_t>(m.get<int64_t>());
  }
  read_order_fields(j, where, t);
  t.type_fingerprint = type->fingerprint;
  bool derived_key = t.idempotency_key.empty() && t.id.empty();
  // A key taken from the id is marked, so it never equals a key a user
  // gave another task.
  if (t.idempotency_key.empty())
    t.idempotency_key = t.id.empty() ? derive_idempotency_key(t, *type)
                                     : "id:" + t.id;
  // An id from a derived key is its first 16 hex digits, as earlier
  // releases made it; from a key the user gave, from that key's hash (two
  // keys with one prefix are two ids).
  if (t.id.empty())
    t.id = "t-" + (derived_key ? t.idempotency_key
                               : sha256_hex(t.idempotency_key))
                    .substr(0, 16);
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
std::string parse_error_text(const json::exception& e) {
  std::string why = e.what();
  if (auto p = why.find("] "); p != std::string::npos)
    why = why.substr(p + 2);
  // It quotes the file's bytes: valid UTF-8, cut by characters.
  return utf8_clip(sanitize_utf8(why), 160);
}

// Where in `text` the number quoted by a number-overflow error ("number
// overflow parsing '1e400'") is, else 0.
size_t quoted_pos(const std::string& text, const json::exception& e) {
  std::string what = e.what();
  auto a = what.find('\'');
  auto b = what.rfind('\'');
  if (a == std::string::npos || b <= a + 1)
    return 0;
  auto p = text.find(what.substr(a + 1, b - a - 1));
  return p == std::string::npos ? 0 : p;
}

} // namespace

std::string submit_summary(const submit_counts& n) {
  auto out = std::to_string(n.inserted) + " task(s) submitted, " +
             std::to_string(n.duplicates) + " already known (skipped)";
  if (n.replaced > 0)
    out += ", " + std::to_string(n.replaced) +
           " replaced with new content (to run again)";
  if (n.conflicts_skipped > 0)
    out += ", " + std::to_string(n.conflicts_skipped) +
           " with new content kept as stored (--on-conflict skip)";
  return out;
}

std::string derive_idempotency_key(const std::string& type,
                                   const std::string& input) {
  return sha256_hex(type + '\x1f' + input);
}

std::string derive_idempotency_key(const task& t, const task_type& type) {
  auto* same = type_registry::builtin_types().find(type.name);
  if (same && same->fingerprint == type.fingerprint && t.vars.empty() &&
      t.model.empty())
    return derive_idempotency_key(t.type, t.input);
  // JSON, not separators: no input can pass for vars.
  return sha256_hex(
    json::array({type.fingerprint, t.model, t.input, t.vars}).dump());
}

struct task_file_reader::impl {
  std::string path;
  uint64_t max_input_bytes;
  type_registry types; // a copy (shared definitions): callers pass temporaries
  std::unique_ptr<std::istream> in;
  bool array = false;
  ordered_json arr; // a JSON array file, read whole
  size_t next_element = 0;
  size_t line_no = 0;
  size_t count = 0;
  std::set<std::string> used; // fingerprints handed over
  std::map<std::string, std::string> custom_ids; // -> where first seen

  impl(const std::string& p, uint64_t max, const type_registry& t)
    : path(p), max_input_bytes(max), types(t) {}

  void start();

  void add(const json& j, const ordered_json* ordered, std::string where,
           task_file_entry& out) {
    const task_type* type = nullptr;
    out.t = parse_task(j, ordered, where, max_input_bytes, types, type);
    if (type->raw) {
      auto [i, fresh] = custom_ids.emplace(out.t.id, where);
      if (!fresh)
        throw usage_error(where + ": custom_id \"" +
                          utf8_clip(sanitize_utf8(i->first), 64) +
                          "\" is used twice (first at " + i->second + ")");
    }
    ++count;
    out.where = std::move(where);
    out.first_use.reset();
    if (used.insert(type->fingerprint).second)
      out.first_use =
        type_definition{type->fingerprint, type->name, type->canonical};
  }
};

task_file_reader::task_file_reader(const std::string& path,
                                   uint64_t max_input_bytes,
                                   const type_registry& types)
  : d_(std::make_unique<impl>(path, max_input_bytes, types)) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw usage_error(path + ": is a directory, not a task file");
  auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*file)
    throw usage_error(path + ": cannot open task file");
  d_->in = std::move(file);
  d_->start();
}

task_file_reader::task_file_reader(std::unique_ptr<std::istream> in,
                                   const std::string& name,
                                   uint64_t max_input_bytes,
                                   const type_registry& types)
  : d_(std::make_unique<impl>(name, max_input_bytes, types)) {
  d_->in = std::move(in);
  d_->start();
}

void task_file_reader::impl::start() {
  auto& in = *this->in;
  // A UTF-8 byte order mark (as some editors write) is not part of JSON.
  if (in.peek() == 0xEF) {
    char bom[3] = {};
    in.read(bom, 3);
    if (!(bom[1] == '\xBB' && bom[2] == '\xBF'))
      throw usage_error(path + " line 1: malformed JSON (not UTF-8 text)");
  }
  // Peek at the first non-blank character: '[' means one JSON array, which
  // must be read whole; JSON Lines are streamed line by line so that a big
  // file is never held whole. No seeking back: the file may be a pipe
  // (`--tasks /dev/stdin`); the blank lines skipped still count for the
  // line numbers in errors.
  int first = EOF;
  while ((first = in.peek()) != EOF && std::isspace(first))
    line_no += in.get() == '\n';
  if (first == EOF)
    throw usage_error(path + ": the file holds no tasks");
  if (first != '[')
    return;
  array = true;
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // In its own key order, for OpenAI Batch lines' bodies.
  auto skipped = line_no;
  try {
    arr = ordered_json::parse(text);
  } catch (const json::parse_error& e) {
    throw usage_error(path + " line " +
                      std::to_string(skipped + line_of(text, e.byte)) +
                      ": malformed JSON (" + parse_error_text(e) + ")");
  } catch (const json::exception& e) {
    throw usage_error(path + " line " +
                      std::to_string(skipped +
                                     line_of(text, quoted_pos(text, e))) +
                      ": malformed JSON (" + parse_error_text(e) + ")");
  }
  if (arr.empty())
    throw usage_error(path + ": the file holds no tasks");
}

task_file_reader::~task_file_reader() = default;

bool task_file_reader::next(task_file_entry& out) {
  auto& d = *d_;
  if (d.array) {
    if (d.next_element >= d.arr.size())
      return false;
    auto i = d.next_element++;
    auto where = d.path + " element " + std::to_string(i + 1);
    // Converting recurses once per level: no deeper than a task can be.
    if (deeper_than(d.arr[i], max_line_depth))
      throw usage_error(where + ": nested more than " +
                        std::to_string(max_line_depth) + " levels deep");
    d.add(json(d.arr[i]), &d.arr[i], std::move(where), out);
    return true;
  }
  std::string line;
  while (std::getline(*d.in, line)) {
    ++d.line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto where = d.path + " line " + std::to_string(d.line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) { // syntax, or a number overflow
      throw usage_error(where + ": malformed JSON (" + parse_error_text(e) +
                        ")");
    }
    if (is_batch_line(j)) {
      // Parsed once more in its own key order: its body is sent as written.
      auto ordered = ordered_json::parse(line);
      d.add(j, &ordered, std::move(where), out);
    } else {
      d.add(j, nullptr, std::move(where), out);
    }
    return true;
  }
  if (d.count == 0)
    throw usage_error(d.path + ": the file holds no tasks");
  return false;
}

task_file_contents read_task_file(const std::string& path,
                                  uint64_t max_input_bytes,
                                  const type_registry& types) {
  task_file_contents out;
  task_file_reader reader(path, max_input_bytes, types);
  for (task_file_entry e; reader.next(e);) {
    out.tasks.push_back(std::move(e.t));
    out.where.push_back(std::move(e.where));
    if (e.first_use)
      out.types.push_back(std::move(*e.first_use));
  }
  return out;
}

} // namespace bgagent
