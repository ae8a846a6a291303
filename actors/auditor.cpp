#include "actors/auditor.hpp"

#include <pthread.h>
#include <algorithm>
#include <iterator>
#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/auditor_actor.hpp"
#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "persistence/jsonl_writer.hpp"
#include "persistence/shard_map.hpp"
#include "policy/event_merge.hpp"

namespace bgagent {

namespace {

// Events per catch-up reply.
constexpr uint32_t catch_up_page = 4096;

struct auditor_state {
  std::shared_ptr<jsonl_writer> log;
  checkpointer_actor checkpointer; // attached: events go through the store
  uint64_t seq = 0;        // numbering while not attached
  bool flush_scheduled = false;
  // Events received, to forward to the checkpointer (one message a batch).
  std::vector<audit_event> outgoing;
  // Committed events not yet in the file, in seq order, no seq twice.
  std::vector<committed_event> pending;
  // The last catch-up reply held every committed event in (from, to]: a
  // seq missing there does not exist.
  uint64_t vouched_from = 0;
  uint64_t vouched_to = 0;
  bool catching_up = false;
  // Flush requests answered once `pending` is written.
  std::vector<caf::typed_response_promise<flush_atom>> waiting;

  // -- a store of several files (instead of `checkpointer`) ---------------
  // Each file's writer, main's first; their event streams merged in seq
  // order (an event is written once every file's floor is past it).
  std::vector<checkpointer_actor> files;
  std::unique_ptr<event_merge> merge;
  // Per file: its catch-up is out (the events it commits meanwhile are in
  // the catch-up's last page, so its live ones are skipped), and it was
  // asked for its floor.
  std::vector<uint8_t> file_catching, floor_asked;
  // A file's writer ended (a storage error; or the run's end): its floor
  // stays where it was, so nothing at or above the lowest such floor is
  // written by this process (it stays in the files for the next start's
  // catch-up); what is below it still is.
  bool file_gone = false;
  uint64_t gone_floor = 0;
  uint64_t received_max = 0; // the highest seq any file sent
  // Flush requests, with the highest seq received when every file had
  // answered the flush: answered once the log holds every seq up to it.
  std::vector<std::pair<uint64_t, caf::typed_response_promise<flush_atom>>>
    waiting_for;

