// SMO solver after libsvm (Fan, Chen and Lin 2005: second-order working-set selection WSS3;
// shrinking with gradient reconstruction; LRU cache of kernel rows), and the SVC/SVR estimators
// on top of it. Kernel rows are computed with BLAS dot products against cached squared norms.
#include "ember/ml/svm.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <list>
#include <numeric>

#include "decomposition_blas.hpp"
#include "ember/base/thread_pool.hpp"

namespace ember::ml {

KernelType parse_kernel(const std::string& name) {
  if (name == "linear") return KernelType::Linear;
  if (name == "poly") return KernelType::Poly;
  if (name == "rbf") return KernelType::Rbf;
  if (name == "sigmoid") return KernelType::Sigmoid;
  throw Error("unknown kernel '" + name + "' (linear, poly, rbf, sigmoid)");
}

std::string kernel_name(KernelType k) {
  switch (k) {
    case KernelType::Linear:
      return "linear";
    case KernelType::Poly:
      return "poly";
    case KernelType::Rbf:
      return "rbf";
    case KernelType::Sigmoid:
      return "sigmoid";
  }
  return "?";
}

double KernelSpec::apply(double dot, double sq_norm_a, double sq_norm_b) const {
  switch (type) {
    case KernelType::Linear:
      return dot;
    case KernelType::Poly: {
      const double base = gamma * dot + coef0;
      double r = 1.0;
      for (int64_t i = 0; i < degree; ++i) r *= base;
      return r;
    }
    case KernelType::Rbf:
      return std::exp(-gamma * (sq_norm_a + sq_norm_b - 2.0 * dot));
    case KernelType::Sigmoid:
      return std::tanh(gamma * dot + coef0);
  }
  return 0;
}

void SVMCommonParams::validate(const char* who) const {
  const std::string w(who);
  if (!(C > 0)) throw Error(w + ": C must be > 0");
  parse_kernel(kernel);
  if (degree < 0) throw Error(w + ": degree must be >= 0");
  if (degree > 100) throw Error(w + ": degree must be <= 100");
  if (gamma != "scale" && gamma != "auto") {
    double g = 0;
    auto [p, ec] = std::from_chars(gamma.data(), gamma.data() + gamma.size(), g);
    if (ec != std::errc() || p != gamma.data() + gamma.size() || !(g >= 0) || !std::isfinite(g)) {
      throw Error(w + ": gamma must be 'scale', 'auto' or a non-negative number, got '" + gamma +
                  "'");
    }
  }
  if (!std::isfinite(coef0)) throw Error(w + ": coef0 must be finite");
  if (!(tol > 0)) throw Error(w + ": tol must be > 0");
  if (!(cache_size > 0)) throw Error(w + ": cache_size must be > 0");
  if (max_iter < -1 || max_iter == 0) throw Error(w + ": max_iter must be -1 or positive");
}

KernelSpec SVMCommonParams::resolve_kernel(const Matrix& x) const {
  KernelSpec k;
  k.type = parse_kernel(kernel);
  k.coef0 = coef0;
  k.degree = degree;
  if (gamma == "scale") {
    double mean = 0;
    for (double v : x.data) mean += v;
    mean /= static_cast<double>(x.data.size());
    double var = 0;
    for (double v : x.data) var += (v - mean) * (v - mean);
    var /= static_cast<double>(x.data.size());
    k.gamma = var != 0 ? 1.0 / (static_cast<double>(x.cols) * var) : 1.0;
  } else if (gamma == "auto") {
    k.gamma = 1.0 / static_cast<double>(x.cols);
  } else {
    k.gamma = std::stod(gamma);
  }
  return k;
}

void SVCParams::validate() const {
  common.validate("SVC");
  if (!class_weight.empty() && class_weight != "balanced") {
    throw Error("SVC: class_weight must be None or 'balanced', got '" + class_weight + "'");
  }
}

void SVRParams::validate() const {
  common.validate("SVR");
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) throw Error("SVR: epsilon must be >= 0");
}

namespace {

// ---- kernel rows with an LRU cache

// Four independent accumulators so the loop pipelines without reassociation flags.
inline double dot(const double* a, const double* b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += a[j] * b[j];
    s1 += a[j + 1] * b[j + 1];
    s2 += a[j + 2] * b[j + 2];
    s3 += a[j + 3] * b[j + 3];
  }
  for (; j < n; ++j) s0 += a[j] * b[j];
  return (s0 + s1) + (s2 + s3);
}

class KernelCache {
 public:
  KernelCache(const Matrix& x, const KernelSpec& kernel, double cache_mb)
      : x_(x), kernel_(kernel), norms_(detail::row_squared_norms(x)) {
    const double row_bytes = static_cast<double>(x.rows) * sizeof(double);
    capacity_ = std::max<int64_t>(
        2, std::min<int64_t>(x.rows, static_cast<int64_t>(cache_mb * 1048576.0 / row_bytes)));
    slot_of_.assign(static_cast<size_t>(x.rows), -1);
    diag_.resize(static_cast<size_t>(x.rows));
    for (int64_t i = 0; i < x.rows; ++i) {
      diag_[static_cast<size_t>(i)] =
          kernel_.apply(norms_[static_cast<size_t>(i)], norms_[static_cast<size_t>(i)],
                        norms_[static_cast<size_t>(i)]);
    }
  }

  double diag(int64_t i) const { return diag_[static_cast<size_t>(i)]; }

  // K(i, j) for all samples j. The pointer stays valid until two more distinct rows are taken.
  const double* row(int64_t i) {
    int64_t slot = slot_of_[static_cast<size_t>(i)];
    if (slot >= 0) {
      lru_.splice(lru_.begin(), lru_, where_[static_cast<size_t>(slot)]);
      return rows_[static_cast<size_t>(slot)].data();
    }
    if (static_cast<int64_t>(rows_.size()) < capacity_) {
      slot = static_cast<int64_t>(rows_.size());
      rows_.emplace_back(static_cast<size_t>(x_.rows));
      owner_.push_back(i);
      lru_.push_front(slot);
      where_.push_back(lru_.begin());
    } else {
      slot = lru_.back();
      slot_of_[static_cast<size_t>(owner_[static_cast<size_t>(slot)])] = -1;
      owner_[static_cast<size_t>(slot)] = i;
      lru_.splice(lru_.begin(), lru_, where_[static_cast<size_t>(slot)]);
    }
    slot_of_[static_cast<size_t>(i)] = slot;
    compute(i, rows_[static_cast<size_t>(slot)].data());
    return rows_[static_cast<size_t>(slot)].data();
  }

