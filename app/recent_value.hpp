// A value read at most once per max_age, however many threads ask: the
// unauthenticated `--metrics` endpoint's store counts, so that a flood of
// scrapes costs the run one scan of the store per max_age, not one each.
//
// Contract: get(fetch) returns the last value fetched if it is younger than
// max_age (measured by `now`), else calls fetch() and keeps its value.
// Callers that arrive while a fetch is running wait for it and share its
// value (one fetch at a time). A fetch that throws is shared the same way:
// its exception goes to its caller and to every caller until max_age after
// it failed (those waiting for it included, so a store that does not
// answer costs one wait, not one per waiting caller); then the next caller
// fetches again.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>

namespace bgagent {

template <class T>
class recent_value {
public:
  using clock = std::chrono::steady_clock;

  explicit recent_value(clock::duration max_age,
                        std::function<clock::time_point()> now = clock::now)
    : max_age_(max_age), now_(std::move(now)) {}

  template <class Fetch>
  T get(Fetch fetch) {
    std::lock_guard<std::mutex> guard(mtx_);
    auto t = now_();
    if (t - fetched_at_ < max_age_) {
      if (value_)
        return *value_;
      if (failure_)
        std::rethrow_exception(failure_);
    }
    value_.reset();
    failure_ = nullptr;
    try {
      T fresh = fetch();
      value_ = fresh;
      fetched_at_ = t; // its age counts from the start of its read
      return fresh;
    } catch (...) {
      failure_ = std::current_exception();
      fetched_at_ = now_(); // from its end: those who waited share it
      throw;
    }
  }

private:
  clock::duration max_age_;
  std::function<clock::time_point()> now_;
  std::mutex mtx_; // held through a fetch: concurrent callers share it
  std::optional<T> value_;
  std::exception_ptr failure_;
  clock::time_point fetched_at_;
};

} // namespace bgagent
