#include "app/progress_line.hpp"

#include <cstdio>

#include <spdlog/spdlog.h>

#include "messages/run.hpp"

namespace bgagent {

std::string format_progress(const metrics_snapshot& m) {
  double rate = m.elapsed_seconds > 0 ? m.completed / m.elapsed_seconds : 0;
  uint64_t finished = m.completed + m.quarantined;
  char eta[32] = "--";
  if (rate > 0 && m.total > finished) {
    double s = static_cast<double>(m.total - finished) / rate;
    if (s < 60)
      std::snprintf(eta, sizeof(eta), "%.0fs", s);
    else if (s < 3600)
      std::snprintf(eta, sizeof(eta), "%.0fm%02.0fs", s / 60,
                    static_cast<double>(static_cast<int>(s) % 60));
    else
      std::snprintf(eta, sizeof(eta), "%.1fh", s / 3600);
  }
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "%llu/%llu done, %llu quarantined, %.1f tasks/s, %llu in "
                "flight, %llu/%llu tokens, $%.4f/$%.2f, ETA %s%s",
                static_cast<unsigned long long>(m.completed),
                static_cast<unsigned long long>(m.total),
                static_cast<unsigned long long>(m.quarantined), rate,
                static_cast<unsigned long long>(m.in_flight),
                static_cast<unsigned long long>(m.budget.tokens_used),
                static_cast<unsigned long long>(m.budget.tokens_limit),
                m.budget.cost_used, m.budget.cost_limit, eta,
                m.paused ? " [paused]" : "");
  return buf;
}

progress_line::progress_line(bool terminal, double log_every_seconds)
  : terminal_(terminal),
    log_every_(log_every_seconds),
    last_log_(std::chrono::steady_clock::now()) {}

void progress_line::show(const metrics_snapshot& m) {
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s", format_progress(m).c_str());
    std::fflush(stderr);
    drawn_ = true;
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_log_).count() >= log_every_) {
    last_log_ = now;
    spdlog::info("progress: {}", format_progress(m));
  }
}

void progress_line::finish() {
  if (terminal_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

} // namespace bgagent
