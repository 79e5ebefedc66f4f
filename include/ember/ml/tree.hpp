#pragma once
// Decision trees (CART, as scikit-learn's DecisionTreeClassifier / DecisionTreeRegressor) and
// the shared machinery that random forests and extra trees grow their trees with.
//
// Like scikit-learn, training features are cast to float32 and split thresholds are midpoints
// between consecutive distinct sorted values; prediction casts inputs to float32 too, so a tree
// grown with the same split rule routes every sample exactly as scikit-learn's does.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/ml/common.hpp"

namespace ember::ml {

// ---- small shared pieces

// SplitMix64: tiny, fast and fully determined by its seed (per-tree seeds derive from it).
class TreeRng {
 public:
  explicit TreeRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// The seed of member `index` of an ensemble fitted with `master_seed`: independent of threads.
uint64_t derive_seed(uint64_t master_seed, uint64_t index);
// random_state=None -> a fresh nondeterministic seed; otherwise the given value.
uint64_t resolve_random_state(std::optional<int64_t> random_state);

// scikit-learn's max_features: None, "sqrt", "log2", an int count or a float fraction.
struct MaxFeatures {
  enum class Kind { All, Sqrt, Log2, Count, Fraction };
  Kind kind = Kind::All;
  double value = 0;

  static MaxFeatures parse(const std::string& text);  // throws on anything else
  void validate(std::string_view who) const;
  int64_t resolve(int64_t n_features) const;  // throws if a count exceeds n_features
};

// min_samples_split / min_samples_leaf / max_samples: an int count or a float fraction.
struct SampleCount {
  bool is_fraction = false;
  double value = 0;

  static SampleCount parse(const std::string& text);
  static SampleCount count(int64_t n) { return {false, static_cast<double>(n)}; }
  int64_t resolve(int64_t n_samples) const;  // fraction -> ceil(value * n_samples)
};

// Typed getters for the tree parameters that scikit-learn accepts as int-or-float.
SampleCount get_sample_count(ParamMap& params, const std::string& key, SampleCount fallback);
MaxFeatures get_max_features(ParamMap& params, const std::string& key, MaxFeatures fallback);

// ---- the fitted structure shared by every tree model (forests and HGB included)

struct TreeNode {
  int32_t left = -1;  // -1 for leaves; children always have larger indices than their parent
  int32_t right = -1;
  int32_t feature = -1;
  double threshold = 0;  // x[feature] <= threshold goes left
  double impurity = 0;
  int64_t n_samples = 0;
  double weighted_n_samples = 0;
  bool is_leaf() const { return left < 0; }
};

// The fields that float32 traversal needs, 16 bytes per node: x <= threshold_down (the largest
// float not above the double threshold) is exactly x <= threshold for every float x. Leaves
// point at themselves, so traversal can step without branching until nothing moves.
struct PackedTreeNode {
  int32_t child[2];  // left, right (indexed by the comparison, so traversal does not branch)
  int32_t feature;   // 0 for leaves
  float threshold_down;
};

struct TreeStructure {
  int64_t n_features = 0;
  int64_t n_values = 1;  // classes for classifiers (class fractions), 1 for regression
  std::vector<TreeNode> nodes;
  std::vector<double> values;          // nodes.size() * n_values
  std::vector<PackedTreeNode> packed;  // derived from nodes by pack(); not saved

  int64_t depth() const;
  int64_t leaf_count() const;
  // Builds `packed` (done by grow_tree and load).
  void pack();
  // Leaf reached by row x (x has n_features entries), comparing in double precision: float rows
  // mimic scikit-learn's float32 trees, double rows serve histogram gradient boosting.
  template <typename T>
  int64_t find_leaf(const T* x) const {
    int64_t i = 0;
    while (nodes[static_cast<size_t>(i)].left >= 0) {
      const TreeNode& n = nodes[static_cast<size_t>(i)];
      i = static_cast<double>(x[n.feature]) <= n.threshold ? n.left : n.right;
    }
    return i;
  }
  // Same result as find_leaf(x) for float rows, through the compact nodes.
  int64_t find_leaf_packed(const float* x) const {
    if (packed.empty()) return find_leaf(x);
    const PackedTreeNode* p = packed.data();
    int32_t i = 0;
    for (;;) {
      const PackedTreeNode& n = p[i];
      const int32_t next = n.child[!(x[n.feature] <= n.threshold_down)];
      if (next == i) return i;
      i = next;
    }
  }
  // find_leaf_packed for n_rows float rows (row r at rows + r * stride), several rows in flight
  // at once so that their node loads overlap.
  void find_leaves_packed(const float* rows, int64_t n_rows, int64_t stride, int32_t* leaves) const;
  const double* leaf_values(int64_t leaf) const {
    return values.data() + static_cast<size_t>(leaf * n_values);
  }

