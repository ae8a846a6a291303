// Test helpers for a store of several files and its audit log (header-only,
// for Catch test files): every event over the files, and the log's seqs.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "persistence/shard_map.hpp"
#include "tests/support/job.hpp"

namespace bgagent::testing {

// Every event of a store of `files` files, seq -> file; a seq found in two
// files fails the test.
inline std::map<long long, uint32_t> store_events(const std::string& db,
                                                  uint32_t files) {
  std::map<long long, uint32_t> out;
  for (uint32_t k = 0; k < files; ++k)
    for (auto s : sql_int_all(shard_file(db, k), "SELECT seq FROM events"))
      CHECK(out.emplace(s, k).second);
  return out;
}

// The audit log's seqs; each not above the one before fails the test.
inline std::vector<long long> log_seqs(const std::string& log) {
  std::vector<long long> out;
  for (auto& j : read_jsonl(log)) {
    auto s = j["seq"].get<long long>();
    if (!out.empty())
      CHECK(s > out.back());
    out.push_back(s);
  }
  return out;
}

// The seqs of store_events(), in order.
inline std::vector<long long> seqs_of(const std::map<long long, uint32_t>& m) {
  std::vector<long long> out;
  for (auto& kv : m)
    out.push_back(kv.first);
  return out;
}

} // namespace bgagent::testing
