// KMeans following scikit-learn's Lloyd iteration: data centred on its mean, labels from
// ||c||^2 - 2 x.c, strict convergence when labels stop changing, otherwise a centre shift within
// tol * mean feature variance; empty clusters take the points farthest from their centres.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>

#include "decomposition_blas.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/ml/cluster.hpp"

namespace ember::ml {

void KMeansParams::validate() const {
  if (n_clusters < 1) throw Error("KMeans: n_clusters must be >= 1");
  if (!init_centers && init != "k-means++" && init != "random") {
    throw Error("KMeans: init must be 'k-means++', 'random' or an explicit matrix, got '" + init +
                "'");
  }
  if (init_centers && init_centers->rows != n_clusters) {
    throw Error("KMeans: the init matrix has " + std::to_string(init_centers->rows) +
                " rows but n_clusters=" + std::to_string(n_clusters));
  }
  if (n_init && *n_init < 1) throw Error("KMeans: n_init must be >= 1");
  if (max_iter < 1) throw Error("KMeans: max_iter must be >= 1");
  if (!(tol >= 0)) throw Error("KMeans: tol must be >= 0");
  if (algorithm != "lloyd" && algorithm != "elkan") {
    throw Error("KMeans: algorithm must be 'lloyd' or 'elkan', got '" + algorithm + "'");
  }
}

namespace {

// Largest m * n * k of the GEMMs that assign_labels runs on pool threads. OpenBLAS 0.3 runs a
// product on the calling thread up to m * n * k = 262144 and starts its own threads above it; the
// blocks already run in parallel, so each one stays well below that.
constexpr int64_t kSingleThreadGemmWork = 131072;

// Assigns each row to its nearest centre by ||c||^2 - 2 x.c (first minimum wins). Returns whether
// every x.c was finite, which proves X finite (see check_predict_outputs).
template <typename Label>
bool assign_labels(const Matrix& x, const Matrix& centers, Label* labels) {
  const Vector cc = detail::row_squared_norms(centers);
  const int64_t k = centers.rows;
  const int64_t block =
      std::clamp<int64_t>(kSingleThreadGemmWork / std::max<int64_t>(k * x.cols, 1), 16, 2048);
  std::atomic<bool> all_finite{true};
  parallel_for(0, x.rows, block, [&](int64_t r0, int64_t r1) {
    const auto dots = std::make_unique_for_overwrite<double[]>(static_cast<size_t>(block * k));
    bool finite = true;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
      const int64_t rows = std::min(block, r1 - b0);
      // The block is a row range of X itself: no copy, X is row-major with leading dimension cols.
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                  static_cast<int>(k), static_cast<int>(x.cols), 1.0, x.row(b0),
                  static_cast<int>(x.cols), centers.data.data(), static_cast<int>(centers.cols),
                  0.0, dots.get(), static_cast<int>(k));
      for (int64_t i = 0; i < rows; ++i) {
        const double* di = dots.get() + i * k;
        int64_t best = 0;
        double best_v = std::numeric_limits<double>::infinity();
        double sum = 0;  // non-finite if any x.c is (or, harmlessly, if the sum overflows)
        for (int64_t c = 0; c < k; ++c) {
          sum += di[c];
          // Selects, not branches: which centre is nearer is unpredictable.
          const double v = cc[static_cast<size_t>(c)] - 2.0 * di[c];
          const bool nearer = v < best_v;
          best_v = nearer ? v : best_v;
          best = nearer ? c : best;
        }
        finite &= std::abs(sum) <= std::numeric_limits<double>::max();
        labels[b0 + i] = static_cast<Label>(best);
      }
    }
    if (!finite) all_finite.store(false, std::memory_order_relaxed);
  });
  return all_finite.load(std::memory_order_relaxed);
}

double inertia_of(const Matrix& x, const Matrix& centers, const std::vector<int64_t>& labels) {
  double total = 0;
  for (int64_t i = 0; i < x.rows; ++i) {
    const double* xr = x.row(i);
    const double* cr = centers.row(labels[static_cast<size_t>(i)]);
    double s = 0;
    for (int64_t j = 0; j < x.cols; ++j) s += (xr[j] - cr[j]) * (xr[j] - cr[j]);
    total += s;
  }
  return total;
}

