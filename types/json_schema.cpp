#include "types/json_schema.hpp"

// Without it valijson prints and calls abort() on a schema it cannot use.
#define VALIJSON_USE_EXCEPTIONS 1

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

// "at /a/b: reason; at /c: reason" from valijson's results. Its context is
// "<root>" then one "[name]" or "[index]" per level. valijson also reports
// every enclosing level of a failure ("failed to validate against child
// schema"): a reason at a path that encloses one already given is left out.
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
    bool encloses = false;
    for (auto& p : paths)
      encloses = encloses || p.compare(0, path.size(), path) == 0;
    if (encloses)
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

// valijson compiles `pattern` and `patternProperties` with std::regex when
// it first validates: compile them now, so a bad one is a load-time error.
void check_patterns(const nlohmann::json& doc, const std::string& path) {
  auto check = [&](const std::string& re, const std::string& where) {
    try {
      std::regex compiled(re);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("not a valid JSON Schema (draft 7): at " +
                                  where + ": \"" + re +
                                  "\" is not a regular expression (" +
                                  e.what() + ")");
    }
  };
  if (doc.is_object()) {
    for (auto& [key, value] : doc.items()) {
      auto here = path + "/" + key;
      if (key == "pattern" && value.is_string())
        check(value.get<std::string>(), here);
      if (key == "patternProperties" && value.is_object())
        for (auto& [re, sub] : value.items())
          check(re, here);
      check_patterns(value, here);
    }
  } else if (doc.is_array()) {
    for (size_t i = 0; i < doc.size(); ++i)
      check_patterns(doc[i], path + "/" + std::to_string(i));
  }
}

} // namespace

struct json_schema::impl {
  nlohmann::json doc; // the schema may point into it: kept with it
  valijson::Schema schema;
};

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
  check_patterns(doc, "");
  std::shared_ptr<json_schema> out(new json_schema());
  out->impl_->doc = doc;
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
  // One validator a thread: it caches the compiled regular expressions of
  // `pattern`s (by pattern text), which would cost more than the rest of a
  // validation to compile each time.
  thread_local valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(value);
  try {
    if (validator.validate(impl_->schema, adapter, &results))
      return {};
  } catch (const std::exception& e) {
    return std::string("cannot be checked against the schema: ") + e.what();
  }
  auto why = describe(results);
  return why.empty() ? std::string("does not match the schema") : why;
}

} // namespace bgagent
