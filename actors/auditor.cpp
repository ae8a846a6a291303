#include "actors/auditor.hpp"

#include <memory>

#include <caf/all.hpp>

#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "persistence/jsonl_writer.hpp"

namespace bgagent {

namespace {

struct auditor_state {
  std::shared_ptr<jsonl_writer> log;
  uint64_t seq = 0;
  bool flush_scheduled = false;
  static inline const char* name = "auditor";
};

caf::behavior auditor(caf::stateful_actor<auditor_state>* self,
                      std::shared_ptr<jsonl_writer> log) {
  self->state.log = std::move(log);
  self->state.seq = jsonl_writer::last_seq(self->state.log->path());
  auto schedule_flush = [self] {
    if (!self->state.flush_scheduled) {
      self->state.flush_scheduled = true;
      self->send(self, flush_atom::value, false);
    }
  };
  return {
    [=](const audit_event& ev) {
      auto& st = self->state;
      st.log->append(audit_line(ev, ++st.seq, now_rfc3339()));
      schedule_flush();
    },
    // The self-addressed flush (false) ends a batch; a requested flush
    // (true, via the atom alone) answers once the file has everything.
    [=](flush_atom, bool) {
      self->state.flush_scheduled = false;
      self->state.log->flush();
    },
    [=](flush_atom) {
      self->state.log->flush();
      return flush_atom::value;
    },
  };
}

} // namespace

caf::actor spawn_auditor(caf::actor_system& sys, const std::string& path) {
  // Opened here so a bad path fails in the caller with a clear message.
  return sys.spawn(auditor, std::make_shared<jsonl_writer>(path));
}

} // namespace bgagent