// New centres as label means; empty clusters are relocated to the points farthest from their
// (old) centres, like scikit-learn's _relocate_empty_clusters_dense.
Matrix update_centers(const Matrix& x, const Matrix& old_centers,
                      const std::vector<int64_t>& labels) {
  const int64_t k = old_centers.rows;
  Matrix sums(k, x.cols);
  std::vector<double> counts(static_cast<size_t>(k), 0.0);
  std::vector<int64_t> label_copy = labels;
  for (int64_t i = 0; i < x.rows; ++i) {
    const int64_t c = labels[static_cast<size_t>(i)];
    counts[static_cast<size_t>(c)] += 1;
    for (int64_t j = 0; j < x.cols; ++j) sums(c, j) += x(i, j);
  }
  std::vector<int64_t> empty;
  for (int64_t c = 0; c < k; ++c)
    if (counts[static_cast<size_t>(c)] == 0) empty.push_back(c);
  if (!empty.empty()) {
    std::vector<double> min_dist(static_cast<size_t>(x.rows));
    for (int64_t i = 0; i < x.rows; ++i) {
      const double* xr = x.row(i);
      const double* cr = old_centers.row(labels[static_cast<size_t>(i)]);
      double sq = 0;
      for (int64_t j = 0; j < x.cols; ++j) sq += (xr[j] - cr[j]) * (xr[j] - cr[j]);
      min_dist[static_cast<size_t>(i)] = sq;
    }
    std::vector<int64_t> far(static_cast<size_t>(x.rows));
    std::iota(far.begin(), far.end(), 0);
    std::stable_sort(far.begin(), far.end(), [&](int64_t a, int64_t b) {
      return min_dist[static_cast<size_t>(a)] > min_dist[static_cast<size_t>(b)];
    });
    for (size_t e = 0; e < empty.size() && e < far.size(); ++e) {
      const int64_t point = far[e];
      const int64_t from = label_copy[static_cast<size_t>(point)];
      const int64_t to = empty[e];
      for (int64_t j = 0; j < x.cols; ++j) {
        sums(from, j) -= x(point, j);
        sums(to, j) = x(point, j);
      }
      counts[static_cast<size_t>(from)] -= 1;
      counts[static_cast<size_t>(to)] = 1;
    }
  }
  Matrix centers(k, x.cols);
  for (int64_t c = 0; c < k; ++c) {
    const double n = counts[static_cast<size_t>(c)];
    for (int64_t j = 0; j < x.cols; ++j) {
      centers(c, j) = n > 0 ? sums(c, j) / n : old_centers(c, j);
    }
  }
  return centers;
}

struct SingleRun {
  Matrix centers;
  std::vector<int64_t> labels;
  double inertia = 0;
  int64_t n_iter = 0;
};

SingleRun lloyd(const Matrix& x, Matrix centers, int64_t max_iter, double tol) {
  SingleRun run;
  std::vector<int64_t> labels(static_cast<size_t>(x.rows), -1);
  std::vector<int64_t> labels_old(static_cast<size_t>(x.rows), -1);
  bool strict = false;
  int64_t it = 0;
  for (; it < max_iter; ++it) {
    assign_labels(x, centers, labels.data());
    Matrix next = update_centers(x, centers, labels);
    double shift = 0;
    for (size_t i = 0; i < next.data.size(); ++i) {
      shift += (next.data[i] - centers.data[i]) * (next.data[i] - centers.data[i]);
    }
    centers = std::move(next);
    if (labels == labels_old) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    labels_old = labels;
  }
  if (!strict) assign_labels(x, centers, labels.data());
  run.inertia = inertia_of(x, centers, labels);
  run.centers = std::move(centers);
  run.labels = std::move(labels);
  run.n_iter = std::min(it + 1, max_iter);
  return run;
}

