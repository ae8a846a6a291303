#include "tests/support/cluster.hpp"

namespace bgagent::testing {

std::string loopback(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

std::vector<std::string> head_args(int port, const std::string& tasks,
                                   const std::vector<std::string>& extra) {
  std::vector<std::string> a{bgagent_binary(), "run", "--workers", "0",
                             "--insecure-listen", loopback(port)};
  if (!tasks.empty()) {
    a.push_back("--tasks");
    a.push_back(tasks);
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<std::string> node_args(int port, const std::string& name,
                                   int workers) {
  return {testbin_binary(), "worker", "--connect", loopback(port),
          "--workers", std::to_string(workers), "--name", name};
}

env_map with_secret(const std::string& secret, env_map extra) {
  extra["BG_AGENT_SECRET"] = secret;
  return extra;
}

env_map scripted_node_env(const std::string& secret, int delay_ms,
                          env_map extra) {
  extra["LLM_PROVIDER"] = "scripted";
  extra["BG_AGENT_TEST_DELAY_MS"] = std::to_string(delay_ms);
  return with_secret(secret, std::move(extra));
}

}  // namespace bgagent::testing
