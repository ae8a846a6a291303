// `bgagent estimate` and `run --dry-run`: the cost of a job before any of
// it is spent, per type and model, at worst and as expected (from the
// answers' recorded length once there are some), and whether it fits the
// budgets. It calls no model and changes no file.
#include <catch2/catch.hpp>

#include <atomic>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/job.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_http_server.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;
using json = nlohmann::json;

namespace {

struct counting_server {
  std::atomic<int> calls{0};
  raw_http_server server{[this](const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    ++calls;
    // Answers of 20 completion tokens.
    return raw_reply{raw_http_server::response(
      200, raw_http_server::completion(R"({"summary": "Done."})", 50, 20))};
  }};
};

env_map settings(const counting_server& api) {
  return {{"LLM_PROVIDER", "openai"},
          {"LLM_BASE_URL", api.server.base_url()},
          {"MODEL", "gpt-4o-mini"}};
}

json estimate_json(const temp_dir& dir, const env_map& env,
                   std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"estimate", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_bgagent(args, dir.path(), env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

std::string file_state(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return "absent";
  return std::to_string(st.st_size) + "@" +
         std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

} // namespace

TEST_CASE("estimate counts a task file per type and model at the worst "
          "case the budget would reserve, calls nothing and creates nothing",
          "[e2e][estimate]") {
  counting_server api;
  temp_dir dir;
  auto tasks = make_tasks(6, "e", "", 100);
  auto other = make_task("m1", "summarize", "Text for another model.", 100);
  other["model"] = "gpt-4o";
  tasks.push_back(other);
  write_tasks(dir.path("tasks.jsonl"), tasks);
  auto j = estimate_json(dir, settings(api), {"--tasks", "tasks.jsonl"});
  CHECK(api.calls == 0);
  CHECK_FALSE(exists(dir.path("bgagent.db")));
  CHECK_FALSE(exists(dir.path("bgagent-audit.jsonl")));
  REQUIRE(j["groups"].size() == 2);
  auto& mini = j["groups"][1]["model"] == "gpt-4o-mini" ? j["groups"][1]
                                                         : j["groups"][0];
  CHECK(mini["type"] == "summarize");
  CHECK(mini["tasks"] == 6);
  CHECK(mini["answer_length"] == "half of max_tokens");
  CHECK(j["total"]["tasks"] == 7);
  // The worst case is what the run reserves: one token per byte of the
  // prompts plus framing, plus max_tokens, priced at $0.15 / $0.60.
  auto worst = mini["worst_tokens"].get<uint64_t>();
  CHECK(worst > 6 * 100);
  CHECK(mini["worst_cost_usd"].get<double>() ==
        Approx(((worst - 600) * 0.15 + 600 * 0.60) / 1e6));
  // Expected: the prompt at about four bytes a token, half of max_tokens.
  CHECK(mini["expected_tokens"].get<uint64_t>() < worst);
  CHECK(j["fits_worst_case"] == true);
  CHECK(j["unpriced"].empty());

  // run --dry-run prints the same table and changes nothing either.
  auto dry = run_bgagent({"run", "--tasks", "tasks.jsonl", "--dry-run"},
                         dir.path(), settings(api));
  INFO(dry.err);
  CHECK(dry.exit_code == 0);
  CHECK(contains(dry.out, "summarize"));
  CHECK(contains(dry.out, "nothing was called or changed"));
  CHECK(api.calls == 0);
  CHECK_FALSE(exists(dir.path("bgagent.db")));
}

TEST_CASE("estimate counts the pending tasks and a file's new ones once, "
          "uses the answers' recorded length, and says when the budget "
          "does not fit",
          "[e2e][estimate]") {
  counting_server api;
  temp_dir dir;
  auto env = settings(api);
  // A first run records answers of 20 completion tokens.
  write_tasks(dir.path("done.jsonl"), make_tasks(3, "d", "", 100));
  REQUIRE(run_bgagent({"run", "--tasks", "done.jsonl"}, dir.path(), env)
            .exit_code == 0);
  REQUIRE(api.calls == 3);
  // Four pending, and a file that repeats two of them and adds one.
  auto pending = make_tasks(4, "p", "", 100);
  write_tasks(dir.path("pending.jsonl"), pending);
  REQUIRE(run_bgagent({"submit", "pending.jsonl"}, dir.path(), env)
            .exit_code == 0);
  write_tasks(dir.path("more.jsonl"),
              {pending[0], pending[1], make_task("n1", "summarize",
                                                 "A new one.", 100)});
  auto db = dir.path("bgagent.db");
  auto before = file_state(db);
  auto j = estimate_json(dir, env, {"--tasks", "more.jsonl"});
  CHECK(file_state(db) == before);
  CHECK(api.calls == 3);
  REQUIRE(j["groups"].size() == 1);
  auto& g = j["groups"][0];
  CHECK(g["tasks"] == 5);
  CHECK(g["answer_length"] == "recorded average 20 of 3");
  // Budgets: a cost budget below the worst case but above the expected
  // cost is "probably"; below both, "no".
  auto worst = j["total"]["worst_cost_usd"].get<double>();
  auto expected = j["total"]["expected_cost_usd"].get<double>();
  REQUIRE(expected < worst);
  char between[32];
  std::snprintf(between, sizeof(between), "%.8f", (worst + expected) / 2);
  auto mid = estimate_json(dir, env, {"--cost-budget", between});
  CHECK(mid["fits_worst_case"] == false);
  CHECK(mid["fits_expected"] == true);
  CHECK(contains(mid["verdict"].get<std::string>(), "probably"));
  auto none = estimate_json(dir, env, {"--cost-budget", "0.0000001"});
  CHECK(none["fits_expected"] == false);
  CHECK(contains(none["verdict"].get<std::string>(), "no: expect the run to "
                                                     "stop on its budget"));
}

TEST_CASE("estimate names a model without a price, as the run would refuse "
          "it",
          "[e2e][estimate]") {
  counting_server api;
  temp_dir dir;
  auto t = make_task("u1", "summarize", "Text.", 50);
  t["model"] = "mystery-model-9";
  write_tasks(dir.path("tasks.jsonl"), {t});
  auto j = estimate_json(dir, settings(api), {"--tasks", "tasks.jsonl"});
  CHECK(j["unpriced"] == json::array({"mystery-model-9"}));
  CHECK(j["groups"][0]["priced"] == false);
  CHECK(j["fits_worst_case"] == false);
  CHECK(contains(j["verdict"].get<std::string>(),
                 "no price is known for mystery-model-9"));
  auto text = run_bgagent({"estimate", "--tasks", "tasks.jsonl"},
                          dir.path(), settings(api));
  CHECK(text.exit_code == 0);
  CHECK(contains(text.out, "no price"));
}
