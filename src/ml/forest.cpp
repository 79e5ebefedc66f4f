// Random forests and extra trees: bootstrap weights, trees grown in parallel from per-tree seeds,
// predictions averaged over trees in row blocks.
#include <algorithm>
#include <cmath>

#include "ember/base/thread_pool.hpp"
#include "ember/ml/ensemble.hpp"

namespace ember::ml {

void ForestParams::validate(bool classification, std::string_view who) const {
  const std::string name(who);
  if (n_estimators < 1) throw Error(name + ": n_estimators must be >= 1");
  if (n_estimators > 100000) throw Error(name + ": n_estimators must be <= 100000");
  if (max_samples) {
    if (max_samples->is_fraction ? !(max_samples->value > 0 && max_samples->value <= 1)
                                 : max_samples->value < 1) {
      throw Error(name + ": max_samples must be None, an int >= 1 or a float in (0, 1]");
    }
    if (bootstrap.has_value() && !*bootstrap) {
      throw Error(name + ": max_samples needs bootstrap=True");
    }
  }
  DecisionTreeParams tree;
  tree.criterion = criterion;
  tree.max_depth = max_depth;
  tree.min_samples_split = min_samples_split;
  tree.min_samples_leaf = min_samples_leaf;
  tree.min_impurity_decrease = min_impurity_decrease;
  if (max_features) tree.max_features = *max_features;
  tree.max_leaf_nodes = max_leaf_nodes;
  tree.validate(classification, name);
}

namespace {

struct ForestPlan {
  TreeGrowth growth;
  bool bootstrap = true;
  int64_t bootstrap_size = 0;
  uint64_t seed = 0;
};

ForestPlan plan_forest(ForestKind kind, const ForestParams& p, bool classification,
                       int64_t n_samples, int64_t n_features) {
  DecisionTreeParams tree;
  tree.criterion = p.criterion.empty() ? (classification ? "gini" : "squared_error") : p.criterion;
  tree.splitter = kind == ForestKind::ExtraTrees ? "random" : "best";
  tree.max_depth = p.max_depth;
  tree.min_samples_split = p.min_samples_split;
  tree.min_samples_leaf = p.min_samples_leaf;
  tree.min_impurity_decrease = p.min_impurity_decrease;
  tree.max_features =
      p.max_features.value_or(classification ? MaxFeatures{MaxFeatures::Kind::Sqrt, 0}
                                             : MaxFeatures{MaxFeatures::Kind::All, 0});
  tree.max_leaf_nodes = p.max_leaf_nodes;
  ForestPlan plan;
  plan.growth = resolve_tree_growth(tree, classification, n_samples, n_features);
  plan.bootstrap = p.bootstrap.value_or(kind == ForestKind::RandomForest);
  plan.bootstrap_size = n_samples;
  if (p.max_samples) {
    if (p.max_samples->is_fraction) {
      plan.bootstrap_size =
          std::max<int64_t>(1, std::llround(p.max_samples->value * static_cast<double>(n_samples)));
    } else {
      plan.bootstrap_size = static_cast<int64_t>(p.max_samples->value);
      if (plan.bootstrap_size > n_samples) {
        throw Error("max_samples=" + std::to_string(plan.bootstrap_size) + " exceeds the " +
                    std::to_string(n_samples) + " samples");
      }
    }
  }
  plan.seed = resolve_random_state(p.random_state);
  return plan;
}

std::vector<TreeStructure> grow_forest(const TreeTrainingSet& data, const ForestPlan& plan,
                                       int64_t n_estimators) {
  std::vector<TreeStructure> trees(static_cast<size_t>(n_estimators));
  parallel_for(0, n_estimators, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> weights;
    for (int64_t t = begin; t < end; ++t) {
      const uint64_t seed = derive_seed(plan.seed, static_cast<uint64_t>(t));
      weights.clear();
      if (plan.bootstrap) {
        // Bootstrap sample as per-sample counts, drawn from its own stream of the tree's seed.
        TreeRng draw(derive_seed(seed, 0));
        weights.assign(static_cast<size_t>(data.n_samples), 0.0);
        for (int64_t i = 0; i < plan.bootstrap_size; ++i) {
          weights[draw.below(static_cast<uint64_t>(data.n_samples))] += 1.0;
        }
      }
      trees[static_cast<size_t>(t)] = grow_tree(data, weights, plan.growth, seed);
    }
  });
  return trees;
}

// Runs fn(first_row, rows, float_rows) over blocks of rows converted to float32 (the trees were
// grown on float32 features), in parallel. Blocks are large so that each tree, visited for all
// rows of a block before the next, stays in cache.
template <typename Fn>
void for_float_row_blocks(const Matrix& x, Fn&& fn) {
  const int64_t threads = default_thread_pool().num_threads();
  const int64_t block = std::clamp<int64_t>((x.rows + 2 * threads - 1) / (2 * threads), 256, 8192);
  const int64_t n_blocks = (x.rows + block - 1) / block;
  parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> rows(static_cast<size_t>(block * x.cols));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t first = b * block;
      const int64_t count = std::min(block, x.rows - first);
      const double* src = x.row(first);
      for (int64_t i = 0; i < count * x.cols; ++i)
        rows[static_cast<size_t>(i)] = static_cast<float>(src[i]);
      fn(first, count, rows.data());
    }
  });
}