 private:
  // Dot products by a plain unrolled loop rather than BLAS: rows are short, solvers for
  // several class pairs run inside pool tasks, and OpenBLAS must only be called from the
  // calling thread (it threads itself and would oversubscribe the cores from inside the pool).
  void compute(int64_t i, double* out) const {
    const int64_t n = x_.rows;
    const int64_t d = x_.cols;
    const double* xi = x_.row(i);
    const double ni = norms_[static_cast<size_t>(i)];
    auto work = [&](int64_t r0, int64_t r1) {
      for (int64_t j = r0; j < r1; ++j) {
        out[j] = kernel_.apply(dot(xi, x_.row(j), d), ni, norms_[static_cast<size_t>(j)]);
      }
    };
    // Large rows are split across the pool; inside a pool task this runs serially.
    if (n * d >= 131072) {
      parallel_for(0, n, 2048, work);
    } else {
      work(0, n);
    }
  }

  const Matrix& x_;
  KernelSpec kernel_;
  Vector norms_;
  Vector diag_;
  int64_t capacity_;
  std::vector<std::vector<double>> rows_;
  std::vector<int64_t> owner_;
  std::vector<int64_t> slot_of_;
  std::list<int64_t> lru_;
  std::vector<std::list<int64_t>::iterator> where_;
};

// ---- SMO

// min 0.5 a'Qa + p'a  s.t.  y'a = 0, 0 <= a_v <= C_v, with Q_uv = y_u y_v K(s_u, s_v), where
// variable v refers to sample s_v (SVR has two variables per sample).
struct SmoProblem {
  std::vector<int> y;
  std::vector<int64_t> sample;
  Vector p;
  Vector upper;
};

struct SmoResult {
  Vector alpha;
  double rho = 0;
  int64_t iterations = 0;
};

constexpr double kTau = 1e-12;

class SmoSolver {
 public:
  SmoSolver(const SmoProblem& prob, KernelCache& cache, double eps, bool shrinking,
            int64_t max_iter)
      : cache_(cache), eps_(eps), shrinking_(shrinking), max_iter_(max_iter) {
    n_ = static_cast<int64_t>(prob.y.size());
    y_ = prob.y;
    sample_ = prob.sample;
    p_ = prob.p;
    c_ = prob.upper;
    var_.resize(static_cast<size_t>(n_));
    std::iota(var_.begin(), var_.end(), 0);
    alpha_.assign(static_cast<size_t>(n_), 0.0);
    status_.assign(static_cast<size_t>(n_), kLower);
    for (int64_t v = 0; v < n_; ++v) update_status(v);
    g_ = p_;
    g_bar_.assign(static_cast<size_t>(n_), 0.0);
    qd_.resize(static_cast<size_t>(n_));
    for (int64_t v = 0; v < n_; ++v)
      qd_[static_cast<size_t>(v)] = cache_.diag(sample_[static_cast<size_t>(v)]);
    active_ = n_;
  }

  SmoResult solve() {
    const int64_t limit =
        max_iter_ > 0 ? max_iter_
                      : std::max<int64_t>(10000000, n_ > INT32_MAX / 100 ? INT32_MAX : 100 * n_);
    int64_t counter = std::min<int64_t>(n_, 1000) + 1;
    int64_t iter = 0;
    while (iter < limit) {
      if (--counter == 0) {
        counter = std::min<int64_t>(n_, 1000);
        if (shrinking_) do_shrinking();
      }
      int64_t i = -1, j = -1;
      if (select_working_set(i, j)) {
        reconstruct_gradient();
        active_ = n_;
        if (select_working_set(i, j)) break;
        counter = 1;  // shrink again on the next iteration
      }
      ++iter;
      take_step(i, j);
    }
    if (active_ < n_) {
      reconstruct_gradient();
      active_ = n_;
    }
    SmoResult out;
    out.rho = calculate_rho();
    out.alpha.assign(static_cast<size_t>(n_), 0.0);
    for (int64_t k = 0; k < n_; ++k)
      out.alpha[static_cast<size_t>(var_[static_cast<size_t>(k)])] = alpha_[static_cast<size_t>(k)];
    out.iterations = iter;
    return out;
  }

 private:
  enum Status : char { kLower, kUpper, kFree };

  bool is_upper(int64_t k) const { return status_[static_cast<size_t>(k)] == kUpper; }
  bool is_lower(int64_t k) const { return status_[static_cast<size_t>(k)] == kLower; }
  bool is_free(int64_t k) const { return status_[static_cast<size_t>(k)] == kFree; }
  void update_status(int64_t k) {
    const double a = alpha_[static_cast<size_t>(k)];
    status_[static_cast<size_t>(k)] =
        a >= c_[static_cast<size_t>(k)] ? kUpper : (a <= 0 ? kLower : kFree);
  }

  // Q row of the variable at position k, read at position t: y_k y_t K(s_k, s_t).
  double q(const double* krow, int64_t k, int64_t t) const {
    return static_cast<double>(y_[static_cast<size_t>(k)] * y_[static_cast<size_t>(t)]) *
           krow[sample_[static_cast<size_t>(t)]];
  }
  const double* krow(int64_t k) { return cache_.row(sample_[static_cast<size_t>(k)]); }

  void swap_positions(int64_t a, int64_t b) {
    if (a == b) return;
    std::swap(y_[static_cast<size_t>(a)], y_[static_cast<size_t>(b)]);
    std::swap(sample_[static_cast<size_t>(a)], sample_[static_cast<size_t>(b)]);
    std::swap(p_[static_cast<size_t>(a)], p_[static_cast<size_t>(b)]);
    std::swap(c_[static_cast<size_t>(a)], c_[static_cast<size_t>(b)]);
    std::swap(var_[static_cast<size_t>(a)], var_[static_cast<size_t>(b)]);
    std::swap(alpha_[static_cast<size_t>(a)], alpha_[static_cast<size_t>(b)]);
    std::swap(status_[static_cast<size_t>(a)], status_[static_cast<size_t>(b)]);
    std::swap(g_[static_cast<size_t>(a)], g_[static_cast<size_t>(b)]);
    std::swap(g_bar_[static_cast<size_t>(a)], g_bar_[static_cast<size_t>(b)]);
    std::swap(qd_[static_cast<size_t>(a)], qd_[static_cast<size_t>(b)]);
  }

