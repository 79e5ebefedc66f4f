// Ember's side of bench/ml_bench.py: loads float64 .npy arrays, fits the registered algorithm
// NAME with scikit-learn parameters, times fit and predict in-process with a given thread
// count, and prints one JSON object. An algorithm that is not registered prints
// {"status": "missing"}.
//
//   bench_ml --algo NAME [--param k=v ...] --x-train X.npy [--y-train y.npy] --x-test T.npy
//            [--y-test t.npy] [--threads N] [--init-centers C.npy] [--predict-reps N]
//            [--warmup]
//
// --init-centers (KMeans only) starts from the given centres instead of k-means++, so both sides
// run from the same start and their per-iteration costs compare. KMeans adds "n_iter".
#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "ember/base/thread_pool.hpp"
#include "ember/ml/cluster.hpp"
#include "ember/ml/common.hpp"
#include "ember/ml/metrics.hpp"

extern "C" void openblas_set_num_threads(int num_threads);

namespace {

using ember::Error;
using ember::ml::Matrix;
using ember::ml::Vector;

// Reads a C-order little-endian float64 .npy file of one or two dimensions.
Matrix read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  const std::string bytes = s.str();
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + ": not .npy");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else {
    if (bytes.size() < 12) throw Error(path + ": truncated .npy");
    for (int i = 0; i < 4; ++i)
      header_len |= size_t{static_cast<unsigned char>(bytes[8 + i])} << (8 * i);
    offset = 12;
  }
  if (offset + header_len > bytes.size()) throw Error(path + ": truncated .npy header");
  const std::string header = bytes.substr(offset, header_len);
  if (header.find("'descr': '<f8'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    throw Error(path + ": expected C-order float64 (<f8)");
  }
  const size_t open = header.find("'shape': (");
  const size_t close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) throw Error(path + ": no shape");
  std::vector<int64_t> dims;
  std::stringstream shape(header.substr(open + 10, close - open - 10));
  std::string item;
  while (std::getline(shape, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    dims.push_back(std::stoll(item));
  }
  if (dims.empty() || dims.size() > 2) throw Error(path + ": expected 1 or 2 dimensions");
  Matrix m(dims[0], dims.size() == 2 ? dims[1] : 1);
  const size_t data_bytes = m.data.size() * sizeof(double);
  if (offset + header_len + data_bytes != bytes.size()) throw Error(path + ": size mismatch");
  std::memcpy(m.data.data(), bytes.data() + offset + header_len, data_bytes);
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Process CPU time: on a machine other jobs share, wall time measures them too.
double cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

int run(int argc, char** argv) {
  std::string algo, x_train, y_train, x_test, y_test, init_centers;
  std::vector<std::string> params;
  int threads = 1;
  int predict_reps = 0;  // 0: the adaptive rule below
  bool warmup = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("missing value after " + a);
      return argv[++i];
    };
    try {
      if (a == "--algo")
        algo = next();
      else if (a == "--param")
        params.push_back(next());
      else if (a == "--x-train")
        x_train = next();
      else if (a == "--y-train")
        y_train = next();
      else if (a == "--x-test")
        x_test = next();
      else if (a == "--y-test")
        y_test = next();
      else if (a == "--threads")
        threads = std::stoi(next());
      else if (a == "--init-centers")
        init_centers = next();
      else if (a == "--predict-reps")
        predict_reps = std::stoi(next());
      else if (a == "--warmup")
        warmup = true;
      else
        throw Error("unknown argument " + a);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }
  nlohmann::json result = {{"algo", algo}, {"threads", threads}};
  try {
    const ember::ml::Algorithm* algorithm = nullptr;
    try {
      algorithm = &ember::ml::find_algorithm(algo);
    } catch (const Error&) {
      result["status"] = "missing";
      std::cout << result.dump() << "\n";
      return 0;
    }
    ember::set_num_threads(threads);
    openblas_set_num_threads(threads);
    // OpenBLAS's worker threads, started when the library loads, spin (yielding) for about 2^28
    // cycles (~0.1 s) before they sleep. In this fresh process that spin would run beside the
    // timed calls and take CPU from Ember's pool threads (kNN predict at 2 threads, 10k x 100:
    // 0.057-0.100 s instead of 0.047 s). scikit-learn's side runs in a long-lived process whose
    // workers are asleep, so this waits the spin out and times both sides in the same state.
    if (threads > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const Matrix xtr = read_npy(x_train);
    const Matrix xte = read_npy(x_test);
    Vector ytr, yte;
    if (!y_train.empty()) ytr = read_npy(y_train).data;
    if (!y_test.empty()) yte = read_npy(y_test).data;
    const bool supervised = algorithm->task == ember::ml::Task::Classification ||
                            algorithm->task == ember::ml::Task::Regression;
    std::optional<Matrix> centers;
    if (!init_centers.empty()) {
      if (algo != "KMeans") throw Error("--init-centers is for KMeans only");
      centers = read_npy(init_centers);
    }
    const auto fit = [&]() -> std::unique_ptr<ember::ml::FittedModel> {
      if (!centers) {
        ember::ml::ParamMap p = ember::ml::ParamMap::parse(params);
        return algorithm->fit(p, xtr, supervised ? &ytr : nullptr);
      }
      ember::ml::KMeansParams kp;
      kp.init_centers = centers;
      kp.n_clusters = centers->rows;
      return std::make_unique<ember::ml::ModelAdapter<ember::ml::KMeansModel>>(
          "KMeans", ember::ml::KMeans{kp}.fit(xtr));
    };
    // --warmup: one untimed fit and predict first, so that the timed calls find the process
    // as a long-running one has it (its heap pages and BLAS buffers already touched), the state
    // scikit-learn's side is measured in. A first call in a fresh process also pays for faulting
    // in fresh memory, which on a VM varies by tens of milliseconds from run to run.
    if (warmup) fit()->predict(xte);
    auto start = std::chrono::steady_clock::now();
    double cpu_start = cpu_seconds();
    const std::unique_ptr<ember::ml::FittedModel> model = fit();
    result["fit_s"] = seconds_since(start);
    result["fit_cpu_s"] = cpu_seconds() - cpu_start;
    if (const auto* km =
            dynamic_cast<const ember::ml::ModelAdapter<ember::ml::KMeansModel>*>(model.get())) {
      result["n_iter"] = km->model().n_iter;
    }
    // Predict is deterministic and often takes a millisecond or two, so one call says little:
    // the best of at least kMinReps calls and kMinTotalS seconds of calls (at most kMaxReps),
    // the same rule as bench/ml_bench.py applies to scikit-learn.
    constexpr int kMinReps = 5, kMaxReps = 1000;
    constexpr double kMinTotalS = 0.5;
    Vector pred;
    double predict_s = 1e300, predict_cpu_s = 1e300, total_s = 0;
    int reps = 0;
    while (predict_reps > 0 ? reps < predict_reps
                            : reps < kMinReps || (total_s < kMinTotalS && reps < kMaxReps)) {
      start = std::chrono::steady_clock::now();
      cpu_start = cpu_seconds();
      pred = model->predict(xte);
      predict_cpu_s = std::min(predict_cpu_s, cpu_seconds() - cpu_start);
      const double s = seconds_since(start);
      predict_s = std::min(predict_s, s);
      total_s += s;
      ++reps;
    }
    result["predict_s"] = predict_s;
    result["predict_cpu_s"] = predict_cpu_s;
    result["predict_reps"] = reps;
    if (!yte.empty()) {
      switch (algorithm->task) {
        case ember::ml::Task::Classification:
          result["metric"] = "accuracy";
          result["score"] = ember::ml::accuracy_score(yte, pred);
          break;
        case ember::ml::Task::Regression:
          result["metric"] = "r2";
          result["score"] = ember::ml::r2_score(yte, pred);
          break;
        default:
          result["metric"] = "adjusted_rand";
          result["score"] = ember::ml::adjusted_rand_score(yte, pred);
      }
    }
    result["status"] = "ok";
  } catch (const std::exception& e) {
    result["status"] = "error";
    result["error"] = e.what();
  }
  std::cout << result.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // What run() does not handle itself (an allocation failure, say) ends with an error, not with
  // std::terminate.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "error: unknown exception\n";
  }
  return 1;
}