  bool attached() const { return checkpointer || !files.empty(); }
  static inline const char* name = "auditor";
};

using auditor_ptr = auditor_actor::stateful_pointer<auditor_state>;

void schedule_flush(auditor_ptr self) {
  if (!self->state.flush_scheduled) {
    self->state.flush_scheduled = true;
    self->send(self, write_pending_atom::value);
  }
}

void catch_up(auditor_ptr self, uint64_t after);

void send_events(auditor_ptr self, const checkpointer_actor& to,
                 std::vector<audit_event>& events) {
  if (events.size() == 1)
    self->send(to, audit_atom::value, std::move(events.front()));
  else
    self->send(to, audit_atom::value, std::move(events));
}

// Hands the events received so far to the checkpointer, in one message;
// with several files, an event about a task to its file's writer, the
// others to main's, one message a file.
void forward(auditor_ptr self) {
  auto& st = self->state;
  if (st.outgoing.empty() || !st.attached())
    return;
  if (!st.files.empty()) {
    auto n = static_cast<uint32_t>(st.files.size());
    std::vector<std::vector<audit_event>> by_file(n);
    for (auto& ev : st.outgoing)
      by_file[ev.task_id.empty() ? 0 : shard_of(ev.task_id, n)].push_back(
        std::move(ev));
    st.outgoing.clear();
    for (uint32_t k = 0; k < n; ++k)
      if (!by_file[k].empty())
        send_events(self, st.files[k], by_file[k]);
    return;
  }
  if (st.outgoing.size() == 1)
    self->send(st.checkpointer, audit_atom::value, st.outgoing.front());
  else
    self->send(st.checkpointer, audit_atom::value, std::move(st.outgoing));
  st.outgoing.clear();
}

// Adds committed events to `pending`, keeping it sorted by seq without
// duplicates. They come in seq order, so this almost always appends.
void add_pending(auditor_state& st, std::vector<committed_event>& events) {
  if (events.empty())
    return;
  bool sorted = true;
  for (size_t i = 1; i < events.size() && sorted; ++i)
    sorted = events[i - 1].seq < events[i].seq;
  if (sorted && (st.pending.empty() ||
                 st.pending.back().seq < events.front().seq)) {
    if (st.pending.empty())
      st.pending = std::move(events);
    else
      st.pending.insert(st.pending.end(),
                        std::make_move_iterator(events.begin()),
                        std::make_move_iterator(events.end()));
    return;
  }
  for (auto& e : events)
    st.pending.push_back(std::move(e));
  auto by_seq = [](const committed_event& a, const committed_event& b) {
    return a.seq < b.seq;
  };
  std::stable_sort(st.pending.begin(), st.pending.end(), by_seq);
  st.pending.erase(std::unique(st.pending.begin(), st.pending.end(),
                               [](const committed_event& a,
                                  const committed_event& b) {
                                 return a.seq == b.seq;
                               }),
                   st.pending.end());
}

void answer_waiting(auditor_ptr self) {
  auto& st = self->state;
  if (!st.pending.empty() || st.catching_up)
    return;
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& rp : waiting)
    rp.deliver(flush_atom::value);
}

// Writes the pending events that continue the file without a gap, in one
// write under the file's lock; asks the store for what a gap hides.
void write_pending(auditor_ptr self) {
  auto& st = self->state;
  uint64_t file_last = 0;
  bool gap = false;
  if (!st.pending.empty() || st.log->has_buffered()) {
    st.log->append_locked([&](uint64_t last, std::string& out) {
      auto i = st.pending.begin();
      while (i != st.pending.end() && i->seq <= last)
        ++i; // written already (by another process)
      uint64_t expect = last + 1;
      for (; i != st.pending.end(); ++i) {
        auto s = i->seq;
        bool vouched = expect > st.vouched_from && s <= st.vouched_to;
        if (s != expect && !vouched) {
          gap = true;
          break;
        }
        out += audit_line(i->event, s, i->ts);
        out += '\n';
        last = s;
        expect = s + 1;
      }
      st.pending.erase(st.pending.begin(), i);
      file_last = last;
      return last;
    });
  }
  if (gap && !st.catching_up)
    catch_up(self, file_last);
  answer_waiting(self);
}

void catch_up(auditor_ptr self, uint64_t after) {
  auto& st = self->state;
  if (!st.checkpointer)
    return;
  st.catching_up = true;
  self->request(st.checkpointer, caf::infinite, catch_up_atom::value, after,
                catch_up_page)
    .then(
      [=](std::vector<committed_event>& events) {
        auto& st = self->state;
        st.catching_up = false;
        bool full = events.size() >= catch_up_page;
        st.vouched_from = after;
        st.vouched_to = events.empty() ? after : events.back().seq;
        add_pending(st, events);
        write_pending(self);
        if (full && !st.catching_up)
          catch_up(self, st.vouched_to);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.catching_up = false;
        spdlog::error("audit log {}: cannot read the events to write from "
                      "the store ({}); they stay there for the next start",
                      st.log->path(), to_string(err));
        st.pending.clear();
        answer_waiting(self);
      });
}

// -- a store of several files ----------------------------------------------

bool any_file_catching(const auditor_state& st) {
  return std::any_of(st.file_catching.begin(), st.file_catching.end(),
                     [](uint8_t c) { return c != 0; });
}

// Answers the flushes whose events are all in the file (none while a
// catch-up is out: its next pages may hold events committed before the
// flush). With a writer gone, once everything below its floor is written:
// nothing more can be.
void answer_waiting_for(auditor_ptr self) {
  auto& st = self->state;
  auto below = st.merge->watermark(); // every seq below it is written
  bool all_writable = st.file_gone && below >= st.gone_floor;
  if (any_file_catching(st) && !all_writable)
    return;
  auto keep = st.waiting_for.begin();
  for (auto& w : st.waiting_for)
    if (w.first < below || all_writable)
      w.second.deliver(flush_atom::value);
    else
      *keep++ = std::move(w);
  st.waiting_for.erase(keep, st.waiting_for.end());
}

// Writes what the merge lets go (one write under the file's lock), then
// asks the files whose old floor holds the rest back for a newer one.
void write_merged(auditor_ptr self) {
  auto& st = self->state;
  auto ready = st.merge->take_ready();
  if (!ready.empty() || st.log->has_buffered())
    st.log->append_locked([&](uint64_t last, std::string& out) {
      for (auto& e : ready) {
        if (e.seq <= last)
          continue; // written already (an earlier run's catch-up)
        out += audit_line(e.event, e.seq, e.ts);
        out += '\n';
        last = e.seq;
      }
      return last;
    });
  if (st.merge->breaches() != 0)
    spdlog::critical("audit log {}: {} event(s) numbered alike by two store "
                     "files (a writer without the store's clock)",
                     st.log->path(), st.merge->breaches());
  if (st.merge->waiting() != 0)
    for (auto k : st.merge->holding_back())
      if (!st.floor_asked[k] && !st.file_catching[k]) {
        st.floor_asked[k] = 1;
        self->send(st.files[k], floor_atom::value);
      }
  answer_waiting_for(self);
}

// Events of file k from its catch-up or its commits: into the merge.
void take_from_file(auditor_ptr self, uint32_t k,
                    std::vector<committed_event> events, uint64_t floor) {
  auto& st = self->state;
  auto n = events.size();
  auto last = events.empty() ? uint64_t{0} : events.back().seq;
  if (st.merge->add(k, std::move(events), floor))
    st.received_max = std::max(st.received_max, last);
  else
    spdlog::critical("audit log {}: store file {} sent {} event(s) out of "
                     "order (floor {}, watermark {}); they stay in the store, "
                     "not in the log",
                     st.log->path(), k, n, floor, st.merge->watermark());
}

// Every committed event of file k after `after`, a page at a time: each
// page's last seq + 1 is the file's floor (the page holds every event of
// it up to there); the last page (short) ends the catch-up.
void catch_up_file(auditor_ptr self, uint32_t k, uint64_t after) {
  auto& st = self->state;
  st.file_catching[k] = 1;
  self->request(st.files[k], caf::infinite, catch_up_atom::value, after,
                catch_up_page)
    .then(
      [=](std::vector<committed_event>& events) {
        bool full = events.size() >= catch_up_page;
        auto last = events.empty() ? after : events.back().seq;
        take_from_file(self, k, std::move(events), last + 1);
        auto& st = self->state;
        if (full) {
          catch_up_file(self, k, last);
        } else {
          st.file_catching[k] = 0;
          // Every event committed before a waiting flush is received now.
          if (!any_file_catching(st))
            for (auto& w : st.waiting_for)
              w.first = std::max(w.first, st.received_max);
        }
        write_merged(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.file_catching[k] = 0;
        spdlog::error("audit log {}: cannot read the events to write from "
                      "store file {} ({}); they stay there for the next "
                      "start",
                      st.log->path(), k, to_string(err));
        write_merged(self);
      });
}

// Every file commits what it holds and sends its floor; the flush is
// answered once the log holds every event received by then.
void flush_files(auditor_ptr self,
                 caf::typed_response_promise<flush_atom> rp) {
  auto& st = self->state;
  auto left = std::make_shared<size_t>(st.files.size());
  auto answered = [=]() mutable {
    if (--*left != 0)
      return;
    auto& st = self->state;
    st.waiting_for.emplace_back(st.received_max, rp);
    write_merged(self);
  };
  for (auto& f : st.files)
    self->request(f, caf::infinite, flush_atom::value)
      .then([=](flush_atom) mutable { answered(); },
            [=](caf::error&) mutable { answered(); });
}

auditor_actor::behavior_type auditor(auditor_ptr self,
                                     std::shared_ptr<jsonl_writer> log) {
  pthread_setname_np(pthread_self(), "bg.auditor"); // its own thread
  self->state.log = std::move(log);
  // A file's writer that ends (a store of several files): see file_gone.
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t k = 0; k < st.files.size(); ++k)
      if (dm.source == st.files[k].address()) {
        auto floor = st.merge->floor_of(k);
        if (dm.reason != caf::exit_reason::user_shutdown)
          spdlog::error("audit log {}: store file {}'s writer ended ({}); "
                        "the events from seq {} on stay in the store for "
                        "the next start",
                        st.log->path(), k, to_string(dm.reason), floor);
        st.gone_floor = st.file_gone ? std::min(st.gone_floor, floor) : floor;
        st.file_gone = true;
        st.file_catching[k] = 0;
        write_merged(self); // what is below its floor, and the flushes
      }
  });
  self->state.seq = jsonl_writer::last_seq(self->state.log->path());
  return {
    [=](const audit_event& ev) {
      auto& st = self->state;
      if (st.attached()) {
        st.outgoing.push_back(ev);
        schedule_flush(self);
        return;
      }
      st.log->append(audit_line(ev, ++st.seq, now_rfc3339()));
      schedule_flush(self);
    },
    [=](attach_atom, const checkpointer_actor& checkpointer) {
      auto& st = self->state;
      st.log->flush(); // lines numbered here before, if any
      st.checkpointer = checkpointer;
      catch_up(self, st.log->last_seq_locked());
    },
    [=](attach_atom, const std::vector<checkpointer_actor>& files) {
      auto& st = self->state;
      if (files.empty() || st.attached())
        return;
      st.log->flush();
      st.files = files;
      for (auto& f : files)
        self->monitor(f);
      auto last = st.log->last_seq_locked();
      st.merge = std::make_unique<event_merge>(files.size(), last + 1);
      st.file_catching.assign(files.size(), 1);
      st.floor_asked.assign(files.size(), 0);
      for (uint32_t k = 0; k < files.size(); ++k)
        catch_up_file(self, k, last);
    },
    [=](std::vector<committed_event>& events) {
      add_pending(self->state, events);
      schedule_flush(self);
    },
    [=](commit_atom, uint32_t k, std::vector<committed_event>& events,
        uint64_t floor) {
      auto& st = self->state;
      if (k >= st.files.size() ||
          self->current_sender() !=
            caf::actor_cast<caf::strong_actor_ptr>(st.files[k]))
        return; // only file k's writer speaks for file k
      st.floor_asked[k] = 0;
      if (st.file_catching[k])
        return; // committed before the catch-up's last page: in it
      take_from_file(self, k, std::move(events), floor);
      schedule_flush(self);
    },
    // The self-addressed flush (false) ends a batch; a requested flush
    // (the atom alone) answers once the file has everything.
    [=](write_pending_atom) {
      auto& st = self->state;
      st.flush_scheduled = false;
      if (!st.files.empty()) {
        forward(self);
        write_merged(self);
      } else if (st.checkpointer) {
        forward(self);
        write_pending(self);
      } else {
        st.log->flush();
      }
    },
    [=](flush_atom) -> caf::typed_response_promise<flush_atom> {
      auto& st = self->state;
      auto rp = self->make_response_promise<flush_atom>();
      if (!st.files.empty()) {
        forward(self);
        flush_files(self, rp);
        return rp;
      }
      if (!st.checkpointer) {
        st.log->flush();
        rp.deliver(flush_atom::value);
        return rp;
      }
      // Events forwarded before this request are committed and sent back
      // before the checkpointer answers it.
      forward(self);
      self->request(st.checkpointer, caf::infinite, flush_atom::value)
        .then(
          [=](flush_atom) mutable {
            self->state.waiting.push_back(rp);
            write_pending(self);
          },
          [=](caf::error&) mutable {
            self->state.waiting.push_back(rp);
            write_pending(self);
          });
      return rp;
    },
  };
}

} // namespace

auditor_actor spawn_auditor(caf::actor_system& sys, const std::string& path) {
  // Opened here so a bad path fails in the caller with a clear message.
  // Detached: write(2) and fsync of the log block its own thread only.
  return sys.spawn<caf::detached>(auditor,
                                  std::make_shared<jsonl_writer>(path));
}

} // namespace bgagent