  // WSS3: i maximises the violation, j the second-order decrease of the objective.
  // Returns true when optimal within eps.
  bool select_working_set(int64_t& out_i, int64_t& out_j) {
    double gmax = -std::numeric_limits<double>::infinity();
    double gmax2 = -std::numeric_limits<double>::infinity();
    int64_t gmax_idx = -1, gmin_idx = -1;
    double obj_diff_min = std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < active_; ++t) {
      const double g = g_[static_cast<size_t>(t)];
      if (y_[static_cast<size_t>(t)] == 1) {
        if (!is_upper(t) && -g >= gmax) {
          gmax = -g;
          gmax_idx = t;
        }
      } else if (!is_lower(t) && g >= gmax) {
        gmax = g;
        gmax_idx = t;
      }
    }
    const int64_t i = gmax_idx;
    const double* ki = i != -1 ? krow(i) : nullptr;
    for (int64_t j = 0; j < active_; ++j) {
      const double g = g_[static_cast<size_t>(j)];
      if (y_[static_cast<size_t>(j)] == 1) {
        if (!is_lower(j)) {
          const double grad_diff = gmax + g;
          if (g >= gmax2) gmax2 = g;
          if (grad_diff > 0) {
            // libsvm's QD_i + QD_j -+ 2 y_i Q_ij is QD_i + QD_j - 2 K(s_i, s_j) either way.
            const double quad = qd_[static_cast<size_t>(i)] + qd_[static_cast<size_t>(j)] -
                                2.0 * ki[sample_[static_cast<size_t>(j)]];
            const double obj = -(grad_diff * grad_diff) / (quad > 0 ? quad : kTau);
            if (obj <= obj_diff_min) {
              gmin_idx = j;
              obj_diff_min = obj;
            }
          }
        }
      } else if (!is_upper(j)) {
        const double grad_diff = gmax - g;
        if (-g >= gmax2) gmax2 = -g;
        if (grad_diff > 0) {
          const double quad = qd_[static_cast<size_t>(i)] + qd_[static_cast<size_t>(j)] -
                              2.0 * ki[sample_[static_cast<size_t>(j)]];
          const double obj = -(grad_diff * grad_diff) / (quad > 0 ? quad : kTau);
          if (obj <= obj_diff_min) {
            gmin_idx = j;
            obj_diff_min = obj;
          }
        }
      }
    }
    if (gmax + gmax2 < eps_ || gmin_idx == -1) return true;
    out_i = gmax_idx;
    out_j = gmin_idx;
    return false;
  }

  void take_step(int64_t i, int64_t j) {
    const double* ki = krow(i);
    const double* kj = krow(j);
    const double ci = c_[static_cast<size_t>(i)], cj = c_[static_cast<size_t>(j)];
    double& ai = alpha_[static_cast<size_t>(i)];
    double& aj = alpha_[static_cast<size_t>(j)];
    const double old_ai = ai, old_aj = aj;
    const double gi = g_[static_cast<size_t>(i)], gj = g_[static_cast<size_t>(j)];
    const double qij = q(ki, i, j);
    if (y_[static_cast<size_t>(i)] != y_[static_cast<size_t>(j)]) {
      double quad = qd_[static_cast<size_t>(i)] + qd_[static_cast<size_t>(j)] + 2 * qij;
      if (quad <= 0) quad = kTau;
      const double delta = (-gi - gj) / quad;
      const double diff = ai - aj;
      ai += delta;
      aj += delta;
      if (diff > 0) {
        if (aj < 0) {
          aj = 0;
          ai = diff;
        }
      } else if (ai < 0) {
        ai = 0;
        aj = -diff;
      }
      if (diff > ci - cj) {
        if (ai > ci) {
          ai = ci;
          aj = ci - diff;
        }
      } else if (aj > cj) {
        aj = cj;
        ai = cj + diff;
      }
    } else {
      double quad = qd_[static_cast<size_t>(i)] + qd_[static_cast<size_t>(j)] - 2 * qij;
      if (quad <= 0) quad = kTau;
      const double delta = (gi - gj) / quad;
      const double sum = ai + aj;
      ai -= delta;
      aj += delta;
      if (sum > ci) {
        if (ai > ci) {
          ai = ci;
          aj = sum - ci;
        }
      } else if (aj < 0) {
        aj = 0;
        ai = sum;
      }
      if (sum > cj) {
        if (aj > cj) {
          aj = cj;
          ai = sum - cj;
        }
      } else if (ai < 0) {
        ai = 0;
        aj = sum;
      }
    }
    const double dai = ai - old_ai, daj = aj - old_aj;
    // G_t += Q_it dai + Q_jt daj, with Q_kt = y_k y_t K(s_k, s_t).
    const double wi = y_[static_cast<size_t>(i)] * dai;
    const double wj = y_[static_cast<size_t>(j)] * daj;
    for (int64_t t = 0; t < active_; ++t) {
      const int64_t s = sample_[static_cast<size_t>(t)];
      g_[static_cast<size_t>(t)] += y_[static_cast<size_t>(t)] * (wi * ki[s] + wj * kj[s]);
    }
    const bool ui = is_upper(i), uj = is_upper(j);
    update_status(i);
    update_status(j);
    if (ui != is_upper(i)) update_g_bar(i, ui ? -ci : ci);
    if (uj != is_upper(j)) update_g_bar(j, uj ? -cj : cj);
  }

  void update_g_bar(int64_t k, double scale) {
    const double* kk = krow(k);
    const double w = scale * y_[static_cast<size_t>(k)];
    for (int64_t t = 0; t < n_; ++t) {
      g_bar_[static_cast<size_t>(t)] +=
          w * y_[static_cast<size_t>(t)] * kk[sample_[static_cast<size_t>(t)]];
    }
  }

  bool be_shrunk(int64_t k, double gmax1, double gmax2) const {
    const double g = g_[static_cast<size_t>(k)];
    if (is_upper(k)) return y_[static_cast<size_t>(k)] == 1 ? -g > gmax1 : -g > gmax2;
    if (is_lower(k)) return y_[static_cast<size_t>(k)] == 1 ? g > gmax2 : g > gmax1;
    return false;
  }

  void do_shrinking() {
    double gmax1 = -std::numeric_limits<double>::infinity();
    double gmax2 = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < active_; ++k) {
      const double g = g_[static_cast<size_t>(k)];
      if (y_[static_cast<size_t>(k)] == 1) {
        if (!is_upper(k) && -g >= gmax1) gmax1 = -g;
        if (!is_lower(k) && g >= gmax2) gmax2 = g;
      } else {
        if (!is_upper(k) && -g >= gmax2) gmax2 = -g;
        if (!is_lower(k) && g >= gmax1) gmax1 = g;
      }
    }
    if (!unshrink_ && gmax1 + gmax2 <= eps_ * 10) {
      unshrink_ = true;
      reconstruct_gradient();
      active_ = n_;
    }
    for (int64_t k = 0; k < active_; ++k) {
      if (!be_shrunk(k, gmax1, gmax2)) continue;
      --active_;
      while (active_ > k) {
        if (!be_shrunk(active_, gmax1, gmax2)) {
          swap_positions(k, active_);
          break;
        }
        --active_;
      }
    }
  }

  // Inactive gradients from G_bar plus the contribution of the free variables.
  void reconstruct_gradient() {
    if (active_ == n_) return;
    for (int64_t t = active_; t < n_; ++t) {
      g_[static_cast<size_t>(t)] = g_bar_[static_cast<size_t>(t)] + p_[static_cast<size_t>(t)];
    }
    for (int64_t k = 0; k < active_; ++k) {
      if (!is_free(k)) continue;
      const double* kk = krow(k);
      const double w = alpha_[static_cast<size_t>(k)] * y_[static_cast<size_t>(k)];
      for (int64_t t = active_; t < n_; ++t) {
        g_[static_cast<size_t>(t)] +=
            w * y_[static_cast<size_t>(t)] * kk[sample_[static_cast<size_t>(t)]];
      }
    }
  }

  double calculate_rho() const {
    int64_t nr_free = 0;
    double ub = std::numeric_limits<double>::infinity();
    double lb = -std::numeric_limits<double>::infinity();
    double sum_free = 0;
    for (int64_t k = 0; k < active_; ++k) {
      const double yg = y_[static_cast<size_t>(k)] * g_[static_cast<size_t>(k)];
      if (is_upper(k)) {
        if (y_[static_cast<size_t>(k)] == -1)
          ub = std::min(ub, yg);
        else
          lb = std::max(lb, yg);
      } else if (is_lower(k)) {
        if (y_[static_cast<size_t>(k)] == 1)
          ub = std::min(ub, yg);
        else
          lb = std::max(lb, yg);
      } else {
        ++nr_free;
        sum_free += yg;
      }
    }
    return nr_free > 0 ? sum_free / static_cast<double>(nr_free) : (ub + lb) / 2;
  }

  KernelCache& cache_;
  double eps_;
  bool shrinking_;
  int64_t max_iter_;
  bool unshrink_ = false;
  int64_t n_ = 0;
  int64_t active_ = 0;
  std::vector<int> y_;
  std::vector<int64_t> sample_;
  std::vector<int64_t> var_;
  Vector p_, c_, alpha_, g_, g_bar_, qd_;
  std::vector<Status> status_;
};

