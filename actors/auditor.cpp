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

// Hands the events received so far to the checkpointer, in one message.
void forward(auditor_ptr self) {
  auto& st = self->state;
  if (st.outgoing.empty() || !st.checkpointer)
    return;
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

auditor_actor::behavior_type auditor(auditor_ptr self,
                                     std::shared_ptr<jsonl_writer> log) {
  pthread_setname_np(pthread_self(), "bg.auditor"); // its own thread
  self->state.log = std::move(log);
  self->state.seq = jsonl_writer::last_seq(self->state.log->path());
  return {
    [=](const audit_event& ev) {
      auto& st = self->state;
      if (st.checkpointer) {
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
    [=](std::vector<committed_event>& events) {
      add_pending(self->state, events);
      schedule_flush(self);
    },
    // The self-addressed flush (false) ends a batch; a requested flush
    // (the atom alone) answers once the file has everything.
    [=](write_pending_atom) {
      auto& st = self->state;
      st.flush_scheduled = false;
      if (st.checkpointer) {
        forward(self);
        write_pending(self);
      } else {
        st.log->flush();
      }
    },
    [=](flush_atom) -> caf::typed_response_promise<flush_atom> {
      auto& st = self->state;
      auto rp = self->make_response_promise<flush_atom>();
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
