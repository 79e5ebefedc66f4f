// Decision tree estimators, the fitted tree structure (save/load with validation) and the
// parameter helpers shared by all tree-based models.
#include "ember/ml/tree.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>

#include "ember/base/thread_pool.hpp"

namespace ember::ml {

// ---- shared helpers

uint64_t derive_seed(uint64_t master_seed, uint64_t index) {
  TreeRng rng(master_seed ^ (0xD1B54A32D192ED03ull * (index + 1)));
  rng.next();
  return rng.next();
}

uint64_t resolve_random_state(std::optional<int64_t> random_state) {
  if (random_state) return static_cast<uint64_t>(*random_state);
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

namespace {
bool looks_like_float(const std::string& text) {
  return text.find_first_of(".eE") != std::string::npos;
}
bool parse_number(const std::string& text, double& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && std::isfinite(out);
}
}  // namespace

MaxFeatures MaxFeatures::parse(const std::string& text) {
  if (text == "None") return {Kind::All, 0};
  if (text == "sqrt") return {Kind::Sqrt, 0};
  if (text == "log2") return {Kind::Log2, 0};
  double v = 0;
  if (!parse_number(text, v)) {
    throw Error("max_features=" + text + ": expected None, sqrt, log2, an int or a float");
  }
  if (looks_like_float(text)) return {Kind::Fraction, v};
  if (v != std::floor(v)) throw Error("max_features=" + text + ": expected an integer");
  return {Kind::Count, v};
}

void MaxFeatures::validate(std::string_view who) const {
  if (kind == Kind::Count && value < 1) {
    throw Error(std::string(who) + ": max_features must be >= 1");
  }
  if (kind == Kind::Fraction && !(value > 0 && value <= 1)) {
    throw Error(std::string(who) + ": max_features as a fraction must be in (0, 1]");
  }
}

int64_t MaxFeatures::resolve(int64_t n_features) const {
  int64_t k = n_features;
  switch (kind) {
    case Kind::All:
      k = n_features;
      break;
    case Kind::Sqrt:
      k = static_cast<int64_t>(std::sqrt(static_cast<double>(n_features)));
      break;
    case Kind::Log2:
      k = static_cast<int64_t>(std::log2(static_cast<double>(n_features)));
      break;
    case Kind::Count:
      k = static_cast<int64_t>(value);
      if (k > n_features) {
        throw Error("max_features=" + std::to_string(k) + " exceeds the " +
                    std::to_string(n_features) + " features");
      }
      break;
    case Kind::Fraction:
      k = static_cast<int64_t>(value * static_cast<double>(n_features));
      break;
  }
  return std::clamp<int64_t>(k, 1, n_features);
}

SampleCount SampleCount::parse(const std::string& text) {
  double v = 0;
  if (!parse_number(text, v)) throw Error("expected an int or a float, got '" + text + "'");
  if (looks_like_float(text)) return {true, v};
  if (v != std::floor(v)) throw Error("expected an integer, got '" + text + "'");
  return {false, v};
}

int64_t SampleCount::resolve(int64_t n_samples) const {
  if (!is_fraction) return static_cast<int64_t>(value);
  return static_cast<int64_t>(std::ceil(value * static_cast<double>(n_samples)));
}

SampleCount get_sample_count(ParamMap& params, const std::string& key, SampleCount fallback) {
  if (!params.has(key)) return fallback;
  const std::string text = params.get_string(key, "");
  try {
    return SampleCount::parse(text);
  } catch (const Error& e) {
    throw Error("parameter " + key + ": " + e.what());
  }
}

MaxFeatures get_max_features(ParamMap& params, const std::string& key, MaxFeatures fallback) {
  if (!params.has(key)) return fallback;
  return MaxFeatures::parse(params.get_string(key, ""));
}

TreeCriterion parse_tree_criterion(const std::string& name, bool classification) {
  if (classification) {
    if (name == "gini") return TreeCriterion::Gini;
    if (name == "entropy" || name == "log_loss") return TreeCriterion::Entropy;
    throw Error("criterion=" + name + ": expected gini, entropy or log_loss");
  }
  if (name == "squared_error") return TreeCriterion::SquaredError;
  throw Error("criterion=" + name + ": only squared_error is supported for regression");
}

// ---- TreeTrainingSet

namespace {
void fill_columns(const Matrix& x, TreeTrainingSet& set) {
  if (x.rows >= INT32_MAX) throw Error("tree: too many samples (limit 2^31 - 1)");
  set.n_samples = x.rows;
  set.n_features = x.cols;
  set.columns.resize(static_cast<size_t>(x.rows * x.cols));
  for (int64_t r = 0; r < x.rows; ++r) {
    const double* row = x.row(r);
    for (int64_t f = 0; f < x.cols; ++f) {
      set.columns[static_cast<size_t>(f * x.rows + r)] = static_cast<float>(row[f]);
    }
  }
}
}  // namespace

TreeTrainingSet TreeTrainingSet::classification(const Matrix& x, const Vector& y,
                                                int64_t n_classes) {
  TreeTrainingSet set;
  fill_columns(x, set);
  set.n_classes = n_classes;
  set.labels.resize(y.size());
  for (size_t i = 0; i < y.size(); ++i) set.labels[i] = static_cast<int32_t>(y[i]);
  return set;
}

TreeTrainingSet TreeTrainingSet::regression(const Matrix& x, const Vector& y) {
  TreeTrainingSet set;
  fill_columns(x, set);
  set.targets = y;
  return set;
}

// ---- TreeStructure

int64_t TreeStructure::depth() const {
  if (nodes.empty()) return 0;
  std::vector<int64_t> depth_of(nodes.size(), 0);
  int64_t deepest = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {  // parents precede children
    deepest = std::max(deepest, depth_of[i]);
    if (!nodes[i].is_leaf()) {
      depth_of[static_cast<size_t>(nodes[i].left)] = depth_of[i] + 1;
      depth_of[static_cast<size_t>(nodes[i].right)] = depth_of[i] + 1;
    }
  }
  return deepest;
}

int64_t TreeStructure::leaf_count() const {
  return std::count_if(nodes.begin(), nodes.end(), [](const TreeNode& n) { return n.is_leaf(); });
}

void TreeStructure::pack() {
  packed.resize(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const TreeNode& n = nodes[i];
    float down = static_cast<float>(n.threshold);  // nearest; step down if it rounded up
    if (static_cast<double>(down) > n.threshold) {
      down = std::nextafter(down, -std::numeric_limits<float>::infinity());
    }
    const auto self = static_cast<int32_t>(i);
    packed[i] = n.is_leaf() ? PackedTreeNode{{self, self}, 0, 0.0f}
                            : PackedTreeNode{{n.left, n.right}, n.feature, down};
  }
}

void TreeStructure::find_leaves_packed(const float* rows, int64_t n_rows, int64_t stride,
                                       int32_t* leaves) const {
  if (packed.empty()) {
    for (int64_t r = 0; r < n_rows; ++r)
      leaves[r] = static_cast<int32_t>(find_leaf(rows + r * stride));
    return;
  }
  constexpr int64_t kLanes = 8;
  const PackedTreeNode* p = packed.data();
  int64_t r = 0;
  for (; r + kLanes <= n_rows; r += kLanes) {
    int32_t at[kLanes] = {};
    const float* x = rows + r * stride;
    for (;;) {
      int32_t moved = 0;
      for (int64_t j = 0; j < kLanes; ++j) {
        const PackedTreeNode& n = p[at[j]];
        const int32_t next = n.child[!(x[j * stride + n.feature] <= n.threshold_down)];
        moved |= next ^ at[j];
        at[j] = next;
      }
      if (moved == 0) break;
    }
    std::copy_n(at, kLanes, leaves + r);
  }
  for (; r < n_rows; ++r) leaves[r] = static_cast<int32_t>(find_leaf_packed(rows + r * stride));
}

void TreeStructure::save(ArchiveWriter& out) const {
  out.u64(nodes.size());
  for (const TreeNode& n : nodes) {
    out.i64(n.left);
    out.i64(n.right);
    out.i64(n.feature);
    out.f64(n.threshold);
    out.f64(n.impurity);
    out.i64(n.n_samples);
    out.f64(n.weighted_n_samples);
  }
  out.vec(values);
}

TreeStructure TreeStructure::load(ArchiveReader& in, int64_t n_features, int64_t n_values) {
  constexpr size_t kNodeBytes = size_t{7} * 8;
  TreeStructure tree;
  tree.n_features = n_features;
  tree.n_values = n_values;
  const uint64_t count = in.count(kNodeBytes);
  if (count == 0 || count >= INT32_MAX) throw Error("model file is corrupt (tree node count)");
  tree.nodes.resize(count);
  const auto n = static_cast<int64_t>(count);
  for (int64_t i = 0; i < n; ++i) {
    TreeNode& node = tree.nodes[static_cast<size_t>(i)];
    const int64_t left = in.i64(), right = in.i64(), feature = in.i64();
    node.threshold = in.f64();
    node.impurity = in.f64();
    node.n_samples = in.i64();
    node.weighted_n_samples = in.f64();
    const bool leaf = left == -1 && right == -1;
    // Children strictly after their parent: traversal always terminates inside the array.
    const bool internal = left > i && left < n && right > i && right < n && left != right &&
                          feature >= 0 && feature < n_features && !std::isnan(node.threshold);
    if (!leaf && !internal) {
      throw Error("model file is corrupt (tree node " + std::to_string(i) + ")");
    }
    node.left = static_cast<int32_t>(left);
    node.right = static_cast<int32_t>(right);
    node.feature = leaf ? -1 : static_cast<int32_t>(feature);
  }
  tree.values = in.vec();
  if (tree.values.size() != count * static_cast<uint64_t>(n_values)) {
    throw Error("model file is corrupt (tree values)");
  }
  for (double v : tree.values) {
    if (!std::isfinite(v)) throw Error("model file is corrupt (non-finite tree value)");
  }
  tree.pack();
  return tree;
}

// ---- decision tree parameters

void DecisionTreeParams::validate(bool classification, std::string_view name) const {
  const std::string who = !name.empty()    ? std::string(name)
                          : classification ? "DecisionTreeClassifier"
                                           : "DecisionTreeRegressor";
  try {
    parse_tree_criterion(
        criterion.empty() ? (classification ? "gini" : "squared_error") : criterion,
        classification);
  } catch (const Error& e) {
    throw Error(who + ": " + e.what());
  }
  if (splitter != "best" && splitter != "random") {
    throw Error(who + ": splitter must be best or random, got " + splitter);
  }
  if (max_depth && *max_depth < 1) throw Error(who + ": max_depth must be >= 1 or None");
  if (min_samples_split.is_fraction ? !(min_samples_split.value > 0 && min_samples_split.value <= 1)
                                    : min_samples_split.value < 2) {
    throw Error(who + ": min_samples_split must be an int >= 2 or a float in (0, 1]");
  }
  if (min_samples_leaf.is_fraction ? !(min_samples_leaf.value > 0 && min_samples_leaf.value < 1)
                                   : min_samples_leaf.value < 1) {
    throw Error(who + ": min_samples_leaf must be an int >= 1 or a float in (0, 1)");
  }
  if (!(min_impurity_decrease >= 0)) throw Error(who + ": min_impurity_decrease must be >= 0");
  max_features.validate(who);
  if (max_leaf_nodes && *max_leaf_nodes < 2) throw Error(who + ": max_leaf_nodes must be >= 2");
}

TreeGrowth resolve_tree_growth(const DecisionTreeParams& p, bool classification, int64_t n_samples,
                               int64_t n_features) {
  TreeGrowth g;
  g.criterion = parse_tree_criterion(
      p.criterion.empty() ? (classification ? "gini" : "squared_error") : p.criterion,
      classification);
  g.splitter = p.splitter == "random" ? SplitStrategy::Random : SplitStrategy::Best;
  g.max_depth = p.max_depth.value_or(INT64_MAX);
  g.min_samples_leaf = std::max<int64_t>(1, p.min_samples_leaf.resolve(n_samples));
  g.min_samples_split = std::max<int64_t>(2, p.min_samples_split.resolve(n_samples));
  g.min_samples_split = std::max(g.min_samples_split, 2 * g.min_samples_leaf);
  g.min_impurity_decrease = p.min_impurity_decrease;
  g.max_features = p.max_features.resolve(n_features);
  g.max_leaf_nodes = p.max_leaf_nodes.value_or(0);
  return g;
}

namespace {
// Common header of saved single trees.
void save_tree_header(ArchiveWriter& out, const TreeStructure& tree) {
  out.i64(tree.n_features);
  out.i64(tree.n_values);
  tree.save(out);
}
TreeStructure load_tree_with_header(ArchiveReader& in, bool classification) {
  const int64_t n_features = in.i64();
  const int64_t n_values = in.i64();
  if (n_features < 1 || n_features > (int64_t{1} << 31)) {
    throw Error("model file is corrupt (feature count)");
  }
  if (classification ? (n_values < 2 || n_values > (int64_t{1} << 24)) : n_values != 1) {
    throw Error("model file is corrupt (output count)");
  }
  return TreeStructure::load(in, n_features, n_values);
}
}  // namespace

// ---- DecisionTreeClassifier

DecisionTreeClassifier::DecisionTreeClassifier(DecisionTreeParams params)
    : params_(std::move(params)) {
  if (params_.criterion.empty()) params_.criterion = "gini";
  params_.validate(true);
}

FittedDecisionTreeClassifier DecisionTreeClassifier::fit(const Matrix& x, const Vector& y) const {
  check_fit_input(x, &y, "DecisionTreeClassifier");
  const int64_t k = count_classes(y, "DecisionTreeClassifier");
  const TreeTrainingSet data = TreeTrainingSet::classification(x, y, k);
  const TreeGrowth growth = resolve_tree_growth(params_, true, x.rows, x.cols);
  return {grow_tree(data, {}, growth, resolve_random_state(params_.random_state)), k};
}

Matrix FittedDecisionTreeClassifier::predict_proba(const Matrix& x) const {
  check_predict_input(x, n_features(), "DecisionTreeClassifier");
  std::vector<float> row(static_cast<size_t>(x.cols));
  Matrix out(x.rows, n_classes_);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t f = 0; f < x.cols; ++f) row[static_cast<size_t>(f)] = static_cast<float>(x(r, f));
    const double* v = tree_.leaf_values(tree_.find_leaf_packed(row.data()));
    double total = 0;
    for (int64_t c = 0; c < n_classes_; ++c) total += v[c];
    for (int64_t c = 0; c < n_classes_; ++c) out(r, c) = total > 0 ? v[c] / total : 0.0;
  }
  return out;
}