// ---- binary SVC on a subset of rows

struct BinaryFit {
  Vector coef;  // y_i alpha_i per row of the subset
  double rho = 0;
  int64_t iterations = 0;
};

// Trains C-SVC on rows `x` with labels sign (+1/-1) and per-class bounds.
BinaryFit train_binary(const Matrix& x, const std::vector<int>& sign, double c_pos, double c_neg,
                       const KernelSpec& kernel, const SVMCommonParams& params) {
  const int64_t n = x.rows;
  SmoProblem prob;
  prob.y = sign;
  prob.sample.resize(static_cast<size_t>(n));
  std::iota(prob.sample.begin(), prob.sample.end(), 0);
  prob.p.assign(static_cast<size_t>(n), -1.0);
  prob.upper.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    prob.upper[static_cast<size_t>(i)] = sign[static_cast<size_t>(i)] == 1 ? c_pos : c_neg;
  }
  KernelCache cache(x, kernel, params.cache_size);
  SmoSolver solver(prob, cache, params.tol, params.shrinking, params.max_iter);
  const SmoResult r = solver.solve();
  BinaryFit fit;
  fit.rho = r.rho;
  fit.iterations = r.iterations;
  fit.coef.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    fit.coef[static_cast<size_t>(i)] =
        sign[static_cast<size_t>(i)] * r.alpha[static_cast<size_t>(i)];
  }
  return fit;
}

double binary_decision(const Matrix& train, const BinaryFit& fit, const KernelSpec& kernel,
                       const double* q, double q_norm, const Vector& train_norms) {
  double s = 0;
  for (int64_t i = 0; i < train.rows; ++i) {
    const double c = fit.coef[static_cast<size_t>(i)];
    if (c == 0) continue;
    s += c * kernel.apply(dot(train.row(i), q, train.cols), train_norms[static_cast<size_t>(i)],
                          q_norm);
  }
  return s - fit.rho;
}

}  // namespace

