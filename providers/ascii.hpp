// Character classes of the "C" locale (bgagent never sets another), by
// table: the offline provider asks them once or more per byte of every
// task's text, where <cctype>'s calls were a visible share of its profile.
//
// Contract: each function answers exactly what the <cctype> function of
// the same name answers in the "C" locale for the byte `c` (bytes from 0x80
// up belong to no class).
#pragma once

#include <array>
#include <cstdint>

namespace bgagent::ascii {

namespace detail {

enum : uint8_t {
  digit = 1,
  upper = 2,
  lower = 4,
  space = 8,
  punct = 16,
};

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t k = 0;
    if (c >= '0' && c <= '9')
      k |= digit;
    if (c >= 'A' && c <= 'Z')
      k |= upper;
    if (c >= 'a' && c <= 'z')
      k |= lower;
    if (c == ' ' || (c >= '\t' && c <= '\r'))
      k |= space;
    if (c > ' ' && c < 0x7f && !(k & (digit | upper | lower)))
      k |= punct;
    t[static_cast<size_t>(c)] = k;
  }
  return t;
}

inline constexpr std::array<uint8_t, 256> classes = make_classes();

constexpr bool is(char c, uint8_t k) {
  return classes[static_cast<unsigned char>(c)] & k;
}

} // namespace detail

constexpr bool is_digit(char c) { return detail::is(c, detail::digit); }
constexpr bool is_upper(char c) { return detail::is(c, detail::upper); }
constexpr bool is_alpha(char c) {
  return detail::is(c, detail::upper | detail::lower);
}
constexpr bool is_alnum(char c) {
  return detail::is(c, detail::digit | detail::upper | detail::lower);
}
constexpr bool is_space(char c) { return detail::is(c, detail::space); }
constexpr bool is_punct(char c) { return detail::is(c, detail::punct); }

} // namespace bgagent::ascii