  void save(ArchiveWriter& out) const;
  // Validates node links, features and values so that find_leaf cannot misbehave.
  static TreeStructure load(ArchiveReader& in, int64_t n_features, int64_t n_values);
};

// ---- growing trees

enum class TreeCriterion { Gini, Entropy, SquaredError };
enum class SplitStrategy { Best, Random };

TreeCriterion parse_tree_criterion(const std::string& name, bool classification);

// Parameters of one tree after resolving fractions against the training set.
struct TreeGrowth {
  TreeCriterion criterion = TreeCriterion::Gini;
  SplitStrategy splitter = SplitStrategy::Best;
  int64_t max_depth = INT64_MAX;
  int64_t min_samples_split = 2;
  int64_t min_samples_leaf = 1;
  double min_impurity_decrease = 0;
  int64_t max_features = 1;    // features examined per node (constant ones do not count)
  int64_t max_leaf_nodes = 0;  // 0: unlimited (depth-first growth); else best-first growth
};

// Training data converted once (column-major float32) and shared by all trees of an ensemble.
struct TreeTrainingSet {
  int64_t n_samples = 0;
  int64_t n_features = 0;
  int64_t n_classes = 0;        // 0 for regression
  std::vector<float> columns;   // n_features * n_samples, feature-major
  std::vector<int32_t> labels;  // classification
  std::vector<double> targets;  // regression

  static TreeTrainingSet classification(const Matrix& x, const Vector& y, int64_t n_classes);
  static TreeTrainingSet regression(const Matrix& x, const Vector& y);
  const float* column(int64_t f) const { return columns.data() + f * n_samples; }
};

// Grows one tree. `weights` holds one non-negative weight per sample (bootstrap counts);
// samples of weight 0 are left out; empty means all ones.
TreeStructure grow_tree(const TreeTrainingSet& data, std::span<const double> weights,
                        const TreeGrowth& growth, uint64_t seed);

// ---- DecisionTreeClassifier / DecisionTreeRegressor

struct DecisionTreeParams {
  std::string criterion;          // "gini" | "entropy" | "log_loss" | "squared_error"
  std::string splitter = "best";  // "best" | "random"
  std::optional<int64_t> max_depth;
  SampleCount min_samples_split = SampleCount::count(2);
  SampleCount min_samples_leaf = SampleCount::count(1);
  double min_impurity_decrease = 0;
  MaxFeatures max_features;  // None: all features
  std::optional<int64_t> max_leaf_nodes;
  std::optional<int64_t> random_state;

  // Throws naming `who` (default: the decision tree's class name).
  void validate(bool classification, std::string_view who = {}) const;
};

// Resolves the shared tree parameters against a training set of the given shape.
TreeGrowth resolve_tree_growth(const DecisionTreeParams& p, bool classification, int64_t n_samples,
                               int64_t n_features);

class FittedDecisionTreeClassifier {
 public:
  FittedDecisionTreeClassifier(TreeStructure tree, int64_t n_classes)
      : tree_(std::move(tree)), n_classes_(n_classes) {}
  Vector predict(const Matrix& x) const;
  Matrix predict_proba(const Matrix& x) const;
  const TreeStructure& tree() const { return tree_; }
  int64_t n_classes() const { return n_classes_; }
  int64_t n_features() const { return tree_.n_features; }
  void save(ArchiveWriter& out) const;
  static FittedDecisionTreeClassifier load(ArchiveReader& in);

 private:
  TreeStructure tree_;
  int64_t n_classes_;
};

class DecisionTreeClassifier {
 public:
  explicit DecisionTreeClassifier(DecisionTreeParams params = {});
  FittedDecisionTreeClassifier fit(const Matrix& x, const Vector& y) const;

 private:
  DecisionTreeParams params_;
};

class FittedDecisionTreeRegressor {
 public:
  explicit FittedDecisionTreeRegressor(TreeStructure tree) : tree_(std::move(tree)) {}
  Vector predict(const Matrix& x) const;
  const TreeStructure& tree() const { return tree_; }
  int64_t n_features() const { return tree_.n_features; }
  void save(ArchiveWriter& out) const;
  static FittedDecisionTreeRegressor load(ArchiveReader& in);

 private:
  TreeStructure tree_;
};

class DecisionTreeRegressor {
 public:
  explicit DecisionTreeRegressor(DecisionTreeParams params = {});
  FittedDecisionTreeRegressor fit(const Matrix& x, const Vector& y) const;

 private:
  DecisionTreeParams params_;
};

}  // namespace ember::ml
