#include "app/live_terminal.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/sink.h>

namespace bgagent {

namespace {

// One lock for the live line and every log line, so they never interleave.
struct live_line_state {
  std::mutex m;
  std::string shown; // what the live line shows now ("" = nothing drawn)
};

live_line_state& state() {
  static live_line_state s;
  return s;
}

void put(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stderr);
}

// "\r" to the line's start, ESC[K erases to its end.
constexpr const char* erase_line = "\r\033[K";

std::string cut_to_width(const std::string& line) {
  // One column short of the width: a character in the last column makes
  // some terminals wrap at once.
  auto width = static_cast<size_t>(terminal_columns() - 1);
  return line.size() <= width ? line : line.substr(0, width);
}

class live_sink : public spdlog::sinks::sink {
public:
  explicit live_sink(std::shared_ptr<spdlog::sinks::sink> inner)
    : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override {
    auto& s = state();
    std::lock_guard<std::mutex> g(s.m);
    if (!s.shown.empty()) {
      put(erase_line);
      std::fflush(stderr);
    }
    inner_->log(msg);
    inner_->flush();
    if (!s.shown.empty()) {
      s.shown = cut_to_width(s.shown); // the terminal may have narrowed
      put(s.shown);
      std::fflush(stderr);
    }
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override {
    inner_->set_pattern(pattern);
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

} // namespace

int terminal_columns() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    int n = std::atoi(c);
    if (n >= 20 && n <= 1000)
      return n;
  }
  return 80;
}

void live_line_draw(const std::string& line) {
  auto& s = state();
  std::lock_guard<std::mutex> g(s.m);
  s.shown = cut_to_width(line);
  put(erase_line);
  put(s.shown);
  std::fflush(stderr);
}

void live_line_clear() {
  auto& s = state();
  std::lock_guard<std::mutex> g(s.m);
  if (s.shown.empty())
    return;
  s.shown.clear();
  put(erase_line);
  std::fflush(stderr);
}

std::shared_ptr<spdlog::sinks::sink>
live_log_sink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<live_sink>(std::move(inner));
}

} // namespace bgagent
