#include "tests/support/batch_server.hpp"

#include <chrono>
#include <ctime>
#include <sstream>
#include <thread>
#include <stdexcept>

#include <httplib.h>

namespace bgagent::testing {

using nlohmann::json;

struct batch_server::batch {
  std::string id;
  std::string local_id;
  std::string input_file_id;
  std::string status = "validating";
  int polls = 0;
  std::vector<std::string> custom_ids;
  json bodies = json::object();
  int64_t created_at = 0;
  std::string output_file_id;
  std::string error_file_id;
  size_t completed = 0;
  size_t failed = 0;
  std::string error;
  // The script as it was when the batch was created.
  bool will_fail = false;
  size_t expire_after = 0;
  std::set<std::string> fail_ids, bad_ids;
};

namespace {

json completion(const std::string& model, const std::string& content) {
  return json{{"id", "chatcmpl-batch"},
              {"object", "chat.completion"},
              {"model", model},
              {"choices",
               json::array({json{{"index", 0},
                                 {"message",
                                  {{"role", "assistant"},
                                   {"content", content}}},
                                 {"finish_reason", "stop"}}})},
              {"usage",
               {{"prompt_tokens", 10},
                {"completion_tokens", 5},
                {"total_tokens", 15}}}};
}

} // namespace

std::string batch_server::answer_for(const std::string& custom_id) {
  return json{{"summary", "S:" + custom_id}}.dump();
}

batch_server::batch_server() : srv_(std::make_unique<httplib::Server>()) {
  auto& s = *srv_;
  auto record = [this](const httplib::Request& req) {
    calls_.push_back(call{req.method, req.path});
  };
  auto run_hook = [this](const char* what) {
    std::function<void(const std::string&)> h;
    {
      std::lock_guard<std::mutex> lock(mtx);
      h = hook;
    }
    if (h)
      h(what);
  };
  s.Post("/v1/files", [=](const httplib::Request& req,
                          httplib::Response& res) {
    std::string id;
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
      if (refuse_uploads > 0) {
        res.status = refuse_uploads;
        res.set_content(R"({"error":{"message":"Incorrect API key provided"}})",
                        "application/json");
        return;
      }
      if (!req.has_file("file") || req.get_file_value("purpose").content !=
                                     "batch") {
        res.status = 400;
        res.set_content(R"({"error":{"message":"file and purpose=batch required"}})",
                        "application/json");
        return;
      }
      id = add_file(req.get_file_value("file").content);
      ++uploads_;
    }
    run_hook("upload");
    res.set_content(json{{"id", id}, {"object", "file"}, {"purpose", "batch"}}
                      .dump(),
                    "application/json");
  });
  s.Post("/v1/batches", [=](const httplib::Request& req,
                            httplib::Response& res) {
    json view_of;
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
      auto j = json::parse(req.body, nullptr, false);
      auto file = j.is_object() ? j.value("input_file_id", "") : "";
      if (!files_.count(file) || j.value("endpoint", "") !=
                                   "/v1/chat/completions" ||
          j.value("completion_window", "") != "24h") {
        res.status = 400;
        res.set_content(R"({"error":{"message":"bad batch request"}})",
                        "application/json");
        return;
      }
      auto b = std::make_unique<batch>();
      b->id = "batch_" + std::to_string(next_id_++);
      b->input_file_id = file;
      if (j.contains("metadata") && j["metadata"].is_object())
        b->local_id = j["metadata"].value("bgagent_batch", "");
      b->created_at = static_cast<int64_t>(std::time(nullptr));
      b->will_fail = fail_batch;
      b->expire_after = expire_after;
      b->fail_ids = fail_ids;
      b->bad_ids = bad_ids;
      std::istringstream in(files_[file]);
      for (std::string line; std::getline(in, line);) {
        if (line.empty())
          continue;
        auto r = json::parse(line, nullptr, false);
        auto cid = r.is_object() ? r.value("custom_id", "") : "";
        b->custom_ids.push_back(cid);
        b->bodies[cid] = r.is_object() ? r["body"] : json();
      }
      view_of = view(*b);
      batches_.push_back(std::move(b));
    }
    run_hook("create");
    res.set_content(view_of.dump(), "application/json");
  });
  s.Get("/v1/batches", [=](const httplib::Request& req,
                           httplib::Response& res) {
    json out;
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
      size_t limit = 20;
      if (req.has_param("limit"))
        limit = std::stoul(req.get_param_value("limit"));
      auto after = req.get_param_value("after");
      json data = json::array();
      bool started = after.empty();
      bool more = false;
      for (auto i = batches_.rbegin(); i != batches_.rend(); ++i) {
        if (!started) {
          started = (*i)->id == after;
          continue;
        }
        if (data.size() == limit) {
          more = true;
          break;
        }
        data.push_back(view(**i));
      }
      out = json{{"object", "list"}, {"data", data}, {"has_more", more}};
    }
    run_hook("list");
    res.set_content(out.dump(), "application/json");
  });
  s.Get(R"(/v1/batches/([^/]+))", [=](const httplib::Request& req,
                                      httplib::Response& res) {
    json out;
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
      batch* b = nullptr;
      for (auto& x : batches_)
        if (x->id == req.matches[1])
          b = x.get();
      if (!b || forget_batches) {
        res.status = 404;
        res.set_content(R"({"error":{"message":"no such batch"}})",
                        "application/json");
        return;
      }
      if (++b->polls >= polls_per_step) {
        b->polls = 0;
        if (b->status == "validating") {
          if (b->will_fail || b->custom_ids.size() > max_requests) {
            b->status = "failed";
            b->error = b->will_fail ? "the input file is invalid"
                                  : "too many requests: " +
                                      std::to_string(b->custom_ids.size()) +
                                      " > " + std::to_string(max_requests);
          } else {
            b->status = "in_progress";
          }
        } else if (b->status == "in_progress" && !hang) {
          if (b->expire_after > 0)
            complete(*b, "expired");
          else
            b->status = "finalizing";
        } else if (b->status == "finalizing") {
          complete(*b, "completed");
        } else if (b->status == "cancelling") {
          complete(*b, "cancelled");
        }
      }
      out = view(*b);
    }
    run_hook("get");
    res.set_content(out.dump(), "application/json");
  });
  s.Post(R"(/v1/batches/([^/]+)/cancel)", [=](const httplib::Request& req,
                                              httplib::Response& res) {
    json out;
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
      for (auto& x : batches_)
        if (x->id == req.matches[1] &&
            (x->status == "validating" || x->status == "in_progress" ||
             x->status == "finalizing"))
          x->status = "cancelling";
      for (auto& x : batches_)
        if (x->id == req.matches[1])
          out = view(*x);
    }
    run_hook("cancel");
    if (out.is_null()) {
      res.status = 404;
      return;
    }
    res.set_content(out.dump(), "application/json");
  });
  s.Get(R"(/v1/files/([^/]+)/content)", [=](const httplib::Request& req,
                                            httplib::Response& res) {
    std::string body;
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
      auto i = files_.find(req.matches[1]);
      if (i != files_.end()) {
        found = true;
        body = i->second;
      }
    }
    run_hook("content");
    if (!found) {
      res.status = 404;
      return;
    }
    res.set_content(body, "application/jsonl");
  });
  // The live path, for tasks retried live (BG_AGENT_BATCH_RETRY=live).
  s.Post("/v1/chat/completions", [=](const httplib::Request& req,
                                     httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mtx);
      record(req);
    }
    auto j = json::parse(req.body, nullptr, false);
    auto model = j.is_object() ? j.value("model", "") : "";
    res.set_content(completion(model, json{{"summary", "live"}}.dump()).dump(),
                    "application/json");
  });
  port_ = s.bind_to_any_port("127.0.0.1");
  if (port_ <= 0)
    throw std::runtime_error("batch_server: cannot listen on 127.0.0.1");
  thread_ = std::thread([this] { srv_->listen_after_bind(); });
  while (!srv_->is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

batch_server::~batch_server() {
  srv_->stop();
  if (thread_.joinable())
    thread_.join();
}

std::string batch_server::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::map<std::string, std::string> batch_server::env() const {
  return {{"LLM_PROVIDER", "openai"},
          {"LLM_BASE_URL", base_url()},
          {"MODEL", "gpt-test"},
          {"BG_AGENT_PRICE_PROMPT", "1"},
          {"BG_AGENT_PRICE_COMPLETION", "2"},
          {"BG_AGENT_BATCH_POLL", "0.05"}};
}

std::string batch_server::add_file(std::string content) {
  auto id = "file-" + std::to_string(next_id_++);
  files_[id] = std::move(content);
  return id;
}

void batch_server::complete(batch& b, const std::string& final_status) {
  size_t done = final_status == "completed" ? b.custom_ids.size()
                : final_status == "expired" ? b.expire_after
                                            : 0;
  std::string out, err;
  for (size_t i = 0; i < b.custom_ids.size(); ++i) {
    auto& cid = b.custom_ids[i];
    auto model = b.bodies[cid].is_object() ? b.bodies[cid].value("model", "")
                                           : "";
    auto req_id = "batch_req_" + std::to_string(i);
    if (i >= done) {
      // Expired: the rest are listed as batch_expired; cancelled: in no
      // file at all.
      if (final_status == "expired") {
        err += json{{"id", req_id},
                    {"custom_id", cid},
                    {"response", nullptr},
                    {"error",
                     {{"code", "batch_expired"},
                      {"message", "This request could not be executed "
                                  "before the completion window expired."}}}}
                 .dump() +
               "\n";
        ++b.failed;
      }
      continue;
    }
    if (b.fail_ids.count(cid)) {
      err += json{{"id", req_id},
                  {"custom_id", cid},
                  {"response",
                   {{"status_code", 500},
                    {"request_id", req_id},
                    {"body", {{"error", {{"message", "server error"}}}}}}},
                  {"error", nullptr}}
               .dump() +
             "\n";
      ++b.failed;
      continue;
    }
    auto content = b.bad_ids.count(cid) ? std::string("no JSON here")
                                      : answer_for(cid);
    out += json{{"id", req_id},
                {"custom_id", cid},
                {"response",
                 {{"status_code", 200},
                  {"request_id", req_id},
                  {"body", completion(model, content)}}},
                {"error", nullptr}}
             .dump() +
           "\n";
    ++b.completed;
  }
  if (!out.empty())
    b.output_file_id = add_file(std::move(out));
  if (!err.empty())
    b.error_file_id = add_file(std::move(err));
  b.status = final_status;
}

json batch_server::view(const batch& b) const {
  json j{{"id", b.id},
         {"object", "batch"},
         {"endpoint", "/v1/chat/completions"},
         {"input_file_id", b.input_file_id},
         {"completion_window", "24h"},
         {"status", b.status},
         {"output_file_id",
          b.output_file_id.empty() ? json(nullptr) : json(b.output_file_id)},
         {"error_file_id",
          b.error_file_id.empty() ? json(nullptr) : json(b.error_file_id)},
         {"created_at", b.created_at},
         {"request_counts",
          {{"total", b.custom_ids.size()},
           {"completed", b.completed},
           {"failed", b.failed}}},
         {"metadata", {{"bgagent_batch", b.local_id}}}};
  if (!b.error.empty())
    j["errors"] = {{"object", "list"},
                   {"data", json::array({{{"code", "invalid"},
                                          {"message", b.error}}})}};
  return j;
}

std::vector<batch_server::call> batch_server::calls() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mtx));
  return calls_;
}

size_t batch_server::count(const std::string& method,
                           const std::string& prefix) const {
  size_t n = 0;
  for (auto& c : calls())
    if (c.method == method && c.path.rfind(prefix, 0) == 0)
      ++n;
  return n;
}

std::vector<batch_server::created> batch_server::batches() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mtx));
  std::vector<created> out;
  for (auto& b : batches_)
    out.push_back(created{b->id, b->local_id, b->custom_ids, b->bodies});
  return out;
}

size_t batch_server::files_uploaded() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mtx));
  return uploads_;
}

} // namespace bgagent::testing
