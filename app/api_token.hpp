// The bearer token of `serve`'s HTTP API (DESIGN.md section 11).
//
// Contract: BG_AGENT_API_TOKEN when set; else the token kept in
// `<db>.api-token`, made on first use (64 hex digits from OpenSSL's
// RAND_bytes, the file created exclusively with mode 0600) and read again
// at every start, so a dashboard link stays valid across restarts. A token
// file that others may read or write (any group or other bit), that is not
// a regular file, or that does not hold one token is refused with
// usage_error naming it; nothing is rewritten behind the user's back.
#pragma once

#include <string>

namespace bgagent {

struct api_token {
  std::string value;
  std::string where; // "BG_AGENT_API_TOKEN" or the file's path
};

api_token resolve_api_token(const std::string& configured,
                            const std::string& db_path);

// Constant-time comparison of a presented token with the expected one.
bool token_matches(const std::string& presented, const std::string& expected);

} // namespace bgagent
