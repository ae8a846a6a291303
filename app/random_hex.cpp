#include "app/random_hex.hpp"

#include <stdexcept>
#include <vector>

#include <openssl/rand.h>

namespace bgagent {

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed: no random bytes");
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (auto b : raw) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

} // namespace bgagent
