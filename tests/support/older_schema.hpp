// SQL that takes a store of this version back to what an older version
// had, for tests of the migrations: a test builds a store with today's
// code, runs this (and its own version's undo), then sets the older
// schema_version and reopens.
#pragma once

namespace bgagent::testing {

// Version 12 added each task's staged_by and the staging tables.
inline const char* undo_v12_sql =
  "DROP INDEX tasks_staged; ALTER TABLE tasks DROP COLUMN staged_by; "
  "DROP TABLE staged_outcomes; DROP TABLE submissions;";

} // namespace bgagent::testing
