// `bgagent estimate [--tasks FILE] [--json]` and `run --dry-run`: what the
// job would cost before any of it is spent.
//
// Per type and model (the model each task starts at), the number of tasks,
// the worst case the budget_keeper would reserve for them (tokens: the
// provider's prompt estimate + max_tokens; dollars at the model's price),
// and an expected cost: the prompt at about four bytes a token and an
// answer as long as the type's recorded average in the store, else half of
// max_tokens. Then whether that fits the budgets in force (less what a
// resumed run has spent). It calls no model and changes nothing: the store
// is opened read-only, if it exists.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/number_format.hpp"
#include "app/provider_prices.hpp"
#include "app/task_file.hpp"
#include "app/types_file.hpp"
#include "persistence/store.hpp"
#include "providers/provider.hpp"
#include "providers/provider_registry.hpp"
#include "providers/result_validation.hpp"
#include "types/prompt_template.hpp"

namespace bgagent {

namespace {

struct group_figures {
  uint64_t tasks = 0;
  uint64_t worst_tokens = 0;
  double worst_cost = 0;
  uint64_t expected_tokens = 0;
  double expected_cost = 0;
  bool priced = true;
  std::string answer_basis; // "recorded average 123" or "half of max_tokens"
};

struct estimate {
  std::map<std::pair<std::string, std::string>, group_figures> groups;
  group_figures total;
  std::vector<std::string> unpriced;
};

// A task read from a file, resolved as the store resolves a stored one.
bool resolve_from_types(task& t, const type_registry& types) {
  auto* type = types.find(t.type);
  if (!type)
    return false;
  if (type->raw) {
    t.raw = true;
    return true;
  }
  if (t.max_tokens == 0)
    t.max_tokens = type->max_tokens;
  t.type_model = type->model;
  t.type_fallbacks = type->fallback_models;
  t.temperature = type->temperature;
  try {
    t.system = render(type->system, t.input, t.vars);
    t.prompt = render(type->prompt, t.input, t.vars);
  } catch (const std::out_of_range&) {
    return false;
  }
  return true;
}

void add(estimate& e, const task& t, const provider& prov,
         const std::map<std::string, std::pair<double, uint64_t>>& answers) {
  auto model = model_chain(t)[0];
  if (model.empty())
    model = prov.model();
  llm_request req;
  req.type = t.type;
  req.input = t.input;
  req.max_tokens = t.max_tokens ? t.max_tokens : 256;
  req.system = t.system;
  req.prompt = t.prompt;
  req.model = model;
  req.raw = t.raw;
  auto worst_prompt = prov.estimate_prompt_tokens(req);
  auto expected_prompt = estimate_chat_prompt_tokens(req);
  auto& g = e.groups[{t.type, model}];
  uint64_t answer = req.max_tokens / 2;
  g.answer_basis = "half of max_tokens";
  if (auto a = answers.find(t.type); a != answers.end()) {
    answer = std::min<uint64_t>(req.max_tokens,
                                static_cast<uint64_t>(a->second.first + 0.5));
    char basis[96];
    std::snprintf(basis, sizeof(basis), "recorded average %.0f of %llu",
                  a->second.first,
                  static_cast<unsigned long long>(a->second.second));
    g.answer_basis = basis;
  }
  bool priced = prov.knows_price_of(model);
  auto price = prov.price_of(model);
  if (!priced) {
    g.priced = false;
    if (std::find(e.unpriced.begin(), e.unpriced.end(), model) ==
        e.unpriced.end())
      e.unpriced.push_back(model);
  }
  for (auto* f : {&g, &e.total}) {
    ++f->tasks;
    f->worst_tokens += worst_prompt + req.max_tokens;
    f->expected_tokens += expected_prompt + answer;
    if (priced) {
      f->worst_cost += price.cost(worst_prompt, req.max_tokens);
      f->expected_cost += price.cost(expected_prompt, answer);
    }
  }
}

std::string dollars(double x) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "$%.4f", x);
  return buf;
}

} // namespace

