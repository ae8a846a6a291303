#include "tests/support/http_call.hpp"

#include <algorithm>
#include <cctype>

#include <curl/curl.h>

namespace bgagent::testing {

namespace {

size_t collect_body(char* buf, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(buf, size * n);
  return size * n;
}

size_t collect_header(char* buf, size_t size, size_t n, void* ud) {
  std::string line(buf, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    auto name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    auto value = line.substr(colon + 1);
    auto b = value.find_first_not_of(" \t");
    auto e = value.find_last_not_of(" \t\r\n");
    value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
    (*static_cast<std::map<std::string, std::string>*>(ud))[name] = value;
  }
  return size * n;
}

} // namespace

http_answer http_call(const std::string& method, const std::string& url,
                      const std::string& token, const std::string& body) {
  http_answer out;
  CURL* c = curl_easy_init();
  if (!c) {
    out.body = "curl_easy_init failed";
    return out;
  }
  curl_slist* headers = nullptr;
  if (!token.empty())
    headers =
      curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  auto rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    out.status = 0;
    out.body = curl_easy_strerror(rc);
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return out;
}

} // namespace bgagent::testing
