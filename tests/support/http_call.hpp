// One HTTP request from a test, over real loopback sockets (libcurl): what
// a client of `bgagent serve`'s API sends and gets.
//
// Contract: never throws; a request that did not get an answer has status 0
// and the curl error in `body`. Header names in `headers` are lower-case.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace bgagent::testing {

struct http_answer {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  // The body as JSON (discarded when it is not).
  nlohmann::json json() const {
    return nlohmann::json::parse(body, nullptr, false);
  }
};

// `token` empty: no Authorization header. A POST always sends its body
// (possibly empty, with Content-Length: 0).
http_answer http_call(const std::string& method, const std::string& url,
                      const std::string& token = {},
                      const std::string& body = {});

} // namespace bgagent::testing