double sq_distance(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

// Elkan's triangle-inequality bounds (an upper bound to the own centre, a lower bound to every
// centre) skip most distance computations; iterates and convergence tests are Lloyd's.
SingleRun elkan(const Matrix& x, Matrix centers, int64_t max_iter, double tol) {
  const int64_t n = x.rows, k = centers.rows, d = x.cols;
  std::vector<int64_t> labels(static_cast<size_t>(n), 0);
  std::vector<int64_t> labels_old(static_cast<size_t>(n), -1);
  Vector upper(static_cast<size_t>(n));
  Vector lower(static_cast<size_t>(n * k));
  Matrix half(k, k);
  Vector nearest_half(static_cast<size_t>(k));
  auto centre_geometry = [&] {
    for (int64_t a = 0; a < k; ++a) {
      nearest_half[static_cast<size_t>(a)] = std::numeric_limits<double>::infinity();
      for (int64_t b = 0; b < k; ++b) {
        half(a, b) = 0.5 * std::sqrt(sq_distance(centers.row(a), centers.row(b), d));
        if (a != b) {
          nearest_half[static_cast<size_t>(a)] =
              std::min(nearest_half[static_cast<size_t>(a)], half(a, b));
        }
      }
    }
  };
  centre_geometry();
  parallel_for(0, n, 256, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double* xi = x.row(i);
      double* li = lower.data() + i * k;
      int64_t best = 0;
      double best_d = std::sqrt(sq_distance(xi, centers.row(0), d));
      li[0] = best_d;
      for (int64_t c = 1; c < k; ++c) {
        if (best_d > half(best, c)) {
          const double dc = std::sqrt(sq_distance(xi, centers.row(c), d));
          li[c] = dc;
          if (dc < best_d) {
            best_d = dc;
            best = c;
          }
        }
      }
      labels[static_cast<size_t>(i)] = best;
      upper[static_cast<size_t>(i)] = best_d;
    }
  });
  SingleRun run;
  bool strict = false;
  int64_t it = 0;
  for (; it < max_iter; ++it) {
    Matrix next = update_centers(x, centers, labels);
    Vector shift(static_cast<size_t>(k));
    double shift_total = 0;
    for (int64_t c = 0; c < k; ++c) {
      const double sq = sq_distance(next.row(c), centers.row(c), d);
      shift[static_cast<size_t>(c)] = std::sqrt(sq);
      shift_total += sq;
    }
    centers = std::move(next);
    centre_geometry();
    // Labels of this iteration were computed against the previous centres (like Lloyd's E-step
    // before its M-step); now move the bounds and reassign against the new centres.
    if (labels == labels_old) {
      strict = true;
      break;
    }
    labels_old = labels;
    if (shift_total <= tol) break;
    parallel_for(0, n, 256, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const double* xi = x.row(i);
        double* li = lower.data() + i * k;
        for (int64_t c = 0; c < k; ++c)
          li[c] = std::max(0.0, li[c] - shift[static_cast<size_t>(c)]);
        int64_t label = labels[static_cast<size_t>(i)];
        double ub = upper[static_cast<size_t>(i)] + shift[static_cast<size_t>(label)];
        if (ub <= nearest_half[static_cast<size_t>(label)]) {
          upper[static_cast<size_t>(i)] = ub;
          continue;
        }
        bool tight = false;
        for (int64_t c = 0; c < k; ++c) {
          if (c == label || ub <= li[c] || ub <= half(label, c)) continue;
          if (!tight) {
            ub = std::sqrt(sq_distance(xi, centers.row(label), d));
            li[label] = ub;
            tight = true;
            if (ub <= li[c] || ub <= half(label, c)) continue;
          }
          const double dc = std::sqrt(sq_distance(xi, centers.row(c), d));
          li[c] = dc;
          if (dc < ub) {
            ub = dc;
            label = c;
          }
        }
        labels[static_cast<size_t>(i)] = label;
        upper[static_cast<size_t>(i)] = ub;
      }
    });
  }
  // The returned labels must belong to the final centres.
  if (!strict) assign_labels(x, centers, labels.data());
  run.inertia = inertia_of(x, centers, labels);
  run.centers = std::move(centers);
  run.labels = std::move(labels);
  run.n_iter = std::min(it + 1, max_iter);
  return run;
}

Matrix random_init(const Matrix& x, int64_t k, detail::Rng& rng) {
  // k distinct rows chosen uniformly (partial Fisher-Yates).
  std::vector<int64_t> perm(static_cast<size_t>(x.rows));
  std::iota(perm.begin(), perm.end(), 0);
  Matrix c(k, x.cols);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(x.rows - i)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
    std::copy_n(x.row(perm[static_cast<size_t>(i)]), x.cols, c.row(i));
  }
  return c;
}

