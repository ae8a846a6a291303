#include "providers/batch_lines.hpp"

#include <nlohmann/json.hpp>

namespace bgagent {

std::string batch_request_line(const std::string& custom_id,
                               const std::string& body) {
  std::string line = "{\"custom_id\":";
  line += nlohmann::json(custom_id).dump();
  line += ",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":";
  line += body;
  line += '}';
  return line;
}

bool parse_batch_result_line(const std::string& line, batch_result_line& out,
                             std::string& why) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = "not a JSON object";
    return false;
  }
  auto id = j.find("custom_id");
  if (id == j.end() || !id->is_string() || id->get<std::string>().empty()) {
    why = "no custom_id";
    return false;
  }
  out = batch_result_line{};
  out.custom_id = id->get<std::string>();
  // Only fields of the expected types are read: a server that sends null
  // or a number where a string belongs says nothing there.
  auto text_of = [](const nlohmann::json& o, const char* key) {
    auto i = o.find(key);
    return i != o.end() && i->is_string() ? i->get<std::string>()
                                          : std::string();
  };
  auto r = j.find("response");
  if (r != j.end() && r->is_object()) {
    auto sc = r->find("status_code");
    if (sc != r->end() && sc->is_number_integer()) {
      auto code = sc->get<int64_t>();
      if (code < 100 || code > 599) {
        why = "response.status_code " + std::to_string(code) +
              " is not an HTTP status";
        return false;
      }
      out.status = static_cast<int>(code);
    }
    auto b = r->find("body");
    if (b != r->end() && !b->is_null())
      out.body = b->is_string() ? b->get<std::string>() : b->dump();
  }
  auto e = j.find("error");
  if (e != j.end() && e->is_object()) {
    out.code = text_of(*e, "code");
    auto msg = text_of(*e, "message");
    out.error = out.code.empty() ? msg : out.code + ": " + msg;
    if (out.error.empty())
      out.error = "the provider reported an error without a message";
  } else if (e != j.end() && e->is_string()) {
    out.error = e->get<std::string>();
  }
  if (out.status == 0 && out.error.empty()) {
    why = "neither a response nor an error";
    return false;
  }
  return true;
}

batch_state next_state(batch_state current, const std::string& status) {
  batch_state to = current;
  if (status == "validating")
    to = batch_state::submitted;
  else if (status == "in_progress")
    to = batch_state::in_progress;
  else if (status == "finalizing")
    to = batch_state::finalizing;
  else if (status == "cancelling")
    to = batch_state::cancelling;
  else if (status == "completed")
    to = batch_state::completed;
  else if (status == "failed")
    to = batch_state::failed;
  else if (status == "expired")
    to = batch_state::expired;
  else if (status == "cancelled")
    to = batch_state::cancelled;
  // A cancel asked for stays visible until the provider has stopped.
  if (current == batch_state::cancelling && !is_ended(to))
    return current;
  return to > current ? to : current;
}

} // namespace bgagent
