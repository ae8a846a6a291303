// bgagent-bench-rates (rate_limit_pacing.cpp): how close bgagent's pacing
// gets to a provider's request limit, and how few requests the provider
// refuses, with many workers.
//
// A local OpenAI-compatible server takes R requests per minute, counted
// over a sliding window of `window` seconds (R x window / 60 per window,
// as providers count), answers 200 after `latency` ms and 429 (without
// Retry-After) to anything more. The real `bgagent run` with W workers
// (default 1,000) and BG_AGENT_RATE_WINDOW = window runs (1 + rounds)
// windows' worth of tasks in two setups:
//   rpm      BG_AGENT_RPM = R, the server sends no rate-limit headers;
//   headers  no BG_AGENT_RPM, the server sends OpenAI's x-ratelimit-*
//            (limit per minute, remaining, reset) on every answer.
// Printed per R and setup: the rate achieved after the first window's
// burst (which any limiter allows), from the first request to the last, as
// a share of R, the share of all requests
// answered 429, the tasks completed and the exit code. A window of 20 s
// instead of a provider's 60 keeps the bench to minutes; the keeper's
// 0.5 s margin per window then costs 2.4 % of R (0.8 % at 60 s).
//
// Usage: bgagent-bench-rates [--rpm 600,6000] [--workers 1000]
//                            [--window 20] [--rounds 3] [--latency-ms 200]
// Prints figures; never passes or fails on time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <signal.h>
#include <sstream>
#include <string>
#include <vector>

#include "bench/child_process.hpp"
#include "tests/support/raw_http_server.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using bgagent::testing::raw_http_server;
using bgagent::testing::raw_reply;
using bgagent::testing::raw_request;

// A sliding-window limiter of `limit` requests per `window`.
class limited_server {
public:
  limited_server(size_t limit, std::chrono::milliseconds window,
                 uint64_t per_minute, bool headers, int latency_ms)
    : limit_(limit), window_(window), per_minute_(per_minute),
      headers_(headers), latency_ms_(latency_ms),
      server_([this](const raw_request& r) { return answer(r); }) {}

  std::string base_url() const { return server_.base_url(); }

  // Requests accepted and refused, and the time from the first accepted
  // to the last.
  struct figures {
    size_t accepted = 0;
    size_t refused = 0;
    double span_seconds = 0;
  };
  figures measure() {
    std::lock_guard<std::mutex> lock(m_);
    figures f;
    f.accepted = all_.size();
    f.refused = refused_;
    if (!all_.empty())
      f.span_seconds =
        std::chrono::duration<double>(all_.back() - all_.front()).count();
    return f;
  }

private:
  raw_reply answer(const raw_request& req) {
    if (req.head.rfind("GET ", 0) == 0)
      return raw_reply{raw_http_server::response(404, "{}")};
    auto now = clock_type::now();
    std::lock_guard<std::mutex> lock(m_);
    while (!window_calls_.empty() && now - window_calls_.front() >= window_)
      window_calls_.pop_front();
    bool ok = window_calls_.size() < limit_;
    if (ok) {
      window_calls_.push_back(now);
      all_.push_back(now);
    } else {
      ++refused_;
    }
    std::vector<std::string> h;
    if (headers_) {
      auto remaining = limit_ - std::min(limit_, window_calls_.size());
      double reset = 0;
      if (!window_calls_.empty())
        reset = std::chrono::duration<double>(window_calls_.front() +
                                              window_ - now)
                  .count();
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.3fs", std::max(0.0, reset));
      h.push_back("x-ratelimit-limit-requests: " +
                  std::to_string(per_minute_));
      h.push_back("x-ratelimit-remaining-requests: " +
                  std::to_string(remaining));
      h.push_back(std::string("x-ratelimit-reset-requests: ") + buf);
    }
    if (!ok)
      return raw_reply{raw_http_server::response(
        429,
        R"({"error": {"message": "Rate limit reached for requests", )"
        R"("type": "requests", "code": "rate_limit_exceeded"}})",
        h)};
    return raw_reply{raw_http_server::response(
                       200,
                       raw_http_server::completion(R"({"summary": "ok"})"),
                       h),
                     false, latency_ms_};
  }

  size_t limit_;
  std::chrono::milliseconds window_;
  uint64_t per_minute_;
  bool headers_;
  int latency_ms_;
  std::mutex m_;
  std::deque<clock_type::time_point> window_calls_;
  std::vector<clock_type::time_point> all_;
  size_t refused_ = 0;
  raw_http_server server_; // last: stopped first
};