void save_trees(ArchiveWriter& out, const std::vector<TreeStructure>& trees) {
  out.u64(trees.size());
  for (const TreeStructure& t : trees) t.save(out);
}

std::vector<TreeStructure> load_trees(ArchiveReader& in, int64_t n_features, int64_t n_values) {
  const uint64_t count = in.count(8 + 7 * 8 + 8);  // smallest tree: one node, its values
  if (count == 0) throw Error("model file is corrupt (forest has no trees)");
  std::vector<TreeStructure> trees;
  trees.reserve(count);
  for (uint64_t i = 0; i < count; ++i)
    trees.push_back(TreeStructure::load(in, n_features, n_values));
  return trees;
}

void load_shape(ArchiveReader& in, int64_t& n_features, int64_t& n_values, bool classification) {
  n_features = in.i64();
  n_values = in.i64();
  if (n_features < 1 || n_features > (int64_t{1} << 31)) {
    throw Error("model file is corrupt (feature count)");
  }
  if (classification ? (n_values < 2 || n_values > (int64_t{1} << 24)) : n_values != 1) {
    throw Error("model file is corrupt (output count)");
  }
}

}  // namespace

// ---- classifier

ForestClassifier::ForestClassifier(ForestKind kind, ForestParams params)
    : kind_(kind), params_(std::move(params)) {
  params_.validate(
      true, kind_ == ForestKind::RandomForest ? "RandomForestClassifier" : "ExtraTreesClassifier");
}

FittedForestClassifier ForestClassifier::fit(const Matrix& x, const Vector& y) const {
  const char* who =
      kind_ == ForestKind::RandomForest ? "RandomForestClassifier" : "ExtraTreesClassifier";
  check_fit_input(x, &y, who);
  const int64_t k = count_classes(y, who);
  const ForestPlan plan = plan_forest(kind_, params_, true, x.rows, x.cols);
  const TreeTrainingSet data = TreeTrainingSet::classification(x, y, k);
  return {grow_forest(data, plan, params_.n_estimators), x.cols, k};
}

Matrix FittedForestClassifier::predict_proba(const Matrix& x) const {
  check_predict_input(x, n_features_, "forest classifier");
  Matrix out(x.rows, n_classes_);
  const double scale = 1.0 / static_cast<double>(trees_.size());
  for_float_row_blocks(x, [&](int64_t first, int64_t count, const float* rows) {
    std::vector<int32_t> leaves(static_cast<size_t>(count));
    for (const TreeStructure& tree : trees_) {
      tree.find_leaves_packed(rows, count, x.cols, leaves.data());
      for (int64_t i = 0; i < count; ++i) {
        const double* v = tree.leaf_values(leaves[static_cast<size_t>(i)]);
        double total = 0;
        for (int64_t c = 0; c < n_classes_; ++c) total += v[c];
        const double norm = total > 0 ? scale / total : 0.0;
        double* o = out.row(first + i);
        for (int64_t c = 0; c < n_classes_; ++c) o[c] += v[c] * norm;
      }
    }
  });
  return out;
}

Vector FittedForestClassifier::predict(const Matrix& x) const {
  const Matrix proba = predict_proba(x);
  Vector out(static_cast<size_t>(x.rows));
  for (int64_t r = 0; r < x.rows; ++r) {
    const double* p = proba.row(r);
    out[static_cast<size_t>(r)] = static_cast<double>(std::max_element(p, p + proba.cols) - p);
  }
  return out;
}

void FittedForestClassifier::save(ArchiveWriter& out) const {
  out.i64(n_features_);
  out.i64(n_classes_);
  save_trees(out, trees_);
}

FittedForestClassifier FittedForestClassifier::load(ArchiveReader& in) {
  int64_t n_features = 0, k = 0;
  load_shape(in, n_features, k, true);
  return {load_trees(in, n_features, k), n_features, k};
}

// ---- regressor

ForestRegressor::ForestRegressor(ForestKind kind, ForestParams params)
    : kind_(kind), params_(std::move(params)) {
  params_.validate(
      false, kind_ == ForestKind::RandomForest ? "RandomForestRegressor" : "ExtraTreesRegressor");
}