std::pair<double, double> fit_platt_sigmoid(const Vector& dec, const std::vector<int>& sign) {
  const size_t l = dec.size();
  double prior1 = 0, prior0 = 0;
  for (int s : sign) (s > 0 ? prior1 : prior0) += 1;
  const int max_iter = 100;
  const double min_step = 1e-10, sigma = 1e-12, eps = 1e-5;
  const double hi = (prior1 + 1.0) / (prior1 + 2.0);
  const double lo = 1.0 / (prior0 + 2.0);
  Vector t(l);
  for (size_t i = 0; i < l; ++i) t[i] = sign[i] > 0 ? hi : lo;
  double a = 0.0, b = std::log((prior0 + 1.0) / (prior1 + 1.0));
  auto objective = [&](double aa, double bb) {
    double f = 0;
    for (size_t i = 0; i < l; ++i) {
      const double z = dec[i] * aa + bb;
      f += z >= 0 ? t[i] * z + std::log1p(std::exp(-z)) : (t[i] - 1) * z + std::log1p(std::exp(z));
    }
    return f;
  };
  double fval = objective(a, b);
  for (int iter = 0; iter < max_iter; ++iter) {
    double h11 = sigma, h22 = sigma, h21 = 0, g1 = 0, g2 = 0;
    for (size_t i = 0; i < l; ++i) {
      const double z = dec[i] * a + b;
      double p, q;
      if (z >= 0) {
        p = std::exp(-z) / (1.0 + std::exp(-z));
        q = 1.0 / (1.0 + std::exp(-z));
      } else {
        p = 1.0 / (1.0 + std::exp(z));
        q = std::exp(z) / (1.0 + std::exp(z));
      }
      const double d2 = p * q;
      h11 += dec[i] * dec[i] * d2;
      h22 += d2;
      h21 += dec[i] * d2;
      const double d1 = t[i] - p;
      g1 += dec[i] * d1;
      g2 += d1;
    }
    if (std::abs(g1) < eps && std::abs(g2) < eps) break;
    const double det = h11 * h22 - h21 * h21;
    const double da = -(h22 * g1 - h21 * g2) / det;
    const double db = -(-h21 * g1 + h11 * g2) / det;
    const double gd = g1 * da + g2 * db;
    double step = 1;
    while (step >= min_step) {
      const double na = a + step * da, nb = b + step * db;
      const double nf = objective(na, nb);
      if (nf < fval + 0.0001 * step * gd) {
        a = na;
        b = nb;
        fval = nf;
        break;
      }
      step /= 2;
    }
    if (step < min_step) break;
  }
  return {a, b};
}

namespace {
double sigmoid_predict(double dec, double a, double b) {
  const double z = dec * a + b;
  return z >= 0 ? std::exp(-z) / (1.0 + std::exp(-z)) : 1.0 / (1.0 + std::exp(z));
}
}  // namespace

Vector couple_pairwise_probabilities(const Matrix& r) {
  const int64_t k = r.rows;
  const int64_t max_iter = std::max<int64_t>(100, k);
  const double eps = 0.005 / static_cast<double>(k);
  Matrix qm(k, k);
  Vector p(static_cast<size_t>(k), 1.0 / static_cast<double>(k));
  Vector qp(static_cast<size_t>(k));
  for (int64_t t = 0; t < k; ++t) {
    qm(t, t) = 0;
    for (int64_t j = 0; j < t; ++j) {
      qm(t, t) += r(j, t) * r(j, t);
      qm(t, j) = qm(j, t);
    }
    for (int64_t j = t + 1; j < k; ++j) {
      qm(t, t) += r(j, t) * r(j, t);
      qm(t, j) = -r(j, t) * r(t, j);
    }
  }
  for (int64_t iter = 0; iter < max_iter; ++iter) {
    double pqp = 0;
    for (int64_t t = 0; t < k; ++t) {
      qp[static_cast<size_t>(t)] = 0;
      for (int64_t j = 0; j < k; ++j)
        qp[static_cast<size_t>(t)] += qm(t, j) * p[static_cast<size_t>(j)];
      pqp += p[static_cast<size_t>(t)] * qp[static_cast<size_t>(t)];
    }
    double max_error = 0;
    for (int64_t t = 0; t < k; ++t) {
      max_error = std::max(max_error, std::abs(qp[static_cast<size_t>(t)] - pqp));
    }
    if (max_error < eps) break;
    for (int64_t t = 0; t < k; ++t) {
      const double diff = (-qp[static_cast<size_t>(t)] + pqp) / qm(t, t);
      p[static_cast<size_t>(t)] += diff;
      pqp = (pqp + diff * (diff * qm(t, t) + 2 * qp[static_cast<size_t>(t)])) / (1 + diff) /
            (1 + diff);
      for (int64_t j = 0; j < k; ++j) {
        qp[static_cast<size_t>(j)] = (qp[static_cast<size_t>(j)] + diff * qm(t, j)) / (1 + diff);
        p[static_cast<size_t>(j)] /= (1 + diff);
      }
    }
  }
  return p;
}

namespace {

// libsvm's svm_binary_svc_probability: decision values from an internal 5-fold CV (C fixed to
// the class bounds), then Platt's sigmoid on them.
std::pair<double, double> binary_probability(const Matrix& x, const std::vector<int>& sign,
                                             double c_pos, double c_neg, const KernelSpec& kernel,
                                             const SVMCommonParams& params, detail::Rng& rng) {
  const int64_t l = x.rows;
  const int64_t folds = 5;
  std::vector<int64_t> perm(static_cast<size_t>(l));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t i = 0; i < l; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(l - i)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  Vector dec(static_cast<size_t>(l), 0.0);
  for (int64_t f = 0; f < folds; ++f) {
    const int64_t begin = f * l / folds;
    const int64_t end = (f + 1) * l / folds;
    std::vector<int64_t> train_rows;
    for (int64_t i = 0; i < begin; ++i) train_rows.push_back(perm[static_cast<size_t>(i)]);
    for (int64_t i = end; i < l; ++i) train_rows.push_back(perm[static_cast<size_t>(i)]);
    std::vector<int> sub_sign;
    int64_t n_pos = 0, n_neg = 0;
    for (int64_t r : train_rows) {
      sub_sign.push_back(sign[static_cast<size_t>(r)]);
      (sign[static_cast<size_t>(r)] > 0 ? n_pos : n_neg) += 1;
    }
    if (n_pos == 0 || n_neg == 0) {
      const double v = n_pos > 0 ? 1.0 : (n_neg > 0 ? -1.0 : 0.0);
      for (int64_t i = begin; i < end; ++i)
        dec[static_cast<size_t>(perm[static_cast<size_t>(i)])] = v;
      continue;
    }
    const Matrix sub = take_rows(x, train_rows);
    const BinaryFit fit = train_binary(sub, sub_sign, c_pos, c_neg, kernel, params);
    const Vector norms = detail::row_squared_norms(sub);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t r = perm[static_cast<size_t>(i)];
      const double* q = x.row(r);
      double qn = 0;
      for (int64_t j = 0; j < x.cols; ++j) qn += q[j] * q[j];
      // libsvm multiplies by its first label so +1 stays positive; our labels are fixed.
      dec[static_cast<size_t>(r)] = binary_decision(sub, fit, kernel, q, qn, norms);
    }
  }
  return fit_platt_sigmoid(dec, sign);
}