Vector FittedDecisionTreeClassifier::predict(const Matrix& x) const {
  return argmax_rows(predict_proba(x));
}

void FittedDecisionTreeClassifier::save(ArchiveWriter& out) const {
  save_tree_header(out, tree_);
}

FittedDecisionTreeClassifier FittedDecisionTreeClassifier::load(ArchiveReader& in) {
  TreeStructure tree = load_tree_with_header(in, true);
  const int64_t k = tree.n_values;
  return {std::move(tree), k};
}

// ---- DecisionTreeRegressor

DecisionTreeRegressor::DecisionTreeRegressor(DecisionTreeParams params)
    : params_(std::move(params)) {
  if (params_.criterion.empty()) params_.criterion = "squared_error";
  params_.validate(false);
}

FittedDecisionTreeRegressor DecisionTreeRegressor::fit(const Matrix& x, const Vector& y) const {
  check_fit_input(x, &y, "DecisionTreeRegressor");
  const TreeTrainingSet data = TreeTrainingSet::regression(x, y);
  const TreeGrowth growth = resolve_tree_growth(params_, false, x.rows, x.cols);
  return FittedDecisionTreeRegressor(
      grow_tree(data, {}, growth, resolve_random_state(params_.random_state)));
}

Vector FittedDecisionTreeRegressor::predict(const Matrix& x) const {
  check_predict_input(x, n_features(), "DecisionTreeRegressor");
  std::vector<float> row(static_cast<size_t>(x.cols));
  Vector out(static_cast<size_t>(x.rows));
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t f = 0; f < x.cols; ++f) row[static_cast<size_t>(f)] = static_cast<float>(x(r, f));
    out[static_cast<size_t>(r)] = tree_.leaf_values(tree_.find_leaf_packed(row.data()))[0];
  }
  return out;
}

