#pragma once
// The Unigram lattice, shared by the model's encoding (models.cpp) and the UnigramTrainer
// (trainer_unigram.cpp): the byte trie of pieces, the lattice's nodes in the reference's order
// (its Viterbi and marginals break ties and sum in that order) and the Viterbi forward pass.
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "internal.hpp"

namespace ember::tokenizers::detail {

// Open-addressing map from packed (left, right) ids to (rank, new id). Key and value share a
// slot, so a lookup touches one cache line.
class MergeMap {
 public:
  struct Slot {
    uint64_t key;
    uint32_t rank, id;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, {kEmpty, 0, 0});
  }
  void put(uint64_t key, uint32_t rank, uint32_t id) {
    size_t i = hash(key) & (slots_.size() - 1);
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = {key, rank, id};
  }
  const Slot* get(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    size_t i = hash(key) & (slots_.size() - 1);
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == key) return &slots_[i];
      i = (i + 1) & (slots_.size() - 1);
    }
    return nullptr;
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<Slot> slots_;
};

// Byte trie for the Unigram lattice: node -> children keyed by (node, byte). The lattice probes
// one edge per input byte and position, so the edges end up in an open-addressing table (one
// cache line per probe) rather than a node-based hash map.
class ByteTrie {
 public:
  ByteTrie() { value_.push_back(-1); }
  void insert(std::string_view s, uint32_t id) {
    uint32_t node = 0;
    for (char ch : s) {
      auto [it, added] = building_.try_emplace(key(node, ch), static_cast<uint32_t>(value_.size()));
      if (added) value_.push_back(-1);
      node = it->second;
    }
    if (value_[node] < 0) value_[node] = id;
  }
  // Call once every piece is inserted.
  void freeze() {
    edges_.reserve(building_.size());
    for (auto [k, child] : building_) edges_.put(k, 0, child);
    building_ = {};
  }
  // The child of node along byte ch, or 0 (the root is nobody's child) when there is none.
  uint32_t child(uint32_t node, char ch) const {
    const MergeMap::Slot* slot = edges_.get(key(node, ch));
    return slot ? slot->id : 0;
  }
  int64_t value(uint32_t node) const { return value_[node]; }  // piece id at node, -1 if none

 private:
  static uint64_t key(uint32_t node, char ch) {
    return (uint64_t(node) << 8) | static_cast<unsigned char>(ch);
  }
  std::unordered_map<uint64_t, uint32_t> building_;
  MergeMap edges_;  // (node, byte) -> child, in the slot's id
  std::vector<int64_t> value_;
};

// Calls on_node(begin, end, id) for every node of the lattice of the UTF-8 text `s`, in the order
// the reference inserts them: by begin, and from one begin the shorter first. A node is a piece of
// the trie that starts at a char boundary or, where no piece of exactly one char starts, the
// unknown char (id -1).
template <class F>
void for_each_lattice_node(const ByteTrie& trie, std::string_view s, F&& on_node) {
  for (size_t start = 0; start < s.size();) {
    const size_t mblen = utf8_len(static_cast<unsigned char>(s[start]));
    bool single = false;
    uint32_t node = 0;
    for (size_t k = start; k < s.size(); ++k) {
      node = trie.child(node, s[k]);
      if (node == 0) break;
      const int64_t id = trie.value(node);
      if (id < 0) continue;
      on_node(start, k + 1, id);
      if (k + 1 - start == mblen) single = true;
    }
    if (!single) on_node(start, start + mblen, int64_t{-1});
    start += mblen;
  }
}

// best[e]: the last node (id, begin) and the score of the best path over s[0, e).
struct ViterbiCell {
  int64_t id = -1;
  double score = 0.0;
  int64_t starts_at = -1;  // -1: no path reaches e
};

// The Viterbi forward pass over the nodes of for_each_lattice_node; score(id) is a node's score
// (id -1: the unknown char) and skip(begin, end) leaves a node out. A later node replaces an equal
// path only when strictly better, as in the reference.
template <class Score, class Skip>
void viterbi_forward(const ByteTrie& trie, std::string_view s, const Score& score, const Skip& skip,
                     std::vector<ViterbiCell>& best) {
  best.assign(s.size() + 1, ViterbiCell{});
  for_each_lattice_node(trie, s, [&](size_t begin, size_t end, int64_t id) {
    if (skip(begin, end)) return;
    const double cand = best[begin].score + score(id);
    ViterbiCell& target = best[end];
    if (target.starts_at < 0 || cand > target.score)
      target = {id, cand, static_cast<int64_t>(begin)};
  });
}

}  // namespace ember::tokenizers::detail
