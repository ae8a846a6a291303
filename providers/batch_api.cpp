#include "providers/batch_api.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "providers/http_outcome.hpp"

namespace bgagent {

namespace {

struct sink {
  std::string data;
  size_t cap = 0;
  bool over = false;
};

size_t to_sink(char* p, size_t size, size_t n, void* user) {
  auto& s = *static_cast<sink*>(user);
  size_t len = size * n;
  if (s.data.size() + len > s.cap) {
    s.over = true;
    return 0; // libcurl stops with CURLE_WRITE_ERROR
  }
  s.data.append(p, len);
  return len;
}

bool retryable_status(int status) {
  return status == 0 || status == 408 || status == 409 || status == 429 ||
         status >= 500;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto i = j.find(key);
  return i != j.end() && i->is_string() ? i->get<std::string>() : "";
}

uint64_t count(const nlohmann::json& j, const char* key) {
  auto i = j.find(key);
  return i != j.end() && i->is_number_unsigned() ? i->get<uint64_t>() : 0;
}

} // namespace

// Ids the provider gives go into URL paths: letters, digits, '-', '_'
// and '.' only (OpenAI's are "batch_...", "file-...").
static bool safe_id(const std::string& id) {
  if (id.empty() || id.size() > 200 || id == "." || id == "..")
    return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.')
      return false;
  return true;
}

remote_batch parse_remote_batch(const nlohmann::json& j) {
  if (!j.is_object() || str(j, "id").empty() || str(j, "status").empty())
    throw batch_api_error("the provider's answer is not a batch object (no "
                          "id or status)",
                          0, true);
  for (auto key : {"id", "output_file_id", "error_file_id"})
    if (!str(j, key).empty() && !safe_id(str(j, key)))
      throw batch_api_error(std::string("the provider's batch has an ") +
                              key + " that is not a plain id",
                            0, true);
  remote_batch b;
  b.id = str(j, "id");
  b.status = str(j, "status");
  b.input_file_id = str(j, "input_file_id");
  b.output_file_id = str(j, "output_file_id");
  b.error_file_id = str(j, "error_file_id");
  if (auto m = j.find("metadata"); m != j.end() && m->is_object())
    b.local_id = str(*m, "bgagent_batch");
  if (auto c = j.find("request_counts"); c != j.end() && c->is_object()) {
    b.total = count(*c, "total");
    b.completed = count(*c, "completed");
    b.failed = count(*c, "failed");
  }
  if (auto e = j.find("errors"); e != j.end() && e->is_object()) {
    auto d = e->find("data");
    if (d != e->end() && d->is_array() && !d->empty() &&
        (*d)[0].is_object())
      b.error = str((*d)[0], "message");
  }
  if (auto t = j.find("created_at"); t != j.end() && t->is_number_integer())
    b.created_at = t->get<int64_t>();
  return b;
}

batch_api::batch_api(batch_api_settings s) : s_(std::move(s)) {
  while (!s_.base_url.empty() && s_.base_url.back() == '/')
    s_.base_url.pop_back();
}

batch_api::reply batch_api::send(const std::string& what,
                                 const std::string& method,
                                 const std::string& path,
                                 const std::string& body,
                                 const std::string& content_type,
                                 const std::string& file_name,
                                 const std::string& file_data) {
  auto url = s_.base_url + path;
  CURL* e = curl_easy_init();
  if (!e)
    throw batch_api_error(what + " " + url + ": libcurl cannot start", 0,
                          true);
  sink out;
  out.cap = s_.max_download_bytes;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  if (!s_.api_key.empty())
    headers = curl_slist_append(
      headers, ("Authorization: Bearer " + s_.api_key).c_str());
  if (!content_type.empty())
    headers = curl_slist_append(headers,
                                ("Content-Type: " + content_type).c_str());
  curl_mime* mime = nullptr;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (file_name.empty() && method != "GET-FILE") {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(s_.timeout_seconds * 1000));
  } else {
    // A file of hundreds of MB may take longer than a call: what ends it
    // is a transfer that stalls (under 1 KB/s for the timeout, at least
    // a minute), not its length.
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(std::max(60.0, s_.timeout_seconds)));
  }
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(s_.connect_timeout_seconds * 1000));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "bgagent/1.0");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, to_sink);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  if (!file_name.empty()) {
    mime = curl_mime_init(e);
    auto* part = curl_mime_addpart(mime);
    curl_mime_name(part, "purpose");
    curl_mime_data(part, "batch", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    curl_mime_filename(part, file_name.c_str());
    curl_mime_type(part, "application/jsonl");
    // Read from the caller's string as it is sent: a 200 MB file is not
    // copied again.
    struct reader {
      const std::string* data;
      size_t at;
    };
    auto* r = new reader{&file_data, 0};
    curl_mime_data_cb(
      part, static_cast<curl_off_t>(file_data.size()),
      [](char* buf, size_t size, size_t n, void* arg) -> size_t {
        auto& rd = *static_cast<reader*>(arg);
        size_t len = std::min(size * n, rd.data->size() - rd.at);
        std::memcpy(buf, rd.data->data() + rd.at, len);
        rd.at += len;
        return len;
      },
      [](void* arg, curl_off_t offset, int origin) -> int {
        auto& rd = *static_cast<reader*>(arg);
        if (origin != SEEK_SET || offset < 0 ||
            static_cast<size_t>(offset) > rd.data->size())
          return CURL_SEEKFUNC_CANTSEEK;
        rd.at = static_cast<size_t>(offset);
        return CURL_SEEKFUNC_OK;
      },
      [](void* arg) { delete static_cast<reader*>(arg); }, r);
    curl_easy_setopt(e, CURLOPT_MIMEPOST, mime);
  } else if (method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  auto rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (mime)
    curl_mime_free(mime);
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  if (out.over)
    throw batch_api_error(what + " " + url + ": the answer is larger than " +
                            std::to_string(out.cap) + " bytes",
                          0, false);
  if (rc != CURLE_OK)
    throw batch_api_error(
      what + " " + url + ": " +
        redact(errbuf[0] ? errbuf : curl_easy_strerror(rc), s_.api_key),
      0, true);
  reply r{static_cast<int>(status), std::move(out.data)};
  if (r.status < 200 || r.status > 299) {
    auto msg = provider_message(r.body);
    throw batch_api_error(what + " " + url + ": HTTP " +
                            std::to_string(r.status) +
                            (msg.empty() ? "" : ": " + redact(msg, s_.api_key)),
                          r.status, retryable_status(r.status));
  }
  return r;
}

nlohmann::json batch_api::json_of(const std::string& what, const reply& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw batch_api_error(what + ": the answer is not a JSON object", 0,
                          true);
  return j;
}

std::string batch_api::upload(const std::string& filename,
                              const std::string& jsonl) {
  auto r = send("uploading the batch file", "POST", "/files", {}, {},
                filename, jsonl);
  auto j = json_of("uploading the batch file", r);
  auto id = str(j, "id");
  if (!safe_id(id))
    throw batch_api_error("uploading the batch file: the answer has no "
                          "plain file id",
                          0, true);
  return id;
}

remote_batch batch_api::create(const std::string& input_file_id,
                               const std::string& local_id) {
  nlohmann::json body{{"input_file_id", input_file_id},
                      {"endpoint", "/v1/chat/completions"},
                      {"completion_window", s_.completion_window},
                      {"metadata", {{"bgagent_batch", local_id}}}};
  auto r = send("creating the batch", "POST", "/batches", body.dump(),
                "application/json", {}, {});
  return parse_remote_batch(json_of("creating the batch", r));
}

remote_batch batch_api::get(const std::string& batch_id) {
  auto r = send("looking at batch " + batch_id, "GET", "/batches/" + batch_id,
                {}, {}, {}, {});
  return parse_remote_batch(json_of("looking at batch " + batch_id, r));
}

remote_batch batch_api::cancel(const std::string& batch_id) {
  auto r = send("cancelling batch " + batch_id, "POST",
                "/batches/" + batch_id + "/cancel", "{}", "application/json",
                {}, {});
  return parse_remote_batch(json_of("cancelling batch " + batch_id, r));
}

bool batch_api::find(const std::string& local_id, remote_batch& out,
                     size_t look_at) {
  std::string after;
  size_t seen = 0;
  while (seen < look_at) {
    auto path = std::string("/batches?limit=100") +
                (after.empty() ? "" : "&after=" + after);
    auto r = send("listing batches", "GET", path, {}, {}, {}, {});
    auto j = json_of("listing batches", r);
    auto data = j.find("data");
    if (data == j.end() || !data->is_array() || data->empty())
      return false;
    for (auto& b : *data) {
      ++seen;
      if (!b.is_object())
        continue;
      auto m = b.find("metadata");
      if (m != b.end() && m->is_object() &&
          str(*m, "bgagent_batch") == local_id) {
        out = parse_remote_batch(b);
        return true;
      }
      after = str(b, "id");
      if (!safe_id(after))
        return false;
    }
    auto more = j.find("has_more");
    if (more == j.end() || !more->is_boolean() || !more->get<bool>() ||
        after.empty())
      return false;
  }
  return false;
}

std::string batch_api::content(const std::string& file_id) {
  return send("downloading file " + file_id, "GET-FILE",
              "/files/" + file_id + "/content", {}, {}, {}, {})
    .body;
}

} // namespace bgagent
