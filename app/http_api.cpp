#include "app/http_api.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/head_handles.hpp"
#include "app/api_token.hpp"
#include "app/dashboard_assets.hpp"
#include "app/errors.hpp"
#include "app/metrics_server.hpp"
#include "app/task_file_submission.hpp"
#include "messages/atoms.hpp"
#include "messages/budget.hpp"
#include "messages/events.hpp"
#include "messages/json_codec.hpp"
#include "messages/run.hpp"
#include "messages/task.hpp"
#include "messages/utf8.hpp"
#include "persistence/store.hpp"
#include "types/type_registry.hpp"

namespace bgagent {

namespace {

using nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr auto actor_timeout = std::chrono::seconds(10);
constexpr int64_t default_page = 100;
constexpr int64_t max_page = 1000;
constexpr uint32_t max_events = 10000;
// A page of records stops past this many bytes (a result may be large).
constexpr size_t max_page_bytes = 8u << 20;
// Bodies of the control paths are small JSON objects.
constexpr size_t max_control_body = 64u << 10;
constexpr const char* json_type = "application/json";
constexpr const char* lines_type = "application/x-ndjson";

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_error(Response& res, int status, const std::string& message,
                json extra = json::object()) {
  extra["message"] = utf8_clip(sanitize_utf8(message), 2000);
  res.status = status;
  res.set_content(dump(json{{"error", extra}}) + "\n", json_type);
}

void send_json(Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j) + "\n", json_type);
}

// A request to one of the engine's actors from this (non-actor) thread.
template <class T, class Handle, class... Ts>
T ask_within(caf::scoped_actor& self, const Handle& dest, Ts&&... xs) {
  T result{};
  caf::error err;
  self->request(dest, actor_timeout, std::forward<Ts>(xs)...)
    .receive([&](T& x) { result = std::move(x); },
             [&](caf::error& e) { err = std::move(e); });
  if (err)
    throw std::runtime_error("the engine did not answer: " + to_string(err));
  return result;
}

// "request body line 3: ..." -> 3 (or element N of a JSON array); 0 when
// the message names no line.
int64_t line_of(const std::string& message) {
  static const std::regex at("^request body (?:line|element) ([0-9]+): ");
  std::smatch m;
  if (std::regex_search(message, m, at))
    return std::stoll(m[1].str());
  return 0;
}

// A body that is one JSON object (pretty-printed over several lines, say)
// is read as a JSON array of that one object (not parsed and written again
// here: the reader checks its depth first); an array or JSON Lines are read
// as they are.
std::string as_task_lines(const std::string& body) {
  auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || body[first] != '{')
    return body;
  if (!json::accept(body))
    return body; // JSON Lines, or malformed: the reader says which line
  return "[" + body + "]";
}

bool known_state(const std::string& s) {
  for (auto* st : {task_state::pending, task_state::running,
                   task_state::retry_wait, task_state::completed,
                   task_state::quarantined, task_state::cancelled})
    if (s == st)
      return true;
  return false;
}

json budget_json(const budget_snapshot& b) {
  return json{{"tokens_used", b.tokens_used},
              {"tokens_limit", b.tokens_limit},
              {"tokens_reserved", b.tokens_reserved},
              {"cost_used", b.cost_used},
              {"cost_limit", b.cost_limit},
              {"cost_reserved", b.cost_reserved}};
}

// Audit lines of refused requests: at most `per_window` a minute, the
// others counted into the next line written (a scanner cannot fill the
// audit log).
class refusal_log {
public:
  // The detail to audit, or "" when this one is only counted.
  std::string admit(const std::string& detail) {
    std::lock_guard<std::mutex> lock(m_);
    auto now = std::chrono::steady_clock::now();
    if (now - window_ >= std::chrono::minutes(1)) {
      window_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= per_window) {
      ++suppressed_;
      return {};
    }
    ++in_window_;
    auto out = detail;
    if (suppressed_ > 0)
      out += " (and " + std::to_string(suppressed_) +
             " more refused, not audited one by one)";
    suppressed_ = 0;
    return out;
  }

private:
  static constexpr int per_window = 10;
  std::mutex m_;
  std::chrono::steady_clock::time_point window_{};
  int in_window_ = 0;
  uint64_t suppressed_ = 0;
};

} // namespace

