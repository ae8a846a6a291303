// @copilotkit/aimock as an independent OpenAI/OpenRouter-compatible server
// for tests: started on a free 127.0.0.1 port with fixture files from
// tests/fixtures/, stopped (SIGKILL) when the object goes.
//
// Contract: aimock_available() is false when aimock is not installed
// (scripts/install-aimock.sh writes the launcher .deps/bin/aimock, which
// scripts/test.sh exports as BGAGENT_AIMOCK); tests then skip with a WARN
// through SKIP_WITHOUT_AIMOCK(). The server runs from an aimock config file
// written into the test's directory, its fixtures copied next to it. The
// constructor returns only once the server answers its health check, and
// throws otherwise. The journal keeps the last 1,000 requests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace bgagent::testing {

// The aimock launcher, or "" when it is not installed.
std::string aimock_cli();
inline bool aimock_available() { return !aimock_cli().empty(); }

// A node binary (the one aimock's installer chose, else the PATH's), or "".
std::string node_binary();

// Path of a fixture file in tests/fixtures/.
std::string fixture_path(const std::string& name);

class aimock_server {
public:
  aimock_server(const std::vector<std::string>& fixture_files,
                const std::string& workdir,
                const std::vector<std::string>& extra_args = {});
  ~aimock_server();

  int port() const { return port_; }
  std::string url() const;             // http://127.0.0.1:PORT
  std::string openai_base() const;     // .../v1
  std::string openrouter_base() const; // .../api/v1
  // Every chat completions request so far, oldest first.
  nlohmann::json journal() const;

private:
  int port_ = 0;
  std::unique_ptr<background_process> proc_;
};

// An HTTP GET on 127.0.0.1 for tests; the body, or "" on failure.
std::string http_get(const std::string& url);

} // namespace bgagent::testing

#define SKIP_WITHOUT_AIMOCK()                                                 \
  do {                                                                        \
    if (!::bgagent::testing::aimock_available()) {                            \
      WARN("SKIPPED: node or @copilotkit/aimock is not installed (run "       \
           "scripts/install-aimock.sh)");                                     \
      return;                                                                 \
    }                                                                         \
  } while (0)
