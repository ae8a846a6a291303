#include "types/json_schema.hpp"

// VALIJSON_USE_EXCEPTIONS is set for the whole engine (CMakeLists.txt):
// without it valijson prints and calls abort() on a schema it cannot use.

#include <algorithm>
#include <memory>
#include <pthread.h>
#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace bgagent {

namespace {

// How many violations a message lists.
constexpr size_t max_reasons = 3;

// "at /a/b: reason; at /c: reason" from valijson's results, one reason a
// path. Its context is "<root>" then one "[name]" or "[index]" per level.
std::string describe(valijson::ValidationResults& results) {
  std::vector<std::string> paths;
  std::string out;
  valijson::ValidationResults::Error e;
  while (results.popError(e) && paths.size() < max_reasons) {
    std::string path;
    for (auto& c : e.context) {
      if (c == "<root>")
        continue;
      auto part = c;
      if (part.size() >= 2 && part.front() == '[' && part.back() == ']')
        part = part.substr(1, part.size() - 2);
      if (part.size() >= 2 && part.front() == '"' && part.back() == '"')
        part = part.substr(1, part.size() - 2);
      path += "/" + part;
    }
    // valijson's reports for enclosing levels ("Failed to validate against
    // child schema ...") repeat a deeper reason: leave them out.
    if (e.description.rfind("Failed to validate", 0) == 0)
      continue;
    if (std::find(paths.begin(), paths.end(), path) != paths.end())
      continue;
    paths.push_back(path);
    auto why = e.description;
    while (!why.empty() && (why.back() == '.' || why.back() == ' '))
      why.pop_back();
    out += (out.empty() ? "" : "; ") + std::string("at ") +
           (path.empty() ? std::string("/") : path) + ": " + why;
  }
  return out;
}

const valijson::Schema& meta_schema() {
  static const valijson::Schema* schema = [] {
    // Both live as long as the process: valijson's schema may point into
    // the document it was parsed from.
    auto* s = new valijson::Schema;
    auto* doc = new nlohmann::json(
      nlohmann::json::parse(draft7_meta_schema_text()));
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(*doc);
    parser.populateSchema(adapter, *s);
    return s;
  }();
  return *schema;
}

// Keywords whose values are data, not schemas: a "pattern" or "$ref" in
// them is not one.
bool is_data_keyword(const std::string& key) {
  return key == "const" || key == "enum" || key == "examples" ||
         key == "default";
}

// Whether the ECMAScript regex `re` repeats a group that itself holds a
// repeating quantifier, e.g. "(a+)+" or "(\\w*x)*": std::regex backtracks
// through such a nest in exponential time (no timeout exists), so a
// hostile or careless schema could stall validation for hours.
// Alternations of overlapping branches ("(a|a)*") are not caught.
bool nested_quantifier(const std::string& re) {
  // Per open group: whether something inside repeats.
  std::vector<bool> groups{false};
  bool last_group_repeats = false; // the group just closed
  bool after_group = false;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    // A quantifier that repeats (not "?" or "{0,1}" / "{1}").
    auto repeating = [&](size_t at) {
      char q = re[at];
      if (q == '*' || q == '+')
        return true;
      if (q != '{')
        return false;
      auto close = re.find('}', at);
      if (close == std::string::npos)
        return false;
      auto body = re.substr(at + 1, close - at - 1);
      auto comma = body.find(',');
      if (comma == std::string::npos)
        return std::atoi(body.c_str()) > 1;
      auto max = body.substr(comma + 1);
      return max.empty() || std::atoi(max.c_str()) > 1;
    };
    if (c == '\\') {
      ++i; // the escaped character is a literal (or a class like \d)
      after_group = false;
      continue;
    }
    if (c == '[') { // a class: its quantifier characters are literals
      ++i;
      if (i < re.size() && re[i] == '^')
        ++i;
      if (i < re.size() && re[i] == ']')
        ++i;
      while (i < re.size() && re[i] != ']')
        i += re[i] == '\\' ? 2 : 1;
      after_group = false;
      continue;
    }
    if (c == '(') {
      groups.push_back(false);
      after_group = false;
      continue;
    }
    if (c == ')') {
      last_group_repeats = groups.size() > 1 && groups.back();
      if (groups.size() > 1)
        groups.pop_back();
      if (last_group_repeats) // what repeats inside repeats in its parent
        groups.back() = true;
      after_group = true;
      continue;
    }
    if ((c == '*' || c == '+' || c == '{') && repeating(i)) {
      if (after_group && last_group_repeats)
        return true;
      groups.back() = true;
    }
    after_group = false;
  }
  return false;
}

