// A local OpenAI-compatible Files + Batches server for tests (aimock has no
// batch endpoints that behave over time): POST /v1/files, POST /v1/batches,
// GET /v1/batches[/{id}], POST /v1/batches/{id}/cancel,
// GET /v1/files/{id}/content, on 127.0.0.1 (cpp-httplib); and POST
// /v1/chat/completions, answering {"summary": "live"} to any request.
//
// Contract:
// - A batch moves validating -> in_progress -> finalizing -> completed,
//   one step per GET of it after `polls_per_step` GETs; its answers are
//   computed when it completes: for each request line, a chat completion
//   whose content is {"summary": "S:<custom_id>"} with usage 10 + 5
//   tokens (answer_for() says what), unless the script says otherwise.
// - Scripted behaviour (set before the run, read under a lock):
//   `fail_ids` end in the error file (status 500), `bad_ids` answer 200
//   with content that fails the summarize schema; `expire_after` > 0: the
//   batch expires with only that many requests done; `fail_batch`: the
//   batch fails at validation; `max_requests`: more lines fail the batch
//   (OpenAI's 50,000); `hang`: it stays in_progress until cancelled;
//   `refuse_uploads`: uploads answered with that status (401 ...);
//   `forget_batches`: the provider no longer knows any batch (404).
// - Every call is recorded (calls()), and `hook` runs with its name
//   ("upload", "create", "get", "list", "content", "cancel") BEFORE the
//   answer is written: a test kills the client there to crash it at that
//   exact step (the server has done the work; the client never hears).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
}

namespace bgagent::testing {

class batch_server {
public:
  batch_server();
  ~batch_server();

  std::string base_url() const; // http://127.0.0.1:PORT/v1
  // The variables of a run against this server: provider openai at it,
  // model gpt-test at $1 / $2 per million tokens live (so $0.50 / $1.00 in
  // a batch: each answer, 10 + 5 tokens, costs $0.00001), batches looked
  // at every 0.05 s. The mode is the caller's (BG_AGENT_MODE).
  std::map<std::string, std::string> env() const;

  // -- the script ------------------------------------------------------
  int polls_per_step = 1;
  std::set<std::string> fail_ids;
  std::set<std::string> bad_ids;
  size_t expire_after = 0;
  bool fail_batch = false;
  size_t max_requests = 50000;
  bool hang = false;
  int refuse_uploads = 0;     // > 0: every upload gets this HTTP status
  bool forget_batches = false; // GET /v1/batches/{id} answers 404
  std::function<void(const std::string& what)> hook;

  // -- what happened -----------------------------------------------------
  struct call {
    std::string method;
    std::string path;
  };
  std::vector<call> calls() const;
  size_t count(const std::string& method, const std::string& prefix) const;
  // Batches created, in order: id, metadata, its request lines' custom_ids.
  struct created {
    std::string id;
    std::string local_id;
    std::vector<std::string> custom_ids;
    nlohmann::json requests; // the bodies, by custom_id
  };
  std::vector<created> batches() const;
  size_t files_uploaded() const;
  static std::string answer_for(const std::string& custom_id);

  std::mutex mtx; // guards the script while a run is going

private:
  struct batch;
  void complete(batch& b, const std::string& final_status);
  nlohmann::json view(const batch& b) const;
  std::string add_file(std::string content);

  std::unique_ptr<httplib::Server> srv_;
  std::thread thread_;
  int port_ = 0;
  std::vector<call> calls_;
  std::map<std::string, std::string> files_;
  std::vector<std::unique_ptr<batch>> batches_;
  size_t uploads_ = 0;
  int next_id_ = 1;
};

} // namespace bgagent::testing
