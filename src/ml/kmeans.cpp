// KMeans following scikit-learn's Lloyd iteration: data centred on its mean, labels from
// ||c||^2 - 2 x.c, strict convergence when labels stop changing, otherwise a centre shift within
// tol * mean feature variance; empty clusters take the points farthest from their centres.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <utility>

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

// Largest m * n * k of the GEMMs that run on pool threads. OpenBLAS 0.3 runs a product on the
// calling thread up to m * n * k = 262144 and starts its own threads above it; the blocks already
// run in parallel, so each one stays well below that.
constexpr int64_t kSingleThreadGemmWork = 131072;

// Rows of X per block for a pool-thread GEMM against `cols` rows of depth `d`.
int64_t gemm_block_rows(int64_t cols, int64_t d) {
  return std::clamp<int64_t>(kSingleThreadGemmWork / std::max<int64_t>(cols * d, 1), 16, 2048);
}

// Rows per GEMM call of the label step: the k x rows products stay in cache (kLabelDots
// doubles) for the label scan and the sums. Calls of `block` rows at most when a product could
// start OpenBLAS threads inside a pool thread (more than one of each). How the rows of X are
// grouped into calls changes no x.c.
constexpr int64_t kLabelDots = 16384;
int64_t label_gemm_rows(int64_t k, int64_t block) {
  const int64_t rows = std::clamp<int64_t>(kLabelDots / k, 64, 4096);
  const bool nested_blas_threads =
      default_thread_pool().num_threads() > 1 && openblas_get_num_threads() > 1;
  return nested_blas_threads ? std::min(rows, block) : rows;
}

// Rows are cut into a number of parts that depends on the data only, never on the thread count,
// and sums over rows are formed per part and then added in part order: the centres come out bit
// for bit the same on one thread or many. Each part also costs a k x d partial sum to clear and
// add, so a part holds kMinPartRows rows at least.
constexpr int64_t kMaxParts = 64;
constexpr int64_t kMinPartRows = 1024;
struct RowParts {
  int64_t rows = 0;
  int64_t count = 1;
  int64_t begin(int64_t part) const { return rows * part / count; }
};
RowParts row_parts(int64_t rows, int64_t block) {
  const int64_t part_rows = std::max(block, kMinPartRows);
  return {rows, std::clamp<int64_t>((rows + part_rows - 1) / part_rows, 1, kMaxParts)};
}

// Per-centre sums and counts of the rows assigned to it: the M-step's input.
struct ClusterSums {
  Matrix sums;
  std::vector<double> counts;
};

// One part's sums live in `partial` at part * (k * d + k): k * d sums, then k counts.
ClusterSums reduce_parts(const std::vector<double>& partial, int64_t parts, int64_t k, int64_t d) {
  ClusterSums out{Matrix(k, d), std::vector<double>(static_cast<size_t>(k), 0.0)};
  const size_t stride = static_cast<size_t>(k * d + k);
  for (int64_t p = 0; p < parts; ++p) {
    const double* part = partial.data() + static_cast<size_t>(p) * stride;
    for (size_t i = 0; i < out.sums.data.size(); ++i) out.sums.data[i] += part[i];
    for (int64_t c = 0; c < k; ++c) out.counts[static_cast<size_t>(c)] += part[k * d + c];
  }
  return out;
}

// The sum of row_value(i) over all rows, formed per part on the pool and added in part order
// (see RowParts): at 2 threads a serial pass over X would be a large share of a small fit.
template <typename RowValue>
double sum_over_rows(int64_t rows, const RowValue& row_value) {
  const RowParts parts = row_parts(rows, kMinPartRows);
  std::vector<double> partial(static_cast<size_t>(parts.count), 0.0);
  parallel_for(0, parts.count, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      double s = 0;
      for (int64_t i = parts.begin(p); i < parts.begin(p + 1); ++i) s += row_value(i);
      partial[static_cast<size_t>(p)] = s;
    }
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}

void add_row(const double* xr, int64_t label, int64_t k, int64_t d, double* part) {
  double* sum = part + label * d;
  for (int64_t j = 0; j < d; ++j) sum[j] += xr[j];
  part[k * d + label] += 1;
}

