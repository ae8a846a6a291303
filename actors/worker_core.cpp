#include "actors/worker_core.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <utility>

#include "providers/task_request.hpp"

namespace bgagent {

worker_core::worker_core(provider_ptr prov, double timeout_seconds)
  : prov_(std::move(prov)), timeout_seconds_(timeout_seconds) {}

void worker_core::take(task t, uint32_t attempt) {
  busy_ = true;
  in_call_ = false;
  current_ = std::move(t);
  attempt_ = attempt;
  ++generation_;
  chain_ = model_chain(current_);
  model_at_ = std::min<size_t>(current_.model_index, chain_.size() - 1);
}

worker_core::begin_figures worker_core::begin() {
  const auto& model = chain_[model_at_];
  req_ = request_for(current_, model);
  begin_figures f;
  f.est_prompt = prov_->estimate_prompt_tokens(req_);
  f.max_tokens = req_.max_tokens;
  f.worst_cost = prov_->price_of(model).cost(f.est_prompt, req_.max_tokens);
  // OpenRouter takes the rest of the list itself (its `models`): any of
  // them may answer, so the worst case is the dearest.
  if (prov_->name() == "openrouter")
    for (size_t i = model_at_ + 1; i < chain_.size(); ++i) {
      req_.fallback_models.push_back(chain_[i]);
      f.worst_cost = std::max(
        f.worst_cost,
        prov_->price_of(chain_[i]).cost(f.est_prompt, req_.max_tokens));
    }
  f.may_fall_back = model_at_ + 1 < chain_.size();
  f.shown = prov_->name() + "/" + (model.empty() ? prov_->model() : model);
  return f;
}

void worker_core::fall_back() {
  if (model_at_ + 1 < chain_.size())
    ++model_at_;
}

namespace {

// An answer that may come inside start() (offline) or later from another
// thread: taken inside start() it is returned at once, without a message
// (one message fewer per attempt, and no deadline timer).
struct answer_slot {
  enum : int { in_start, answered_inside, start_returned };
  std::atomic<int> state{in_start};
  call_outcome out; // written before `answered_inside`, read after it
};

} // namespace

std::optional<call_outcome>
worker_core::start(clock_type::time_point now,
                   std::function<void(uint64_t, call_outcome)> later) {
  in_call_ = true;
  call_started_ = now;
  deadline_ = now + std::chrono::duration_cast<clock_type::duration>(
                      std::chrono::duration<double>(timeout_seconds_));
  auto gen = ++generation_;
  auto slot = std::make_shared<answer_slot>();
  call_id_ = prov_->start(
    req_, [gen, slot, later = std::move(later)](call_outcome out) {
      slot->out = std::move(out);
      int expected = answer_slot::in_start;
      if (slot->state.compare_exchange_strong(expected,
                                              answer_slot::answered_inside))
        return;
      later(gen, std::move(slot->out));
    });
  int expected = answer_slot::in_start;
  if (!slot->state.compare_exchange_strong(expected,
                                           answer_slot::start_returned))
    return std::move(slot->out);
  return std::nullopt;
}

worker_core::ended worker_core::end_call(call_outcome out,
                                         bool charge_reservation,
                                         clock_type::time_point now) {
  in_call_ = false;
  busy_ = false;
  ended e;
  e.out = std::move(out);
  e.charge_reservation = charge_reservation;
  e.latency = std::chrono::duration<double>(now - call_started_).count();
  return e;
}

worker_core::ended worker_core::time_out(clock_type::time_point now) {
  prov_->cancel(call_id_);
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%g", timeout_seconds_);
  auto out = make_failure(error_kind::retryable,
                          std::string("timed out after ") + secs +
                            " s (BG_AGENT_TIMEOUT)");
  out.provider = prov_->name();
  out.model = req_.model.empty() ? prov_->model() : req_.model;
  // The request was sent: the provider may bill it; assume the worst.
  return end_call(std::move(out), true, now);
}

worker_core::ended worker_core::take_answer(call_outcome out,
                                            clock_type::time_point now) {
  // A provider that blocked in start() (against its contract) answered
  // before any timer could fire: past the deadline it is a timeout all
  // the same.
  if (now > deadline_)
    return time_out(now);
  // A 2xx answer was billed even when it is unusable, and a request sent
  // whole may have been processed although no answer came back: without
  // usage, charge the reservation rather than nothing.
  bool billed = (out.http_status >= 200 && out.http_status < 300) ||
                out.sent_unanswered;
  return end_call(std::move(out), billed, now);
}

} // namespace bgagent
