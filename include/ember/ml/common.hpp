#pragma once
// Shared vocabulary of the classical ML library: dense data, parameters given as strings,
// a versioned binary archive for save/load, and a registry of algorithms by their
// scikit-learn class name (used by the CLI and the benchmarks).
//
// Convention for every estimator: `Params` is a plain struct validated by `validate()`;
// `Estimator{params}.fit(X, y)` returns a distinct fitted-model type, so predicting before
// fitting does not compile. Classifiers take y as class indices 0..K-1 (stored as doubles).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"

namespace ember::ml {

using Vector = std::vector<double>;

// Row-major dense matrix of doubles.
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> data;

  Matrix() = default;
  Matrix(int64_t r, int64_t c, double fill = 0.0)
      : rows(r), cols(c), data(static_cast<size_t>(r * c), fill) {}

  double& operator()(int64_t r, int64_t c) { return data[static_cast<size_t>(r * cols + c)]; }
  double operator()(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
  double* row(int64_t r) { return data.data() + r * cols; }
  const double* row(int64_t r) const { return data.data() + r * cols; }
  std::span<const double> row_span(int64_t r) const { return {row(r), static_cast<size_t>(cols)}; }
};

// Selects rows `index` of X (for CV splits and bootstraps).
Matrix take_rows(const Matrix& x, std::span<const int64_t> index);
Vector take(const Vector& v, std::span<const int64_t> index);

// Throws ember::Error unless X is non-empty, finite, and y (if given) has X.rows entries.
void check_fit_input(const Matrix& x, const Vector* y, std::string_view who);
// The targets a supervised fit was given; throws if it was given none (registry fits of
// supervised algorithms receive y as a pointer that unsupervised ones leave null).
const Vector& require_target(const Vector* y, std::string_view who);
// Throws unless X is finite and has `n_features` columns.
void check_predict_input(const Matrix& x, int64_t n_features, std::string_view who);
// The finiteness half of check_predict_input, done after the fact for predictions whose outputs
// for row i are sums of products with every value of X's row i (x.w, x.c for each c): a NaN or
// infinity anywhere in the row makes each of them NaN or infinite (0 * inf is NaN, and a
// non-finite term keeps the sum non-finite), so finite outputs prove finite input and the scan
// of X is only needed when an output is not finite. It then throws as check_predict_input does,
// or returns if X is finite after all (an output that overflowed). Check the shape first with
// check_predict_shape.
void check_predict_shape(const Matrix& x, int64_t n_features, std::string_view who);
void check_predict_outputs(const Matrix& x, std::span<const double> outputs, std::string_view who);
// Number of classes in class-index targets; throws if any y is not an integer in [0, K) or
// fewer than two classes are present.
int64_t count_classes(const Vector& y, std::string_view who);

// Index of each row's largest value (the first of equal ones), as a double: a classifier's
// predicted classes from its probabilities or scores, as scikit-learn's argmax.
Vector argmax_rows(const Matrix& scores);

// Parameters as the CLI gives them: scikit-learn names mapped to string values. Typed getters
// parse and validate; `finish()` throws naming any key that no getter consumed.
class ParamMap {
 public:
  ParamMap() = default;
  explicit ParamMap(std::map<std::string, std::string> values) : values_(std::move(values)) {}
  // Parses "key=value" items; throws on a malformed item or a repeated key.
  static ParamMap parse(std::span<const std::string> items);

