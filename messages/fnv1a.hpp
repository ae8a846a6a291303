// FNV-1a, 64 bits: a fast, stable hash of bytes, for hash tables and keys
// that are stored (the response cache's). Not a defence against anyone
// choosing the input: collisions are cheap to make.
#pragma once

#include <cstdint>
#include <string_view>

namespace bgagent {

inline uint64_t fnv1a(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull; // the offset basis
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull; // the prime
  }
  return h;
}

} // namespace bgagent