struct http_api::impl {
  caf::actor_system& sys;
  head_handles h;
  type_registry types;
  http_api_settings s;
  httplib::Server server;
  std::thread thread;
  refusal_log refusals;

  impl(caf::actor_system& sys, const head_handles& h, const type_registry& t,
       http_api_settings settings)
    : sys(sys), h(h), types(t), s(std::move(settings)) {}

  std::string client(const Request& req) const {
    return req.remote_addr + ":" + std::to_string(req.remote_port);
  }

  void audit(audit_event ev) { caf::anon_send(h.auditor, std::move(ev)); }

  void audit_command(const Request& req, const std::string& what) {
    audit(make_event("admin_command", {}, -1,
                     what + " by the HTTP API from " + client(req)));
  }

  // A read-only connection of this thread's own, for one request.
  std::unique_ptr<store> reader() const {
    return std::make_unique<store>(s.db_path, store::open_mode::read_only);
  }

  bool authorized(const Request& req, Response& res) {
    const std::string prefix = "Bearer ";
    auto given = req.get_header_value("Authorization");
    if (given.size() > prefix.size() && given.compare(0, prefix.size(),
                                                      prefix) == 0 &&
        token_matches(given.substr(prefix.size()), s.token))
      return true;
    auto detail = refusals.admit(
      req.method + " " + utf8_clip(sanitize_utf8(req.path), 200) + " from " +
      client(req) + ": " +
      (given.empty() ? "no bearer token" : "wrong bearer token"));
    if (!detail.empty())
      audit(make_event("api_refused", {}, -1, detail));
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401,
               "missing or wrong bearer token (Authorization: Bearer "
               "TOKEN; the token is BG_AGENT_API_TOKEN or the one in "
               "<db>.api-token)");
    return false;
  }

  // The body read through httplib's content reader: any Content-Type
  // (curl -d sends x-www-form-urlencoded, which httplib's own reading
  // would cap at 8 KB), at most max_body bytes.
  void submit_streamed(const Request& req, Response& res,
                       const httplib::ContentReader& read) {
    auto too_big = [&] {
      send_error(res, 413, "request body over BG_AGENT_HTTP_MAX_BODY (" +
                             std::to_string(s.max_body) + " bytes)");
    };
    // Said up front: refused unread.
    auto length = req.get_header_value("Content-Length");
    if (!length.empty() &&
        std::strtoull(length.c_str(), nullptr, 10) > s.max_body)
      return too_big();
    // Chunked: read (and dropped) past the limit, up to httplib's own cap.
    std::string body;
    bool over = false;
    bool whole = read([&](const char* data, size_t n) {
      if (body.size() + n > s.max_body) {
        over = true;
        return false; // stop reading: the connection closes after this
      }
      body.append(data, n);
      return true;
    });
    if (over)
      return too_big();
    if (!whole) {
      return send_error(res, 400, "request body: incomplete (the connection "
                                  "ended or timed out before its end); "
                                  "nothing was stored");
    }
    submit(req, body, res);
  }

  void submit(const Request& req, const std::string& body, Response& res) {
    auto on_conflict = req.has_param("on_conflict")
                         ? req.get_param_value("on_conflict")
                         : std::string("error");
    if (on_conflict != "error" && on_conflict != "skip" &&
        on_conflict != "replace")
      return send_error(res, 400, "on_conflict: not one of error, skip, "
                                  "replace",
                        json{{"field", "on_conflict"}});
    if (body.find_first_not_of(" \t\r\n") == std::string::npos)
      return send_error(res, 400, "request body: it holds no tasks");
    std::vector<std::string> ids;
    submit_counts counts;
    try {
      task_file_submission sub(
        std::make_unique<std::istringstream>(as_task_lines(body)),
        "request body", "HTTP API from " + client(req), s.max_input_bytes,
        types);
      caf::scoped_actor self{sys};
      counts = sub.store_all(self, h.store.main(), on_conflict, &ids);
    } catch (const submission_conflict& e) {
      json extra;
      if (auto line = line_of(e.what()))
        extra["line"] = line;
      return send_error(res, 409, e.what(), extra);
    } catch (const usage_error& e) {
      json extra;
      if (auto line = line_of(e.what()))
        extra["line"] = line;
      return send_error(res, 400, e.what(), extra);
    }
    caf::anon_send(h.supervisor, poll_atom::value);
    send_json(res, 202,
              json{{"submitted", counts.inserted + counts.replaced},
                   {"duplicates", counts.duplicates + counts.conflicts_skipped},
                   {"ids", ids}});
  }

  // The record of task `id`, if there is one (an id that is not UTF-8 or
  // holds a '/' names none: ids in paths are whole path segments).
  std::optional<task_record> find(store& db, const std::string& id) {
    if (!valid_utf8(id) || id.empty())
      return std::nullopt;
    auto rows = db.results("", "", {id}, 1);
    if (rows.empty())
      return std::nullopt;
    return std::move(rows.front());
  }

  void one_task(const Request& req, Response& res) {
    auto id = req.matches[1].str();
    auto db = reader();
    auto r = find(*db, id);
    if (!r)
      return send_error(res, 404, "no task with id \"" + id + "\"");
    send_json(res, 200, to_json(*r));
  }

  void list_tasks(const Request& req, Response& res) {
    auto state = req.get_param_value("state");
    if (!state.empty() && !known_state(state))
      return send_error(res, 400,
                        "state: \"" + state + "\" is not one of pending, "
                        "running, retry_wait, completed, quarantined, "
                        "cancelled",
                        json{{"field", "state"}});
    int64_t limit = default_page;
    if (req.has_param("limit")) {
      auto text = req.get_param_value("limit");
      char* end = nullptr;
      auto v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || v < 1 || v > max_page)
        return send_error(res, 400,
                          "limit: \"" + text + "\" is not a whole number "
                          "from 1 to " + std::to_string(max_page),
                          json{{"field", "limit"}});
      limit = v;
    }
    auto order = req.has_param("order") ? req.get_param_value("order")
                                        : std::string("oldest");
    if (order != "oldest" && order != "newest")
      return send_error(res, 400, "order: not one of oldest, newest",
                        json{{"field", "order"}});
    auto db = reader();
    int64_t after_seq = 0;
    if (req.has_param("after")) {
      auto after = req.get_param_value("after");
      auto r = find(*db, after);
      if (!r)
        return send_error(res, 400, "after: no task with id \"" + after +
                                      "\"",
                          json{{"field", "after"}});
      after_seq = r->seq;
    }
    auto rows =
      db->results(state, "", {}, limit, after_seq, order == "newest");
    std::string out;
    size_t n = 0;
    for (; n < rows.size() && out.size() < max_page_bytes; ++n)
      out += dump(to_json(rows[n])) + "\n";
    // A full page (by count or by bytes) names where the next one starts,
    // percent-encoded as a query value.
    if (n > 0 && (n < rows.size() || static_cast<int64_t>(n) == limit))
      res.set_header("X-Next-After",
                     httplib::detail::encode_query_param(rows[n - 1].id));
    res.set_content(out, lines_type);
  }

  void task_events(const Request& req, Response& res) {
    auto id = req.matches[1].str();
    auto db = reader();
    if (!find(*db, id))
      return send_error(res, 404, "no task with id \"" + id + "\"");
    std::string out;
    for (auto& e : db->events_of(id, max_events))
      out += audit_line(e.event, e.seq, e.ts) + "\n";
    res.set_content(out, lines_type);
  }

  void status(const Request&, Response& res) {
    auto db = reader();
    send_json(res, 200, to_json(db->status()));
  }

  void control(const Request& req, Response& res) {
    auto what = req.matches[1].str();
    caf::scoped_actor self{sys};
    bool ok = false;
    if (what == "pause")
      ok = ask_within<bool>(self, h.supervisor, pause_atom::value);
    else if (what == "resume")
      ok = ask_within<bool>(self, h.supervisor, resume_atom::value);
    else {
      // Batches being collected end too (they stay open in the store).
      if (h.batches)
        caf::anon_send(h.batches, drain_atom::value, int32_t{0});
      ok = ask_within<bool>(self, h.supervisor, drain_atom::value);
    }
    audit_command(req, what);
    send_json(res, 200, json{{"command", what}, {"ok", ok}});
  }

  void set_budget(const Request& req, Response& res) {
    auto j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return send_error(res, 400, "request body: not a JSON object with "
                                  "\"tokens\" and/or \"cost\"");
    budget_change c;
    for (auto& [key, value] : j.items()) {
      if (key == "tokens") {
        if (!value.is_number_unsigned() ||
            value.get<uint64_t>() > 1000000000000ULL)
          return send_error(res, 400, "tokens: not a whole number from 0 "
                                      "to 1000000000000",
                            json{{"field", "tokens"}});
        c.set_tokens = true;
        c.tokens = value.get<uint64_t>();
      } else if (key == "cost") {
        if (!value.is_number() || !std::isfinite(value.get<double>()) ||
            value.get<double>() < 0 || value.get<double>() > 1e9)
          return send_error(res, 400, "cost: not an amount of US dollars "
                                      "from 0 to 1000000000",
                            json{{"field", "cost"}});
        c.set_cost = true;
        c.cost = value.get<double>();
      } else {
        return send_error(res, 400,
                          "\"" + utf8_clip(sanitize_utf8(key), 64) +
                            "\": unknown field (known: tokens, cost)",
                          json{{"field", utf8_clip(sanitize_utf8(key), 64)}});
      }
    }
    if (!c.set_tokens && !c.set_cost)
      return send_error(res, 400, "request body: give \"tokens\" and/or "
                                  "\"cost\"");
    caf::scoped_actor self{sys};
    auto b = ask_within<budget_snapshot>(self, h.budget_keeper,
                                         set_budget_atom::value, c);
    std::string what = "set-budget";
    if (c.set_tokens)
      what += " --tokens " + std::to_string(c.tokens);
    if (c.set_cost) {
      char buf[48];
      std::snprintf(buf, sizeof(buf), " --cost %.6f", c.cost);
      what += buf;
    }
    audit_command(req, what);
    // Denied tasks wait for room: look again now.
    caf::anon_send(h.supervisor, poll_atom::value);
    send_json(res, 200, json{{"budget", budget_json(b)}});
  }

  void task_command(const Request& req, Response& res) {
    auto id = req.matches[1].str();
    auto what = req.matches[2].str();
    std::optional<task_record> r;
    {
      auto db = reader();
      r = find(*db, id);
    }
    if (!r)
      return send_error(res, 404, "no task with id \"" + id + "\"");
    caf::scoped_actor self{sys};
    std::vector<std::string> done;
    auto by = "by the HTTP API from " + client(req);
    if (what == "requeue") {
      if (r->state != task_state::quarantined &&
          r->state != task_state::completed)
        return send_error(res, 409,
                          "task \"" + id + "\" is " + r->state +
                            ": only quarantined or completed tasks are "
                            "requeued");
      done = ask_within<std::vector<std::string>>(
        self, h.store.main(), requeue_atom::value,
        std::vector<std::string>{id}, false, r->state,
        make_event("task_requeued", {}, -1, by));
      if (!done.empty())
        caf::anon_send(h.supervisor, poll_atom::value);
    } else {
      done = ask_within<std::vector<std::string>>(
        self, h.supervisor, cancel_atom::value, std::vector<std::string>{id},
        make_event("task_cancelled", {}, -1, by));
    }
    audit_command(req, what + " " + utf8_clip(sanitize_utf8(id), 200));
    if (done.empty())
      return send_error(res, 409,
                        "task \"" + id + "\" was not " +
                          (what == "requeue" ? "requeued" : "cancelled") +
                          " (it is " + r->state + " or changed meanwhile)");
    send_json(res, 200, json{{what == "requeue" ? "requeued" : "cancelled",
                              done}});
  }

  // GET /v1/batches: the store's provider batches, newest first, as
  // `batches --json` prints them.
  void list_batches(const Request&, Response& res) {
    std::string out;
    for (auto& b : reader()->batches(false))
      out += to_json(b).dump() + "\n";
    res.set_content(out, lines_type);
  }

  // POST /v1/batches/{id}/cancel: asked of the run's batch_runner, which
  // asks the provider.
  void cancel_batch(const Request& req, Response& res) {
    auto id = req.matches[1].str();
    audit_command(req, "cancel-batch " + utf8_clip(sanitize_utf8(id), 200));
    if (!h.batches)
      return send_error(res, 409, "no provider batch is open in this "
                                  "process: batch \"" +
                                    utf8_clip(sanitize_utf8(id), 200) +
                                    "\" cannot be cancelled here");
    caf::scoped_actor self{sys};
    auto why = ask_within<std::string>(self, h.batches, cancel_atom::value,
                                       id);
    if (!why.empty())
      return send_error(res, 409, why);
    send_json(res, 200, json{{"cancelling", id}});
  }

  void metrics(const Request&, Response& res) {
    std::string text;
    auto counts = reader()->status(); // not on the engine's store thread
    if (!scrape_metrics(sys, h.monitor, counts, text))
      return send_error(res, 503, text);
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
  }

  // Runs `serve()` (the token was checked before routing, in before_body);
  // an engine or store that fails is 503 or 500 with one line, never a
  // crash of the server thread.
  template <class F>
  static void answer(Response& res, F serve) {
    try {
      serve();
    } catch (const store_error& e) {
      send_error(res, 503, e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, e.what());
    }
  }

  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const Request& req, Response& res) {
      answer(res, [&] { (this->*f)(req, res); });
    };
  }

  // The dashboard's static files: no data, no token; nothing but this
  // origin may be loaded or fetched, and no other site may frame them.
  static void asset(Response& res, std::string_view body, const char* type) {
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; "
                   "connect-src 'self'; img-src 'self'; form-action 'none'; "
                   "base-uri 'none'; frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(body), type);
  }

  // Before httplib reads a body: the token for every path but the
  // dashboard's files, and bodies only as the paths take them (no
  // Content-Encoding; the control paths' small bodies by length only).
  httplib::Server::HandlerResponse before_body(const Request& req,
                                               Response& res) {
    using hr = httplib::Server::HandlerResponse;
    bool asset = req.method == "GET" &&
                 (req.path == "/" || req.path == "/dashboard.js" ||
                  req.path == "/dashboard.css" || req.path == "/favicon.ico");
    if (asset)
      return hr::Unhandled;
    if (!authorized(req, res)) {
      return hr::Handled;
    }
    if (req.has_header("Content-Encoding")) {
      send_error(res, 415, "Content-Encoding: bodies are taken as they are, "
                           "not compressed");
      return hr::Handled;
    }
    bool has_body = req.has_header("Content-Length") ||
                    req.has_header("Transfer-Encoding");
    if (has_body && !(req.method == "POST" && req.path == "/v1/tasks")) {
      auto length = req.get_header_value("Content-Length");
      if (length.empty() ||
          std::strtoull(length.c_str(), nullptr, 10) > max_control_body) {
          send_error(res, 413, "request body: at most " +
                               std::to_string(max_control_body) +
                               " bytes, with a Content-Length, on this path");
        return hr::Handled;
      }
    }
    return hr::Unhandled;
  }

  void routes() {
    server.set_pre_routing_handler(
      [this](const Request& req, Response& res) {
        return before_body(req, res);
      });
    server.Get("/", [](const Request&, Response& res) {
      asset(res, dashboard_html(), "text/html; charset=utf-8");
    });
    server.Get("/dashboard.js", [](const Request&, Response& res) {
      asset(res, dashboard_js(), "text/javascript; charset=utf-8");
    });
    server.Get("/dashboard.css", [](const Request&, Response& res) {
      asset(res, dashboard_css(), "text/css; charset=utf-8");
    });
    // Browsers ask for it on their own: no icon, and no 401 to audit.
    server.Get("/favicon.ico",
               [](const Request&, Response& res) { res.status = 204; });
    server.Post("/v1/tasks", [this](const Request& req, Response& res,
                                    const httplib::ContentReader& read) {
      answer(res, [&] { submit_streamed(req, res, read); });
    });
    server.Get("/v1/tasks", guarded(&impl::list_tasks));
    server.Get(R"(/v1/tasks/([^/]+))", guarded(&impl::one_task));
    server.Get(R"(/v1/tasks/([^/]+)/events)", guarded(&impl::task_events));
    server.Post(R"(/v1/tasks/([^/]+)/(requeue|cancel))",
                guarded(&impl::task_command));
    server.Get("/v1/batches", guarded(&impl::list_batches));
    server.Post(R"(/v1/batches/([^/]+)/cancel)",
                guarded(&impl::cancel_batch));
    server.Get("/v1/status", guarded(&impl::status));
    server.Post(R"(/v1/control/(pause|resume|drain))",
                guarded(&impl::control));
    server.Post("/v1/control/budget", guarded(&impl::set_budget));
    server.Get("/metrics", guarded(&impl::metrics));
    // What no route answered (404, or 405 for another method) and what
    // httplib refused itself (413 over the body limit, 400) as JSON. A
    // request without the token never gets here with 404: before_body
    // answered it 401, so the API's paths are not mapped for strangers.
    server.set_error_handler([this](const Request& req, Response& res) {
      if (!res.body.empty())
        return;
      if (res.status == 413)
        return send_error(res, 413,
                          "request body over BG_AGENT_HTTP_MAX_BODY (" +
                            std::to_string(s.max_body) + " bytes)");
      if (res.status == 404 || res.status == 405)
        return send_error(res, 404, "no such path: " + req.method + " " +
                                      utf8_clip(sanitize_utf8(req.path),
                                                200));
      if (res.status == 400 && req.method == "POST" &&
          !req.has_header("Content-Length") &&
          req.get_header_value("Transfer-Encoding") != "chunked")
        return send_error(res, 411, "a POST needs a body or Content-Length: "
                                    "0 (curl: -d '')");
      send_error(res, res.status, "bad request");
    });
    server.set_exception_handler(
      [](const Request&, Response& res, std::exception_ptr) {
        send_error(res, 500, "internal error");
      });
  }
};

