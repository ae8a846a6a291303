#include "policy/schedule.hpp"

#include <cctype>
#include <ctime>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "policy/utc_time.hpp"

namespace bgagent {

namespace {

const char* month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                             "jul", "aug", "sep", "oct", "nov", "dec"};
const char* day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A number of the field, or a name (months 1-12, days 0-6).
int value_of(const std::string& text, const char* field, int lo, int hi,
             const char* const* names, int names_base) {
  if (names) {
    auto l = lower(text);
    for (int i = 0; i < (names == month_names ? 12 : 7); ++i)
      if (l == names[i])
        return i + names_base;
  }
  if (text.empty() || text.size() > 4 ||
      text.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument(std::string(field) + " field: \"" + text +
                                "\" is not a number");
  int v = std::stoi(text);
  if (v < lo || v > hi)
    throw std::invalid_argument(std::string(field) + " field: " + text +
                                " is outside " + std::to_string(lo) + "-" +
                                std::to_string(hi));
  return v;
}

// Sets the values `text` names in `bits` (index = value); true when it is
// restricted: as in Vixie cron, a field that starts with `*` (`*`, `*/2`)
// is not, for the rule joining the two day fields.
template <size_t N>
bool parse_field(const std::string& text, const char* field, int lo, int hi,
                 std::bitset<N>& bits, const char* const* names = nullptr,
                 int names_base = 0) {
  std::stringstream items(text);
  bool restricted = text.empty() || text[0] != '*';
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty())
      throw std::invalid_argument(std::string(field) +
                                  " field: an empty list item");
    int step = 1;
    auto slash = item.find('/');
    std::string range = item.substr(0, slash);
    if (slash != std::string::npos) {
      step = value_of(item.substr(slash + 1), field, 1, hi, nullptr, 0);
    }
    int a = lo, b = hi;
    if (range == "*") {
    } else if (auto dash = range.find('-'); dash != std::string::npos) {
      a = value_of(range.substr(0, dash), field, lo, hi, names, names_base);
      b = value_of(range.substr(dash + 1), field, lo, hi, names, names_base);
      if (a > b)
        throw std::invalid_argument(std::string(field) + " field: range " +
                                    range + " runs backwards");
    } else {
      a = value_of(range, field, lo, hi, names, names_base);
      b = slash == std::string::npos ? a : hi;
    }
    for (int v = a; v <= b; v += step)
      bits.set(static_cast<size_t>(v));
  }
  return restricted;
}

int64_t parse_duration(const std::string& text) {
  int64_t total = 0;
  size_t i = 0;
  if (text.empty())
    throw std::invalid_argument("@every needs a duration, e.g. 30s or 1h30m");
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
      ++j;
    if (j == i || j == text.size() || j - i > 9)
      throw std::invalid_argument("@every duration \"" + text +
                                  "\": not like 30s, 5m, 2h or 1h30m");
    int64_t n = std::stoll(text.substr(i, j - i));
    switch (text[j]) {
      case 's': total += n; break;
      case 'm': total += n * 60; break;
      case 'h': total += n * 3600; break;
      case 'd': total += n * 86400; break;
      default:
        throw std::invalid_argument("@every duration \"" + text +
                                    "\": units are s, m, h, d");
    }
    i = j + 1;
  }
  if (total < 1 || total > 366 * 86400)
    throw std::invalid_argument("@every duration \"" + text +
                                "\": must be from 1 s to 366 days");
  return total;
}

constexpr int64_t day_seconds = 86400;
constexpr int64_t search_days = 5 * 366;

int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

} // namespace