// The AVX2 clone of the label scan below: GCC vectorizes its selects only with a blend
// instruction, which baseline x86-64 lacks. Compares and selects are exact, so every clone
// (and the plain build elsewhere) picks the same labels.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EMBER_KMEANS_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define EMBER_KMEANS_AVX2_CLONE
#endif
// Clones for the direct dots below, with no fused multiply-adds: the AVX-512 clone would fuse
// and the AVX2 one could not, and every clone must round alike (GCC's `optimize` attribute; the
// release build is GCC's).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EMBER_KMEANS_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#else
#define EMBER_KMEANS_VECTOR_CLONES
#endif

// Labels of a block of rows from their products with the centres, stored centre-major
// (dots[c * rows + r] = x_r.c): label[r] = the first c minimising cc[c] - 2 x_r.c. The scan runs
// over centres outside and rows inside, so each step is independent across rows and vectorizes,
// where a per-row scan would be one dependency chain through all k centres. Same choice as that
// scan: strict <, first minimum wins.
EMBER_KMEANS_AVX2_CLONE
void nearest_centres(const double* cc, const double* dots, int64_t k, int64_t rows, double* best_v,
                     int64_t* label) {
  std::fill_n(best_v, rows, std::numeric_limits<double>::infinity());
  std::fill_n(label, rows, int64_t{0});
  for (int64_t c = 0; c < k; ++c) {
    const double* col = dots + c * rows;
    const double norm = cc[c];
    for (int64_t r = 0; r < rows; ++r) {
      // The label as a mask select: written as `nearer ? c : label[r]`, GCC stores only when
      // some lane is nearer, a branch as unpredictable as the data.
      const double v = norm - 2.0 * col[r];
      const double old = best_v[r];
      const int64_t nearer = -static_cast<int64_t>(v < old);
      best_v[r] = v < old ? v : old;
      label[r] ^= (label[r] ^ c) & nearer;
    }
  }
}

// Whether every product is finite: x * 0 is 0 for finite x and NaN for infinities and NaN.
bool all_finite_products(const double* dots, int64_t count, double* probe, int64_t lanes) {
  std::fill_n(probe, lanes, 0.0);
  for (int64_t i = 0; i < count; i += lanes) {
    const int64_t m = std::min(lanes, count - i);
    for (int64_t r = 0; r < m; ++r) probe[r] += dots[i + r] * 0.0;
  }
  double total = 0;
  for (int64_t r = 0; r < lanes; ++r) total += probe[r];
  return total == 0.0;
}

// Assigns each row to its nearest centre by ||c||^2 - 2 x.c (first minimum wins), one GEMM per
// block of rows, and when `sums` is set also sums the rows per centre while the block is in
// cache (scikit-learn's chunked Lloyd step). Returns whether every x.c was finite, which proves X
// finite (see check_predict_outputs); fit, whose X is checked, skips that test.
template <typename Label>
bool assign_labels(const Matrix& x, const Matrix& centers, Label* labels,
                   ClusterSums* sums = nullptr, bool check_finite = true) {
  const Vector cc = detail::row_squared_norms(centers);
  const int64_t k = centers.rows, d = x.cols;
  const RowParts parts = row_parts(x.rows, gemm_block_rows(k, d));
  const int64_t block = label_gemm_rows(k, gemm_block_rows(k, d));
  std::vector<double> partial(sums ? static_cast<size_t>(parts.count * (k * d + k)) : 0, 0.0);
  std::atomic<bool> all_finite{true};
  parallel_for(0, parts.count, 1, [&](int64_t p0, int64_t p1) {
    const auto dots = std::make_unique_for_overwrite<double[]>(static_cast<size_t>(block * k));
    const auto best_v = std::make_unique_for_overwrite<double[]>(static_cast<size_t>(block));
    const auto best = std::make_unique_for_overwrite<int64_t[]>(static_cast<size_t>(block));
    bool finite = true;
    for (int64_t p = p0; p < p1; ++p) {
      double* part = sums ? partial.data() + static_cast<size_t>(p * (k * d + k)) : nullptr;
      const int64_t r1 = parts.begin(p + 1);
      for (int64_t b0 = parts.begin(p); b0 < r1; b0 += block) {
        const int64_t rows = std::min(block, r1 - b0);
        // dots = C X_block^T (k x rows): the block is a row range of X itself, no copy.
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(k),
                    static_cast<int>(rows), static_cast<int>(d), 1.0, centers.data.data(),
                    static_cast<int>(centers.cols), x.row(b0), static_cast<int>(d), 0.0, dots.get(),
                    static_cast<int>(rows));
        if (check_finite) finite &= all_finite_products(dots.get(), rows * k, best_v.get(), rows);
        nearest_centres(cc.data(), dots.get(), k, rows, best_v.get(), best.get());
        for (int64_t i = 0; i < rows; ++i) {
          labels[b0 + i] = static_cast<Label>(best[static_cast<size_t>(i)]);
          if (part) add_row(x.row(b0 + i), best[static_cast<size_t>(i)], k, d, part);
        }
      }
    }
    if (!finite) all_finite.store(false, std::memory_order_relaxed);
  });
  if (sums) *sums = reduce_parts(partial, parts.count, k, d);
  return all_finite.load(std::memory_order_relaxed);
}