// Kernel values of every query row against every support vector (rows x n_sv).
Matrix kernel_matrix(const Matrix& x, const Matrix& sv, const KernelSpec& kernel) {
  Matrix k(x.rows, sv.rows);
  if (sv.rows == 0) return k;
  detail::gemm(false, true, 1.0, x, sv, 0.0, k);
  const Vector xn = detail::row_squared_norms(x);
  const Vector sn = detail::row_squared_norms(sv);
  for (int64_t i = 0; i < k.rows; ++i) {
    double* r = k.row(i);
    for (int64_t j = 0; j < k.cols; ++j) {
      r[j] = kernel.apply(r[j], xn[static_cast<size_t>(i)], sn[static_cast<size_t>(j)]);
    }
  }
  return k;
}

void save_kernel(ArchiveWriter& out, const KernelSpec& k) {
  out.str(kernel_name(k.type));
  out.f64(k.gamma);
  out.f64(k.coef0);
  out.i64(k.degree);
}

KernelSpec load_kernel(ArchiveReader& in) {
  KernelSpec k;
  k.type = parse_kernel(in.str());
  k.gamma = in.f64();
  k.coef0 = in.f64();
  k.degree = in.i64();
  if (!std::isfinite(k.gamma) || !std::isfinite(k.coef0) || k.degree < 0 || k.degree > 100) {
    throw Error("SVM model file is corrupt (kernel)");
  }
  return k;
}

void save_decision(ArchiveWriter& out, const BinaryDecision& d) {
  out.ivec(d.sv);
  out.vec(d.coef);
  out.f64(d.rho);
  out.f64(d.prob_a);
  out.f64(d.prob_b);
}

BinaryDecision load_decision(ArchiveReader& in, int64_t n_sv) {
  BinaryDecision d;
  d.sv = in.ivec();
  d.coef = in.vec();
  d.rho = in.f64();
  d.prob_a = in.f64();
  d.prob_b = in.f64();
  if (d.sv.size() != d.coef.size()) throw Error("SVM model file is corrupt (coefficients)");
  for (int64_t s : d.sv)
    if (s < 0 || s >= n_sv) throw Error("SVM model file is corrupt (support index)");
  for (double c : d.coef)
    if (!std::isfinite(c)) throw Error("SVM model file is corrupt (coefficient)");
  if (!std::isfinite(d.rho) || !std::isfinite(d.prob_a) || !std::isfinite(d.prob_b)) {
    throw Error("SVM model file is corrupt (intercept)");
  }
  return d;
}

}  // namespace

// ---- SVC

SVCModel SVC::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_fit_input(x, &y, "SVC");
  const int64_t k = count_classes(y, "SVC");
  SVCModel model;
  model.kernel = params.common.resolve_kernel(x);
  model.n_classes = k;
  model.probability = params.probability;
  model.break_ties = params.break_ties;
  std::vector<std::vector<int64_t>> rows_of(static_cast<size_t>(k));
  for (int64_t i = 0; i < x.rows; ++i)
    rows_of[static_cast<size_t>(y[static_cast<size_t>(i)])].push_back(i);
  for (int64_t c = 0; c < k; ++c) {
    if (rows_of[static_cast<size_t>(c)].empty()) {
      throw Error("SVC: class " + std::to_string(c) + " has no samples (classes must be 0..K-1)");
    }
  }
  struct PairFit {
    std::vector<int64_t> rows;
    BinaryFit fit;
    double prob_a = 0, prob_b = 0;
  };
  std::vector<std::pair<int64_t, int64_t>> pair_ids;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i + 1; j < k; ++j) pair_ids.emplace_back(i, j);
  std::vector<PairFit> fits(pair_ids.size());
  Vector class_c(static_cast<size_t>(k), params.common.C);
  if (params.class_weight == "balanced") {
    for (int64_t c = 0; c < k; ++c) {
      class_c[static_cast<size_t>(c)] *=
          static_cast<double>(x.rows) /
          (static_cast<double>(k) * static_cast<double>(rows_of[static_cast<size_t>(c)].size()));
    }
  }
  // Each pair gets its own seed so results do not depend on the thread count.
  parallel_for(0, static_cast<int64_t>(pair_ids.size()), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const auto [ci, cj] = pair_ids[static_cast<size_t>(p)];
      PairFit& pf = fits[static_cast<size_t>(p)];
      // Rows in training order, as libsvm's grouped subproblem keeps class i first.
      pf.rows = rows_of[static_cast<size_t>(ci)];
      pf.rows.insert(pf.rows.end(), rows_of[static_cast<size_t>(cj)].begin(),
                     rows_of[static_cast<size_t>(cj)].end());
      std::vector<int> sign;
      for (size_t r = 0; r < pf.rows.size(); ++r) {
        sign.push_back(r < rows_of[static_cast<size_t>(ci)].size() ? 1 : -1);
      }
      const Matrix sub = take_rows(x, pf.rows);
      if (params.probability) {
        detail::Rng rng(params.random_state * 1000003ull + static_cast<uint64_t>(p));
        std::tie(pf.prob_a, pf.prob_b) =
            binary_probability(sub, sign, class_c[static_cast<size_t>(ci)],
                               class_c[static_cast<size_t>(cj)], model.kernel, params.common, rng);
      }
      pf.fit = train_binary(sub, sign, class_c[static_cast<size_t>(ci)],
                            class_c[static_cast<size_t>(cj)], model.kernel, params.common);
    }
  });
  // Support vectors: rows with a non-zero coefficient in any pair, grouped by class (ordered by
  // class, then training order, like scikit-learn's support_).
  std::vector<char> is_sv(static_cast<size_t>(x.rows), 0);
  for (const PairFit& pf : fits) {
    for (size_t r = 0; r < pf.rows.size(); ++r) {
      if (pf.fit.coef[r] != 0) is_sv[static_cast<size_t>(pf.rows[r])] = 1;
    }
  }
  std::vector<int64_t> sv_index(static_cast<size_t>(x.rows), -1);
  model.n_support.assign(static_cast<size_t>(k), 0);
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t r : rows_of[static_cast<size_t>(c)]) {
      if (!is_sv[static_cast<size_t>(r)]) continue;
      sv_index[static_cast<size_t>(r)] = static_cast<int64_t>(model.support.size());
      model.support.push_back(r);
      ++model.n_support[static_cast<size_t>(c)];
    }
  }
  model.support_vectors = take_rows(x, model.support);
  for (const PairFit& pf : fits) {
    BinaryDecision d;
    for (size_t r = 0; r < pf.rows.size(); ++r) {
      if (pf.fit.coef[r] == 0) continue;
      d.sv.push_back(sv_index[static_cast<size_t>(pf.rows[r])]);
      d.coef.push_back(pf.fit.coef[r]);
    }
    d.rho = pf.fit.rho;
    d.prob_a = pf.prob_a;
    d.prob_b = pf.prob_b;
    model.iterations += pf.fit.iterations;
    model.pairs.push_back(std::move(d));
  }
  return model;
}

