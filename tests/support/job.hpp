// Helpers for end-to-end tests: writing task files and reading what the real
// binary left behind (status, results, audit log, usage ledger).
//
// Contract: every reader goes through the user-facing CLI (`status --json`,
// `results --json`) or reads the files directly (audit JSONL, SQLite ledger)
// without changing them. Header-only; use from test .cpp files.
#pragma once

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/stat.h>

#include "tests/support/process.hpp"

namespace bgagent::testing {

// Whether `part` occurs in `s` (for error lines and logs).
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Whether a file (or directory) is there.
inline bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// One task line.
inline nlohmann::json make_task(const std::string& id, const std::string& type,
                                const std::string& input,
                                int max_tokens = 0) {
  nlohmann::json j{{"id", id}, {"type", type}, {"input", input}};
  if (max_tokens > 0)
    j["max_tokens"] = max_tokens;
  return j;
}

// `n` summarize tasks "<prefix>1".."<prefix>n" whose inputs carry `marker`
// (inputs name the id, so two sets never share an idempotency key).
inline std::vector<nlohmann::json>
make_tasks(int n, const std::string& prefix = "t",
           const std::string& marker = "", int max_tokens = 32) {
  std::vector<nlohmann::json> out;
  for (int i = 1; i <= n; ++i)
    out.push_back(make_task(prefix + std::to_string(i), "summarize",
                            "Task " + prefix + std::to_string(i) +
                              " is here. It has two sentences." + marker,
                            max_tokens));
  return out;
}

inline void write_tasks(const std::string& path,
                        const std::vector<nlohmann::json>& tasks) {
  std::string text;
  for (auto& t : tasks)
    text += t.dump() + "\n";
  write_file(path, text);
}

// The JSON objects of a JSON Lines text (blank lines skipped).
inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(nlohmann::json::parse(line));
  return out;
}

// `bgagent status --json` in `cwd` (empty object when it failed).
inline nlohmann::json status_json(const std::string& cwd,
                                  const env_map& env = {}) {
  auto r = run_bgagent({"status", "--json"}, cwd, env);
  if (r.exit_code != 0)
    return nlohmann::json::object();
  return nlohmann::json::parse(r.out, nullptr, false);
}

// `bgagent results --json` in `cwd`, keyed by task id.
inline std::map<std::string, nlohmann::json>
results_by_id(const std::string& cwd, const env_map& env = {}) {
  std::map<std::string, nlohmann::json> out;
  auto r = run_bgagent({"results", "--json"}, cwd, env);
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object())
      out[j.value("id", "")] = j;
  }
  return out;
}

// How many audit lines of kind `event` name each task.
inline std::map<std::string, int> count_by_task(const std::string& audit,
                                                const std::string& event) {
  std::map<std::string, int> out;
  for (auto& j : audit_events(audit, event))
    ++out[j.value("task_id", "")];
  return out;
}

// Lines of a file (for "exactly one line on stderr").
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(line);
  return out;
}

// Runs `sql` on the database at `path` (creating it) and requires that it
// succeeded, showing SQLite's message when not: how tests build fixtures
// such as a store of an older schema.
inline void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// Runs `sql` on the database (as a user with sqlite3 would); whether it
// succeeded.
inline bool sql_exec(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  bool ok = false;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    ok = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) ==
         SQLITE_OK;
  }
  sqlite3_close(db);
  return ok;
}

// One integer from the database (read-only), or -1.
inline long long sql_int(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  long long v = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

// The first column of every row (read-only); empty when it failed.
inline std::vector<long long> sql_int_all(const std::string& db_path,
                                          const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<long long> out;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW)
        out.push_back(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// The first column of every row as text (read-only; NULL as "").
inline std::vector<std::string> sql_text_all(const std::string& db_path,
                                             const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) {
        auto* t = sqlite3_column_text(st, 0);
        out.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
      }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

inline double sql_double(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  double v = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

// Every task row as "id|state|attempts|result|error" lines, in store order:
// a snapshot to compare before and after a command that must change nothing.
inline std::string task_rows(const std::string& db_path) {
  std::string out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, state, attempts, IFNULL(result,''), "
                           "IFNULL(error,''), updated_at FROM tasks ORDER BY "
                           "seq",
                           -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < 6; ++c) {
          auto* t = sqlite3_column_text(st, c);
          out += t ? reinterpret_cast<const char*>(t) : "";
          out += "|";
        }
        out += "\n";
      }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

} // namespace bgagent::testing
