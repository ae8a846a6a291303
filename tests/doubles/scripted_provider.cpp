#include "tests/doubles/scripted_provider.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "providers/offline_provider.hpp"

namespace bgagent::testing {

namespace {

using clock_type = std::chrono::steady_clock;

// Delivers delayed answers from one thread, in deadline order.
class timer_thread {
public:
  timer_thread() : worker_([this] { loop(); }) {}
  ~timer_thread() {
    {
      std::lock_guard<std::mutex> g(m_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void at(clock_type::time_point when, std::function<void()> f) {
    {
      std::lock_guard<std::mutex> g(m_);
      due_.emplace(when, std::move(f));
    }
    cv_.notify_all();
  }

private:
  void loop() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stop_) {
      if (due_.empty()) {
        cv_.wait(lk);
        continue;
      }
      auto first = due_.begin();
      if (first->first > clock_type::now()) {
        cv_.wait_until(lk, first->first);
        continue;
      }
      auto f = std::move(first->second);
      due_.erase(first);
      lk.unlock();
      f();
      lk.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::multimap<clock_type::time_point, std::function<void()>> due_;
  bool stop_ = false;
  std::thread worker_;
};

long marker_value(const std::string& input, const std::string& name,
                  long none) {
  auto tag = "[" + name + ":";
  auto p = input.find(tag);
  if (p == std::string::npos)
    return none;
  return std::atol(input.c_str() + p + tag.size());
}

bool has(const std::string& input, const std::string& marker) {
  return input.find("[" + marker + "]") != std::string::npos;
}

class scripted_provider : public provider {
public:
  explicit scripted_provider(const provider_settings& s)
    : provider(model_price{std::max(0.0, s.price_prompt_per_million),
                           std::max(0.0, s.price_completion_per_million)}),
      model_(s.model) {
    if (const char* d = std::getenv("BG_AGENT_TEST_DELAY_MS"))
      default_delay_ms_ = std::atol(d);
  }
  std::string name() const override { return "scripted"; }
  std::string model() const override { return "scripted"; }

  uint64_t start(const llm_request& req, completion done) override {
    auto& in = req.input;
    if (has(in, "crash"))
      throw std::runtime_error("scripted crash for task " + req.task_id);
    if (auto ms = marker_value(in, "hang", -1); ms >= 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    if (has(in, "never"))
      return 0;
    call_outcome out = answer(req);
    long delay = marker_value(in, "delay", default_delay_ms_);
    if (delay > 0) {
      timers_.at(clock_type::now() + std::chrono::milliseconds(delay),
                 [done, out] { done(out); });
      return 0;
    }
    done(std::move(out));
    return 0;
  }

private:
  call_outcome answer(const llm_request& req) {
    auto& in = req.input;
    call_outcome out;
    if (has(in, "fail")) {
      out = make_failure(error_kind::retryable, "scripted retryable failure");
    } else if (auto n = marker_value(in, "fail", -1); n > 0 && calls(req) <= n) {
      out = make_failure(error_kind::retryable, "scripted failure " +
                                                  std::to_string(calls(req, false)) +
                                                  " of " + std::to_string(n));
    } else if (has(in, "long-error")) {
      // A provider's long explanation, its point at the end.
      out = make_failure(error_kind::permanent,
                         "HTTP 400: the request could not be processed " +
                           std::string(150, '~') +
                           " because of reason XYZ-AT-THE-END",
                         400);
    } else if (has(in, "permanent")) {
      out = make_failure(error_kind::permanent,
                         "HTTP 400: scripted permanent failure", 400);
    } else if (has(in, "credits")) {
      out = make_failure(error_kind::out_of_credits,
                         "HTTP 402: scripted out of credits", 402);
    } else {
      out = offline_provider::compute(req);
      // Priced like a paid model when BG_AGENT_PRICE_* are set.
      out.cost_usd = price_.cost(out.prompt_tokens, out.completion_tokens);
    }
    out.provider = "scripted";
    out.model = "scripted";
    return out;
  }
  // Counts calls per task id (bumping it unless told not to).
  long calls(const llm_request& req, bool bump = true) {
    std::lock_guard<std::mutex> g(m_);
    return bump ? ++calls_[req.task_id] : calls_[req.task_id];
  }

  std::string model_;
  long default_delay_ms_ = 0;
  std::mutex m_;
  std::map<std::string, long> calls_;
  timer_thread timers_;
};

} // namespace

provider_ptr make_scripted_provider(const provider_settings& s) {
  return std::make_shared<scripted_provider>(s);
}

} // namespace bgagent::testing