Matrix plusplus(const Matrix& x, int64_t k, detail::Rng& rng) {
  const int64_t n = x.rows;
  const int64_t trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  Matrix centers(k, x.cols);
  const Vector xx = detail::row_squared_norms(x);
  auto sq_dist_to = [&](int64_t row, std::vector<double>& out) {
    const double* r = x.row(row);
    parallel_for(0, n, 1024, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        double dot = 0;
        const double* xi = x.row(i);
        for (int64_t j = 0; j < x.cols; ++j) dot += xi[j] * r[j];
        out[static_cast<size_t>(i)] =
            std::max(0.0, xx[static_cast<size_t>(i)] + xx[static_cast<size_t>(row)] - 2 * dot);
      }
    });
  };
  int64_t first = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
  std::copy_n(x.row(first), x.cols, centers.row(0));
  std::vector<double> closest(static_cast<size_t>(n));
  sq_dist_to(first, closest);
  double pot = std::accumulate(closest.begin(), closest.end(), 0.0);
  std::vector<double> cumulative(static_cast<size_t>(n));
  std::vector<double> candidate(static_cast<size_t>(n)), best_dist(static_cast<size_t>(n));
  for (int64_t c = 1; c < k; ++c) {
    std::partial_sum(closest.begin(), closest.end(), cumulative.begin());
    double best_pot = std::numeric_limits<double>::infinity();
    int64_t best_id = 0;
    for (int64_t t = 0; t < trials; ++t) {
      const double target = rng.uniform() * pot;
      int64_t id =
          std::lower_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin();
      id = std::min(id, n - 1);
      sq_dist_to(id, candidate);
      double cand_pot = 0;
      for (int64_t i = 0; i < n; ++i) {
        candidate[static_cast<size_t>(i)] =
            std::min(candidate[static_cast<size_t>(i)], closest[static_cast<size_t>(i)]);
        cand_pot += candidate[static_cast<size_t>(i)];
      }
      if (cand_pot < best_pot) {
        best_pot = cand_pot;
        best_id = id;
        best_dist.swap(candidate);
      }
    }
    pot = best_pot;
    closest.swap(best_dist);
    std::copy_n(x.row(best_id), x.cols, centers.row(c));
  }
  return centers;
}

}  // namespace

Matrix kmeans_plusplus(const Matrix& x, int64_t n_clusters, uint64_t seed) {
  check_fit_input(x, nullptr, "kmeans_plusplus");
  if (n_clusters < 1 || n_clusters > x.rows) {
    throw Error("kmeans_plusplus: n_clusters must be in [1, n_samples]");
  }
  detail::Rng rng(seed);
  return plusplus(x, n_clusters, rng);
}

KMeansModel KMeans::fit(const Matrix& x_in) const {
  params.validate();
  check_fit_input(x_in, nullptr, "KMeans");
  if (x_in.rows < params.n_clusters) {
    throw Error("KMeans: n_samples=" + std::to_string(x_in.rows) +
                " should be >= n_clusters=" + std::to_string(params.n_clusters));
  }
  if (params.init_centers) {
    if (params.init_centers->cols != x_in.cols) {
      throw Error("KMeans: the init matrix has " + std::to_string(params.init_centers->cols) +
                  " columns but X has " + std::to_string(x_in.cols));
    }
    check_fit_input(*params.init_centers, nullptr, "KMeans init");
  }
  // Tolerance relative to the mean feature variance.
  Vector mean(static_cast<size_t>(x_in.cols), 0.0);
  for (int64_t i = 0; i < x_in.rows; ++i)
    for (int64_t j = 0; j < x_in.cols; ++j) mean[static_cast<size_t>(j)] += x_in(i, j);
  for (double& m : mean) m /= static_cast<double>(x_in.rows);
  Matrix x = x_in;
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < x.cols; ++j) x(i, j) -= mean[static_cast<size_t>(j)];
  double var_sum = 0;
  for (int64_t j = 0; j < x.cols; ++j) {
    double s = 0;
    for (int64_t i = 0; i < x.rows; ++i) s += x(i, j) * x(i, j);
    var_sum += s / static_cast<double>(x.rows);
  }
  const double tol = params.tol == 0 ? 0 : var_sum / static_cast<double>(x.cols) * params.tol;

  const bool is_random = !params.init_centers && params.init == "random";
  const int64_t n_init = params.n_init.value_or(is_random ? 10 : 1);
  detail::Rng rng(params.random_state);
  SingleRun best;
  bool have_best = false;
  for (int64_t run = 0; run < n_init; ++run) {
    Matrix init;
    if (params.init_centers) {
      init = *params.init_centers;
      for (int64_t i = 0; i < init.rows; ++i)
        for (int64_t j = 0; j < init.cols; ++j) init(i, j) -= mean[static_cast<size_t>(j)];
    } else if (is_random) {
      init = random_init(x, params.n_clusters, rng);
    } else {
      init = plusplus(x, params.n_clusters, rng);
    }
    SingleRun r = params.algorithm == "elkan" && params.n_clusters > 1
                      ? elkan(x, std::move(init), params.max_iter, tol)
                      : lloyd(x, std::move(init), params.max_iter, tol);
    if (!have_best || r.inertia < best.inertia) {
      best = std::move(r);
      have_best = true;
    }
  }
  KMeansModel model;
  model.centers = std::move(best.centers);
  for (int64_t i = 0; i < model.centers.rows; ++i)
    for (int64_t j = 0; j < model.centers.cols; ++j)
      model.centers(i, j) += mean[static_cast<size_t>(j)];
  model.labels = std::move(best.labels);
  model.inertia = best.inertia;
  model.n_iter = best.n_iter;
  return model;
}