FittedForestRegressor ForestRegressor::fit(const Matrix& x, const Vector& y) const {
  const char* who =
      kind_ == ForestKind::RandomForest ? "RandomForestRegressor" : "ExtraTreesRegressor";
  check_fit_input(x, &y, who);
  const ForestPlan plan = plan_forest(kind_, params_, false, x.rows, x.cols);
  const TreeTrainingSet data = TreeTrainingSet::regression(x, y);
  return {grow_forest(data, plan, params_.n_estimators), x.cols};
}

Vector FittedForestRegressor::predict(const Matrix& x) const {
  check_predict_input(x, n_features_, "forest regressor");
  Vector out(static_cast<size_t>(x.rows), 0.0);
  const double scale = 1.0 / static_cast<double>(trees_.size());
  for_float_row_blocks(x, [&](int64_t first, int64_t count, const float* rows) {
    std::vector<int32_t> leaves(static_cast<size_t>(count));
    for (const TreeStructure& tree : trees_) {
      tree.find_leaves_packed(rows, count, x.cols, leaves.data());
      for (int64_t i = 0; i < count; ++i) {
        out[static_cast<size_t>(first + i)] +=
            tree.leaf_values(leaves[static_cast<size_t>(i)])[0] * scale;
      }
    }
  });
  return out;
}

void FittedForestRegressor::save(ArchiveWriter& out) const {
  out.i64(n_features_);
  out.i64(1);
  save_trees(out, trees_);
}

FittedForestRegressor FittedForestRegressor::load(ArchiveReader& in) {
  int64_t n_features = 0, n_values = 0;
  load_shape(in, n_features, n_values, false);
  return {load_trees(in, n_features, 1), n_features};
}

// ---- registry

namespace {

ForestParams parse_forest_params(ParamMap& params) {
  ForestParams p;
  p.n_estimators = params.get_int("n_estimators", 100);
  p.criterion = params.get_string("criterion", "");
  p.max_depth = params.get_optional_int("max_depth", std::nullopt);
  p.min_samples_split = get_sample_count(params, "min_samples_split", SampleCount::count(2));
  p.min_samples_leaf = get_sample_count(params, "min_samples_leaf", SampleCount::count(1));
  p.min_impurity_decrease = params.get_double("min_impurity_decrease", 0.0);
  if (params.has("max_features")) p.max_features = get_max_features(params, "max_features", {});
  p.max_leaf_nodes = params.get_optional_int("max_leaf_nodes", std::nullopt);
  if (params.has("bootstrap")) p.bootstrap = params.get_bool("bootstrap", true);
  if (params.has("max_samples") && params.get_string("max_samples", "") != "None") {
    p.max_samples = get_sample_count(params, "max_samples", SampleCount::count(1));
  }
  p.random_state = params.get_optional_int("random_state", std::nullopt);
  // Threads come from the process-wide pool (EMBER_NUM_THREADS); n_jobs is accepted and ignored.
  params.get_optional_int("n_jobs", std::nullopt);
  return p;
}

Algorithm classifier_algorithm(const std::string& name, ForestKind kind) {
  return {name, Task::Classification, true,
          [name, kind](ParamMap& params, const Matrix& x,
                       const Vector* y) -> std::unique_ptr<FittedModel> {
            ForestParams p = parse_forest_params(params);
            params.finish(name);
            require_target(y, name);
            return std::make_unique<ModelAdapter<FittedForestClassifier>>(
                name, ForestClassifier(kind, p).fit(x, *y));
          },
          adapter_loader<FittedForestClassifier>(name)};
}

Algorithm regressor_algorithm(const std::string& name, ForestKind kind) {
  return {name, Task::Regression, false,
          [name, kind](ParamMap& params, const Matrix& x,
                       const Vector* y) -> std::unique_ptr<FittedModel> {
            ForestParams p = parse_forest_params(params);
            params.finish(name);
            require_target(y, name);
            return std::make_unique<ModelAdapter<FittedForestRegressor>>(
                name, ForestRegressor(kind, p).fit(x, *y));
          },
          adapter_loader<FittedForestRegressor>(name)};
}

const AlgorithmRegistrar kRandomForestClassifier{
    classifier_algorithm("RandomForestClassifier", ForestKind::RandomForest)};
const AlgorithmRegistrar kExtraTreesClassifier{
    classifier_algorithm("ExtraTreesClassifier", ForestKind::ExtraTrees)};
const AlgorithmRegistrar kRandomForestRegressor{
    regressor_algorithm("RandomForestRegressor", ForestKind::RandomForest)};
const AlgorithmRegistrar kExtraTreesRegressor{
    regressor_algorithm("ExtraTreesRegressor", ForestKind::ExtraTrees)};

}  // namespace
}  // namespace ember::ml