// The M-step's sums for labels found otherwise (Elkan), in the same parts and order as
// assign_labels forms them, so both algorithms take the same steps.
ClusterSums cluster_sums(const Matrix& x, const std::vector<int64_t>& labels, int64_t k) {
  const int64_t d = x.cols;
  const RowParts parts = row_parts(x.rows, gemm_block_rows(k, d));
  std::vector<double> partial(static_cast<size_t>(parts.count * (k * d + k)), 0.0);
  parallel_for(0, parts.count, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      double* part = partial.data() + static_cast<size_t>(p * (k * d + k));
      for (int64_t i = parts.begin(p); i < parts.begin(p + 1); ++i) {
        add_row(x.row(i), labels[static_cast<size_t>(i)], k, d, part);
      }
    }
  });
  return reduce_parts(partial, parts.count, k, d);
}

double inertia_of(const Matrix& x, const Matrix& centers, const std::vector<int64_t>& labels) {
  return sum_over_rows(x.rows, [&](int64_t i) {
    const double* xr = x.row(i);
    const double* cr = centers.row(labels[static_cast<size_t>(i)]);
    double s = 0;
    for (int64_t j = 0; j < x.cols; ++j) s += (xr[j] - cr[j]) * (xr[j] - cr[j]);
    return s;
  });
}

// New centres as label means; empty clusters are relocated to the points farthest from their
// (old) centres, like scikit-learn's _relocate_empty_clusters_dense.
Matrix update_centers(const Matrix& x, const Matrix& old_centers,
                      const std::vector<int64_t>& labels, ClusterSums acc) {
  const int64_t k = old_centers.rows;
  Matrix& sums = acc.sums;
  std::vector<double>& counts = acc.counts;
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
      const int64_t from = labels[static_cast<size_t>(point)];
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
    ClusterSums sums;
    assign_labels(x, centers, labels.data(), &sums, false);
    Matrix next = update_centers(x, centers, labels, std::move(sums));
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
  if (!strict) assign_labels(x, centers, labels.data(), nullptr, false);
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
    Matrix next = update_centers(x, centers, labels, cluster_sums(x, labels, k));
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
  if (!strict) assign_labels(x, centers, labels.data(), nullptr, false);
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

// numpy's legacy RandomState stream, which scikit-learn's random_state=int seeds: MT19937
// initialised from the low 32 bits of the seed, doubles of 53 bits from two draws. k-means++
// draws from it so that a seed picks the centres scikit-learn picks for the same seed (iteration
// counts then compare run for run).
class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint64_t seed) : mt_(static_cast<uint32_t>(seed)) {}
  // random_sample() / uniform(0, 1): uniform in [0, 1).
  double uniform() {
    const auto high = static_cast<uint32_t>(mt_()) >> 5;
    const auto low = static_cast<uint32_t>(mt_()) >> 6;
    return (high * 67108864.0 + low) / 9007199254740992.0;
  }

 private:
  std::mt19937 mt_;
};

