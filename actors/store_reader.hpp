// The store reader: a second SQLite connection, on its own thread, for the
// checkpointer's reads: the queue's fetch, and the scans of every task
// (status, counts, results). In WAL mode a reader never blocks the writer
// nor waits for it, so neither a status asked for during a run (a /metrics
// scrape, the run's start and end) nor the fetch of the next tasks holds
// the one thread that commits attempts.
//
// Contract (messages/store_reader_actor.hpp): each request is answered from
// what was committed when it is read; the checkpointer delegates one once
// its open group has committed. A store error ends the reader with that
// error (the checkpointer, linked to it, ends too, as when its own read
// fails).
#pragma once

#include <memory>

#include "messages/store_reader_actor.hpp"

namespace caf {
class actor_system;
}

namespace bgagent {

class store;
class store_set;

// `db`: a connection of its own to the checkpointer's store file.
store_reader_actor spawn_store_reader(caf::actor_system& sys,
                                      std::unique_ptr<store> db);
// The reader of file `index` of a store of several (thread bg.reader3 for
// file 3): the fetch reads its own file; with `scans` (main's reader) the
// status, counts and results are read over every file of the store
// (store_set's sums and merges), else from its own file.
store_reader_actor spawn_store_reader(caf::actor_system& sys,
                                      std::unique_ptr<store> db,
                                      uint32_t index,
                                      std::shared_ptr<store_set> scans);

} // namespace bgagent
