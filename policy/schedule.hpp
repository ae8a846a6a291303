// A schedule of `serve --schedule SPEC` (DESIGN.md section 11): when it
// fires, in UTC. SPEC is "CRON FILE" (five fields: minute hour
// day-of-month month day-of-week, each `*`, a number or name, a range
// `a-b`, a step `*/n` or `a-b/n`, or a list of these with commas; Sunday is
// 0 or 7; when both day fields are restricted, either matching fires, as in
// Vixie cron) or "@every DURATION FILE" (e.g. 30s, 5m, 1h30m; at least 1 s;
// it fires at the multiples of DURATION since the Unix epoch, so every
// process agrees on the firing times). FILE is the rest of SPEC.
//
// Contract: pure; times are unix seconds. parse() throws
// std::invalid_argument naming the field at fault, or saying that the
// expression never fires (30 February). next_after(t) is the
// first firing > t; latest_at_or_before(t) the last firing <= t (nullopt
// when there was none in the 5 years before t).
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>

namespace bgagent {

class schedule {
public:
  static schedule parse(const std::string& spec);

  const std::string& file() const { return file_; }
  // The timing part, as given ("*/5 * * * *" or "@every 30s").
  const std::string& when() const { return when_; }

  int64_t next_after(int64_t t) const;
  std::optional<int64_t> latest_at_or_before(int64_t t) const;

private:
  bool day_matches(int64_t day_start) const;
  std::string when_, file_;
  int64_t every_ = 0; // seconds; 0: a cron expression
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;   // 1-31
  std::bitset<13> months_; // 1-12
  std::bitset<7> weekdays_; // 0 = Sunday
  bool days_restricted_ = false, weekdays_restricted_ = false;
};

} // namespace bgagent
