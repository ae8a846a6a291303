#include "providers/price_list.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

namespace bgagent {

namespace {

// Prices as published by the providers when this table was written
// (USD per million tokens); a prices file or the provider's list wins.
const std::map<std::string, model_price>& built_in_table() {
  static const std::map<std::string, model_price> t{
    // {prompt, completion, batch prompt, batch completion, cached prompt}
    {"google/gemini-2.5-flash", {0.30, 2.50, -1, -1, 0.075}},
    {"google/gemini-2.5-flash-lite", {0.10, 0.40, -1, -1, 0.025}},
    {"google/gemini-2.5-pro", {1.25, 10.00, -1, -1, 0.31}},
    {"openai/gpt-4o-mini", {0.15, 0.60, 0.075, 0.30, 0.075}},
    {"gpt-4o-mini", {0.15, 0.60, 0.075, 0.30, 0.075}},
    {"openai/gpt-4o", {2.50, 10.00, 1.25, 5.00, 1.25}},
    {"gpt-4o", {2.50, 10.00, 1.25, 5.00, 1.25}},
    {"gpt-4.1-mini", {0.40, 1.60, 0.20, 0.80, 0.10}},
    {"anthropic/claude-3.5-haiku", {0.80, 4.00, -1, -1, 0.08}},
    {"offline", {0.0, 0.0}},
  };
  return t;
}

// Larger than any real price per million tokens: a typo, not a price.
constexpr double max_price = 100000;
constexpr size_t max_file_bytes = 16 << 20;

std::string at(const std::string& file, const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null())
    return file + ": ";
  return file + " line " + std::to_string(m.line + 1) + ": ";
}

double price_field(const std::string& file, const std::string& model,
                   const std::string& field, const YAML::Node& n) {
  auto fail = [&](const std::string& why) {
    return std::invalid_argument(at(file, n) + "model \"" + model + "\", " +
                                 field + ": " + why);
  };
  if (!n.IsScalar())
    throw fail("expected a number (USD per million tokens)");
  const auto& text = n.Scalar();
  // Plain decimal only: no hex, no sign, no spaces; out of range (1e-400,
  // 1e400) is refused, never rounded to 0 or infinity.
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v,
                                   std::chars_format::general);
  if (text.empty() || ec != std::errc() ||
      end != text.data() + text.size() || !std::isfinite(v))
    throw fail("\"" + text + "\" is not a number (USD per million tokens)");
  if (v < 0 || v > max_price)
    throw fail(text + " is not between 0 and " +
               std::to_string(static_cast<int>(max_price)) +
               " (USD per million tokens)");
  return v;
}

// {prompt, completion} into `prompt` and `completion`; top level (not
// batch), also the optional cached_prompt and reasoning prices, and the
// batch key that the caller reads.
void read_pair(const std::string& file, const std::string& model,
               const std::string& where, const YAML::Node& n, double& prompt,
               double& completion, model_price* top = nullptr) {
  if (!n.IsMap())
    throw std::invalid_argument(
      at(file, n) + "model \"" + model + "\"" + where +
      ": expected a mapping with prompt and completion (USD per million "
      "tokens)");
  bool has_prompt = false, has_completion = false;
  std::set<std::string> seen;
  for (const auto& kv : n) {
    auto key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    if (!seen.insert(key).second)
      throw std::invalid_argument(at(file, kv.first) + "model \"" + model +
                                  "\"" + where + ": field \"" + key +
                                  "\" is given twice");
    if (key == "prompt") {
      prompt = price_field(file, model, where.empty() ? key : "batch.prompt",
                           kv.second);
      has_prompt = true;
    } else if (key == "completion") {
      completion = price_field(
        file, model, where.empty() ? key : "batch.completion", kv.second);
      has_completion = true;
    } else if (top && key == "cached_prompt") {
      top->cached_prompt_per_million =
        price_field(file, model, key, kv.second);
    } else if (top && key == "reasoning") {
      top->reasoning_per_million = price_field(file, model, key, kv.second);
    } else if (!top || key != "batch") {
      throw std::invalid_argument(
        at(file, kv.first) + "model \"" + model + "\"" + where +
        ": unknown field \"" + key + "\" (known: prompt, completion" +
        (top ? std::string(", cached_prompt, reasoning, batch")
             : std::string()) +
        ")");
    }
  }
  if (!has_prompt || !has_completion)
    throw std::invalid_argument(at(file, n) + "model \"" + model + "\"" +
                                where + ": needs " +
                                (has_prompt ? "completion" : "prompt") +
                                " (USD per million tokens)");
}

} // namespace

