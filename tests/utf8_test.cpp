// Unit tests of the UTF-8 helpers: validation, repair, cutting by
// characters.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/json_codec.hpp"
#include "messages/utf8.hpp"

using namespace bgagent;

namespace {

const std::string e_acute = "\xC3\xA9";          // é, 2 bytes
const std::string cuo = "\xE9\x94\x99";          // 错, 3 bytes
const std::string wu = "\xE8\xAF\xAF";           // 误, 3 bytes
const std::string grin = "\xF0\x9F\x98\x80";     // 😀 U+1F600, 4 bytes
const std::string fffd = "\xEF\xBF\xBD";         // U+FFFD

} // namespace

TEST_CASE("valid_utf8 accepts well-formed text and refuses the rest",
          "[utf8]") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ASCII"));
  CHECK(valid_utf8(e_acute + cuo + wu + grin));
  CHECK(valid_utf8("\xF4\x8F\xBF\xBF"));              // U+10FFFF
  CHECK(valid_utf8("\xED\x9F\xBF"));                  // U+D7FF
  CHECK(valid_utf8(std::string("a\0b", 3)));          // NUL is a character
  CHECK_FALSE(valid_utf8("\x80"));                    // stray continuation
  CHECK_FALSE(valid_utf8("\xC3"));                    // truncated
  CHECK_FALSE(valid_utf8(grin.substr(0, 3)));         // truncated 4-byte
  CHECK_FALSE(valid_utf8("\xC0\xAF"));                // overlong '/'
  CHECK_FALSE(valid_utf8("\xE0\x80\xAF"));            // overlong
  CHECK_FALSE(valid_utf8("\xF0\x80\x80\xAF"));        // overlong
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));            // surrogate U+D800
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));        // above U+10FFFF
  CHECK_FALSE(valid_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(valid_utf8("\xFF"));
  CHECK_FALSE(valid_utf8("ok " + cuo.substr(0, 2) + " ok"));
}

// Text built from pieces of known validity: ASCII runs of every length
// (valid_utf8 skips ASCII eight bytes at a time), characters of 2-4 bytes,
// and at most one ill-formed piece, placed before, inside or after a run.
TEST_CASE("valid_utf8 finds an ill-formed piece wherever it falls",
          "[utf8]") {
  const std::vector<std::string> good = {e_acute, cuo, wu, grin, "\x7F",
                                         std::string(1, '\0')};
  const std::vector<std::string> bad = {
    "\x80", "\xC0\xAF", "\xED\xA0\x80", "\xF5", "\xFF", "\xE2\x82",
    "\xF4\x90\x80\x80", grin.substr(0, 3), "\xC3"};
  std::mt19937 rng(12);
  for (int round = 0; round < 4000; ++round) {
    std::string text;
    bool ill_formed = false;
    int pieces = static_cast<int>(rng() % 6);
    int bad_at = round % 2 ? static_cast<int>(rng() % (pieces + 1)) : -1;
    for (int p = 0; p <= pieces; ++p) {
      if (p == bad_at) {
        text += bad[rng() % bad.size()];
        ill_formed = true;
      }
      text += std::string(rng() % 19, "abcdefgh"[rng() % 8]);
      if (rng() % 2)
        text += good[rng() % good.size()];
    }
    // A truncated sequence at the end stays ill-formed; one followed by
    // ASCII too. Continuation bytes never follow a bad piece here.
    INFO("round " << round);
    CHECK(valid_utf8(text) == !ill_formed);
  }
}

// append_json_string writes what nlohmann::json writes for well-formed
// text, and the same for the text repaired when it is not.
TEST_CASE("append_json_string escapes as nlohmann::json does", "[utf8]") {
  std::mt19937 rng(7);
  const std::string alphabet = std::string("ab \"\\/\b\f\n\r\t\x01\x1F\x7F") +
                               std::string(1, '\0');
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    for (int n = static_cast<int>(rng() % 40); n > 0; --n) {
      auto k = rng() % (alphabet.size() + 3);
      text += k < alphabet.size() ? std::string(1, alphabet[k])
              : k == alphabet.size() ? cuo
              : k == alphabet.size() + 1 ? grin
                                         : std::string("\xC3");
    }
    std::string out = "prefix:";
    append_json_string(out, text);
    INFO("round " << round);
    CHECK(out == "prefix:" + nlohmann::json(sanitize_utf8(text)).dump());
  }
}

