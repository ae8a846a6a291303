// Deterministic synthetic task sets for benchmarks and examples.
//
// write_generated_tasks() writes `count` JSON Lines tasks, cycling through the
// three task types, with inputs assembled from a fixed phrase bank so that
// the same count always yields byte-identical files (and so identical
// idempotency keys). Inputs are a few hundred bytes: the size of a short
// review or news paragraph, which is what the offline provider is tuned for.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "messages/task.hpp"

namespace bgagent::bench {

// Writes `count` tasks with ids "<prefix>-<n>" to `out`, one JSON object per line.
void write_generated_tasks(std::ostream& out, std::size_t count,
                           const std::string& id_prefix = "gen");

// Writes the same to `path`; throws std::runtime_error naming the path on failure.
void write_generated_tasks_file(const std::string& path, std::size_t count,
                                const std::string& id_prefix = "gen");

// The same tasks as submitted by `bgagent submit` (id, type, input, the id
// as idempotency key), for benches that fill a store without the CLI.
std::vector<task> generated_tasks(std::size_t count,
                                  const std::string& id_prefix = "gen");

}  // namespace bgagent::bench