Matrix SVCModel::pairwise_decision(const Matrix& x) const {
  check_predict_input(x, n_features(), "SVC");
  Matrix out(x.rows, static_cast<int64_t>(pairs.size()));
  detail::for_row_blocks(x, support_vectors.rows, [&](int64_t r0, const Matrix& block) {
    const Matrix kx = kernel_matrix(block, support_vectors, kernel);
    parallel_for(0, block.rows, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const double* kr = kx.row(i);
        for (size_t p = 0; p < pairs.size(); ++p) {
          const BinaryDecision& d = pairs[p];
          double s = 0;
          for (size_t t = 0; t < d.sv.size(); ++t) s += d.coef[t] * kr[d.sv[t]];
          out(r0 + i, static_cast<int64_t>(p)) = s - d.rho;
        }
      }
    });
  });
  return out;
}

Matrix SVCModel::decision_function(const Matrix& x) const {
  Matrix d = pairwise_decision(x);
  if (n_classes == 2) {
    for (double& v : d.data) v = -v;
  }
  return d;
}

Matrix SVCModel::decision_function_ovr(const Matrix& x) const {
  if (n_classes == 2) return decision_function(x);
  const Matrix d = pairwise_decision(x);
  Matrix votes(x.rows, n_classes), confidence(x.rows, n_classes);
  for (int64_t r = 0; r < x.rows; ++r) {
    int64_t p = 0;
    for (int64_t i = 0; i < n_classes; ++i) {
      for (int64_t j = i + 1; j < n_classes; ++j, ++p) {
        const double v = d(r, p);
        confidence(r, i) += v;
        confidence(r, j) -= v;
        votes(r, v >= 0 ? i : j) += 1;
      }
    }
  }
  for (size_t t = 0; t < votes.data.size(); ++t) {
    const double c = confidence.data[t];
    votes.data[t] += c / (3 * (std::abs(c) + 1));
  }
  return votes;
}

Vector SVCModel::predict(const Matrix& x) const {
  if (break_ties && n_classes > 2) return argmax_rows(decision_function_ovr(x));
  Vector out(static_cast<size_t>(x.rows));
  const Matrix d = pairwise_decision(x);
  std::vector<int64_t> votes(static_cast<size_t>(n_classes));
  for (int64_t r = 0; r < x.rows; ++r) {
    std::fill(votes.begin(), votes.end(), 0);
    int64_t p = 0;
    for (int64_t i = 0; i < n_classes; ++i) {
      for (int64_t j = i + 1; j < n_classes; ++j, ++p) {
        ++votes[static_cast<size_t>(d(r, p) > 0 ? i : j)];
      }
    }
    out[static_cast<size_t>(r)] =
        static_cast<double>(std::max_element(votes.begin(), votes.end()) - votes.begin());
  }
  return out;
}

Matrix SVCModel::predict_proba(const Matrix& x) const {
  if (!probability) {
    throw Error("SVC: predict_proba needs a model fitted with probability=True");
  }
  const Matrix d = pairwise_decision(x);
  Matrix out(x.rows, n_classes);
  constexpr double kMinProb = 1e-7;
  Matrix r(n_classes, n_classes);
  for (int64_t row = 0; row < x.rows; ++row) {
    int64_t p = 0;
    for (int64_t i = 0; i < n_classes; ++i) {
      for (int64_t j = i + 1; j < n_classes; ++j, ++p) {
        const BinaryDecision& pd = pairs[static_cast<size_t>(p)];
        const double v = std::min(
            std::max(sigmoid_predict(d(row, p), pd.prob_a, pd.prob_b), kMinProb), 1 - kMinProb);
        r(i, j) = v;
        r(j, i) = 1 - v;
      }
    }
    if (n_classes == 2) {
      out(row, 0) = r(0, 1);
      out(row, 1) = r(1, 0);
    } else {
      const Vector pr = couple_pairwise_probabilities(r);
      std::copy(pr.begin(), pr.end(), out.row(row));
    }
  }
  return out;
}

void SVCModel::save(ArchiveWriter& out) const {
  save_kernel(out, kernel);
  out.i64(n_classes);
  out.matrix(support_vectors);
  out.ivec(support);
  out.ivec(n_support);
  out.u64((probability ? 1u : 0u) | (break_ties ? 2u : 0u));  // flags
  out.u64(pairs.size());
  for (const auto& d : pairs) save_decision(out, d);
}