http_api::http_api(caf::actor_system& sys, const head_handles& handles,
                   const type_registry& types, http_api_settings settings)
  : d_(std::make_unique<impl>(sys, handles, types, std::move(settings))) {
  auto& d = *d_;
  auto& srv = d.server;
  srv.new_task_queue = [threads = d.s.threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  // Past this httplib stops reading a chunked body itself (400); below it
  // submit_streamed answers 413.
  srv.set_payload_max_length(d.s.max_body * 2 + (64 << 10));
  srv.set_read_timeout(10);
  srv.set_write_timeout(10);
  // One request per connection: a refused request's unread body can never
  // be taken for the next request on a connection a proxy shares (httplib
  // 0.11 closes only when the client asks), and an idle connection never
  // holds one of the few threads.
  srv.set_keep_alive_max_count(1);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
  // two processes share the port silently.
  srv.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  d.routes();
  if (!srv.bind_to_port(d.s.host.c_str(), d.s.port))
    throw usage_error("--http " + d.s.host + ":" + std::to_string(d.s.port) +
                      ": cannot listen there (in use or not a local "
                      "address)");
  d.thread = std::thread([&srv] { srv.listen_after_bind(); });
}

http_api::~http_api() {
  d_->server.stop();
  if (d_->thread.joinable())
    d_->thread.join();
}

} // namespace bgagent
