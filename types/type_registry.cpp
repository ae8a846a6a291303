#include "types/type_registry.hpp"
#include "types/model_list.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

#include <yaml-cpp/yaml.h>

#include "messages/sha256.hpp"
#include "types/builtin_types.hpp"
#include "types/prompt_template.hpp"

namespace bgagent {

using nlohmann::json;

namespace {

constexpr size_t max_file_bytes = 4 << 20;
// Aliases can make a small YAML file name a huge tree: bound what is built.
constexpr size_t max_nodes = 200000;
constexpr int max_depth = 64;
constexpr uint32_t max_tokens_limit = 200000;

const char* known_fields =
  "system, prompt, schema, max_tokens, model, fallback_models, "
  "temperature, description";

// "FILE line N: " for a node (yaml-cpp counts lines from 0).
std::string at(const std::string& source, const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null())
    return source + ": ";
  return source + " line " + std::to_string(m.line + 1) + ": ";
}

// A plain YAML scalar as the JSON value YAML 1.2's core schema makes of
// it; a quoted one stays a string.
json scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!")
    return s;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  // Numbers as JSON writes them (YAML's forms beyond that stay strings).
  auto j = json::parse(s, nullptr, false);
  if (!j.is_discarded() && j.is_number()) {
    if (j.is_number_float() && !std::isfinite(j.get<double>()))
      return s;
    return j;
  }
  return s;
}

json to_json(const YAML::Node& n, const std::string& source, int depth,
             size_t& nodes) {
  if (++nodes > max_nodes || depth > max_depth)
    throw std::invalid_argument(at(source, n) +
                                "too large or too deeply nested (aliases?)");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(n);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : n)
        out.push_back(to_json(item, source, depth + 1, nodes));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          throw std::invalid_argument(at(source, kv.first) +
                                      "a key must be a plain string");
        out[kv.first.Scalar()] = to_json(kv.second, source, depth + 1, nodes);
      }
      return out;
    }
  }
  return nullptr;
}

std::shared_ptr<const task_type> make_type(const std::string& name,
                                           const YAML::Node& def,
                                           const std::string& source,
                                           size_t& nodes) {
  auto where = at(source, def) + "type \"" + name + "\": ";
  if (!def.IsMap())
    throw std::invalid_argument(where + "must be a mapping of " +
                                known_fields);
  auto t = std::make_shared<task_type>();
  t->name = name;
  t->source = source;
  std::vector<std::string> seen;
  for (const auto& kv : def) {
    auto field = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    auto fwhere = at(source, kv.first) + "type \"" + name + "\": ";
    if (std::find(seen.begin(), seen.end(), field) != seen.end())
      throw std::invalid_argument(fwhere + "field \"" + field +
                                  "\" is given twice");
    seen.push_back(field);
    auto value = to_json(kv.second, source, 1, nodes);
    auto text = [&](std::string& dst) {
      if (!value.is_string())
        throw std::invalid_argument(fwhere + "field \"" + field +
                                    "\" must be a string");
      dst = value.get<std::string>();
    };
    if (field == "system") {
      text(t->system);
    } else if (field == "prompt") {
      text(t->prompt);
    } else if (field == "description") {
      text(t->description);
    } else if (field == "model") {
      text(t->model);
    } else if (field == "fallback_models") {
      try {
        t->fallback_models = parse_model_list(value);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fwhere + "field \"fallback_models\" " +
                                    e.what());
      }
    } else if (field == "schema") {
      if (!value.is_object() && !value.is_boolean())
        throw std::invalid_argument(fwhere +
                                    "field \"schema\" must be a JSON Schema "
                                    "(a mapping)");
      try {
        t->compiled = json_schema::compile(value);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fwhere + "field \"schema\" is " +
                                    e.what());
      }
      // A result is a JSON object: the schema says so at its root.
      if (!value.is_object() || !value.contains("type") ||
          value["type"] != "object")
        throw std::invalid_argument(fwhere +
                                    "field \"schema\" must describe an "
                                    "object, with type: object at its root "
                                    "(a result is a JSON object)");
      t->schema = std::move(value);
    } else if (field == "max_tokens") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > max_tokens_limit)
        throw std::invalid_argument(fwhere +
                                    "field \"max_tokens\" must be a whole "
                                    "number from 1 to " +
                                    std::to_string(max_tokens_limit));
      t->max_tokens = static_cast<uint32_t>(value.get<int64_t>());
    } else if (field == "temperature") {
      if (!value.is_number() || value.get<double>() < 0 ||
          value.get<double>() > 2)
        throw std::invalid_argument(fwhere +
                                    "field \"temperature\" must be a number "
                                    "from 0 to 2");
      t->temperature = value.get<double>();
    } else {
      throw std::invalid_argument(fwhere + "unknown field \"" + field +
                                  "\" (known: " + known_fields + ")");
    }
  }
  if (t->system.empty() && t->prompt.empty())
    throw std::invalid_argument(where + "needs a \"system\" or a \"prompt\"");
  if (t->schema.is_null())
    throw std::invalid_argument(where + "needs a \"schema\" (JSON Schema, "
                                        "draft 7) of its result");
  for (auto* tmpl : {&t->system, &t->prompt})
    for (auto& v : placeholders(*tmpl))
      if (v != "input" &&
          std::find(t->vars.begin(), t->vars.end(), v) == t->vars.end())
        t->vars.push_back(v);
  json canonical{{"system", t->system},         {"prompt", t->prompt},
                 {"schema", t->schema},         {"max_tokens", t->max_tokens},
                 {"model", t->model},           {"temperature", t->temperature}};
  // Only when given: the fingerprints of types without it stay as they were.
  if (!t->fallback_models.empty())
    canonical["fallback_models"] = t->fallback_models;
  t->canonical = canonical.dump();
  t->fingerprint = sha256_hex(t->canonical);
  return t;
}

