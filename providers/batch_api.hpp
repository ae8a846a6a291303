// A blocking client of an OpenAI-compatible Files + Batches API (DESIGN.md
// section 13): upload a JSONL request file, create, look at, list and
// cancel batches, download their output and error files.
//
// Contract:
// - Every call blocks its thread (libcurl's easy interface) for at most
//   the configured timeout: call it from a detached actor only.
// - A failure throws batch_api_error: one line naming the call and the
//   address (never the API key), with the HTTP status (0: no answer) and
//   whether trying again may help (no answer, 408, 409, 429, 5xx).
// - create() sends `metadata.bgagent_batch` = the local batch id, so a
//   batch created just before a crash is found again with find().
// - Downloads are capped (max_download_bytes); an upload is sent as
//   multipart/form-data with purpose=batch.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace bgagent {

struct batch_api_settings {
  std::string base_url; // .../v1, without the trailing slash
  std::string api_key;  // may be empty for a local server
  double timeout_seconds = 300;
  double connect_timeout_seconds = 10;
  size_t max_download_bytes = size_t{2} << 30;
  std::string completion_window = "24h";
};

class batch_api_error : public std::runtime_error {
public:
  batch_api_error(const std::string& what, int status, bool retryable)
    : std::runtime_error(what), status_(status), retryable_(retryable) {}
  int status() const { return status_; }
  bool retryable() const { return retryable_; }

private:
  int status_;
  bool retryable_;
};

// The provider's view of one batch (its JSON object, the fields bgagent
// reads).
struct remote_batch {
  std::string id;
  std::string status; // validating | in_progress | finalizing | completed |
                      // failed | expired | cancelling | cancelled
  std::string input_file_id;
  std::string output_file_id; // "" until there is one
  std::string error_file_id;
  std::string local_id;       // metadata.bgagent_batch
  std::string error;          // errors.data[0].message, if any
  uint64_t total = 0;         // request_counts
  uint64_t completed = 0;
  uint64_t failed = 0;
  int64_t created_at = 0;     // unix seconds
};

// Reads a batch object; throws batch_api_error (not retryable) when it is
// not one.
remote_batch parse_remote_batch(const nlohmann::json& j);

class batch_api {
public:
  explicit batch_api(batch_api_settings s);

  // POST /files (purpose=batch): the new file's id.
  std::string upload(const std::string& filename, const std::string& jsonl);
  // POST /batches for /v1/chat/completions.
  remote_batch create(const std::string& input_file_id,
                      const std::string& local_id);
  remote_batch get(const std::string& batch_id);
  remote_batch cancel(const std::string& batch_id);
  // The newest batch whose metadata names `local_id`, among the newest
  // `look_at` batches (GET /batches, paged); false when none.
  bool find(const std::string& local_id, remote_batch& out,
            size_t look_at = 1000);
  // GET /files/{id}/content.
  std::string content(const std::string& file_id);

private:
  struct reply {
    int status = 0;
    std::string body;
  };
  reply send(const std::string& what, const std::string& method,
             const std::string& path, const std::string& body,
             const std::string& content_type, const std::string& file_name,
             const std::string& file_data);
  nlohmann::json json_of(const std::string& what, const reply& r);
  batch_api_settings s_;
};

} // namespace bgagent