// choice(n, p=w / sum(w)) for unit weights w: the first index whose normalised cumulative
// weight exceeds a uniform draw, with the running sums formed in order as numpy's cumsum does.
int64_t choose_uniformly(int64_t n, NumpyRandomState& rng) {
  const double u = rng.uniform();
  const double p = 1.0 / static_cast<double>(n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += p;
  double cum = 0;
  for (int64_t i = 0; i < n; ++i) {
    cum += p;
    if (cum / total > u) return i;
  }
  return n - 1;
}

// k-means++ measures each round's few candidates (2 + log k of them) against every row. A GEMM
// with so few columns spends its time packing X (OpenBLAS copies each block of rows into its
// panel layout), so up to kDirectCandidates candidates are dotted with each row directly, X read
// once. Each dot sums in kDotLanes interleaved lanes (lane l takes features l, l + 8, ...) that
// are then added pairwise: an order fixed by the code, the same in every clone, so every machine
// gets the same distances and so the same centres.
constexpr int64_t kDirectCandidates = 8;
constexpr int64_t kDotLanes = 8;
// Below this many features the lanes' tail and their final sums cost more than BLAS's packing.
constexpr int64_t kDirectMinFeatures = 24;

// The lanes as one GCC vector (each clone maps it to its registers; element-wise operations
// round exactly as scalar ones), so the accumulators stay in registers.
using DotLanes = double __attribute__((vector_size(kDotLanes * sizeof(double))));

template <int64_t T>
EMBER_KMEANS_VECTOR_CLONES void direct_candidate_dots(const double* x, int64_t rows, int64_t d,
                                                      const double* cand, double* dots) {
  const int64_t full = d / kDotLanes * kDotLanes;
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = x + r * d;
    DotLanes acc[T] = {};
    for (int64_t j = 0; j < full; j += kDotLanes) {
      DotLanes xv;
      std::memcpy(&xv, xr + j, sizeof xv);
      for (int64_t c = 0; c < T; ++c) {
        DotLanes cv;
        std::memcpy(&cv, cand + c * d + j, sizeof cv);
        acc[c] += xv * cv;
      }
    }
    for (int64_t j = full; j < d; ++j)
      for (int64_t c = 0; c < T; ++c) acc[c][j - full] += xr[j] * cand[c * d + j];
    for (int64_t c = 0; c < T; ++c) {
      const DotLanes& a = acc[c];
      dots[r * T + c] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    }
  }
}

using CandidateDots = void (*)(const double*, int64_t, int64_t, const double*, double*);
template <size_t... I>
std::array<CandidateDots, sizeof...(I)> direct_dots_table(std::index_sequence<I...> /*counts*/) {
  return {&direct_candidate_dots<static_cast<int64_t>(I) + 1>...};
}
const std::array<CandidateDots, kDirectCandidates> kDirectDots =
    direct_dots_table(std::make_index_sequence<kDirectCandidates>());

// dots (rows x t, row-major) = X_block cand^T.
void candidate_dots(const double* x, int64_t rows, int64_t d, const double* cand, int64_t t,
                    double* dots) {
  if (t >= 1 && t <= kDirectCandidates && d >= kDirectMinFeatures) {
    kDirectDots[static_cast<size_t>(t - 1)](x, rows, d, cand, dots);
    return;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(t),
              static_cast<int>(d), 1.0, x, static_cast<int>(d), cand, static_cast<int>(d), 0.0,
              dots, static_cast<int>(t));
}

// Squared distances from every row to the rows `ids`, their products per block of rows
// (-2 x.y + ||y||^2 + ||x||^2 in scikit-learn's order, clamped at 0), each lowered to `closest`
// when that is nearer: out(i, t) = min(closest[i], |x_i - x_ids[t]|^2). Returns the column sums,
// formed per part in part order (see RowParts).
std::vector<double> candidate_distances(const Matrix& x, const Vector& xx,
                                        const std::vector<int64_t>& ids,
                                        const std::vector<double>* closest, Matrix& out) {
  const auto t = static_cast<int64_t>(ids.size());
  const int64_t d = x.cols;
  Matrix cand(t, d);
  std::vector<double> cand_norms(static_cast<size_t>(t));
  for (int64_t c = 0; c < t; ++c) {
    std::copy_n(x.row(ids[static_cast<size_t>(c)]), d, cand.row(c));
    cand_norms[static_cast<size_t>(c)] = xx[static_cast<size_t>(ids[static_cast<size_t>(c)])];
  }
  const int64_t block = gemm_block_rows(t, d);
  const RowParts parts = row_parts(x.rows, block);
  std::vector<double> partial(static_cast<size_t>(parts.count * t), 0.0);
  parallel_for(0, parts.count, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      double* pot = partial.data() + p * t;
      const int64_t r1 = parts.begin(p + 1);
      for (int64_t b0 = parts.begin(p); b0 < r1; b0 += block) {
        const int64_t rows = std::min(block, r1 - b0);
        double* dots = out.row(b0);
        candidate_dots(x.row(b0), rows, d, cand.data.data(), t, dots);
        for (int64_t i = b0; i < b0 + rows; ++i) {
          double* row = out.row(i);
          const double norm = xx[static_cast<size_t>(i)];
          const double limit = closest ? (*closest)[static_cast<size_t>(i)]
                                       : std::numeric_limits<double>::infinity();
          for (int64_t c = 0; c < t; ++c) {
            const double sq =
                std::max(0.0, -2.0 * row[c] + cand_norms[static_cast<size_t>(c)] + norm);
            row[c] = std::min(sq, limit);
            pot[c] += row[c];
          }
        }
      }
    }
  });
  std::vector<double> pots(static_cast<size_t>(t), 0.0);
  for (int64_t p = 0; p < parts.count; ++p)
    for (int64_t c = 0; c < t; ++c) pots[static_cast<size_t>(c)] += partial[p * t + c];
  return pots;
}

