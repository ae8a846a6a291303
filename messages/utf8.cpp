#include "messages/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace bgagent {

namespace {

// The unit at `i`: true and its length for a well-formed sequence, false and
// the length of its maximal ill-formed subpart (>= 1) otherwise (Unicode
// table 3-7 of well-formed byte sequences).
bool scan(std::string_view s, size_t i, size_t& len) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  uint8_t c = b(0);
  if (c < 0x80) {
    len = 1;
    return true;
  }
  size_t n = 0;
  uint8_t lo = 0x80, hi = 0xBF; // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0; // no overlong forms
    else if (c == 0xED)
      hi = 0x9F; // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90; // no overlong forms
    else if (c == 0xF4)
      hi = 0x8F; // nothing above U+10FFFF
  } else {
    len = 1; // a stray continuation byte, C0, C1 or F5..FF
    return false;
  }
  size_t k = 1;
  for (; k < n && i + k < s.size(); ++k) {
    uint8_t x = b(k);
    bool ok = k == 1 ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
    if (!ok)
      break;
  }
  len = k;
  return k == n;
}

} // namespace

bool valid_utf8(std::string_view s) {
  size_t i = 0, len = 0;
  const size_t n = s.size();
  while (i < n) {
    // Most text is ASCII: skip it eight bytes at a time (a byte below 0x80
    // is always a whole character).
    while (n - i >= 8) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ULL)
        break;
      i += 8;
    }
    if (i == n)
      break;
    if (!scan(s, i, len))
      return false;
    i += len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  if (valid_utf8(s))
    return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t len = 0;
  for (size_t i = 0; i < s.size(); i += len) {
    if (scan(s, i, len))
      out.append(s.data() + i, len);
    else
      out += "\xEF\xBF\xBD"; // U+FFFD REPLACEMENT CHARACTER
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0, len = 0;
  for (size_t i = 0; i < s.size(); i += len, ++n)
    scan(s, i, len);
  return n;
}

std::string utf8_prefix(std::string_view s, size_t max_chars) {
  size_t i = 0, len = 0;
  for (size_t n = 0; n < max_chars && i < s.size(); ++n, i += len)
    scan(s, i, len);
  return std::string(s.substr(0, i));
}

std::string utf8_clip(std::string_view s, size_t max_chars,
                      std::string_view ellipsis) {
  if (utf8_length(s) <= max_chars)
    return std::string(s);
  auto e = utf8_length(ellipsis);
  if (e >= max_chars)
    return utf8_prefix(s, max_chars);
  return utf8_prefix(s, max_chars - e) + std::string(ellipsis);
}

std::string utf8_prefix_bytes(std::string_view s, size_t max_bytes) {
  size_t i = 0, len = 0;
  while (i < s.size()) {
    scan(s, i, len);
    if (i + len > max_bytes)
      break;
    i += len;
  }
  return std::string(s.substr(0, i));
}

bool has_control_chars(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7F)
      return true;
    if (c == 0xC2 && i + 1 < s.size()) { // U+0080..U+009F
      auto d = static_cast<uint8_t>(s[i + 1]);
      if (d >= 0x80 && d <= 0x9F)
        return true;
    }
    if (c == 0xE2 && i + 2 < s.size()) {
      auto d = static_cast<uint8_t>(s[i + 1]), e = static_cast<uint8_t>(s[i + 2]);
      if (d == 0x80 && e >= 0xAA && e <= 0xAE) // U+202A..U+202E
        return true;
      if (d == 0x81 && e >= 0xA6 && e <= 0xA9) // U+2066..U+2069
        return true;
    }
  }
  return false;
}

std::string one_line(std::string_view s) {
  auto in = sanitize_utf8(s);
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<uint8_t>(in[i]);
    if (c < 0x20 || c == 0x7F) {
      out += ' ';
      continue;
    }
    // C1 controls (U+0080..U+009F): two bytes, one space.
    if (c == 0xC2 && i + 1 < in.size() &&
        static_cast<uint8_t>(in[i + 1]) <= 0x9F) {
      out += ' ';
      i += 1;
      continue;
    }
    // Bidirectional overrides and isolates: three bytes, one space.
    if (c == 0xE2 && i + 2 < in.size()) {
      auto d = static_cast<uint8_t>(in[i + 1]);
      auto e = static_cast<uint8_t>(in[i + 2]);
      if ((d == 0x80 && e >= 0xAA && e <= 0xAE) ||
          (d == 0x81 && e >= 0xA6 && e <= 0xA9)) {
        out += ' ';
        i += 2;
        continue;
      }
    }
    out += static_cast<char>(c);
  }
  return out;
}

} // namespace bgagent