SVCModel SVCModel::load(ArchiveReader& in) {
  SVCModel m;
  m.kernel = load_kernel(in);
  m.n_classes = in.i64();
  m.support_vectors = in.matrix();
  m.support = in.ivec();
  m.n_support = in.ivec();
  const uint64_t flags = in.u64();
  if (m.n_classes < 2 || m.n_classes > 100000 || flags > 3 || m.support_vectors.cols < 1 ||
      static_cast<int64_t>(m.support.size()) != m.support_vectors.rows ||
      static_cast<int64_t>(m.n_support.size()) != m.n_classes) {
    throw Error("SVC: model file is corrupt");
  }
  m.probability = (flags & 1u) != 0;
  m.break_ties = (flags & 2u) != 0;
  const uint64_t n_pairs = in.count(40);
  if (n_pairs != static_cast<uint64_t>(m.n_classes * (m.n_classes - 1) / 2)) {
    throw Error("SVC: model file is corrupt (pair count)");
  }
  for (uint64_t p = 0; p < n_pairs; ++p)
    m.pairs.push_back(load_decision(in, m.support_vectors.rows));
  for (double v : m.support_vectors.data)
    if (!std::isfinite(v)) throw Error("SVC: model file is corrupt (support vector)");
  return m;
}

// ---- SVR

SVRModel SVR::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_fit_input(x, &y, "SVR");
  const int64_t l = x.rows;
  SVRModel model;
  model.kernel = params.common.resolve_kernel(x);
  SmoProblem prob;
  prob.y.resize(static_cast<size_t>(2 * l));
  prob.sample.resize(static_cast<size_t>(2 * l));
  prob.p.resize(static_cast<size_t>(2 * l));
  prob.upper.assign(static_cast<size_t>(2 * l), params.common.C);
  for (int64_t i = 0; i < l; ++i) {
    prob.y[static_cast<size_t>(i)] = 1;
    prob.y[static_cast<size_t>(i + l)] = -1;
    prob.sample[static_cast<size_t>(i)] = i;
    prob.sample[static_cast<size_t>(i + l)] = i;
    prob.p[static_cast<size_t>(i)] = params.epsilon - y[static_cast<size_t>(i)];
    prob.p[static_cast<size_t>(i + l)] = params.epsilon + y[static_cast<size_t>(i)];
  }
  KernelCache cache(x, model.kernel, params.common.cache_size);
  SmoSolver solver(prob, cache, params.common.tol, params.common.shrinking, params.common.max_iter);
  const SmoResult r = solver.solve();
  model.iterations = r.iterations;
  for (int64_t i = 0; i < l; ++i) {
    const double coef = r.alpha[static_cast<size_t>(i)] - r.alpha[static_cast<size_t>(i + l)];
    if (coef == 0) continue;
    model.decision.sv.push_back(static_cast<int64_t>(model.support.size()));
    model.decision.coef.push_back(coef);
    model.support.push_back(i);
  }
  model.decision.rho = r.rho;
  model.support_vectors = take_rows(x, model.support);
  return model;
}

Vector SVRModel::predict(const Matrix& x) const {
  check_predict_input(x, n_features(), "SVR");
  Vector out(static_cast<size_t>(x.rows));
  detail::for_row_blocks(x, support_vectors.rows, [&](int64_t r0, const Matrix& block) {
    const Matrix kx = kernel_matrix(block, support_vectors, kernel);
    for (int64_t i = 0; i < block.rows; ++i) {
      double s = 0;
      const double* kr = kx.row(i);
      for (size_t t = 0; t < decision.sv.size(); ++t) s += decision.coef[t] * kr[decision.sv[t]];
      out[static_cast<size_t>(r0 + i)] = s - decision.rho;
    }
  });
  return out;
}

void SVRModel::save(ArchiveWriter& out) const {
  save_kernel(out, kernel);
  out.matrix(support_vectors);
  out.ivec(support);
  save_decision(out, decision);
}

SVRModel SVRModel::load(ArchiveReader& in) {
  SVRModel m;
  m.kernel = load_kernel(in);
  m.support_vectors = in.matrix();
  m.support = in.ivec();
  m.decision = load_decision(in, m.support_vectors.rows);
  if (m.support_vectors.cols < 1 ||
      static_cast<int64_t>(m.support.size()) != m.support_vectors.rows) {
    throw Error("SVR: model file is corrupt");
  }
  for (double v : m.support_vectors.data)
    if (!std::isfinite(v)) throw Error("SVR: model file is corrupt (support vector)");
  return m;
}

// ---- registry

namespace {

SVMCommonParams parse_common(ParamMap& p) {
  SVMCommonParams c;
  c.C = p.get_double("C", 1.0);
  c.kernel = p.get_string("kernel", "rbf");
  c.degree = p.get_int("degree", 3);
  c.gamma = p.get_string("gamma", "scale");
  c.coef0 = p.get_double("coef0", 0.0);
  c.tol = p.get_double("tol", 1e-3);
  c.shrinking = p.get_bool("shrinking", true);
  c.cache_size = p.get_double("cache_size", 200);
  c.max_iter = p.get_int("max_iter", -1);
  return c;
}

SVC parse_svc(ParamMap& p) {
  SVCParams params;
  params.common = parse_common(p);
  params.probability = p.get_bool("probability", false);
  const std::string class_weight = p.get_string("class_weight", "None");
  params.class_weight = class_weight == "None" ? "" : class_weight;
  // Only changes the shape of decision_function, which the registry does not expose, and
  // whether break_ties is allowed.
  const std::string shape = p.get_string("decision_function_shape", "ovr");
  if (shape != "ovr" && shape != "ovo") {
    throw Error("SVC: decision_function_shape must be 'ovr' or 'ovo', got '" + shape + "'");
  }
  params.break_ties = p.get_bool("break_ties", false);
  if (params.break_ties && shape == "ovo") {
    throw Error("SVC: break_ties=True needs decision_function_shape='ovr'");
  }
  const auto seed = p.get_optional_int("random_state", std::nullopt);
  if (seed && *seed < 0) throw Error("SVC: random_state must be >= 0 or None");
  params.random_state = seed ? static_cast<uint64_t>(*seed) : 0;
  return SVC{params};
}

SVR parse_svr(ParamMap& p) {
  SVRParams params;
  params.common = parse_common(p);
  params.epsilon = p.get_double("epsilon", 0.1);
  return SVR{params};
}

const AlgorithmRegistrar kSVC{estimator_algorithm("SVC", Task::Classification, parse_svc)};
const AlgorithmRegistrar kSVR{estimator_algorithm("SVR", Task::Regression, parse_svr)};

}  // namespace

}  // namespace ember::ml