const char* to_string(price_source s) {
  switch (s) {
    case price_source::prices_file: return "prices file";
    case price_source::provider_list: return "provider list";
    case price_source::environment: return "environment";
    case price_source::built_in: return "built-in";
  }
  return "?";
}

price_list::price_list() : built_in_(built_in_table()) {}

void price_list::load_file(const std::string& path) {
  // A regular file of at most 16 MB: never /dev/zero or a FIFO.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::invalid_argument(path + ": cannot read the prices file");
  if (!S_ISREG(st.st_mode))
    throw std::invalid_argument(path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_file_bytes)
    throw std::invalid_argument(path + ": larger than 16 MB, not a prices "
                                       "file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::invalid_argument(path + ": cannot read the prices file");
  std::string text(max_file_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > max_file_bytes)
    throw std::invalid_argument(path + ": larger than 16 MB, not a prices "
                                       "file");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(
      path +
      (e.mark.is_null() ? std::string(": ")
                        : " line " + std::to_string(e.mark.line + 1) + ": ") +
      "not valid YAML or JSON (" + e.msg + ")");
  }
  if (root.IsNull())
    throw std::invalid_argument(path + ": no prices in the file");
  if (!root.IsMap())
    throw std::invalid_argument(
      path + ": a prices file maps model names to {prompt, completion} in "
             "USD per million tokens");
  std::map<std::string, model_price> loaded;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty())
      throw std::invalid_argument(at(path, kv.first) +
                                  "a model name must be a non-empty string");
    auto model = kv.first.Scalar();
    if (loaded.count(model))
      throw std::invalid_argument(at(path, kv.first) + "model \"" + model +
                                  "\" is given twice");
    model_price p;
    read_pair(path, model, "", kv.second, p.prompt_per_million,
              p.completion_per_million, &p);
    if (auto batch = kv.second["batch"])
      read_pair(path, model, " batch", batch, p.batch_prompt_per_million,
                p.batch_completion_per_million);
    loaded.emplace(model, p);
  }
  file_prices_ = std::move(loaded);
  file_ = path;
}

void price_list::set_provider_list(std::map<std::string, model_price> prices,
                                   const std::string& source) {
  listed_ = std::move(prices);
  list_source_ = source;
}

void price_list::set_environment(double prompt, double completion,
                                 const std::string& configured) {
  env_prompt_ = prompt;
  env_completion_ = completion;
  configured_ = configured;
}

std::optional<price_entry> price_list::find(const std::string& model) const {
  if (auto i = file_prices_.find(model); i != file_prices_.end())
    return price_entry{i->second, price_source::prices_file};
  if (auto i = listed_.find(model); i != listed_.end())
    return price_entry{i->second, price_source::provider_list};
  bool env_any = env_prompt_ >= 0 || env_completion_ >= 0;
  auto i = built_in_.find(model);
  if (i != built_in_.end() && !(env_any && model == configured_))
    return price_entry{i->second, price_source::built_in};
  if (i != built_in_.end()) {
    price_entry e{i->second, price_source::environment};
    if (env_prompt_ >= 0)
      e.price.prompt_per_million = env_prompt_;
    if (env_completion_ >= 0)
      e.price.completion_per_million = env_completion_;
    return e;
  }
  if (env_prompt_ >= 0 && env_completion_ >= 0)
    return price_entry{model_price{env_prompt_, env_completion_},
                       price_source::environment};
  return std::nullopt;
}

std::vector<std::pair<std::string, price_entry>> price_list::all() const {
  std::map<std::string, price_entry> out;
  for (auto* table : {&built_in_, &listed_, &file_prices_})
    for (auto& kv : *table)
      out[kv.first] = *find(kv.first);
  if (env_prompt_ >= 0 && env_completion_ >= 0)
    out["*"] = price_entry{model_price{env_prompt_, env_completion_},
                           price_source::environment};
  return {out.begin(), out.end()};
}

} // namespace bgagent