Vector KMeansModel::predict(const Matrix& x) const {
  check_predict_shape(x, n_features(), "KMeans");
  Vector labels_out(static_cast<size_t>(x.rows));
  // X is read once, by the products: a non-finite x.c is what sends us to scan it.
  if (!assign_labels(x, centers, labels_out.data())) check_predict_input(x, n_features(), "KMeans");
  return labels_out;
}

Matrix KMeansModel::transform(const Matrix& x) const {
  check_predict_input(x, n_features(), "KMeans");
  Matrix d(x.rows, centers.rows);
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t c = 0; c < centers.rows; ++c) {
      double s = 0;
      for (int64_t j = 0; j < x.cols; ++j)
        s += (x(i, j) - centers(c, j)) * (x(i, j) - centers(c, j));
      d(i, c) = std::sqrt(s);
    }
  }
  return d;
}

void KMeansModel::save(ArchiveWriter& out) const {
  out.matrix(centers);
  out.ivec(labels);
  out.f64(inertia);
  out.i64(n_iter);
}

KMeansModel KMeansModel::load(ArchiveReader& in) {
  KMeansModel m;
  m.centers = in.matrix();
  m.labels = in.ivec();
  m.inertia = in.f64();
  m.n_iter = in.i64();
  if (m.centers.rows < 1 || m.centers.cols < 1) throw Error("KMeans: model file is corrupt");
  for (double v : m.centers.data)
    if (!std::isfinite(v)) throw Error("KMeans: model file is corrupt (non-finite centre)");
  for (int64_t l : m.labels)
    if (l < 0 || l >= m.centers.rows) throw Error("KMeans: model file is corrupt (label)");
  return m;
}

namespace {

KMeans parse_kmeans(ParamMap& p) {
  KMeansParams params;
  params.n_clusters = p.get_int("n_clusters", 8);
  params.init = p.get_string("init", "k-means++");
  const std::string n_init = p.get_string("n_init", "auto");
  if (n_init != "auto") {
    ParamMap again(std::map<std::string, std::string>{{"n_init", n_init}});
    params.n_init = again.get_int("n_init", 1);
  }
  params.max_iter = p.get_int("max_iter", 300);
  params.tol = p.get_double("tol", 1e-4);
  params.algorithm = p.get_string("algorithm", "lloyd");
  const auto seed = p.get_optional_int("random_state", std::nullopt);
  if (seed && *seed < 0) throw Error("KMeans: random_state must be >= 0 or None");
  params.random_state = seed ? static_cast<uint64_t>(*seed) : 0;
  return KMeans{params};
}

const AlgorithmRegistrar kKMeans{estimator_algorithm("KMeans", Task::Clustering, parse_kmeans)};

}  // namespace

}  // namespace ember::ml
