// `bgagent types [--json]`: the task types in force.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/types_file.hpp"

namespace bgagent {

type_registry types_in_force(const config& c) {
  auto r = type_registry::builtin();
  auto file = types_file_to_use(c.types_file);
  if (!file.empty()) {
    try {
      r.load_file(file);
    } catch (const std::invalid_argument& e) {
      throw usage_error(e.what());
    }
  }
  return r;
}

namespace {

std::string joined(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

} // namespace

int types_command(const config& c, bool json) {
  auto r = types_in_force(c);
  if (json) {
    for (auto* t : r.all()) {
      nlohmann::json j{{"name", t->name},
                       {"source", t->source},
                       {"fingerprint", t->fingerprint},
                       {"description", t->description},
                       {"raw", t->raw},
                       {"system", t->system},
                       {"prompt", t->prompt},
                       {"schema", t->schema},
                       {"vars", t->vars},
                       {"max_tokens", t->max_tokens},
                       {"model", t->model.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(t->model)},
                       {"temperature", t->temperature}};
      std::printf("%s\n",
                  j.dump(-1, ' ', false,
                         nlohmann::json::error_handler_t::replace)
                    .c_str());
    }
    return exit_code::ok;
  }
  std::printf("%-20s %-12s %-10s %-20s %-12s %s\n", "TYPE", "FINGERPRINT",
              "MAX_TOKENS", "MODEL", "SOURCE", "VARS");
  for (auto* t : r.all())
    std::printf("%-20s %-12s %-10u %-20s %-12s %s\n", t->name.c_str(),
                t->fingerprint.substr(0, 12).c_str(), t->max_tokens,
                t->model.empty() ? "(MODEL)" : t->model.c_str(),
                t->source.c_str(),
                t->vars.empty() ? "-" : joined(t->vars).c_str());
  return exit_code::ok;
}

} // namespace bgagent