std::shared_ptr<const task_type> chat_type() {
  auto t = std::make_shared<task_type>();
  t->name = "chat";
  t->description = "A raw chat request: an OpenAI Batch line (custom_id, "
                   "method, url, body), its body sent as it is.";
  t->prompt.clear();
  t->max_tokens = 1024;
  t->raw = true;
  t->source = "built-in";
  t->canonical = R"({"raw":true})";
  t->fingerprint = sha256_hex(t->canonical);
  return t;
}

} // namespace

type_registry type_registry::builtin() {
  type_registry r;
  r.load_text(builtin_types_yaml(), "built-in");
  r.types_["chat"] = chat_type();
  return r;
}

const type_registry& type_registry::builtin_types() {
  static const type_registry r = builtin();
  return r;
}

void type_registry::load_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::invalid_argument(path + ": cannot open types file");
  if (!S_ISREG(st.st_mode))
    throw std::invalid_argument(path + ": a types file must be a regular "
                                       "file");
  if (static_cast<size_t>(st.st_size) > max_file_bytes)
    throw std::invalid_argument(path + ": types file is larger than 4 MiB");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::invalid_argument(path + ": cannot open types file");
  std::stringstream text;
  text << in.rdbuf();
  load_text(text.str(), path);
}

void type_registry::load_text(const std::string& text,
                              const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(
      source + (e.mark.is_null() ? std::string(": ")
                                 : " line " + std::to_string(e.mark.line + 1) +
                                     ": ") +
      "not valid YAML or JSON (" + e.msg + ")");
  }
  if (root.IsNull())
    throw std::invalid_argument(source + ": no task types in the file");
  if (!root.IsMap())
    throw std::invalid_argument(source + ": a types file is a mapping from "
                                         "type names to their definitions");
  std::map<std::string, std::shared_ptr<const task_type>> loaded;
  size_t nodes = 0; // for the whole file: aliases may repeat across types
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty())
      throw std::invalid_argument(at(source, kv.first) +
                                  "a type name must be a non-empty string");
    auto name = kv.first.Scalar();
    if (name.size() > 64 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
          std::string::npos)
      throw std::invalid_argument(at(source, kv.first) + "type name \"" +
                                  name +
                                  "\": use letters, digits, _, - and . (at "
                                  "most 64)");
    if (name == "chat")
      throw std::invalid_argument(at(source, kv.first) +
                                  "type \"chat\" is built in (raw chat "
                                  "requests) and cannot be redefined");
    if (loaded.count(name))
      throw std::invalid_argument(at(source, kv.first) + "type \"" + name +
                                  "\" is defined twice");
    loaded[name] = make_type(name, kv.second, source, nodes);
  }
  for (auto& kv : loaded)
    types_[kv.first] = std::move(kv.second);
}

const task_type* type_registry::find(const std::string& name) const {
  auto i = types_.find(name);
  return i == types_.end() ? nullptr : i->second.get();
}

std::vector<const task_type*> type_registry::all() const {
  std::vector<const task_type*> out;
  for (auto& kv : types_)
    out.push_back(kv.second.get());
  return out;
}

std::string type_registry::names() const {
  std::string out;
  for (auto& kv : types_)
    out += (out.empty() ? "" : ", ") + kv.first;
  return out;
}

std::string types_file_to_use(const std::string& given) {
  if (!given.empty())
    return given;
  struct stat st {};
  if (::stat("bgagent-types.yaml", &st) == 0)
    return "bgagent-types.yaml";
  return {};
}

} // namespace bgagent
