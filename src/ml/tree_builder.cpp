// Growing one CART tree: per-node sorting of contiguous float32 feature columns (radix sort for
// large nodes), incremental criterion updates in one scan, and scikit-learn's stopping rules.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <queue>

#include "ember/ml/tree.hpp"

namespace ember::ml {
namespace {

// scikit-learn treats feature values closer than this as equal (float32 arithmetic).
constexpr float kFeatureThreshold = 1e-7f;
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
constexpr double kLn2 = 0.69314718055994530942;

// Order-preserving map from float to uint32 so that keys sort like the floats they encode.
inline uint32_t float_key(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
inline float key_float(uint32_t key) {
  const uint32_t bits = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// Sorts (key << 32 | sample) items by key: LSD radix (3 x 11 bits) for large ranges, skipping
// passes where all keys share the digit.
void sort_keyed(uint64_t* items, uint64_t* scratch, int64_t n) {
  if (n < 384) {
    std::sort(items, items + n);
    return;
  }
  constexpr int kBits = 11;
  constexpr int kBuckets = 1 << kBits;
  static thread_local std::vector<uint32_t> hist;
  hist.assign(size_t{3} * kBuckets, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t key = static_cast<uint32_t>(items[i] >> 32);
    ++hist[key & (kBuckets - 1)];
    ++hist[kBuckets + ((key >> kBits) & (kBuckets - 1))];
    ++hist[2 * kBuckets + (key >> (2 * kBits))];
  }
  uint64_t* src = items;
  uint64_t* dst = scratch;
  for (int pass = 0; pass < 3; ++pass) {
    uint32_t* h = hist.data() + static_cast<size_t>(pass) * kBuckets;
    const int shift = 32 + pass * kBits;
    const uint32_t first = static_cast<uint32_t>((src[0] >> shift) & (kBuckets - 1));
    if (h[first] == static_cast<uint32_t>(n)) continue;  // every key has this digit
    uint32_t sum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      const uint32_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t item = src[i];
      dst[h[(item >> shift) & (kBuckets - 1)]++] = item;
    }
    std::swap(src, dst);
  }
  if (src != items) std::copy_n(src, n, items);
}

inline double xlogx(double x) {
  return x > 0 ? x * std::log(x) : 0.0;
}

// Weighted statistics of a set of samples: class weights or (sum, sum of squares).
struct NodeStats {
  double weight = 0;
  double sum = 0;
  double sq_sum = 0;
  std::vector<double> counts;
};

struct SplitChoice {
  int32_t feature = -1;
  double threshold = 0;
  int64_t pos = 0;  // first sample index of the right child
  double proxy = -std::numeric_limits<double>::infinity();
};

struct NodeRecord {
  int64_t start = 0;
  int64_t end = 0;
  int64_t depth = 0;
  int32_t parent = -1;
  bool is_left = false;
};

class TreeBuilder {
 public:
  TreeBuilder(const TreeTrainingSet& data, std::span<const double> weights,
              const TreeGrowth& growth, uint64_t seed)
      : data_(data), growth_(growth), rng_(seed) {
    const int64_t n = data.n_samples;
    const bool classification = data.n_classes > 0;
    for (int64_t i = 0; i < n; ++i) {
      const double w = weights.empty() ? 1.0 : weights[static_cast<size_t>(i)];
      if (w > 0) {
        samples_.push_back(static_cast<int32_t>(i));
        w_.push_back(w);
        if (classification) {
          label_.push_back(data.labels[static_cast<size_t>(i)]);
        } else {
          y_.push_back(data.targets[static_cast<size_t>(i)]);
        }
        total_weight_ += w;
      }
    }
    keyed_.resize(samples_.size());
    scratch_.resize(samples_.size());
    values_.resize(samples_.size());
    right_samples_.resize(samples_.size());
    right_w_.resize(samples_.size());
    right_y_.resize(samples_.size());
    features_.resize(static_cast<size_t>(data.n_features));
    for (int64_t f = 0; f < data.n_features; ++f) features_[static_cast<size_t>(f)] = int32_t(f);
    classification_ = growth.criterion != TreeCriterion::SquaredError;
    k_ = classification_ ? data.n_classes : 1;
    left_counts_.resize(static_cast<size_t>(k_));
    right_counts_.resize(static_cast<size_t>(k_));
    tree_.n_features = data.n_features;
    tree_.n_values = k_;
  }

  TreeStructure build() {
    if (samples_.empty()) throw Error("tree: all sample weights are zero");
    if (growth_.max_leaf_nodes > 0) {
      build_best_first();
    } else {
      build_depth_first();
    }
    return std::move(tree_);
  }

 private:
  // ---- node statistics

  void compute_stats(int64_t start, int64_t end, NodeStats& stats) const {
    stats.weight = 0;
    stats.sum = 0;
    stats.sq_sum = 0;
    if (classification_) {
      stats.counts.assign(static_cast<size_t>(k_), 0.0);
      for (int64_t i = start; i < end; ++i) {
        const double w = w_[static_cast<size_t>(i)];
        stats.counts[static_cast<size_t>(label_[static_cast<size_t>(i)])] += w;
        stats.weight += w;
      }
    } else {
      for (int64_t i = start; i < end; ++i) {
        const double w = w_[static_cast<size_t>(i)];
        const double y = y_[static_cast<size_t>(i)];
        stats.weight += w;
        stats.sum += w * y;
        stats.sq_sum += w * y * y;
      }
    }
  }

  double impurity(const NodeStats& s) const {
    switch (growth_.criterion) {
      case TreeCriterion::Gini: {
        double sq = 0;
        for (double c : s.counts) sq += c * c;
        return 1.0 - sq / (s.weight * s.weight);
      }
      case TreeCriterion::Entropy: {
        double e = 0;
        for (double c : s.counts) {
          if (c > 0) {
            const double p = c / s.weight;
            e -= p * std::log(p) / kLn2;
          }
        }
        return e;
      }
      case TreeCriterion::SquaredError: {
        const double mean = s.sum / s.weight;
        return s.sq_sum / s.weight - mean * mean;
      }
    }
    return 0;
  }

  int32_t add_node(const NodeRecord& rec, const NodeStats& stats, double node_impurity) {
    const auto id = static_cast<int32_t>(tree_.nodes.size());
    TreeNode node;
    node.impurity = node_impurity;
    node.n_samples = rec.end - rec.start;
    node.weighted_n_samples = stats.weight;
    tree_.nodes.push_back(node);
    if (classification_) {
      for (double c : stats.counts) tree_.values.push_back(c / stats.weight);
    } else {
      tree_.values.push_back(stats.sum / stats.weight);
    }
    if (rec.parent >= 0) {
      TreeNode& parent = tree_.nodes[static_cast<size_t>(rec.parent)];
      (rec.is_left ? parent.left : parent.right) = id;
    }
    return id;
  }

  // ---- split search

  // Fills keyed_[0, n) with the node's positions (absolute indices into samples_) sorted by
  // feature f's value.
  void sort_feature(int32_t f, int64_t start, int64_t end) {
    const float* col = data_.column(f);
    const int64_t n = end - start;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t s = samples_[static_cast<size_t>(start + i)];
      keyed_[static_cast<size_t>(i)] =
          (static_cast<uint64_t>(float_key(col[s])) << 32) | static_cast<uint32_t>(start + i);
    }
    sort_keyed(keyed_.data(), scratch_.data(), n);
  }

  static float keyed_value(uint64_t item) { return key_float(static_cast<uint32_t>(item >> 32)); }
  static int64_t keyed_position(uint64_t item) { return static_cast<int64_t>(item & 0xffffffffu); }

  static double midpoint_threshold(float lo, float hi) {
    double t = static_cast<double>(lo) / 2.0 + static_cast<double>(hi) / 2.0;
    if (t == static_cast<double>(hi) || !std::isfinite(t)) t = lo;
    return t;
  }

  // Scans sorted samples of one feature, updating `best` with any better split. Returns false
  // when the feature is constant in the node.
  bool scan_best(int32_t f, int64_t start, int64_t end, const NodeStats& node, SplitChoice& best) {
    sort_feature(f, start, end);
    const int64_t n = end - start;
    const uint64_t* items = keyed_.data();
    if (keyed_value(items[n - 1]) <= keyed_value(items[0]) + kFeatureThreshold) return false;
    const int64_t msl = growth_.min_samples_leaf;
    const double* w = w_.data();
    double wl = 0, wr = node.weight;
    if (classification_) {
      std::copy(node.counts.begin(), node.counts.end(), right_counts_.begin());
      std::fill(left_counts_.begin(), left_counts_.end(), 0.0);
      double* cl = left_counts_.data();
      double* cr = right_counts_.data();
      const int32_t* labels = label_.data();
      const bool gini = growth_.criterion == TreeCriterion::Gini;
      // gini: sum of squared class weights per side; entropy: sum of c*log(c) per side.
      double acc_l = 0, acc_r = 0;
      for (double c : node.counts) acc_r += gini ? c * c : xlogx(c);
      for (int64_t i = 0; i + 1 < n; ++i) {
        const int64_t s = keyed_position(items[i]);
        const int32_t c = labels[s];
        const double ws = w[s];
        if (gini) {
          acc_l += ws * (2 * cl[c] + ws);
          acc_r -= ws * (2 * cr[c] - ws);
        } else {
          acc_l += xlogx(cl[c] + ws) - xlogx(cl[c]);
          acc_r += xlogx(cr[c] - ws) - xlogx(cr[c]);
        }
        cl[c] += ws;
        cr[c] -= ws;
        wl += ws;
        wr -= ws;
        if (i + 1 < msl) continue;
        if (n - i - 1 < msl) break;
        const float v = keyed_value(items[i]);
        const float next = keyed_value(items[i + 1]);
        if (next <= v + kFeatureThreshold) continue;
        const double proxy = gini ? acc_l / wl + acc_r / wr : acc_l - xlogx(wl) + acc_r - xlogx(wr);
        if (proxy > best.proxy) {
          best = {f, midpoint_threshold(v, next), start + i + 1, proxy};
        }
      }
    } else {
      const double* y = y_.data();
      double sl = 0, sr = node.sum;
      for (int64_t i = 0; i + 1 < n; ++i) {
        const int64_t s = keyed_position(items[i]);
        const double wy = w[s] * y[s];
        sl += wy;
        sr -= wy;
        wl += w[s];
        wr -= w[s];
        if (i + 1 < msl) continue;
        if (n - i - 1 < msl) break;
        const float v = keyed_value(items[i]);
        const float next = keyed_value(items[i + 1]);
        if (next <= v + kFeatureThreshold) continue;
        const double proxy = sl * sl / wl + sr * sr / wr;
        if (proxy > best.proxy) {
          best = {f, midpoint_threshold(v, next), start + i + 1, proxy};
        }
      }
    }
    return true;
  }

  // Moves samples with x[f] <= threshold to the front of [start, end), stably: every node keeps
  // its samples in increasing order, so gathering a feature column reads memory monotonically.
  // Returns the split point.
  int64_t partition(int32_t f, double threshold, int64_t start, int64_t end) {
    const float* col = data_.column(f);
    int64_t lo = start, right = 0;
    for (int64_t i = start; i < end; ++i) {
      const auto at = static_cast<size_t>(i);
      const int32_t s = samples_[at];
      if (static_cast<double>(col[s]) <= threshold) {
        const auto to = static_cast<size_t>(lo++);
        samples_[to] = s;
        w_[to] = w_[at];
        if (classification_) {
          label_[to] = label_[at];
        } else {
          y_[to] = y_[at];
        }
      } else {
        const auto to = static_cast<size_t>(right++);
        right_samples_[to] = s;
        right_w_[to] = w_[at];
        right_y_[to] = classification_ ? label_[at] : y_[at];
      }
    }
    for (int64_t j = 0; j < right; ++j) {
      const auto to = static_cast<size_t>(lo + j), from = static_cast<size_t>(j);
      samples_[to] = right_samples_[from];
      w_[to] = right_w_[from];
      if (classification_) {
        label_[to] = static_cast<int32_t>(right_y_[from]);
      } else {
        y_[to] = right_y_[from];
      }
    }
    return lo;
  }

  // Extra-trees split for one feature: a uniform random threshold in the node's value range.
  // Only the chosen feature partitions the samples (in split_node).
  bool scan_random(int32_t f, int64_t start, int64_t end, const NodeStats& node,
                   SplitChoice& best) {
    const float* col = data_.column(f);
    const int64_t n = end - start;
    float* v = values_.data();
    const int32_t* s = samples_.data() + start;
    for (int64_t i = 0; i < n; ++i) v[i] = col[s[i]];
    // Four independent min/max chains: one chain is latency-bound.
    constexpr float kInf = std::numeric_limits<float>::infinity();
    float lo4[4] = {kInf, kInf, kInf, kInf}, hi4[4] = {-kInf, -kInf, -kInf, -kInf};
    int64_t i4 = 0;
    for (; i4 + 4 <= n; i4 += 4) {
      for (int j = 0; j < 4; ++j) {
        lo4[j] = std::min(lo4[j], v[i4 + j]);
        hi4[j] = std::max(hi4[j], v[i4 + j]);
      }
    }
    for (; i4 < n; ++i4) {
      lo4[0] = std::min(lo4[0], v[i4]);
      hi4[0] = std::max(hi4[0], v[i4]);
    }
    const float lo = std::min(std::min(lo4[0], lo4[1]), std::min(lo4[2], lo4[3]));
    const float hi = std::max(std::max(hi4[0], hi4[1]), std::max(hi4[2], hi4[3]));
    if (hi <= lo + kFeatureThreshold) return false;
    double threshold = lo + rng_.unit() * (static_cast<double>(hi) - lo);
    if (threshold >= static_cast<double>(hi)) threshold = lo;
    // Left-side statistics in one sequential, branch-free pass (the comparison is random); four
    // interleaved class-count copies avoid a store-to-load chain on one counter.
    int64_t n_left = 0;
    double wl = 0, sl = 0;
    const double* w = w_.data() + start;
    if (classification_) {
      const auto k = static_cast<size_t>(k_);
      interleaved_counts_.assign(4 * k, 0.0);
      double* acc = interleaved_counts_.data();
      const int32_t* labels = label_.data() + start;
      for (int64_t i = 0; i < n; ++i) {
        const bool left = static_cast<double>(v[i]) <= threshold;
        n_left += left;
        acc[static_cast<size_t>(i & 3) * k + static_cast<size_t>(labels[i])] += left ? w[i] : 0.0;
      }
      for (size_t c = 0; c < k; ++c) {
        left_counts_[c] = (acc[c] + acc[k + c]) + (acc[2 * k + c] + acc[3 * k + c]);
        wl += left_counts_[c];
      }
    } else {
      const double* y = y_.data() + start;
      for (int64_t i = 0; i < n; ++i) {
        const bool left = static_cast<double>(v[i]) <= threshold;
        const double wi = left ? w[i] : 0.0;
        n_left += left;
        wl += wi;
        sl += wi * y[i];
      }
    }
    const int64_t msl = growth_.min_samples_leaf;
    if (n_left < msl || n - n_left < msl) return true;
    const double wr = node.weight - wl;
    double proxy;
    if (classification_) {
      const bool gini = growth_.criterion == TreeCriterion::Gini;
      double acc_l = 0, acc_r = 0;
      for (int64_t c = 0; c < k_; ++c) {
        const double l = left_counts_[static_cast<size_t>(c)];
        const double r = node.counts[static_cast<size_t>(c)] - l;
        acc_l += gini ? l * l : xlogx(l);
        acc_r += gini ? r * r : xlogx(r);
      }
      proxy = gini ? acc_l / wl + acc_r / wr : acc_l - xlogx(wl) + acc_r - xlogx(wr);
    } else {
      const double sr = node.sum - sl;
      proxy = sl * sl / wl + sr * sr / wr;
    }
    if (proxy > best.proxy) best = {f, threshold, start + n_left, proxy};
    return true;
  }

  // Finds the best split of a node among up to max_features non-constant features drawn at
  // random, partitions the samples accordingly and returns the weighted impurity decrease
  // (scikit-learn's definition). Returns false if no valid split exists.
  bool split_node(int64_t start, int64_t end, const NodeStats& node, double node_impurity,
                  SplitChoice& best, double& improvement) {
    best = SplitChoice{};
    const int64_t n_features = data_.n_features;
    int64_t visited = 0;
    for (int64_t j = 0; j < n_features && visited < growth_.max_features; ++j) {
      const auto r = static_cast<int64_t>(j + rng_.below(static_cast<uint64_t>(n_features - j)));
      std::swap(features_[static_cast<size_t>(j)], features_[static_cast<size_t>(r)]);
      const int32_t f = features_[static_cast<size_t>(j)];
      const bool non_constant = growth_.splitter == SplitStrategy::Best
                                    ? scan_best(f, start, end, node, best)
                                    : scan_random(f, start, end, node, best);
      if (non_constant) ++visited;
    }
    if (best.feature < 0) return false;
    best.pos = partition(best.feature, best.threshold, start, end);
    if (best.pos <= start || best.pos >= end) return false;
    NodeStats& left = scratch_stats_;
    compute_stats(start, best.pos, left);
    NodeStats& right = scratch_right_;
    right.weight = node.weight - left.weight;
    if (classification_) {
      right.counts.resize(static_cast<size_t>(k_));
      for (int64_t c = 0; c < k_; ++c) {
        right.counts[static_cast<size_t>(c)] =
            node.counts[static_cast<size_t>(c)] - left.counts[static_cast<size_t>(c)];
      }
    } else {
      right.sum = node.sum - left.sum;
      right.sq_sum = node.sq_sum - left.sq_sum;
    }
    improvement = (node.weight / total_weight_) *
                  (node_impurity - (right.weight / node.weight) * impurity(right) -
                   (left.weight / node.weight) * impurity(left));
    return true;
  }

  // Whether a node must be a leaf before any split search (scikit-learn's order of checks).
  bool forced_leaf(const NodeRecord& rec, double node_impurity) const {
    const int64_t n = rec.end - rec.start;
    return rec.depth >= growth_.max_depth || n < growth_.min_samples_split ||
           n < 2 * growth_.min_samples_leaf || node_impurity <= kEpsilon;
  }

  // ---- growth orders

  void build_depth_first() {
    std::vector<NodeRecord> stack;
    stack.push_back({0, static_cast<int64_t>(samples_.size()), 0, -1, false});
    NodeStats stats;
    while (!stack.empty()) {
      const NodeRecord rec = stack.back();
      stack.pop_back();
      compute_stats(rec.start, rec.end, stats);
      const double node_impurity = impurity(stats);
      const int32_t id = add_node(rec, stats, node_impurity);
      if (forced_leaf(rec, node_impurity)) continue;
      SplitChoice split;
      double improvement = 0;
      if (!split_node(rec.start, rec.end, stats, node_impurity, split, improvement)) continue;
      if (improvement + kEpsilon < growth_.min_impurity_decrease) continue;
      TreeNode& node = tree_.nodes[static_cast<size_t>(id)];
      node.feature = split.feature;
      node.threshold = split.threshold;
      // Right first so that the left child is built next (preorder numbering).
      stack.push_back({split.pos, rec.end, rec.depth + 1, id, false});
      stack.push_back({rec.start, split.pos, rec.depth + 1, id, true});
    }
  }

  struct Frontier {
    NodeRecord rec;
    int32_t id;
    SplitChoice split;
    double improvement;
    bool is_leaf;
  };

  Frontier evaluate(const NodeRecord& rec) {
    NodeStats stats;
    compute_stats(rec.start, rec.end, stats);
    const double node_impurity = impurity(stats);
    Frontier f{rec, add_node(rec, stats, node_impurity), {}, 0.0, true};
    if (forced_leaf(rec, node_impurity)) return f;
    if (!split_node(rec.start, rec.end, stats, node_impurity, f.split, f.improvement)) return f;
    f.is_leaf = f.improvement + kEpsilon < growth_.min_impurity_decrease;
    return f;
  }

  void build_best_first() {
    auto lower = [](const Frontier& a, const Frontier& b) {
      if (a.improvement != b.improvement) return a.improvement < b.improvement;
      return a.id > b.id;
    };
    std::priority_queue<Frontier, std::vector<Frontier>, decltype(lower)> frontier(lower);
    frontier.push(evaluate({0, static_cast<int64_t>(samples_.size()), 0, -1, false}));
    int64_t split_budget = growth_.max_leaf_nodes - 1;
    while (!frontier.empty()) {
      const Frontier top = frontier.top();
      frontier.pop();
      if (top.is_leaf || split_budget <= 0) continue;
      --split_budget;
      TreeNode& node = tree_.nodes[static_cast<size_t>(top.id)];
      node.feature = top.split.feature;
      node.threshold = top.split.threshold;
      const NodeRecord& rec = top.rec;
      frontier.push(evaluate({rec.start, top.split.pos, rec.depth + 1, top.id, true}));
      frontier.push(evaluate({top.split.pos, rec.end, rec.depth + 1, top.id, false}));
    }
  }

  const TreeTrainingSet& data_;
  TreeGrowth growth_;
  TreeRng rng_;
  bool classification_ = true;
  int64_t k_ = 1;
  double total_weight_ = 0;
  // Samples of the nodes, each node a contiguous range, with their weights and targets kept at
  // the same positions so that node scans read memory sequentially.
  std::vector<int32_t> samples_;
  std::vector<double> w_;
  std::vector<int32_t> label_;          // classification
  std::vector<double> y_;               // regression
  std::vector<float> values_;           // one feature's values of a node (extra trees)
  std::vector<int32_t> right_samples_;  // partition buffers
  std::vector<double> right_w_;
  std::vector<double> right_y_;
  std::vector<uint64_t> keyed_;
  std::vector<uint64_t> scratch_;
  std::vector<int32_t> features_;
  std::vector<double> left_counts_;
  std::vector<double> interleaved_counts_;
  std::vector<double> right_counts_;
  NodeStats scratch_stats_;
  NodeStats scratch_right_;
  TreeStructure tree_;
};

}  // namespace

TreeStructure grow_tree(const TreeTrainingSet& data, std::span<const double> weights,
                        const TreeGrowth& growth, uint64_t seed) {
  if (!weights.empty() && static_cast<int64_t>(weights.size()) != data.n_samples) {
    throw Error("tree: sample weight count does not match the training set");
  }
  if ((growth.criterion == TreeCriterion::SquaredError) != (data.n_classes == 0)) {
    throw Error("tree: criterion does not match the training targets (classes vs values)");
  }
  if (growth.max_features < 1 || growth.max_features > data.n_features) {
    throw Error("tree: max_features resolves to " + std::to_string(growth.max_features) +
                ", outside [1, " + std::to_string(data.n_features) + "]");
  }
  TreeBuilder builder(data, weights, growth, seed);
  TreeStructure tree = builder.build();
  tree.pack();
  return tree;
}

}  // namespace ember::ml
