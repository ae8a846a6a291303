#include "policy/rate_window.hpp"

#include <algorithm>

namespace bgagent {

rate_window::rate_window(uint64_t rpm, uint64_t tpm, double window_seconds,
                         double margin_seconds)
  : rpm_(rpm), tpm_(tpm),
    window_(std::chrono::duration_cast<duration>(
      std::chrono::duration<double>(window_seconds + margin_seconds))) {}

void rate_window::expire(time_point now) {
  while (!calls_.empty() && calls_.front().at + window_ <= now) {
    tokens_ -= calls_.front().tokens;
    calls_.pop_front();
  }
}

rate_window::duration rate_window::wait(time_point now, uint64_t tokens) {
  expire(now);
  duration need{0};
  if (held_until_ > now)
    need = held_until_ - now;
  if (rpm_ > 0 && calls_.size() >= rpm_) {
    // The call that must leave the window for one more to fit.
    auto& oldest = calls_[calls_.size() - rpm_];
    need = std::max(need, oldest.at + window_ - now);
  }
  if (tpm_ > 0) {
    auto want = std::min(tokens, tpm_);
    if (tokens_ + want > tpm_) {
      uint64_t left = tokens_;
      for (auto& c : calls_) {
        left -= c.tokens;
        if (left + want <= tpm_) {
          need = std::max(need, c.at + window_ - now);
          break;
        }
      }
    }
  }
  return need;
}

// A hostile node's figures saturate; sums must not wrap.
uint64_t rate_window::clamp(uint64_t tokens) const {
  return std::min<uint64_t>(tokens, tpm_ > 0 ? tpm_ : uint64_t{1} << 50);
}

uint64_t rate_window::admit(time_point now, uint64_t tokens) {
  expire(now);
  tokens = clamp(tokens);
  auto slot = next_slot_++;
  calls_.push_back(call{now, slot, tokens});
  tokens_ += tokens;
  return slot;
}

void rate_window::settle(uint64_t slot, uint64_t tokens) {
  auto i = std::lower_bound(
    calls_.begin(), calls_.end(), slot,
    [](const call& c, uint64_t s) { return c.slot < s; });
  if (i == calls_.end() || i->slot != slot)
    return; // out of the window already
  tokens = clamp(tokens);
  tokens_ = tokens_ - i->tokens + tokens;
  i->tokens = tokens;
}

void rate_window::hold_until(time_point until) {
  held_until_ = std::max(held_until_, until);
}

} // namespace bgagent
