// The bottom line of a terminal, kept under the log: the live progress line.
//
// Contract: draw() shows `line` on the terminal's last line, cut to its
// width so it never wraps; a log line written through the sink that
// live_log_sink() returns first clears the live line, then is written, then
// the live line is drawn again under it, so neither overwrites the other;
// clear() removes the line. Safe from any thread. Only for a terminal: the
// caller decides (isatty) whether to use it at all.
#pragma once

#include <memory>
#include <string>

namespace spdlog::sinks {
class sink;
}

namespace bgagent {

// The terminal's width in columns: the TIOCGWINSZ of stderr, else $COLUMNS,
// else 80.
int terminal_columns();

void live_line_draw(const std::string& line);
void live_line_clear();

// Wraps `inner` (the stderr sink) so its lines and the live line take turns.
std::shared_ptr<spdlog::sinks::sink>
live_log_sink(std::shared_ptr<spdlog::sinks::sink> inner);

} // namespace bgagent