// Greedy k-means++ as scikit-learn runs it, draw for draw: the first centre uniformly, then per
// centre 2 + log(k) candidates sampled in proportion to the squared distance to the nearest
// centre so far; the one that lowers the potential most is kept. All candidates of a round are
// measured by one GEMM pass over X.
Matrix plusplus(const Matrix& x, int64_t k, NumpyRandomState& rng) {
  const int64_t n = x.rows;
  const int64_t trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  Matrix centers(k, x.cols);
  const Vector xx = detail::row_squared_norms(x);
  const int64_t first = choose_uniformly(n, rng);
  std::copy_n(x.row(first), x.cols, centers.row(0));
  Matrix dist(n, 1);
  double pot = candidate_distances(x, xx, {first}, nullptr, dist)[0];
  std::vector<double> closest(dist.data.begin(), dist.data.end());
  std::vector<double> cumulative(static_cast<size_t>(n));
  Matrix cand_dist(n, trials);
  std::vector<int64_t> ids(static_cast<size_t>(trials));
  for (int64_t c = 1; c < k; ++c) {
    std::partial_sum(closest.begin(), closest.end(), cumulative.begin());
    for (int64_t t = 0; t < trials; ++t) {
      const double target = rng.uniform() * pot;
      const int64_t id =
          std::lower_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin();
      ids[static_cast<size_t>(t)] = std::min(id, n - 1);
    }
    const std::vector<double> pots = candidate_distances(x, xx, ids, &closest, cand_dist);
    const auto best =
        static_cast<int64_t>(std::min_element(pots.begin(), pots.end()) - pots.begin());
    pot = pots[static_cast<size_t>(best)];
    for (int64_t i = 0; i < n; ++i) closest[static_cast<size_t>(i)] = cand_dist(i, best);
    std::copy_n(x.row(ids[static_cast<size_t>(best)]), x.cols, centers.row(c));
  }
  return centers;
}

}  // namespace

Matrix kmeans_plusplus(const Matrix& x, int64_t n_clusters, uint64_t seed) {
  check_fit_input(x, nullptr, "kmeans_plusplus");
  if (n_clusters < 1 || n_clusters > x.rows) {
    throw Error("kmeans_plusplus: n_clusters must be in [1, n_samples]");
  }
  NumpyRandomState rng(seed);
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
  // Centring and the variance in one row-major pass: a column-wise pass would touch every cache
  // line of X once per feature.
  Matrix x(x_in.rows, x_in.cols);
  const double var_sum = sum_over_rows(x.rows, [&](int64_t i) {
    const double* src = x_in.row(i);
    double* dst = x.row(i);
    double s = 0;
    for (int64_t j = 0; j < x.cols; ++j) {
      dst[j] = src[j] - mean[static_cast<size_t>(j)];
      s += dst[j] * dst[j];
    }
    return s;
  });
  const double tol = params.tol == 0 ? 0
                                     : var_sum / static_cast<double>(x.rows) /
                                           static_cast<double>(x.cols) * params.tol;

  const bool is_random = !params.init_centers && params.init == "random";
  const int64_t n_init = params.n_init.value_or(is_random ? 10 : 1);
  detail::Rng rng(params.random_state);  // init='random'
  NumpyRandomState plusplus_rng(params.random_state);
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
      init = plusplus(x, params.n_clusters, plusplus_rng);
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
