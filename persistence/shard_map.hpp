// Which file of a sharded store holds a task, and what the files are called
// (docs/plans/sharded-store.md §0). A store of S files keeps every row of a
// task (its row, events, ledger rows, cached answer) in shard_of(id, S), so
// one attempt stays one transaction in one file.
//
// Contract: shard_of is stable across builds, platforms and releases (FNV-1a
// of the id's bytes, mixed by MurmurHash3's 64-bit finalizer, modulo S); a
// stored task is found by it, so it must never change. The mix matters:
// FNV-1a modulo 2^b depends only on the low b bits of each byte, so without
// it S = 2 would be the parity of the ids' bytes ("task-11" and "task-22"
// together) and ids differing in letter case would share a shard. S = 1
// (and 0) puts everything in shard 0, the main file itself.
// shard_file(db, 0) is `db`; shard k > 0 is `db` + ".shard" + k.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "messages/fnv1a.hpp"

namespace bgagent {

// The most files a store may be split over.
constexpr uint32_t max_store_shards = 64;

inline uint32_t shard_of(std::string_view task_id, uint32_t shards) {
  if (shards <= 1)
    return 0;
  uint64_t h = fnv1a(task_id);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return static_cast<uint32_t>(h % shards);
}

inline std::string shard_file(const std::string& db, uint32_t shard) {
  return shard == 0 ? db : db + ".shard" + std::to_string(shard);
}

} // namespace bgagent
