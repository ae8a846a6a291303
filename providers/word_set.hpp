// Fixed sets of words and per-text word counts for the offline provider's
// heuristics, looked up by view without allocating: open addressing over a
// power-of-two table, FNV-1a hashing. std::unordered_set's hashing, prime
// modulo and node chasing were a large share of the offline provider's
// profile, which runs once per task.
//
// Contract:
// - word_set holds the words it is built with (views of string literals,
//   which outlive it); contains(w) is exact, case-sensitive membership.
// - word_counts counts views (which must outlive it) and answers a view's
//   count, 0 for one never added.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "messages/fnv1a.hpp"

namespace bgagent {

// The smallest power of two at least twice `n` (and at least 16): the
// table stays at most half full.
inline size_t table_size_for(size_t n) {
  size_t size = 16;
  while (size < 2 * n)
    size *= 2;
  return size;
}

class word_set {
public:
  word_set(std::initializer_list<std::string_view> words)
      : slots_(table_size_for(words.size())) {
    for (auto w : words) {
      size_t i = slot(w);
      if (!slots_[i].used)
        slots_[i] = {w, true};
    }
  }

  bool contains(std::string_view w) const { return slots_[slot(w)].used; }

private:
  struct entry {
    std::string_view word;
    bool used = false;
  };

  // Where `w` is, or the empty slot where it would be.
  size_t slot(std::string_view w) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = fnv1a(w) & mask;; i = (i + 1) & mask)
      if (!slots_[i].used || slots_[i].word == w)
        return i;
  }

  std::vector<entry> slots_;
};

class word_counts {
public:
  // Room for up to `distinct` different words.
  explicit word_counts(size_t distinct) : slots_(table_size_for(distinct)) {}

  void add(std::string_view w) {
    auto& e = slots_[slot(w)];
    e.word = w;
    ++e.count;
  }

  int count(std::string_view w) const { return slots_[slot(w)].count; }

private:
  struct entry {
    std::string_view word;
    int count = 0;
  };

  size_t slot(std::string_view w) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = fnv1a(w) & mask;; i = (i + 1) & mask)
      if (slots_[i].count == 0 || slots_[i].word == w)
        return i;
  }

  std::vector<entry> slots_;
};

} // namespace bgagent