int estimate_command(const config& c, const std::string& tasks_file,
                     bool json, const provider_registry& providers) {
  auto types = types_in_force(c);
  // The store, read only, when there is one: its runnable tasks, the
  // answers' recorded lengths, the provider's cached prices, the spend of
  // a run that would resume.
  std::unique_ptr<store> db;
  std::error_code ec;
  if (std::filesystem::exists(c.db_path, ec)) {
    try {
      db = std::make_unique<store>(c.db_path, store::open_mode::read_only);
    } catch (const store_error& e) {
      throw usage_error(e.what());
    }
  }
  auto prices = std::make_shared<price_list>(
    c.provider.prices ? *c.provider.prices : price_list{});
  add_provider_prices(*prices, c.provider, db.get(), false);
  provider_ptr prov;
  try {
    auto ps = c.provider;
    ps.concurrency = 1;
    ps.prices = prices;
    prov = providers.make(ps);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }

  std::map<std::string, std::pair<double, uint64_t>> answers;
  uint64_t tokens_spent = 0;
  double cost_spent = 0;
  estimate e;
  if (db) {
    answers = db->answer_lengths();
    auto rep = db->status();
    // `run` resumes a run that did not finish, with its spend.
    if (rep.run.id != 0 && rep.run.state != "finished") {
      tokens_spent = rep.budget.tokens_used;
      cost_spent = rep.budget.cost_used;
    }
    fetch_cursor after;
    for (;;) {
      auto batch = db->fetch_runnable(after, 4096);
      if (batch.empty())
        break;
      for (auto& t : batch) {
        after = fetch_cursor{t.priority, t.seq};
        add(e, t, *prov, answers);
      }
    }
  }
  if (!tasks_file.empty()) {
    task_file_reader reader(tasks_file, c.max_input_bytes, types);
    task_file_entry entry;
    while (reader.next(entry)) {
      // What the store has already is counted once, as stored.
      if (db && db->has_task(entry.t.id, entry.t.idempotency_key))
        continue;
      if (!resolve_from_types(entry.t, types))
        continue; // read_task_file checked it: cannot happen
      add(e, entry.t, *prov, answers);
    }
  }

  auto token_room = c.token_budget > tokens_spent
                      ? c.token_budget - tokens_spent
                      : uint64_t{0};
  auto cost_room = std::max(0.0, c.cost_budget - cost_spent);
  bool fits_worst = e.unpriced.empty() && e.total.worst_tokens <= token_room &&
                    e.total.worst_cost <= cost_room;
  bool fits_expected = e.unpriced.empty() &&
                       e.total.expected_tokens <= token_room &&
                       e.total.expected_cost <= cost_room;
  std::string verdict;
  if (!e.unpriced.empty())
    verdict = "no: no price is known for " + e.unpriced.front() +
              " (run exits 2 before any call; see `bgagent models`)";
  else if (e.total.tasks == 0)
    verdict = "yes: nothing to run";
  else if (fits_worst)
    verdict = "yes, even if every answer runs to max_tokens";
  else if (fits_expected)
    verdict = "probably: the expected cost fits, the worst case does not "
              "(a run stops with exit 3 if answers run long)";
  else
    verdict = "no: expect the run to stop on its budget (exit 3) with tasks "
              "pending";

  if (json) {
    nlohmann::json j;
    j["groups"] = nlohmann::json::array();
    for (auto& [key, g] : e.groups)
      j["groups"].push_back({{"type", key.first},
                             {"model", key.second},
                             {"tasks", g.tasks},
                             {"worst_tokens", g.worst_tokens},
                             {"worst_cost_usd", g.worst_cost},
                             {"expected_tokens", g.expected_tokens},
                             {"expected_cost_usd", g.expected_cost},
                             {"priced", g.priced},
                             {"answer_length", g.answer_basis}});
    j["total"] = {{"tasks", e.total.tasks},
                  {"worst_tokens", e.total.worst_tokens},
                  {"worst_cost_usd", e.total.worst_cost},
                  {"expected_tokens", e.total.expected_tokens},
                  {"expected_cost_usd", e.total.expected_cost}};
    j["budget"] = {{"tokens_limit", c.token_budget},
                   {"tokens_spent", tokens_spent},
                   {"cost_limit", c.cost_budget},
                   {"cost_spent", cost_spent}};
    j["unpriced"] = e.unpriced;
    j["fits_worst_case"] = fits_worst;
    j["fits_expected"] = fits_expected;
    j["verdict"] = verdict;
    std::printf("%s\n", j.dump(-1, ' ', false,
                               nlohmann::json::error_handler_t::replace)
                          .c_str());
    return exit_code::ok;
  }
  std::printf("%-20s %-28s %8s %14s %11s %14s %11s  %s\n", "type", "model",
              "tasks", "worst tokens", "worst $", "expect tokens",
              "expect $", "answer length");
  for (auto& [key, g] : e.groups)
    std::printf("%-20s %-28s %8s %14s %11s %14s %11s  %s\n",
                key.first.c_str(), key.second.c_str(),
                grouped(g.tasks).c_str(), grouped(g.worst_tokens).c_str(),
                g.priced ? dollars(g.worst_cost).c_str() : "no price",
                grouped(g.expected_tokens).c_str(),
                g.priced ? dollars(g.expected_cost).c_str() : "no price",
                g.answer_basis.c_str());
  std::printf("%-20s %-28s %8s %14s %11s %14s %11s\n", "total", "",
              grouped(e.total.tasks).c_str(),
              grouped(e.total.worst_tokens).c_str(),
              dollars(e.total.worst_cost).c_str(),
              grouped(e.total.expected_tokens).c_str(),
              dollars(e.total.expected_cost).c_str());
  std::printf("\nbudget       tokens %s (%s spent), cost %s (%s spent)\n",
              grouped(c.token_budget).c_str(), grouped(tokens_spent).c_str(),
              dollars(c.cost_budget).c_str(), dollars(cost_spent).c_str());
  std::printf("fits         %s\n", verdict.c_str());
  std::printf("nothing was called or changed\n");
  return exit_code::ok;
}

} // namespace bgagent
