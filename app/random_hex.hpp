// Random secrets as lowercase hex (OpenSSL's RAND_bytes): cluster secrets,
// API tokens, certificate serial numbers.
//
// Contract: 2 x `bytes` hex digits; throws std::runtime_error when the
// system has no randomness to give.
#pragma once

#include <cstddef>
#include <string>

namespace bgagent {

std::string random_hex(size_t bytes);

} // namespace bgagent