std::vector<uint64_t> parse_list(const std::string& s) {
  std::vector<uint64_t> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');)
    out.push_back(std::strtoull(x.c_str(), nullptr, 10));
  return out;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<uint64_t> rpms{600, 6000};
  int workers = 1000, window_s = 20, rounds = 3, latency_ms = 200;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      return i + 1 < argc ? argv[++i] : "";
    };
    if (a == "--rpm")
      rpms = parse_list(next());
    else if (a == "--workers")
      workers = std::atoi(next().c_str());
    else if (a == "--window")
      window_s = std::atoi(next().c_str());
    else if (a == "--rounds")
      rounds = std::atoi(next().c_str());
    else if (a == "--latency-ms")
      latency_ms = std::atoi(next().c_str());
    else {
      std::fprintf(stderr,
                   "usage: bgagent-bench-rates [--rpm 600,6000] [--workers "
                   "1000] [--window 20] [--rounds 3] [--latency-ms 200]\n");
      return 2;
    }
  }
  if (window_s < 1 || window_s > 60 || rounds < 1 || workers < 1) {
    std::fprintf(stderr, "--window 1..60, --rounds and --workers >= 1\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  auto tmp_root = (std::filesystem::temp_directory_path() /
                   ("bgagent-bench-rates-" + std::to_string(getpid())))
                    .string();
  std::filesystem::create_directories(tmp_root);
  std::printf("W = %d workers, sliding window %d s, %d rounds after the "
              "first window, latency %d ms\n",
              workers, window_s, rounds, latency_ms);
  std::printf("%7s %8s %6s %9s %11s %8s %9s %8s %5s\n", "R/min", "setup",
              "tasks", "run s", "after 1st", "% of R", "429s", "% 429",
              "exit");
  std::fflush(stdout);
  for (auto rpm : rpms) {
    size_t per_window = std::max<uint64_t>(1, rpm * window_s / 60);
    size_t n = per_window * static_cast<size_t>(1 + rounds);
    for (bool headers : {false, true}) {
      limited_server server(per_window, std::chrono::seconds(window_s), rpm,
                            headers, latency_ms);
      auto dir = tmp_root + "/r" + std::to_string(rpm) +
                 (headers ? "-headers" : "-rpm");
      std::filesystem::create_directories(dir);
      {
        std::ofstream tasks(dir + "/tasks.jsonl");
        for (size_t i = 0; i < n; ++i)
          tasks << R"({"type":"summarize","input":"rate text )" << i
                << R"(."})" << "\n";
      }
      bgagent::bench::env_list env{
        {"LLM_PROVIDER", "openai"},
        {"LLM_BASE_URL", server.base_url()},
        {"OPENAI_API_KEY", ""},
        {"OPENROUTER_API_KEY", ""},
        {"MODEL", "bench"},
        {"BG_AGENT_TOKEN_BUDGET", "1000000000000"},
        {"BG_AGENT_COST_BUDGET", "1000000"},
        {"BG_AGENT_PRICE_PROMPT", "0"},
        {"BG_AGENT_PRICE_COMPLETION", "0"},
        {"BG_AGENT_LOG_LEVEL", "warn"},
        {"BG_AGENT_TIMEOUT", "120"},
        {"BG_AGENT_MAX_RETRIES", "10"},
        {"BG_AGENT_RATE_WINDOW", std::to_string(window_s)},
        {"BG_AGENT_DB", dir + "/bgagent.db"},
        {"BG_AGENT_AUDIT_LOG", dir + "/audit.jsonl"},
        {"BG_AGENT_ALERTS_LOG", dir + "/alerts.jsonl"}};
      if (!headers)
        env.push_back({"BG_AGENT_RPM", std::to_string(rpm)});
      auto r = bgagent::bench::run_measured(
        {BGAGENT_BINARY_PATH, "run", "--tasks", dir + "/tasks.jsonl",
         "--workers", std::to_string(workers)},
        env, dir + "/output.txt");
      // The first window's burst is free with any limiter: the rate is
      // what came after it over the time from the first request to the
      // last (one window's allowance per window).
      auto f = server.measure();
      size_t after = f.accepted > per_window ? f.accepted - per_window : 0;
      double rate = f.span_seconds > 0 ? after / f.span_seconds * 60.0 : 0;
      double total = static_cast<double>(f.accepted + f.refused);
      std::printf("%7llu %8s %6zu %9.1f %11zu %7.1f%% %9zu %7.2f%% %5d\n",
                  static_cast<unsigned long long>(rpm),
                  headers ? "headers" : "rpm", n, r.wall_seconds,
                  after, 100.0 * rate / static_cast<double>(rpm),
                  f.refused, total > 0 ? 100.0 * f.refused / total : 0.0,
                  r.exit_code);
      std::fflush(stdout);
      if (r.exit_code != 0)
        std::fprintf(stderr, "bgagent exited %d; output kept in %s\n",
                     r.exit_code, dir.c_str());
      else
        std::filesystem::remove_all(dir);
    }
  }
  std::error_code ec;
  std::filesystem::remove(tmp_root, ec); // kept when a run failed
  return 0;
}