void FittedDecisionTreeRegressor::save(ArchiveWriter& out) const {
  save_tree_header(out, tree_);
}

FittedDecisionTreeRegressor FittedDecisionTreeRegressor::load(ArchiveReader& in) {
  return FittedDecisionTreeRegressor(load_tree_with_header(in, false));
}

// ---- registry

namespace {

DecisionTreeParams parse_tree_params(ParamMap& params, bool classification) {
  DecisionTreeParams p;
  p.criterion = params.get_string("criterion", classification ? "gini" : "squared_error");
  p.splitter = params.get_string("splitter", "best");
  p.max_depth = params.get_optional_int("max_depth", std::nullopt);
  p.min_samples_split = get_sample_count(params, "min_samples_split", SampleCount::count(2));
  p.min_samples_leaf = get_sample_count(params, "min_samples_leaf", SampleCount::count(1));
  p.min_impurity_decrease = params.get_double("min_impurity_decrease", 0.0);
  p.max_features = get_max_features(params, "max_features", MaxFeatures{});
  p.max_leaf_nodes = params.get_optional_int("max_leaf_nodes", std::nullopt);
  p.random_state = params.get_optional_int("random_state", std::nullopt);
  return p;
}

const AlgorithmRegistrar kClassifier{estimator_algorithm(
    "DecisionTreeClassifier", Task::Classification,
    [](ParamMap& p) { return DecisionTreeClassifier(parse_tree_params(p, true)); })};
const AlgorithmRegistrar kRegressor{estimator_algorithm(
    "DecisionTreeRegressor", Task::Regression,
    [](ParamMap& p) { return DecisionTreeRegressor(parse_tree_params(p, false)); })};

}  // namespace
}  // namespace ember::ml
