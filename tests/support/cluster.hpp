// Command lines and environments for tests that start a head and worker
// nodes as real processes on 127.0.0.1.
//
// head_args() is `bgagent run --workers 0 --insecure-listen 127.0.0.1:PORT`
// (plain CAF on loopback; the TLS tests set certificates themselves; all the
// work goes to nodes), with `--tasks FILE` and any extra flags; node_args()
// is a `bgagent-testbin worker` node, so that its provider can be the
// scripted double, which scripted_node_env() selects with a fixed delay per
// call (slow calls keep tasks in flight long enough to spread or to kill).
#pragma once

#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace bgagent::testing {

// "127.0.0.1:PORT"
std::string loopback(int port);

std::vector<std::string> head_args(int port, const std::string& tasks = {},
                                   const std::vector<std::string>& extra = {});

std::vector<std::string> node_args(int port, const std::string& name,
                                   int workers = 2);

// `extra` with BG_AGENT_SECRET set.
env_map with_secret(const std::string& secret, env_map extra = {});

// `extra` with the secret, LLM_PROVIDER=scripted and its per-call delay.
env_map scripted_node_env(const std::string& secret, int delay_ms,
                          env_map extra = {});

}  // namespace bgagent::testing