TEST_CASE("sanitize_utf8 replaces each ill-formed part with U+FFFD",
          "[utf8]") {
  auto good = "x" + e_acute + cuo + grin + "y";
  CHECK(sanitize_utf8(good) == good);
  CHECK(sanitize_utf8("a\x80z") == "a" + fffd + "z");
  CHECK(sanitize_utf8("\xFF\xFE") == fffd + fffd);
  // A truncated sequence is one maximal subpart: one U+FFFD.
  CHECK(sanitize_utf8("a" + grin.substr(0, 3) + "z") == "a" + fffd + "z");
  CHECK(sanitize_utf8(cuo.substr(0, 2)) == fffd);
  // Overlong and surrogate forms: their lead cannot start them, so each byte.
  CHECK(sanitize_utf8("\xC0\xAF") == fffd + fffd);
  CHECK(sanitize_utf8("\xED\xA0\x80") == fffd + fffd + fffd);
  // A truncated sequence followed by a valid character keeps the character.
  CHECK(sanitize_utf8(cuo.substr(0, 2) + wu) == fffd + wu);
  for (auto s : {std::string("\xC3"), std::string("\xE0\xA0"),
                 std::string("x\xF0\x9F\x98"), std::string("\x80\x80\x80")})
    CHECK(valid_utf8(sanitize_utf8(s)));
}

TEST_CASE("text is cut by characters, never inside a sequence", "[utf8]") {
  auto s = cuo + wu + grin + "ab"; // 5 characters, 14 bytes
  CHECK(utf8_length(s) == 5);
  CHECK(utf8_length("") == 0);
  CHECK(utf8_length("\xFF" "a") == 2); // an ill-formed byte counts as one
  CHECK(utf8_prefix(s, 0).empty());
  CHECK(utf8_prefix(s, 1) == cuo);
  CHECK(utf8_prefix(s, 3) == cuo + wu + grin);
  CHECK(utf8_prefix(s, 99) == s);

  CHECK(utf8_clip(s, 5) == s);
  CHECK(utf8_clip(s, 4) == cuo + "...");
  CHECK(utf8_clip(s, 4, "\xE2\x80\xA6") == cuo + wu + grin + "\xE2\x80\xA6");
  CHECK(utf8_clip(s, 2) == cuo + wu); // no room for the ellipsis
  CHECK(utf8_clip("abcdef", 5) == "ab...");

  // By bytes: never ends inside the emoji.
  CHECK(utf8_prefix_bytes(s, 6) == cuo + wu);
  for (size_t n = 7; n < 10; ++n)
    CHECK(utf8_prefix_bytes(s, n) == cuo + wu);
  CHECK(utf8_prefix_bytes(s, 10) == cuo + wu + grin);
  CHECK(utf8_prefix_bytes(s, 0).empty());
  CHECK(utf8_prefix_bytes(s, 100) == s);

  // Every cut of a long mixed text is valid.
  std::string mixed;
  for (int i = 0; i < 50; ++i)
    mixed += "a" + e_acute + cuo + grin;
  for (size_t n = 0; n <= utf8_length(mixed); ++n) {
    INFO(n);
    REQUIRE(valid_utf8(utf8_prefix(mixed, n)));
    REQUIRE(valid_utf8(utf8_clip(mixed, n)));
    REQUIRE(utf8_length(utf8_clip(mixed, n)) <= n);
  }
  for (size_t n = 0; n <= mixed.size(); ++n)
    REQUIRE(valid_utf8(utf8_prefix_bytes(mixed, n)));
}

TEST_CASE("one_line makes every control and bidirectional override one space "
          "and keeps the rest",
          "[unit][utf8]") {
  CHECK(one_line("a\nb\rc\x1b[2Jd\x7f") == "a b c [2Jd ");
  CHECK(one_line("x\xc2\x9b" "31my") == "x 31my");       // C1 CSI
  CHECK(one_line("\xe2\x80\xae" "evil\xe2\x81\xa9" "ok") == " evil ok"); // RLO, PDI
  CHECK(one_line("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");
  CHECK(one_line("bad \xff byte") == "bad \xef\xbf\xbd byte");
}
