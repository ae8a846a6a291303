#include "persistence/store_set.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "messages/utf8.hpp"
#include "policy/budget_period.hpp"
#include "persistence/event_clock.hpp"
#include "persistence/process_identity.hpp"
#include "persistence/shard_map.hpp"

namespace bgagent {

namespace {

// 128 random bits as hex: tells one store's files from another's.
std::string new_store_id() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    auto v = rd();
    out += hex[(v >> 12) & 15];
    out += hex[(v >> 8) & 15];
    out += hex[(v >> 4) & 15];
    out += hex[v & 15];
  }
  return out;
}

// A value read from a file, shown in one line of bounded length.
std::string shown_value(const std::string& value) {
  return "\"" + utf8_clip(one_line(value), 40) + "\"";
}

// A store file with the -wal and -shm SQLite keeps beside it.
void remove_store_files(const std::string& path) {
  std::error_code ec;
  for (auto suffix : {"", "-wal", "-shm", "-journal"})
    std::filesystem::remove(path + suffix, ec);
}

// Whether `text` is 1 to `max_len` decimal digits (a number read from meta).
bool all_digits(const std::string& text, size_t max_len) {
  return !text.empty() && text.size() <= max_len &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

std::string count_words(uint32_t n) {
  return std::to_string(n) + (n == 1 ? " file" : " files");
}

// A meta row that must be a number in least..max_store_shards.
uint32_t parse_count(const std::string& value, const std::string& file,
                     const char* key, uint32_t least) {
  uint64_t n = 0;
  bool ok = all_digits(value, 3);
  if (ok)
    n = std::stoull(value);
  if (!ok || n < least || n > max_store_shards)
    throw store_error("database " + file + ": its " + key + " " +
                        shown_value(value) + " is not a number from " +
                        std::to_string(least) + " to " +
                        std::to_string(max_store_shards),
                      true);
  return static_cast<uint32_t>(n);
}

// Runs `work(k)` for each file index in `ks`, each on a thread of its own
// (the first on the caller's), and rethrows the first exception once all
// have ended.
template <class Work>
void on_each_file(const std::vector<uint32_t>& ks, Work work) {
  std::vector<std::exception_ptr> errors(ks.size());
  auto run = [&](size_t i) {
    try {
      work(ks[i]);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(ks.size());
  size_t inline_from = ks.size();
  for (size_t i = 1; i < ks.size(); ++i) {
    try {
      threads.emplace_back(run, i);
    } catch (...) {
      inline_from = i; // no thread to be had: the rest on this one
      break;
    }
  }
  if (!ks.empty())
    run(0);
  for (size_t i = inline_from; i < ks.size(); ++i)
    run(i);
  for (auto& t : threads)
    t.join();
  for (auto& e : errors)
    if (e)
      std::rethrow_exception(e);
}

} // namespace

store_set::store_set(const std::string& db, store::open_mode mode,
                     uint32_t shards, store::sync_mode sync,
                     uint64_t events_above) {
  if (shards > max_store_shards)
    throw store_error("database " + db + ": " + std::to_string(shards) +
                        " shards asked for; a store has 1 to " +
                        std::to_string(max_store_shards),
                      true);
  std::error_code ec;
  bool main_existed = std::filesystem::exists(db, ec);
  files_.push_back(
    std::make_unique<store>(db, mode, sync, store::membership::in_set));
  auto& m = main();
  auto stored_text = m.meta_value("shard_count");
  uint32_t stored =
    stored_text.empty() ? 1 : parse_count(stored_text, db, "shard_count", 1);
  if (shards == 0)
    shards = stored;
  if (stored_text.empty() && shards > 1) {
    // One file so far: a new store, or a creation cut short before main's
    // rows; either way it holds no task yet.
    if (mode == store::open_mode::read_only || m.counts().total() != 0)
      throw store_error("database " + db + " is a store of 1 file; " +
                          std::to_string(shards) +
                          " were asked for: a store's number of files is "
                          "fixed when it is created",
                        true);
    create_shards(db, shards, sync, main_existed);
    share_event_clock();
    clock_->raise(events_above);
    return;
  }
  if (shards != stored)
    throw store_error("database " + db + " is a store of " +
                        count_words(stored) + "; " +
                        count_words(shards) +
                        " were asked for: a store's number of files is "
                        "fixed when it is created",
                      true);
  if (stored > 1) {
    open_shards(db, stored, mode, sync);
    share_event_clock();
    clock_->raise(events_above);
    if (mode != store::open_mode::read_only)
      recover_submissions();
  }
}

struct store_set::submission {
  int64_t id = 0; // in main's submissions
  bool dropped = false;
  std::string source;
  int64_t next_index = 0;     // the next task's, from the first one
  std::vector<int64_t> given; // tasks given to each file so far
  std::string error;          // refused: every later call says so
};

store_set::~store_set() {
  if (sub_ && sub_->id != 0 && !sub_->dropped) {
    try {
      drop_submission();
    } catch (...) {
      // Left open: the next open after this process ends drops it.
    }
  }
}

void store_set::share_event_clock() {
  clock_ = std::make_shared<event_clock>();
  for (auto& f : files_)
    f->use_event_clock(clock_);
}

void store_set::catch_up_event_clock() {
  if (clock_)
    for (auto& f : files_)
      clock_->raise(f->last_event_seq());
}

void store_set::recover_submissions() {
  catch_up_event_clock();
  auto publish = [&](int64_t id, const std::string& source) {
    for (auto& f : files_)
      f->publish_staged(id, source);
    main().forget_submission(id);
    ++recovered_.published;
  };
  auto drop = [&](int64_t id) {
    for (auto& f : files_)
      f->drop_staged(id);
    main().forget_submission(id);
    ++recovered_.dropped;
  };
  for (auto& r : main().submissions()) {
    // Committed: kept, whoever publishes it (publishing twice is harmless).
    if (r.state == "committed") {
      publish(r.id, r.source);
    } else if (r.state == "dropping") {
      drop(r.id); // a recovery cut short
    } else if (process_alive(r.owner_pid, r.owner_start)) {
      ++recovered_.left_to_owner;
    } else if (main().claim_submission(r.id, "open", "dropping")) {
      // Claimed first: its owner can no longer commit it.
      drop(r.id);
    } else if (main().submission_state(r.id) == "committed") {
      publish(r.id, r.source);
    }
  }
  // Staged rows no record names (a part staged after a recovery dropped
  // its submission): main records a submission before any file stages it
  // and forgets it only once every file is done, so these are leftovers.
  // The files are read first: a submission that ends meanwhile leaves
  // nothing staged, and dropping it again changes nothing.
  for (auto& f : files_) {
    auto staged = f->staged_submissions();
    if (staged.empty())
      continue;
    std::set<int64_t> known;
    for (auto& r : main().submissions())
      known.insert(r.id);
    for (auto id : staged)
      if (!known.count(id)) {
        f->drop_staged(id);
        ++recovered_.orphans_dropped;
      }
  }
}

void store_set::begin_submission(const std::string& source,
                                 store::on_conflict conflict) {
  if (sub_)
    throw std::logic_error("store_set: a submission is in progress already");
  sub_ = std::make_unique<submission>();
  sub_->source = source;
  if (size() == 1) {
    main().begin_submission(source, conflict);
    return;
  }
  // Another opener may have numbered events in any file since.
  catch_up_event_clock();
  auto pid = static_cast<int64_t>(::getpid());
  sub_->id = main().open_submission(source, pid, process_start_time(pid));
  sub_->given.assign(size(), 0);
  for (auto& f : files_)
    f->begin_staged_submission(sub_->id, source, conflict);
}

// Every file's staged share goes, then main's record: an open submission
// is never published, so the order only matters to a crash, which the
// next open finishes the same way.
void store_set::drop_submission() {
  auto id = sub_->id;
  for (auto& f : files_) {
    f->end_submission(false);
    f->drop_staged(id);
  }
  main().forget_submission(id);
  sub_->dropped = true;
}

submit_report store_set::submit_part(const std::vector<task>& tasks,
                                     const std::vector<type_definition>&
                                       types) {
  if (!sub_) {
    submit_report rep;
    rep.error = "no submission in progress";
    return rep;
  }
  if (size() == 1)
    return main().submit_part(tasks, types);
  auto& sub = *sub_;
  submit_report out;
  if (!sub.error.empty()) {
    out.error = sub.error;
    return out;
  }
  try {
    if (main().submission_state(sub.id) != "open") {
      // A recovery took its owner for gone and dropped it.
      sub.error = "submission " + std::to_string(sub.id) + " into " +
                  main().path() + " was dropped by a recovery meanwhile; "
                  "nothing of it was kept";
      drop_submission();
      out.error = sub.error;
      return out;
    }
    auto first = take_seqs(static_cast<uint32_t>(tasks.size()));
    std::vector<std::vector<task>> slices(size());
    std::vector<std::vector<int64_t>> seqs(size()), origin(size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      auto k = shard_of(tasks[i].id, size());
      slices[k].push_back(tasks[i]);
      seqs[k].push_back(first + static_cast<int64_t>(i));
      origin[k].push_back(static_cast<int64_t>(i));
    }
    // Each file's slice on a thread of its own (the files share nothing
    // but the event clock, which is atomic).
    std::vector<submit_report> reps(size());
    std::vector<uint32_t> busy;
    for (uint32_t k = 0; k < size(); ++k)
      if (!slices[k].empty())
        busy.push_back(k);
    on_each_file(busy, [&](uint32_t k) {
      reps[k] = at(k).submit_part(slices[k], types, {}, seqs[k]);
    });
    for (auto k : busy) {
      auto& rep = reps[k];
      if (!rep.error.empty()) {
        // The first task at fault in submission order names the refusal.
        auto local = rep.failed_index - sub.given[k];
        auto index = local >= 0 && local < static_cast<int64_t>(
                                              origin[k].size())
                       ? sub.next_index + origin[k][local]
                       : -1;
        if (out.error.empty() || (index >= 0 && index < out.failed_index)) {
          out.error = rep.error;
          out.failed_index = index;
        }
        continue;
      }
      sub.given[k] += static_cast<int64_t>(slices[k].size());
    }
  } catch (...) {
    sub.error = "the submission failed and was dropped";
    drop_submission();
    throw;
  }
  if (!out.error.empty()) {
    sub.error = out.error;
    drop_submission();
    return out;
  }
  sub.next_index += static_cast<int64_t>(tasks.size());
  step("staged");
  return out;
}

submit_counts store_set::end_submission(bool keep) {
  submit_counts out;
  if (!sub_) {
    out.error = "no submission in progress";
    return out;
  }
  if (size() == 1) {
    sub_.reset();
    return main().end_submission(keep);
  }
  if (!sub_->error.empty() || !keep) {
    out.error = sub_->error.empty() ? "abandoned" : sub_->error;
    if (!sub_->dropped)
      drop_submission();
    sub_.reset();
    return out;
  }
  try {
    for (auto& f : files_) {
      auto c = f->end_submission();
      out.inserted += c.inserted;
      out.duplicates += c.duplicates;
      out.replaced += c.replaced;
      out.conflicts_skipped += c.conflicts_skipped;
    }
    // The commit point: from here on the submission is kept, whatever
    // happens to this process (refused once a recovery dropped it).
    main().commit_submission(sub_->id);
  } catch (...) {
    try {
      drop_submission();
    } catch (...) {
      // Left for the next open once this process is gone.
    }
    sub_.reset();
    throw;
  }
  auto sub = std::move(sub_);
  step("committed");
  // An error from here on leaves it committed: the next open of the set
  // publishes it.
  std::vector<uint32_t> all(size());
  for (uint32_t k = 0; k < size(); ++k)
    all[k] = k;
  on_each_file(all, [&](uint32_t k) {
    at(k).publish_staged(sub->id, sub->source);
    step("published");
  });
  main().forget_submission(sub->id);
  return out;
}

void store_set::create_shards(const std::string& db, uint32_t shards,
                              store::sync_mode sync, bool main_existed) {
  auto& m = main();
  // Main's write lock first, held to the end: a second creation, or a
  // task put into main meanwhile, waits for it or fails; it never
  // interleaves. Looked at again under the lock.
  m.begin();
  std::vector<std::string> created; // files this call made, removed on failure
  try {
    if (!m.meta_value("shard_count").empty() || m.counts().total() != 0)
      throw store_error("database " + db + " was changed by another process "
                          "while its files were created",
                        true);
    store_id_ = new_store_id();
    for (uint32_t k = 1; k < shards; ++k) {
      auto path = shard_file(db, k);
      std::error_code ec;
      if (!std::filesystem::exists(path, ec))
        created.push_back(path);
      auto file = std::make_unique<store>(
        path, store::open_mode::create_if_missing, sync,
        store::membership::in_set);
      // Left by a creation cut short, it is empty; anything else is not
      // ours to overwrite.
      if (file->counts().total() != 0)
        throw store_error("database " + path + " holds tasks, but " + db +
                            " does not name it as one of its files: move "
                            "it away",
                          true);
      file->begin();
      file->set_meta_value("store_id", store_id_);
      file->set_meta_value("shard_index", std::to_string(k));
      file->set_meta_value("shard_count", std::to_string(shards));
      file->commit();
      files_.push_back(std::move(file));
    }
    // The commit that makes the set.
    m.set_meta_value("store_id", store_id_);
    m.set_meta_value("shard_index", "0");
    m.set_meta_value("task_seq_next", "1");
    m.set_meta_value("shard_count", std::to_string(shards));
    m.commit();
  } catch (...) {
    if (m.in_transaction())
      m.rollback();
    // What this call made goes again; a leftover it took up stays, empty.
    files_.resize(1);
    if (!main_existed)
      files_.clear();
    for (auto& path : created)
      remove_store_files(path);
    if (!main_existed)
      remove_store_files(db);
    throw;
  }
}

void store_set::open_shards(const std::string& db, uint32_t shards,
                            store::open_mode mode, store::sync_mode sync) {
  store_id_ = main().meta_value("store_id");
  if (store_id_.empty())
    throw store_error("database " + db + " names " + count_words(shards) +
                        " but has no store_id",
                      true);
  check_identity(main(), 0, shards);
  auto shard_mode = mode == store::open_mode::read_only
                      ? store::open_mode::read_only
                      : store::open_mode::must_exist;
  for (uint32_t k = 1; k < shards; ++k) {
    auto path = shard_file(db, k);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      throw store_error("database " + path + " is missing: " + db +
                          " is a store of " + count_words(shards),
                        true);
    auto file = std::make_unique<store>(path, shard_mode, sync,
                                        store::membership::in_set);
    check_identity(*file, k, shards);
    files_.push_back(std::move(file));
  }
}

void store_set::check_identity(store& file, uint32_t k, uint32_t shards) {
  const auto& path = file.path();
  auto id = file.meta_value("store_id");
  if (id != store_id_)
    throw store_error("database " + path + " belongs to another store (its "
                        "store_id " +
                        (id.empty() ? std::string("is missing")
                                    : shown_value(id)) +
                        ", " + main().path() + "'s " +
                        shown_value(store_id_) + ")",
                      true);
  auto index_text = file.meta_value("shard_index");
  auto index = index_text.empty() ? max_store_shards + 1
                                  : parse_count(index_text, path,
                                                "shard_index", 0);
  if (index != k)
    throw store_error("database " + path + " is not file " +
                        std::to_string(k) + " of its store (its shard_index "
                        "is " + shown_value(index_text) + ")",
                      true);
  auto count_text = file.meta_value("shard_count");
  if (count_text != std::to_string(shards))
    throw store_error("database " + path + " says its store has " +
                        shown_value(count_text) + " files; " + main().path() +
                        " says " + std::to_string(shards),
                      true);
}

store& store_set::of(const std::string& id) {
  return *files_[shard_of(id, size())];
}

int64_t store_set::take_seqs(uint32_t n) {
  if (size() == 1)
    return 0;
  auto& m = main();
  // Its own commit: seqs handed out must stay taken even if the caller's
  // transaction on main rolled back after other files used them.
  if (m.in_transaction())
    throw std::logic_error("store_set::take_seqs inside a transaction on " +
                           m.path());
  m.begin();
  try {
    auto text = m.meta_value("task_seq_next");
    if (!all_digits(text, 18))
      throw store_error("database " + m.path() + ": its task_seq_next " +
                          shown_value(text) + " is not a number",
                        true);
    int64_t first = std::stoll(text);
    m.set_meta_value("task_seq_next", std::to_string(first + n));
    m.commit();
    return first;
  } catch (...) {
    if (m.in_transaction())
      m.rollback();
    throw;
  }
}

run_info store_set::open_run(uint64_t token_limit, double cost_limit,
                             const std::string& period,
                             const std::string& period_start) {
  auto info = main().open_run(token_limit, cost_limit, period, period_start);
  if (size() == 1)
    return info;
  auto open_batches = main().open_batch_ids();
  std::vector<run_info> rest(size());
  std::vector<uint32_t> others;
  for (uint32_t k = 1; k < size(); ++k)
    others.push_back(k);
  on_each_file(others, [&](uint32_t k) {
    rest[k] = at(k).open_run_shard(info.id, open_batches, period,
                                   period_start);
  });
  for (auto k : others) {
    info.interrupted.insert(info.interrupted.end(),
                            rest[k].interrupted.begin(),
                            rest[k].interrupted.end());
    info.tokens_used += rest[k].tokens_used;
    info.cost_used += rest[k].cost_used;
  }
  return info;
}

std::unique_ptr<store> store_set::release(uint32_t k) {
  return std::move(files_.at(k));
}

namespace {

void add_counts(state_counts& sum, const state_counts& c) {
  sum.pending += c.pending;
  sum.running += c.running;
  sum.retry_wait += c.retry_wait;
  sum.completed += c.completed;
  sum.quarantined += c.quarantined;
  sum.cancelled += c.cancelled;
}

// Each name once, sorted.
std::vector<std::string> union_of(std::vector<std::string> all) {
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

} // namespace

status_report store_set::status() {
  auto rep = main().status();
  if (size() == 1)
    return rep;
  // Main's spending was read as main's status reads it; the other files'
  // ledgers add theirs for the same run or period.
  auto period = parse_budget_period(rep.budget_period);
  bool calendar = rep.run.id != 0 && period && *period != budget_period::run;
  auto since = calendar ? rfc3339_utc(bgagent::period_start(
                            *period, std::time(nullptr)))
                        : std::string();
  for (uint32_t k = 1; k < size(); ++k) {
    add_counts(rep.tasks, at(k).counts());
    uint64_t tokens = 0;
    double cost = 0;
    if (calendar)
      at(k).ledger_totals_since(since, tokens, cost);
    else if (rep.run.id != 0)
      at(k).ledger_totals(rep.run.id, tokens, cost);
    rep.budget.tokens_used += tokens;
    rep.budget.cost_used += cost;
  }
  return rep;
}

std::vector<tag_totals> store_set::totals_by_tag() {
  if (size() == 1)
    return main().totals_by_tag();
  std::map<std::string, tag_totals> by_tag;
  for (auto& f : files_)
    for (auto& t : f->totals_by_tag()) {
      auto& sum = by_tag[t.tag];
      sum.tag = t.tag;
      add_counts(sum.tasks, t.tasks);
      sum.prompt_tokens += t.prompt_tokens;
      sum.completion_tokens += t.completion_tokens;
      sum.cost_usd += t.cost_usd;
    }
  std::vector<tag_totals> out;
  for (auto& [tag, sum] : by_tag)
    out.push_back(std::move(sum));
  return out;
}

std::vector<std::string> store_set::completed_providers() {
  std::vector<std::string> all;
  for (auto& f : files_)
    for (auto& p : f->completed_providers())
      all.push_back(std::move(p));
  return union_of(std::move(all));
}

std::vector<std::string> store_set::runnable_models() {
  std::vector<std::string> all;
  for (auto& f : files_)
    for (auto& m : f->runnable_models())
      all.push_back(std::move(m));
  return union_of(std::move(all));
}

state_counts store_set::counts() {
  state_counts sum;
  for (auto& f : files_)
    add_counts(sum, f->counts());
  return sum;
}

uint64_t store_set::count_not_cancelled() {
  uint64_t n = 0;
  for (auto& f : files_)
    n += f->count_not_cancelled();
  return n;
}

std::vector<task_record> store_set::results(const std::string& state_filter,
                                            const std::string& tag,
                                            const std::vector<std::string>& ids,
                                            int64_t limit, int64_t after_seq,
                                            bool newest_first) {
  if (size() == 1)
    return main().results(state_filter, tag, ids, limit, after_seq,
                          newest_first);
  // Each file's first `limit` after the bound hold the merge's first
  // `limit`.
  std::vector<task_record> all;
  for (auto& f : files_) {
    auto part =
      f->results(state_filter, tag, ids, limit, after_seq, newest_first);
    all.insert(all.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  std::sort(all.begin(), all.end(),
            [newest_first](const task_record& a, const task_record& b) {
              return newest_first ? a.seq > b.seq : a.seq < b.seq;
            });
  if (limit >= 0 && all.size() > static_cast<size_t>(limit))
    all.resize(static_cast<size_t>(limit));
  return all;
}

bool store_set::has_task(const std::string& id, const std::string& key) {
  for (auto& f : files_)
    if (f->has_task(id, key))
      return true;
  return false;
}

} // namespace bgagent
