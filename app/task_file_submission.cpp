#include "app/task_file_submission.hpp"

#include <stdexcept>
#include <vector>

#include <caf/all.hpp>

#include "app/ask.hpp"
#include "app/errors.hpp"
#include "app/task_file.hpp"
#include "messages/atoms.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "persistence/store.hpp"
#include "persistence/store_set.hpp"

namespace bgagent {

namespace {

struct part {
  std::vector<task> tasks;
  std::vector<type_definition> types;
  std::vector<std::string> hashes; // hashed here, not on the store's thread
  std::vector<std::string> where;
};

} // namespace

struct task_file_submission::impl {
  std::string path;
  std::string source; // in the audit events
  task_file_reader reader;
  part filling, in_store;
  bool more = true; // the reader has not reached the end
  std::vector<std::string>* ids = nullptr;

  impl(const std::string& p, uint64_t max, const type_registry& types)
    : path(p), source(p), reader(p, max, types) {}
  impl(std::unique_ptr<std::istream> in, const std::string& name,
       const std::string& src, uint64_t max, const type_registry& types)
    : path(name), source(src), reader(std::move(in), name, max, types) {}

  // From now on the id of every task read goes to `out` (null: nowhere),
  // starting with the first part, read already (the constructor's check).
  void keep_ids(std::vector<std::string>* out) {
    if (out)
      for (auto& t : filling.tasks)
        out->push_back(t.id);
    ids = out;
  }

  // Reads up to part_size tasks into `filling`.
  void fill() {
    for (task_file_entry e; filling.tasks.size() < part_size;) {
      if (!(more = reader.next(e)))
        return;
      if (ids)
        ids->push_back(e.t.id);
      filling.hashes.push_back(store::content_hash(e.t));
      filling.tasks.push_back(std::move(e.t));
      filling.where.push_back(std::move(e.where));
      if (e.first_use)
        filling.types.push_back(std::move(*e.first_use));
    }
  }
};

task_file_submission::task_file_submission(const std::string& path,
                                           uint64_t max_input_bytes,
                                           const type_registry& types)
  : d_(std::make_unique<impl>(path, max_input_bytes, types)) {
  d_->fill();
}

task_file_submission::task_file_submission(std::unique_ptr<std::istream> in,
                                           const std::string& name,
                                           const std::string& source,
                                           uint64_t max_input_bytes,
                                           const type_registry& types)
  : d_(std::make_unique<impl>(std::move(in), name, source, max_input_bytes,
                              types)) {
  d_->fill();
}

task_file_submission::~task_file_submission() = default;

submit_counts task_file_submission::store_all(caf::scoped_actor& self,
                                              const checkpointer_actor& checkpointer,
                                              const std::string& on_conflict,
                                              std::vector<std::string>* ids) {
  auto& d = *d_;
  d.keep_ids(ids);
  self->monitor(checkpointer);
  ask<bool>(self, checkpointer, begin_submit_atom::value, d.source,
            on_conflict);
  bool in_flight = false;
  // The store's answer to the part it has: a refusal names its task.
  auto settle = [&] {
    if (!in_flight)
      return;
    in_flight = false;
    submit_report rep;
    self->receive(
      [&](submit_report& r) { rep = std::move(r); },
      [&](caf::down_msg& dm) {
        throw std::runtime_error("the store's checkpointer ended: " +
                                 to_string(dm.reason));
      });
    if (rep.error.empty())
      return;
    auto at = rep.failed_index >= 0
                ? static_cast<size_t>(rep.failed_index) % part_size
                : d.in_store.where.size(); // not known: name the file
    throw submission_conflict(
      (at < d.in_store.where.size() ? d.in_store.where[at] : d.path) + ": " +
      rep.error);
  };
  try {
    while (!d.filling.tasks.empty()) {
      settle();
      d.in_store = std::move(d.filling);
      d.filling = part{};
      // A plain send: the answer comes back as a message, taken by
      // settle() once the next part is read.
      self->send(checkpointer, submit_part_atom::value,
                 std::move(d.in_store.tasks), std::move(d.in_store.types),
                 std::move(d.in_store.hashes));
      in_flight = true;
      if (d.more)
        d.fill();
    }
    settle();
  } catch (...) {
    // Nothing of it stays (a refused submission is rolled back already).
    if (in_flight) {
      try {
        settle();
      } catch (...) {
      }
    }
    try {
      ask<submit_counts>(self, checkpointer, end_submit_atom::value, false);
    } catch (...) {
      // The checkpointer is gone (its store rolled back): keep the first
      // error.
    }
    self->demonitor(checkpointer.address());
    throw;
  }
  auto counts =
    ask<submit_counts>(self, checkpointer, end_submit_atom::value, true);
  self->demonitor(checkpointer.address());
  if (!counts.error.empty())
    throw submission_conflict(d.path + ": " + counts.error);
  return counts;
}

submit_counts task_file_submission::store_all(store_set& files,
                                              const std::string& on_conflict,
                                              std::vector<std::string>* ids) {
  auto& d = *d_;
  d.keep_ids(ids);
  files.begin_submission(d.source,
                         on_conflict == "skip"      ? store::on_conflict::skip
                         : on_conflict == "replace" ? store::on_conflict::replace
                                                    : store::on_conflict::error);
  try {
    while (!d.filling.tasks.empty()) {
      d.in_store = std::move(d.filling);
      d.filling = part{};
      auto rep = files.submit_part(d.in_store.tasks, d.in_store.types);
      if (!rep.error.empty()) {
        auto at = rep.failed_index >= 0
                    ? static_cast<size_t>(rep.failed_index) % part_size
                    : d.in_store.where.size();
        throw submission_conflict((at < d.in_store.where.size()
                                     ? d.in_store.where[at]
                                     : d.path) +
                                  ": " + rep.error);
      }
      if (d.more)
        d.fill();
    }
  } catch (...) {
    files.end_submission(false); // a refusal dropped it already: no-op
    throw;
  }
  auto counts = files.end_submission(true);
  if (!counts.error.empty())
    throw submission_conflict(d.path + ": " + counts.error);
  return counts;
}

} // namespace bgagent
