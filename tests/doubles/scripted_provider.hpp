// A provider double for tests, registered only in the `bgagent-testbin`
// executable (tests/testbin_main.cpp) as provider "scripted". It answers like
// the offline provider unless the task's input contains a marker:
//   [crash]        start() throws: the worker dies (supervisor restarts it)
//   [hang:MS]      start() blocks the worker's thread MS ms, then answers:
//                  a stalled worker (dead man's switch)
//   [fail]         a retryable error every time
//   [fail:N]       a retryable error on the first N calls for that task id
//   [permanent]    a permanent error (HTTP 400-like)
//   [credits]      out of credits (HTTP 402-like)
//   [delay:MS]     answers MS ms later from a timer thread (calls in flight)
//   [never]        never answers (the worker's timeout must fire)
// BG_AGENT_TEST_DELAY_MS=N delays every answer by N ms (as [delay:N]).
// Its price is 0 unless BG_AGENT_PRICE_PROMPT / BG_AGENT_PRICE_COMPLETION
// are set; successful answers then report the cost at that price.
#pragma once

#include <memory>

#include "providers/provider.hpp"

namespace bgagent::testing {

provider_ptr make_scripted_provider(const provider_settings& s);

} // namespace bgagent::testing