// valijson compiles `pattern` and `patternProperties` with std::regex when
// it first validates: compile them now, so a bad one is a load-time error.
// And valijson follows `$ref` chains without a cycle check: a chain that
// never leaves `$ref`s ({"$ref": "#"}) would recurse until the stack ends,
// so every local chain must reach a schema that is not only a reference.
void check_schema(const nlohmann::json& root, const nlohmann::json& doc,
                  const std::string& path) {
  auto bad = [&](const std::string& where, const std::string& why) {
    throw std::invalid_argument("not a valid JSON Schema (draft 7): at " +
                                where + ": " + why);
  };
  auto check_re = [&](const std::string& re, const std::string& where) {
    if (re.size() > 1000)
      bad(where, "a pattern of more than 1000 characters");
    try {
      std::regex compiled(re);
    } catch (const std::regex_error& e) {
      bad(where, "\"" + re + "\" is not a regular expression (" + e.what() +
                   ")");
    }
    if (nested_quantifier(re))
      bad(where, "\"" + re + "\" repeats a group that itself repeats: it can "
                 "take exponential time to match; write it without the "
                 "nesting");
  };
  if (doc.is_object()) {
    if (doc.contains("$ref") && doc["$ref"].is_string()) {
      std::vector<const nlohmann::json*> seen{&doc};
      const nlohmann::json* at = &doc;
      while (at->is_object() && at->contains("$ref") &&
             (*at)["$ref"].is_string()) {
        auto ref = (*at)["$ref"].get<std::string>();
        if (ref.empty() || ref[0] != '#')
          break; // another document: valijson refuses it itself
        try {
          at = &root.at(nlohmann::json::json_pointer(ref.substr(1)));
        } catch (const std::exception&) {
          break; // valijson names the missing target
        }
        if (std::find(seen.begin(), seen.end(), at) != seen.end())
          bad(path + "/$ref", "\"" + ref + "\" refers back to itself");
        seen.push_back(at);
      }
    }
    for (auto& [key, value] : doc.items()) {
      if (is_data_keyword(key))
        continue;
      auto here = path + "/" + key;
      if (key == "pattern" && value.is_string())
        check_re(value.get<std::string>(), here);
      if (key == "patternProperties" && value.is_object())
        for (auto& [re, sub] : value.items())
          check_re(re, here);
      check_schema(root, value, here);
    }
  } else if (doc.is_array()) {
    for (size_t i = 0; i < doc.size(); ++i)
      check_schema(root, doc[i], path + "/" + std::to_string(i));
  }
}

} // namespace

struct json_schema::impl {
  nlohmann::json doc; // the schema may point into it: kept with it
  valijson::Schema schema;
  bool uses_regex = false; // pattern, patternProperties or format
};

namespace {

// libstdc++'s std::regex recurses once per character matched: a string of
// ~30,000 characters against "^[a-z ]+$" overflows an 8 MB stack. A model
// may answer that long, so a long string meets the schema's regular
// expressions on a thread with a stack big enough for it (reserved, used
// only as deep as the match goes), and a string longer than that bound is
// refused unchecked.
constexpr size_t long_string = 2000;
constexpr size_t max_checked_string = 200000;
constexpr size_t big_stack_bytes = size_t{1} << 30;

size_t longest_string(const nlohmann::json& v) {
  if (v.is_string())
    return v.get_ref<const std::string&>().size();
  size_t n = 0;
  if (v.is_structured())
    for (auto& x : v)
      n = std::max(n, longest_string(x));
  return n;
}

bool mentions_regex(const nlohmann::json& doc) {
  if (doc.is_object()) {
    for (auto& [key, value] : doc.items()) {
      if (is_data_keyword(key))
        continue;
      if (key == "pattern" || key == "patternProperties" || key == "format")
        return true;
      if (mentions_regex(value))
        return true;
    }
  } else if (doc.is_array()) {
    for (auto& x : doc)
      if (mentions_regex(x))
        return true;
  }
  return false;
}

// Runs f on a thread with a big stack and waits for it.
template <class F>
void on_big_stack(F f) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, big_stack_bytes);
  pthread_t tid;
  auto* job = new F(std::move(f));
  auto run = [](void* p) -> void* {
    std::unique_ptr<F> job(static_cast<F*>(p));
    (*job)();
    return nullptr;
  };
  if (pthread_create(&tid, &attr, run, job) != 0) {
    pthread_attr_destroy(&attr);
    std::unique_ptr<F> owned(job);
    throw std::runtime_error("cannot start a thread to check a long string");
  }
  pthread_attr_destroy(&attr);
  pthread_join(tid, nullptr);
}

} // namespace

json_schema::json_schema() : impl_(std::make_unique<impl>()) {}
json_schema::~json_schema() = default;

std::shared_ptr<const json_schema>
json_schema::compile(const nlohmann::json& doc) {
  {
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    if (!validator.validate(meta_schema(), adapter, &results))
      throw std::invalid_argument("not a valid JSON Schema (draft 7): " +
                                  describe(results));
  }
  check_schema(doc, doc, "");
  std::shared_ptr<json_schema> out(new json_schema());
  out->impl_->doc = doc;
  out->impl_->uses_regex = mentions_regex(doc);
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(out->impl_->doc);
    parser.populateSchema(adapter, out->impl_->schema);
  } catch (const std::exception& e) {
    // e.g. a $ref to a document elsewhere: only schemas that stand alone.
    throw std::invalid_argument(std::string("not a usable JSON Schema: ") +
                                e.what());
  }
  return out;
}

std::string json_schema::violations(const nlohmann::json& value) const {
  auto check = [this](const nlohmann::json& v, bool fresh_validator) {
    // One validator a thread: it caches the compiled regular expressions of
    // `pattern`s (by pattern text), which would cost more than the rest of
    // a validation to compile each time.
    thread_local valijson::Validator shared;
    valijson::Validator own;
    auto& validator = fresh_validator ? own : shared;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter adapter(v);
    try {
      if (validator.validate(impl_->schema, adapter, &results))
        return std::string();
    } catch (const std::exception& e) {
      return std::string("cannot be checked against the schema: ") + e.what();
    }
    auto why = describe(results);
    return why.empty() ? std::string("does not match the schema") : why;
  };
  if (!impl_->uses_regex)
    return check(value, false);
  auto longest = longest_string(value);
  if (longest <= long_string)
    return check(value, false);
  if (longest > max_checked_string)
    return "a string of " + std::to_string(longest) +
           " characters is too long to check against the schema's patterns "
           "and formats (at most " + std::to_string(max_checked_string) + ")";
  std::string out;
  on_big_stack([&] { out = check(value, true); });
  return out;
}

} // namespace bgagent
