#include "ember/ml/common.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace ember::ml {

Matrix take_rows(const Matrix& x, std::span<const int64_t> index) {
  Matrix out(static_cast<int64_t>(index.size()), x.cols);
  for (size_t i = 0; i < index.size(); ++i) {
    std::copy_n(x.row(index[i]), x.cols, out.row(static_cast<int64_t>(i)));
  }
  return out;
}

Vector take(const Vector& v, std::span<const int64_t> index) {
  Vector out(index.size());
  for (size_t i = 0; i < index.size(); ++i) out[i] = v[static_cast<size_t>(index[i])];
  return out;
}

void check_fit_input(const Matrix& x, const Vector* y, std::string_view who) {
  if (x.rows <= 0 || x.cols <= 0) throw Error(std::string(who) + ": empty training data");
  if (static_cast<int64_t>(x.data.size()) != x.rows * x.cols) {
    throw Error(std::string(who) + ": matrix storage does not match its shape");
  }
  for (size_t i = 0; i < x.data.size(); ++i) {
    if (!std::isfinite(x.data[i])) {
      throw Error(std::string(who) + ": non-finite value in X at row " +
                  std::to_string(static_cast<int64_t>(i) / x.cols) + ", column " +
                  std::to_string(static_cast<int64_t>(i) % x.cols));
    }
  }
  if (y != nullptr) {
    if (static_cast<int64_t>(y->size()) != x.rows) {
      throw Error(std::string(who) + ": X has " + std::to_string(x.rows) + " rows but y has " +
                  std::to_string(y->size()));
    }
    for (size_t i = 0; i < y->size(); ++i) {
      if (!std::isfinite((*y)[i])) {
        throw Error(std::string(who) + ": non-finite target at row " + std::to_string(i));
      }
    }
  }
}

const Vector& require_target(const Vector* y, std::string_view who) {
  if (y == nullptr) throw Error(std::string(who) + " needs a target");
  return *y;
}

void check_predict_shape(const Matrix& x, int64_t n_features, std::string_view who) {
  if (x.cols != n_features) {
    throw Error(std::string(who) + ": X has " + std::to_string(x.cols) +
                " features, but the model was fitted with " + std::to_string(n_features));
  }
}

namespace {
void check_finite(const Matrix& x, std::string_view who) {
  for (size_t i = 0; i < x.data.size(); ++i) {
    if (!std::isfinite(x.data[i])) {
      throw Error(std::string(who) + ": non-finite value in X at row " +
                  std::to_string(static_cast<int64_t>(i) / std::max<int64_t>(x.cols, 1)));
    }
  }
}
}  // namespace

void check_predict_input(const Matrix& x, int64_t n_features, std::string_view who) {
  check_predict_shape(x, n_features, who);
  check_finite(x, who);
}

void check_predict_outputs(const Matrix& x, std::span<const double> outputs, std::string_view who) {
  // No early exit: a branch-free pass over the outputs, and the rare bad case rescans X anyway.
  bool all_finite = true;
  for (double v : outputs) all_finite &= std::abs(v) <= std::numeric_limits<double>::max();
  if (!all_finite) check_finite(x, who);
}

Vector argmax_rows(const Matrix& scores) {
  Vector out(static_cast<size_t>(scores.rows));
  for (int64_t r = 0; r < scores.rows; ++r) {
    const double* row = scores.row(r);
    out[static_cast<size_t>(r)] =
        static_cast<double>(std::max_element(row, row + scores.cols) - row);
  }
  return out;
}

int64_t count_classes(const Vector& y, std::string_view who) {
  int64_t k = 0;
  for (double v : y) {
    if (v < 0 || v != std::floor(v) || v > 1e9) {
      throw Error(std::string(who) + ": class labels must be indices 0..K-1");
    }
    k = std::max(k, static_cast<int64_t>(v) + 1);
  }
  std::vector<bool> seen(static_cast<size_t>(k), false);
  int64_t distinct = 0;
  for (double v : y) {
    if (!seen[static_cast<size_t>(v)]) {
      seen[static_cast<size_t>(v)] = true;
      ++distinct;
    }
  }
  if (distinct < 2)
    throw Error(std::string(who) + ": needs at least two classes, got " + std::to_string(distinct));
  return k;
}

