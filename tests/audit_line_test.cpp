// audit_line() writes its JSON by hand, for speed: it must write exactly
// what nlohmann::json writes for the same fields (ts, seq, event first),
// for any text, ill-formed UTF-8 and control characters included.
#include <catch2/catch.hpp>

#include <random>

#include <nlohmann/json.hpp>

#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "messages/utf8.hpp"

using namespace bgagent;

namespace {

// The line as nlohmann::ordered_json writes it: the reference.
std::string reference_line(const audit_event& x, uint64_t seq,
                           const std::string& ts) {
  nlohmann::ordered_json j;
  j["ts"] = ts;
  j["seq"] = seq;
  j["event"] = sanitize_utf8(x.event);
  if (!x.task_id.empty())
    j["task_id"] = sanitize_utf8(x.task_id);
  if (x.attempt >= 0)
    j["attempt"] = x.attempt;
  if (!x.node.empty())
    j["node"] = sanitize_utf8(x.node);
  if (!x.detail.empty())
    j["detail"] = sanitize_utf8(x.detail);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> parts{
    "a", "Z", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f",
    std::string(1, '\0'), "\x01", "\x1f", "\x7f", "é", "€", "😀",
    "\xc3", "\xff", "\xed\xa0\x80", "\xe2\x80\xae", "{", "}", ":", ","};
  std::string s;
  int n = static_cast<int>(rng() % 12);
  for (int i = 0; i < n; ++i)
    s += parts[rng() % parts.size()];
  return s;
}

} // namespace

TEST_CASE("audit_line writes exactly what nlohmann::json writes, for any "
          "text",
          "[unit][audit]") {
  std::mt19937 rng(7);
  for (int k = 0; k < 20000; ++k) {
    audit_event ev;
    ev.event = k % 7 == 0 ? std::string{} : random_text(rng);
    ev.task_id = random_text(rng);
    ev.attempt = static_cast<int32_t>(rng() % 5) - 1;
    ev.node = random_text(rng);
    ev.detail = random_text(rng);
    uint64_t seq = rng() % 2 ? k : UINT64_MAX - k;
    std::string ts = "2026-11-27T03:44:00.123Z";
    auto line = audit_line(ev, seq, ts);
    INFO(line);
    REQUIRE(line == reference_line(ev, seq, ts));
    CHECK(nlohmann::json::parse(line)["seq"].get<uint64_t>() == seq);
  }
}
