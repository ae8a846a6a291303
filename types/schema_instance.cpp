#include "types/schema_instance.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace bgagent {

using nlohmann::json;

namespace {

constexpr int max_depth = 32;
// Values made for one instance at most, and the largest array and string:
// a schema may ask for more (minItems: 1e9, a $ref to itself at every
// property); the instance then fails its validation instead of the process.
constexpr size_t max_values = 10000;
constexpr size_t max_items = 1000;
constexpr size_t max_length = 10000;

// A step of a small deterministic generator (splitmix64).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Compiled once a thread per pattern: compiling costs more than the rest.
const std::regex& compiled(const std::string& pattern) {
  thread_local std::map<std::string, std::regex> cache;
  auto i = cache.find(pattern);
  if (i == cache.end())
    i = cache.emplace(pattern, std::regex(pattern)).first;
  return i->second;
}

struct maker {
  const json& root;
  size_t made = 0;

  const json* deref(const json& s) const {
    if (!s.is_object() || !s.contains("$ref") || !s["$ref"].is_string())
      return &s;
    auto ref = s["$ref"].get<std::string>();
    if (ref.rfind("#", 0) != 0)
      return &s;
    try {
      auto ptr = json::json_pointer(ref.substr(1));
      return &root.at(ptr);
    } catch (const std::exception&) {
      return &s;
    }
  }

  static std::string pick_type(const json& s) {
    if (!s.contains("type"))
      return s.contains("properties") || s.contains("required") ? "object"
             : s.contains("items")                              ? "array"
                                                                : "string";
    auto& t = s["type"];
    if (t.is_string())
      return t.get<std::string>();
    if (t.is_array()) {
      for (auto& x : t)
        if (x.is_string() && x != "null")
          return x.get<std::string>();
      return "null";
    }
    return "string";
  }

  static size_t bound(const json& s, const char* key, size_t fallback) {
    if (!s.contains(key) || !s[key].is_number_unsigned())
      return fallback;
    return std::min<size_t>(s[key].get<size_t>(), max_length);
  }

  static std::string make_string(const json& s, uint64_t seed) {
    size_t min_len = bound(s, "minLength", 0);
    size_t max_len = bound(s, "maxLength", 64);
    std::vector<std::string> candidates;
    auto format = s.value("format", "");
    if (format == "date")
      candidates.push_back("2024-01-15");
    else if (format == "date-time")
      candidates.push_back("2024-01-15T09:30:00Z");
    else if (format == "email")
      candidates.push_back("someone@example.com");
    else if (format == "uri")
      candidates.push_back("https://example.com/");
    static const char* words[] = {"alpha", "bravo", "charlie", "delta",
                                  "echo",  "foxtrot"};
    candidates.push_back(std::string("offline ") + words[seed % 6]);
    if (s.contains("pattern") && s["pattern"].is_string()) {
      for (auto* c : {"2024-01-15", "ABC", "abc", "123", "A1", "a", "X",
                      "2024-01-15T09:30:00Z", "someone@example.com"})
        candidates.insert(candidates.end() - 1, c);
      try {
        auto& re = compiled(s["pattern"].get<std::string>());
        for (auto& c : candidates)
          if (std::regex_search(c, re))
            return c;
      } catch (const std::regex_error&) {
      }
    }
    auto out = candidates.front();
    while (out.size() < min_len)
      out += 'x';
    if (out.size() > max_len)
      out.resize(max_len);
    return out;
  }

  static json make_number(const json& s, uint64_t seed, bool integer) {
    double lo = -1e300, hi = 1e300;
    if (s.contains("minimum") && s["minimum"].is_number())
      lo = s["minimum"].get<double>();
    if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_number())
      lo = std::max(lo, s["exclusiveMinimum"].get<double>() +
                          (integer ? 1 : 1e-6));
    if (s.contains("maximum") && s["maximum"].is_number())
      hi = s["maximum"].get<double>();
    if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_number())
      hi = std::min(hi, s["exclusiveMaximum"].get<double>() -
                          (integer ? 1 : 1e-6));
    double x;
    if (lo > -1e300 && hi < 1e300)
      x = lo + (hi - lo) * static_cast<double>(seed % 101) / 100.0;
    else if (lo > -1e300)
      x = lo;
    else if (hi < 1e300)
      x = std::min(hi, 0.0);
    else
      x = static_cast<double>(seed % 100);
    if (integer)
      x = std::ceil(x) <= hi ? std::ceil(x) : std::floor(x);
    if (s.contains("multipleOf") && s["multipleOf"].is_number()) {
      double m = s["multipleOf"].get<double>();
      if (m > 0)
        x = std::ceil(x / m) * m;
    }
    if (integer) {
      // Beyond int64's range the cast would be undefined: keep a double.
      if (!(x > -9.2e18 && x < 9.2e18))
        return x;
      return static_cast<int64_t>(x);
    }
    return x;
  }

  json make(const json& in, uint64_t seed, int depth) {
    const json& s = *deref(in);
    if (depth > max_depth || !s.is_object() || ++made > max_values)
      return nullptr;
    if (s.contains("const"))
      return s["const"];
    if (s.contains("enum") && s["enum"].is_array() && !s["enum"].empty())
      return s["enum"][seed % s["enum"].size()];
    for (auto* key : {"allOf", "anyOf", "oneOf"})
      if (s.contains(key) && s[key].is_array() && !s[key].empty() &&
          !s.contains("type") && !s.contains("properties"))
        return make(s[key][0], seed, depth + 1);
    auto type = pick_type(s);
    if (type == "null")
      return nullptr;
    if (type == "boolean")
      return seed % 2 == 0;
    if (type == "integer" || type == "number")
      return make_number(s, seed, type == "integer");
    if (type == "string")
      return make_string(s, seed);
    if (type == "array") {
      size_t n = std::max<size_t>(
        std::min<size_t>(bound(s, "minItems", 0), max_items), 1);
      if (s.contains("maxItems") && s["maxItems"].is_number_unsigned())
        n = std::min<size_t>(n, s["maxItems"].get<size_t>());
      json out = json::array();
      for (size_t i = 0; i < n; ++i) {
        const json* item = nullptr;
        if (s.contains("items") && s["items"].is_array())
          item = i < s["items"].size() ? &s["items"][i] : nullptr;
        else if (s.contains("items"))
          item = &s["items"];
        out.push_back(item ? make(*item, mix(seed + i), depth + 1)
                           : json("offline"));
      }
      return out;
    }
    // object: every listed property near the top, only the required ones
    // deeper (a recursive schema would otherwise double at each level).
    json out = json::object();
    std::vector<std::string> required;
    if (s.contains("required") && s["required"].is_array())
      for (auto& r : s["required"])
        if (r.is_string())
          required.push_back(r.get<std::string>());
    if (s.contains("properties") && s["properties"].is_object())
      for (auto& [name, sub] : s["properties"].items())
        if (depth < 3 || std::find(required.begin(), required.end(), name) !=
                           required.end())
          out[name] = make(sub, mix(seed ^ std::hash<std::string>{}(name)),
                           depth + 1);
    for (auto& r : required)
      if (!out.contains(r))
        out[r] = "offline";
    return out;
  }
};

} // namespace

json schema_instance(const json& schema, uint64_t seed) {
  maker m{schema};
  return m.make(schema, mix(seed), 0);
}

} // namespace bgagent