// ---- ParamMap

ParamMap ParamMap::parse(std::span<const std::string> items) {
  std::map<std::string, std::string> values;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Error("parameter '" + item + "' is not of the form key=value");
    }
    std::string key = item.substr(0, eq);
    if (!values.emplace(key, item.substr(eq + 1)).second) {
      throw Error("parameter '" + key + "' given twice");
    }
  }
  return ParamMap(std::move(values));
}

const std::string* ParamMap::take(const std::string& key) {
  auto it = values_.find(key);
  if (it == values_.end()) return nullptr;
  used_[key] = true;
  return &it->second;
}

double ParamMap::get_double(const std::string& key, double fallback) {
  const std::string* v = take(key);
  if (v == nullptr) return fallback;
  double out = 0;
  const char* end = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(v->data(), end, out);
  if (ec != std::errc() || ptr != end || !std::isfinite(out)) {
    throw Error("parameter " + key + "=" + *v + ": expected a finite number");
  }
  return out;
}

int64_t ParamMap::get_int(const std::string& key, int64_t fallback) {
  const std::string* v = take(key);
  if (v == nullptr) return fallback;
  int64_t out = 0;
  const char* end = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(v->data(), end, out);
  if (ec != std::errc() || ptr != end) {
    throw Error("parameter " + key + "=" + *v + ": expected an integer");
  }
  return out;
}

bool ParamMap::get_bool(const std::string& key, bool fallback) {
  const std::string* v = take(key);
  if (v == nullptr) return fallback;
  if (*v == "True" || *v == "true" || *v == "1") return true;
  if (*v == "False" || *v == "false" || *v == "0") return false;
  throw Error("parameter " + key + "=" + *v + ": expected True or False");
}

std::string ParamMap::get_string(const std::string& key, const std::string& fallback) {
  const std::string* v = take(key);
  return v == nullptr ? fallback : *v;
}

std::optional<int64_t> ParamMap::get_optional_int(const std::string& key,
                                                  std::optional<int64_t> fallback) {
  if (const auto it = values_.find(key); it != values_.end() && it->second == "None") {
    used_[key] = true;
    return std::nullopt;
  }
  if (!has(key)) return fallback;
  return get_int(key, 0);
}

std::optional<double> ParamMap::get_optional_double(const std::string& key,
                                                    std::optional<double> fallback) {
  if (const auto it = values_.find(key); it != values_.end() && it->second == "None") {
    used_[key] = true;
    return std::nullopt;
  }
  if (!has(key)) return fallback;
  return get_double(key, 0);
}

void ParamMap::finish(std::string_view algorithm) const {
  for (const auto& [key, value] : values_) {
    if (used_.count(key) == 0) {
      throw Error("unknown parameter '" + key + "' for " + std::string(algorithm));
    }
  }
}

ParamMap ParamMap::merged(const std::map<std::string, std::string>& extra) const {
  std::map<std::string, std::string> values = values_;
  for (const auto& [key, value] : extra) values[key] = value;
  return ParamMap(std::move(values));
}

// ---- archive

void ArchiveWriter::u64(uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
  bytes_.append(buf, 8);
}

void ArchiveWriter::f64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  u64(bits);
}

void ArchiveWriter::str(std::string_view s) {
  u64(s.size());
  bytes_.append(s);
}

void ArchiveWriter::vec(std::span<const double> v) {
  u64(v.size());
  for (double d : v) f64(d);
}

void ArchiveWriter::ivec(std::span<const int64_t> v) {
  u64(v.size());
  for (int64_t d : v) i64(d);
}