schedule schedule::parse(const std::string& spec) {
  std::stringstream in(spec);
  std::vector<std::string> words;
  for (std::string w; in >> w;)
    words.push_back(w);
  schedule s;
  size_t file_word = 0;
  if (!words.empty() && words[0] == "@every") {
    if (words.size() < 3)
      throw std::invalid_argument("\"@every DURATION FILE\": a duration and "
                                  "a file are needed");
    s.every_ = parse_duration(words[1]);
    s.when_ = "@every " + words[1];
    file_word = 2;
  } else {
    if (words.size() < 6)
      throw std::invalid_argument("\"CRON FILE\": five cron fields (minute "
                                  "hour day month weekday) and a file are "
                                  "needed");
    parse_field(words[0], "minute", 0, 59, s.minutes_);
    parse_field(words[1], "hour", 0, 23, s.hours_);
    s.days_restricted_ = parse_field(words[2], "day-of-month", 1, 31, s.days_);
    parse_field(words[3], "month", 1, 12, s.months_, month_names, 1);
    std::bitset<8> dow;
    s.weekdays_restricted_ =
      parse_field(words[4], "day-of-week", 0, 7, dow, day_names, 0);
    for (int d = 0; d < 7; ++d)
      s.weekdays_[static_cast<size_t>(d)] = dow[static_cast<size_t>(d)];
    if (dow[7])
      s.weekdays_.set(0); // 7 is Sunday too
    s.when_ = words[0] + " " + words[1] + " " + words[2] + " " + words[3] +
              " " + words[4];
    // Some day of the month in some listed month must exist (any weekday
    // exists in every month).
    bool some_day = s.weekdays_restricted_ && s.days_restricted_;
    static const int month_days[13] = {0, 31, 29, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12 && !some_day; ++m)
      for (int d = 1; d <= month_days[m] && !some_day; ++d)
        some_day = s.months_[static_cast<size_t>(m)] &&
                   (!s.days_restricted_ || s.days_[static_cast<size_t>(d)]);
    if (!some_day)
      throw std::invalid_argument("\"" + s.when_ + "\" never fires (no such "
                                  "day in the months it names)");
    file_word = 5;
  }
  // The file is the rest of the spec, as written (it may hold spaces).
  auto pos = std::string::npos;
  {
    size_t at = 0;
    for (size_t w = 0; w < file_word; ++w) {
      at = spec.find(words[w], at) + words[w].size();
    }
    pos = spec.find_first_not_of(" \t", at);
  }
  s.file_ = spec.substr(pos);
  while (!s.file_.empty() && std::isspace(static_cast<unsigned char>(
                               s.file_.back())))
    s.file_.pop_back();
  return s;
}

bool schedule::day_matches(int64_t day_start) const {
  auto tm = utc(day_start);
  if (!months_[static_cast<size_t>(tm.tm_mon + 1)])
    return false;
  bool dom = days_[static_cast<size_t>(tm.tm_mday)];
  bool dow = weekdays_[static_cast<size_t>(tm.tm_wday)];
  if (days_restricted_ && weekdays_restricted_)
    return dom || dow;
  return dom && dow;
}

int64_t schedule::next_after(int64_t t) const {
  if (every_ > 0)
    return (floor_div(t, every_) + 1) * every_;
  int64_t day = floor_div(t, day_seconds) * day_seconds;
  for (int64_t d = 0; d < search_days; ++d, day += day_seconds) {
    if (!day_matches(day))
      continue;
    for (int h = 0; h < 24; ++h) {
      if (!hours_[static_cast<size_t>(h)])
        continue;
      for (int m = 0; m < 60; ++m) {
        auto at = day + h * 3600 + m * 60;
        if (minutes_[static_cast<size_t>(m)] && at > t)
          return at;
      }
    }
  }
  return INT64_MAX;
}

std::optional<int64_t> schedule::latest_at_or_before(int64_t t) const {
  if (every_ > 0)
    return floor_div(t, every_) * every_;
  int64_t day = floor_div(t, day_seconds) * day_seconds;
  for (int64_t d = 0; d < search_days; ++d, day -= day_seconds) {
    if (!day_matches(day))
      continue;
    for (int h = 23; h >= 0; --h) {
      if (!hours_[static_cast<size_t>(h)])
        continue;
      for (int m = 59; m >= 0; --m) {
        auto at = day + h * 3600 + m * 60;
        if (minutes_[static_cast<size_t>(m)] && at <= t)
          return at;
      }
    }
  }
  return std::nullopt;
}

} // namespace bgagent
