// SHA-256 as lowercase hex (OpenSSL), for idempotency keys and type
// fingerprints.
#pragma once

#include <string>

namespace bgagent {

std::string sha256_hex(const std::string& bytes);

} // namespace bgagent
