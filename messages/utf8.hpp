// UTF-8 text: validate it, repair it, and cut it by characters.
//
// Contract:
// - valid_utf8(s): true when `s` is well-formed UTF-8 (RFC 3629: no
//   overlong forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF,
//   no truncated sequence).
// - sanitize_utf8(s): `s` with every ill-formed part replaced by U+FFFD
//   (one per maximal ill-formed subpart, as Unicode recommends); valid text
//   comes back unchanged. Use it on text that came from outside (provider
//   bodies, stored rows) before it is printed or put in JSON.
// - utf8_length(s): the number of characters (code points; each ill-formed
//   byte counts as one).
// - utf8_prefix(s, n): the longest prefix of at most `n` characters; never
//   ends inside a sequence.
// - utf8_clip(s, n, ellipsis): `s` itself when it has at most `n`
//   characters, else a prefix followed by `ellipsis` that is `n` characters
//   long in all (just a prefix of `n` when the ellipsis does not fit).
// - utf8_prefix_bytes(s, max_bytes): the longest prefix of at most
//   `max_bytes` bytes that does not end inside a sequence.
// - has_control_chars(s): true when `s` holds a character that moves or
//   hides text on a terminal: C0 controls (below U+0020), DEL, C1 controls
//   (U+0080..U+009F) or a bidirectional override/isolate (U+202A..U+202E,
//   U+2066..U+2069). For names a user gives (ids, tags).
// - one_line(s): sanitize_utf8(s) with every character has_control_chars
//   names made one space: text from outside, safe to print as one line of
//   a terminal.
// Every cut is at a code-point boundary; a combining mark or an emoji
// sequence joined by U+200D may still be split between its code points
// (the result stays valid UTF-8). No function here throws except on
// allocation failure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace bgagent {

bool valid_utf8(std::string_view s);
std::string sanitize_utf8(std::string_view s);
size_t utf8_length(std::string_view s);
std::string utf8_prefix(std::string_view s, size_t max_chars);
std::string utf8_clip(std::string_view s, size_t max_chars,
                      std::string_view ellipsis = "...");
std::string utf8_prefix_bytes(std::string_view s, size_t max_bytes);
bool has_control_chars(std::string_view s);
std::string one_line(std::string_view s);

} // namespace bgagent
