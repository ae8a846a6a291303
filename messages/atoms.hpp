// Every atom that names a message in bgagent's protocol, in one place.
//
// Contract: an atom names *what* is asked or told; the payload types live in
// the other headers of messages/. Names are at most 10 characters (CAF 0.17).
#pragma once

#include <caf/atom.hpp>

namespace bgagent {

// checkpointer
using submit_atom = caf::atom_constant<caf::atom("submit")>;
// a submission streamed in parts (one transaction): begin, parts, end
using begin_submit_atom = caf::atom_constant<caf::atom("subbegin")>;
using submit_part_atom = caf::atom_constant<caf::atom("subpart")>;
using end_submit_atom = caf::atom_constant<caf::atom("subend")>;
using open_run_atom = caf::atom_constant<caf::atom("openrun")>;
using finish_run_atom = caf::atom_constant<caf::atom("finishrun")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using running_atom = caf::atom_constant<caf::atom("running")>;
// the checkpointer's answers to a gateway's marks, one message a commit
using marks_atom = caf::atom_constant<caf::atom("marks")>;
using complete_atom = caf::atom_constant<caf::atom("complete")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using quarantine_atom = caf::atom_constant<caf::atom("quarantin")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using tags_atom = caf::atom_constant<caf::atom("tags")>;
// (status_atom, total_atom): the number of tasks but the cancelled, cheaply.
using total_atom = caf::atom_constant<caf::atom("total")>;
using results_atom = caf::atom_constant<caf::atom("results")>;
using requeue_atom = caf::atom_constant<caf::atom("requeue")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using limits_atom = caf::atom_constant<caf::atom("limits")>;
// (flush_atom) -> flush_atom: whatever was written is durable / on disk
using flush_atom = caf::atom_constant<caf::atom("flush")>;
// "here is the actor you work with" (the checkpointer's keeper, the
// auditor's checkpointer)
using attach_atom = caf::atom_constant<caf::atom("attach")>;
// the auditor asks the store for the committed events after a seq
using catch_up_atom = caf::atom_constant<caf::atom("catchup")>;
// (floor_atom): the auditor asks one file's writer of a store of several
// for its events' floor (actors/checkpointer.hpp)
using floor_atom = caf::atom_constant<caf::atom("floor")>;
// an actor's note to itself: commit the open group / write what is pending
using commit_group_atom = caf::atom_constant<caf::atom("commitgrp")>;
using write_pending_atom = caf::atom_constant<caf::atom("writepend")>;
// a task leaves `running` back to pending, its attempt given back
using give_back_atom = caf::atom_constant<caf::atom("giveback")>;

// budget_keeper
using reserve_atom = caf::atom_constant<caf::atom("reserve")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
// a reservation freed unspent
using release_atom = caf::atom_constant<caf::atom("release")>;
using set_budget_atom = caf::atom_constant<caf::atom("setbudget")>;
using budget_atom = caf::atom_constant<caf::atom("budget")>;

// supervisor and workers
using run_atom = caf::atom_constant<caf::atom("run")>;
using dispatch_atom = caf::atom_constant<caf::atom("dispatch")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
// the supervisor's timer: nodes slow to leave are not waited for longer
using nodes_waited_atom = caf::atom_constant<caf::atom("nodeswait")>;
using failed_atom = caf::atom_constant<caf::atom("failed")>;
using denied_atom = caf::atom_constant<caf::atom("denied")>;
using skipped_atom = caf::atom_constant<caf::atom("skipped")>;
// an attempt's answer is being stored: its worker may take the next one
using freed_atom = caf::atom_constant<caf::atom("freed")>;
using retry_due_atom = caf::atom_constant<caf::atom("retrydue")>;
using provider_atom = caf::atom_constant<caf::atom("provider")>;
// rate_keeper: a call asks to go (pace), gives its actual tokens back
// (refund), a provider's Retry-After holds every call (hold), its timer
// (wake).
using pace_atom = caf::atom_constant<caf::atom("pace")>;
using refund_atom = caf::atom_constant<caf::atom("refund")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using wake_atom = caf::atom_constant<caf::atom("wake")>;
// (status_atom, models_atom): the models the runnable tasks ask for.
using models_atom = caf::atom_constant<caf::atom("models")>;
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using pause_atom = caf::atom_constant<caf::atom("pause")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using workers_atom = caf::atom_constant<caf::atom("workers")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;
// The supervisor's own follow timer (a poll_atom from others is a poke that
// starts no second timer).
using poll_timer_atom = caf::atom_constant<caf::atom("poll_timer")>;

// a provider model's circuit: opened or closed (rate_keeper -> store), and
// open past BG_AGENT_OUTAGE_MAX (rate_keeper -> supervisor)
using circuit_atom = caf::atom_constant<caf::atom("circuit")>;
using schedule_atom = caf::atom_constant<caf::atom("schedule")>;
using outage_atom = caf::atom_constant<caf::atom("outage")>;

// provider batches: the store's batch rows (checkpointer), cancel one
// (batch_runner)
using batch_atom = caf::atom_constant<caf::atom("batch")>;
using batches_atom = caf::atom_constant<caf::atom("batches")>;
// the response cache: complete tasks from it (checkpointer)
using cached_atom = caf::atom_constant<caf::atom("cached")>;

// monitor and auditor
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using alert_atom = caf::atom_constant<caf::atom("alert")>;
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using audit_atom = caf::atom_constant<caf::atom("audit")>;
using calls_atom = caf::atom_constant<caf::atom("calls")>;

// gatekeeper (remote nodes)
using hello_atom = caf::atom_constant<caf::atom("hello")>;
using begin_atom = caf::atom_constant<caf::atom("begin")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
// the supervisor watches a cluster-edge actor (gatekeeper, node gateway)
using watch_atom = caf::atom_constant<caf::atom("watch")>;

} // namespace bgagent