  double get_double(const std::string& key, double fallback);
  int64_t get_int(const std::string& key, int64_t fallback);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_string(const std::string& key, const std::string& fallback);
  // "None" (or absent) -> nullopt.
  std::optional<int64_t> get_optional_int(const std::string& key, std::optional<int64_t> fallback);
  std::optional<double> get_optional_double(const std::string& key, std::optional<double> fallback);
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  void finish(std::string_view algorithm) const;
  // A copy with `extra` added (overriding equal keys), nothing marked as consumed.
  ParamMap merged(const std::map<std::string, std::string>& extra) const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  const std::string* take(const std::string& key);
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
};

// Little-endian binary archive. Every file starts with a magic and a format version; readers
// are bounds-checked and throw ember::Error on truncated or corrupt input.
class ArchiveWriter {
 public:
  void u64(uint64_t v);
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v);
  void str(std::string_view s);
  void vec(std::span<const double> v);
  void ivec(std::span<const int64_t> v);
  void matrix(const Matrix& m);
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class ArchiveReader {
 public:
  explicit ArchiveReader(std::string_view bytes) : bytes_(bytes) {}
  uint64_t u64();
  int64_t i64() { return static_cast<int64_t>(u64()); }
  double f64();
  std::string str();
  Vector vec();
  std::vector<int64_t> ivec();
  Matrix matrix();
  // Reads a count and checks it is plausible for the bytes left (each item >= item_bytes).
  uint64_t count(size_t item_bytes);
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  std::string_view take(size_t n);
  std::string_view bytes_;
  size_t pos_ = 0;
};

enum class Task { Classification, Regression, Clustering, Transform };

// A fitted model behind a uniform interface, for the CLI, cross-validation and benchmarks.
class FittedModel {
 public:
  virtual ~FittedModel() = default;
  virtual std::string algorithm() const = 0;
  virtual int64_t n_features() const = 0;
  // Classification: class indices; regression: values; clustering: cluster ids.
  virtual Vector predict(const Matrix& x) const = 0;
  // Rows of class probabilities; throws if the algorithm has none.
  virtual Matrix predict_proba(const Matrix& x) const;
  // Transformers (scalers, PCA, ...): the transformed data.
  virtual Matrix transform(const Matrix& x) const;
  virtual void save(ArchiveWriter& out) const = 0;
};

struct Algorithm {
  std::string name;  // scikit-learn class name
  Task task;
  bool supports_proba = false;
  // Validates params (consuming them from the map), fits, returns the model. y is null for
  // unsupervised algorithms. Must not leave unknown keys unconsumed (call params.finish()).
  std::function<std::unique_ptr<FittedModel>(ParamMap& params, const Matrix& x, const Vector* y)>
      fit;
  std::function<std::unique_ptr<FittedModel>(ArchiveReader& in)> load;
};

const Algorithm& find_algorithm(std::string_view name);  // throws listing known names
std::vector<std::string> algorithm_names();

// Each algorithm's .cpp defines `static AlgorithmRegistrar r{{...}};`. ember_ml is an OBJECT
// library so these registrars are always linked.
struct AlgorithmRegistrar {
  explicit AlgorithmRegistrar(Algorithm algorithm);
};

// Wraps a typed fitted model as a FittedModel (for registrars). Forwards predict_proba and
// transform when the typed model has them; otherwise the FittedModel defaults throw.
template <typename Fitted>
class ModelAdapter : public FittedModel {
 public:
  ModelAdapter(std::string name, Fitted model) : name_(std::move(name)), model_(std::move(model)) {}
  std::string algorithm() const override { return name_; }
  int64_t n_features() const override { return model_.n_features(); }
  Vector predict(const Matrix& x) const override {
    if constexpr (requires { model_.predict(x); }) {
      return model_.predict(x);
    } else {
      throw Error(name_ + " is a transformer and has no predict");
    }
  }
  Matrix predict_proba(const Matrix& x) const override {
    if constexpr (requires { model_.predict_proba(x); }) {
      return model_.predict_proba(x);
    } else {
      return FittedModel::predict_proba(x);
    }
  }
  Matrix transform(const Matrix& x) const override {
    if constexpr (requires { model_.transform(x); }) {
      return model_.transform(x);
    } else {
      return FittedModel::transform(x);
    }
  }
  void save(ArchiveWriter& out) const override { model_.save(out); }
  const Fitted& model() const { return model_; }

 private:
  std::string name_;
  Fitted model_;
};

// Loader for Algorithm::load of a ModelAdapter<Fitted> (Fitted has a static load(in)).
template <typename Fitted>
std::function<std::unique_ptr<FittedModel>(ArchiveReader&)> adapter_loader(std::string name) {
  return [name](ArchiveReader& in) -> std::unique_ptr<FittedModel> {
    return std::make_unique<ModelAdapter<Fitted>>(name, Fitted::load(in));
  };
}

namespace detail {
// Fits with the target when the estimator learns from one (classifiers, regressors).
template <typename Estimator>
auto fit_estimator(const Estimator& est, const Matrix& x, const Vector* y, std::string_view who) {
  if constexpr (requires(const Matrix& m, const Vector& v) { est.fit(m, v); }) {
    return est.fit(x, require_target(y, who));
  } else {
    return est.fit(x);
  }
}
}  // namespace detail

// The registry entry of an estimator: `parse(params)` reads its parameters and returns it
// configured; the entry then rejects parameters left unread, fits, and wraps the fitted model in
// a ModelAdapter. It provides probabilities when the fitted type has predict_proba.
template <typename Parse>
Algorithm estimator_algorithm(std::string name, Task task, Parse parse) {
  using Estimator = std::invoke_result_t<Parse&, ParamMap&>;
  using Fitted =
      decltype(detail::fit_estimator(std::declval<const Estimator&>(), Matrix{}, nullptr, name));
  constexpr bool has_proba = requires(const Fitted& f, const Matrix& x) {
    f.predict_proba(x);
  };
  return {name, task, has_proba,
          [name, parse](ParamMap& params, const Matrix& x,
                        const Vector* y) -> std::unique_ptr<FittedModel> {
            const Estimator est = parse(params);
            params.finish(name);
            return std::make_unique<ModelAdapter<Fitted>>(name,
                                                          detail::fit_estimator(est, x, y, name));
          },
          adapter_loader<Fitted>(name)};
}

// Whole-file save/load with magic "EMBERML", version and algorithm name.
std::string save_model(const FittedModel& model);
std::unique_ptr<FittedModel> load_model(std::string_view bytes);

}  // namespace ember::ml
