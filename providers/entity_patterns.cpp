#include "providers/entity_patterns.hpp"

#include <array>
#include <cstring>

#include "providers/ascii.hpp"

namespace bgagent {
namespace {

using ascii::is_alnum;
using ascii::is_alpha;
using ascii::is_digit;
using ascii::is_space;

// Each matcher below returns the length of the match that starts at `i`,
// or 0.

bool starts_with_at(const std::string& s, size_t i, const char* word) {
  size_t n = std::strlen(word);
  return s.compare(i, n, word) == 0;
}

size_t run_of(const std::string& s, size_t i, bool (*pred)(char)) {
  size_t j = i;
  while (j < s.size() && pred(s[j]))
    ++j;
  return j - i;
}

bool email_local(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
         c == '-';
}
bool email_domain(char c) { return is_alnum(c) || c == '.' || c == '-'; }

size_t match_email(const std::string& s, size_t i) {
  if (!email_local(s[i]) || (i > 0 && email_local(s[i - 1])))
    return 0;  // only from the start of a run
  size_t local = run_of(s, i, email_local);
  if (local == 0 || i + local >= s.size() || s[i + local] != '@')
    return 0;
  size_t d = i + local + 1;
  size_t domain = run_of(s, d, email_domain);
  // The address ends after the last ".tld" of two or more letters.
  for (size_t p = d + domain; p-- > d + 1;) {
    if (s[p] != '.')
      continue;
    size_t tld = run_of(s, p + 1, is_alpha);
    if (tld >= 2)
      return p + 1 + tld - i;
  }
  return 0;
}

bool url_char(char c) { return !is_space(c) && c != ')' && c != '>' && c != ']'; }

size_t match_url(const std::string& s, size_t i) {
  if (s[i] != 'h')
    return 0;
  size_t scheme = starts_with_at(s, i, "https://") ? 8
                  : starts_with_at(s, i, "http://") ? 7 : 0;
  if (scheme == 0)
    return 0;
  size_t rest = run_of(s, i + scheme, url_char);
  return rest ? scheme + rest : 0;
}

// \d[\d,]*(\.\d+)?
size_t number_at(const std::string& s, size_t i) {
  if (i >= s.size() || !is_digit(s[i]))
    return 0;
  size_t j = i + 1;
  while (j < s.size() && (is_digit(s[j]) || s[j] == ','))
    ++j;
  while (j > i + 1 && s[j - 1] == ',')
    --j;  // a trailing comma is punctuation, not part of the number
  if (j + 1 < s.size() && s[j] == '.' && is_digit(s[j + 1]))
    j += 1 + run_of(s, j + 1, is_digit);
  return j - i;
}

// Optional single space, then one of `words` not followed by a letter.
size_t suffix_at(const std::string& s, size_t i,
                 std::initializer_list<const char*> words) {
  for (size_t gap : {size_t{0}, size_t{1}}) {
    if (gap == 1 && (i >= s.size() || !is_space(s[i])))
      continue;
    for (const char* w : words) {
      size_t at = i + gap;
      size_t n = std::strlen(w);
      if (starts_with_at(s, at, w) && (at + n >= s.size() || !is_alpha(s[at + n])))
        return gap + n;
    }
  }
  return 0;
}

size_t match_money(const std::string& s, size_t i) {
  unsigned char first = static_cast<unsigned char>(s[i]);
  if (first != '$' && first != 0xE2 && first != 0xC2 && !is_digit(s[i]))
    return 0;
  size_t symbol = s[i] == '$'                      ? 1
                  : starts_with_at(s, i, "\xE2\x82\xAC") ? 3  // €
                  : starts_with_at(s, i, "\xC2\xA3")     ? 2  // £
                                                         : 0;
  if (symbol) {
    size_t j = i + symbol;
    if (j < s.size() && is_space(s[j]))
      ++j;
    size_t num = number_at(s, j);
    if (num == 0)
      return 0;
    j += num;
    j += suffix_at(s, j, {"million", "billion", "thousand", "M", "B", "K"});
    return j - i;
  }
  if (i > 0 && (is_digit(s[i - 1]) || s[i - 1] == ',' || s[i - 1] == '.'))
    return 0;
  size_t num = number_at(s, i);
  if (num == 0)
    return 0;
  size_t unit = suffix_at(s, i + num, {"USD", "EUR", "GBP", "dollars", "euros"});
  return unit ? num + unit : 0;
}

size_t match_percent(const std::string& s, size_t i) {
  if (!is_digit(s[i]) || (i > 0 && (is_digit(s[i - 1]) || s[i - 1] == '.')))
    return 0;
  size_t j = i + run_of(s, i, is_digit);
  if (j + 1 < s.size() && s[j] == '.' && is_digit(s[j + 1]))
    j += 1 + run_of(s, j + 1, is_digit);
  if (j < s.size() && is_space(s[j]) && j + 1 < s.size() && s[j + 1] == '%')
    ++j;
  return j < s.size() && s[j] == '%' ? j + 1 - i : 0;
}

size_t match_date(const std::string& s, size_t i) {
  static constexpr std::array<const char*, 12> months = {
      "January", "February", "March",     "April",   "May",      "June",
      "July",    "August",   "September", "October", "November", "December"};
  bool word_start = i == 0 || !is_alnum(s[i - 1]);
  if (!word_start || !(is_digit(s[i]) || s[i] == 'J' || s[i] == 'F' ||
                       s[i] == 'M' || s[i] == 'A' || s[i] == 'S' ||
                       s[i] == 'O' || s[i] == 'N' || s[i] == 'D'))
    return 0;
  for (const char* m : months) {
    if (m[0] != s[i] || !starts_with_at(s, i, m))
      continue;
    size_t j = i + std::strlen(m);
    size_t gap = run_of(s, j, is_space);
    size_t day = run_of(s, j + gap, is_digit);
    if (gap == 0 || day == 0 || day > 2)
      return 0;
    j += gap + day;
    // Optional ", 2024".
    if (j < s.size() && s[j] == ',') {
      size_t k = j + 1 + run_of(s, j + 1, is_space);
      if (run_of(s, k, is_digit) == 4)
        j = k + 4;
    }
    return j - i;
  }
  size_t digits = run_of(s, i, is_digit);
  if (digits == 4 && i + 10 <= s.size() && s[i + 4] == '-' &&
      run_of(s, i + 5, is_digit) == 2 && s[i + 7] == '-' &&
      run_of(s, i + 8, is_digit) == 2)
    return 10;
  bool century = starts_with_at(s, i, "19") || starts_with_at(s, i, "20");
  bool word_end = i + 4 >= s.size() || !is_alnum(s[i + 4]);
  return digits == 4 && century && word_end ? 4 : 0;
}

bool has_digit(const std::string& s) {
  for (char c : s)
    if (is_digit(c))
      return true;
  return false;
}

// One type's pass, left to right, blanking each match.
template <class Match>
void pass(std::string& text, Match match, const char* type,
          std::vector<pattern_entity>& found) {
  for (size_t i = 0; i < text.size();) {
    size_t n = match(text, i);
    if (n == 0) {
      ++i;
      continue;
    }
    found.push_back({text.substr(i, n), type});
    text.replace(i, n, n, ' ');
    i += n;
  }
}

}  // namespace

std::vector<pattern_entity> extract_pattern_entities(std::string& text) {
  std::vector<pattern_entity> found;
  // A pass runs only when the text can hold a match (every e-mail has an
  // '@', every money amount and date a digit, ...): most texts skip most
  // passes. Lambdas rather than function pointers: each matcher inlined.
  using text_ref = const std::string&;
  if (text.find('@') != std::string::npos)
    pass(text, [](text_ref s, size_t i) { return match_email(s, i); },
         "EMAIL", found);
  if (text.find("http") != std::string::npos)
    pass(text, [](text_ref s, size_t i) { return match_url(s, i); }, "URL",
         found);
  if (has_digit(text))
    pass(text, [](text_ref s, size_t i) { return match_money(s, i); },
         "MONEY", found);
  if (text.find('%') != std::string::npos)
    pass(text, [](text_ref s, size_t i) { return match_percent(s, i); },
         "PERCENT", found);
  if (has_digit(text))
    pass(text, [](text_ref s, size_t i) { return match_date(s, i); },
         "DATE", found);
  return found;
}

}  // namespace bgagent
