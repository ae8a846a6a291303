#include "app/progress_line.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/live_terminal.hpp"
#include "app/number_format.hpp"
#include "messages/run.hpp"

namespace bgagent {

namespace {

std::string dollars(double x, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "$%.*f", decimals, x);
  return buf;
}

struct line_part {
  std::string text;
  int keep; // higher survives longer when the line is too wide
};

} // namespace

std::string format_progress(const metrics_snapshot& m,
                            const progress_baseline& base, size_t width) {
  uint64_t done = base.completed + m.completed;
  uint64_t quarantined = base.quarantined + m.quarantined;
  // Tasks submitted while a --follow run goes on can outrun the last look
  // at the store.
  uint64_t total = std::max(base.total, done + quarantined);
  double rate = m.elapsed_seconds > 0 ? m.completed / m.elapsed_seconds : 0;
  uint64_t finished = done + quarantined;
  std::string eta = "--";
  if (rate > 0 && total > finished)
    eta = duration_short(static_cast<double>(total - finished) / rate);

  char r[32];
  std::snprintf(r, sizeof(r), "%.1f tasks/s", rate);
  std::vector<line_part> parts{
    {grouped(done) + "/" + grouped(total) + " done", 9},
    {grouped(quarantined) + " quarantined", quarantined > 0 ? 7 : 2},
    {r, 5},
    {grouped(m.in_flight) + " in flight", 1},
    {grouped(m.budget.tokens_used) + "/" + grouped(m.budget.tokens_limit) +
       " tokens",
     3},
    {dollars(m.budget.cost_used, 4) + "/" + dollars(m.budget.cost_limit, 2),
     4},
    {"ETA " + eta, 6},
  };
  if (m.paused)
    parts.push_back({"[paused]", 8});
  if (m.circuits_open > 0)
    parts.push_back({"[provider down " + duration_short(m.outage_seconds) +
                       (m.circuits_open > 1
                          ? ", " + grouped(m.circuits_open) + " models"
                          : std::string()) +
                       "]",
                     8});
  if (m.rate_waiting > 0)
    parts.push_back({grouped(m.rate_waiting) + " waiting for rate", 2});
  if (!m.batch_progress.empty())
    parts.push_back({m.batch_progress, 7});
  if (m.cached > 0)
    parts.push_back({grouped(m.cached) + " from cache", 2});

  auto render = [&] {
    std::string out;
    for (auto& p : parts) {
      if (p.keep < 0)
        continue;
      if (!out.empty())
        out += ", ";
      out += p.text;
    }
    return out;
  };
  auto line = render();
  // Leave out the least useful part until the line fits.
  while (line.size() > width) {
    auto least = std::min_element(parts.begin(), parts.end(),
                                  [](const line_part& a, const line_part& b) {
                                    auto ka = a.keep < 0 ? 1000 : a.keep;
                                    auto kb = b.keep < 0 ? 1000 : b.keep;
                                    return ka < kb;
                                  });
    if (least == parts.end() || least->keep < 0 || least->keep == 9)
      break; // done/total alone: the terminal cuts what is left
    least->keep = -1;
    line = render();
  }
  return line;
}

progress_line::progress_line(bool terminal, double log_every_seconds)
  : terminal_(terminal),
    log_every_(log_every_seconds),
    last_log_(std::chrono::steady_clock::now()) {}

void progress_line::show(const metrics_snapshot& m) {
  if (terminal_) {
    auto width = static_cast<size_t>(std::max(1, terminal_columns() - 1));
    live_line_draw(format_progress(m, base_, width));
    drawn_ = true;
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_log_).count() >= log_every_) {
    last_log_ = now;
    spdlog::info("progress: {}", format_progress(m, base_));
  }
}

void progress_line::finish() {
  if (terminal_ && drawn_) {
    live_line_clear();
    drawn_ = false;
  }
}

} // namespace bgagent