void ArchiveWriter::matrix(const Matrix& m) {
  i64(m.rows);
  i64(m.cols);
  vec(m.data);
}

std::string_view ArchiveReader::take(size_t n) {
  if (n > bytes_.size() - pos_) throw Error("model file is truncated or corrupt");
  std::string_view out = bytes_.substr(pos_, n);
  pos_ += n;
  return out;
}

uint64_t ArchiveReader::u64() {
  std::string_view b = take(8);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
  return v;
}

double ArchiveReader::f64() {
  const uint64_t bits = u64();
  double v;
  std::memcpy(&v, &bits, 8);
  return v;
}

uint64_t ArchiveReader::count(size_t item_bytes) {
  const uint64_t n = u64();
  if (item_bytes > 0 && n > (bytes_.size() - pos_) / item_bytes) {
    throw Error("model file is truncated or corrupt (count " + std::to_string(n) + ")");
  }
  return n;
}

std::string ArchiveReader::str() {
  const uint64_t n = count(1);
  return std::string(take(n));
}

Vector ArchiveReader::vec() {
  const uint64_t n = count(8);
  Vector v(n);
  for (auto& d : v) d = f64();
  return v;
}

std::vector<int64_t> ArchiveReader::ivec() {
  const uint64_t n = count(8);
  std::vector<int64_t> v(n);
  for (auto& d : v) d = i64();
  return v;
}

Matrix ArchiveReader::matrix() {
  const int64_t rows = i64();
  const int64_t cols = i64();
  Matrix m;
  m.data = vec();
  if (rows < 0 || cols < 0 || (cols != 0 && rows > INT64_MAX / cols) ||
      static_cast<int64_t>(m.data.size()) != rows * cols) {
    throw Error("model file is corrupt (matrix shape)");
  }
  m.rows = rows;
  m.cols = cols;
  return m;
}

// ---- fitted-model defaults and registry

Matrix FittedModel::predict_proba(const Matrix&) const {
  throw Error(algorithm() + " does not provide class probabilities");
}

Matrix FittedModel::transform(const Matrix&) const {
  throw Error(algorithm() + " is not a transformer");
}

namespace {
std::vector<Algorithm>& registry() {
  static std::vector<Algorithm> algorithms;
  return algorithms;
}
constexpr std::string_view kMagic = "EMBERML";
constexpr uint64_t kFormatVersion = 1;
}  // namespace

AlgorithmRegistrar::AlgorithmRegistrar(Algorithm algorithm) {
  registry().push_back(std::move(algorithm));
}

std::vector<std::string> algorithm_names() {
  std::vector<std::string> names;
  for (const auto& a : registry()) names.push_back(a.name);
  std::sort(names.begin(), names.end());
  return names;
}

const Algorithm& find_algorithm(std::string_view name) {
  for (const auto& a : registry()) {
    if (a.name == name) return a;
  }
  std::string known;
  for (const auto& n : algorithm_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown algorithm '" + std::string(name) + "' (known: " + known + ")");
}

std::string save_model(const FittedModel& model) {
  ArchiveWriter out;
  out.str(kMagic);
  out.u64(kFormatVersion);
  out.str(model.algorithm());
  model.save(out);
  return out.bytes();
}

std::unique_ptr<FittedModel> load_model(std::string_view bytes) {
  ArchiveReader in(bytes);
  if (bytes.size() < 16 || in.str() != kMagic) throw Error("not an Ember model file");
  const uint64_t version = in.u64();
  if (version != kFormatVersion) {
    throw Error("model file format version " + std::to_string(version) + " is not supported (" +
                std::to_string(kFormatVersion) + " is)");
  }
  const Algorithm& algorithm = find_algorithm(in.str());
  auto model = algorithm.load(in);
  if (!in.at_end()) throw Error("model file has trailing bytes");
  return model;
}

}  // namespace ember::ml
