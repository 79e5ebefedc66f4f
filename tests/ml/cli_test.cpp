// `ember ml fit|predict|eval` end to end, through the built binary.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../cli_runner.hpp"
#include "../test_env.hpp"
#include "ember/ml/csv.hpp"

namespace {

using ember::test::run_ember;
using ember::test::RunOptions;
using ember::test::RunResult;
using ember::test::slurp;

// The test's files, in a folder of its own removed when the process ends.
std::string tmp_path(const std::string& name) {
  static const ember::test::TempDir folder;
  return (folder / name).string();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// `prefix` runs in the shell before ember (e.g. a ulimit or VAR=value).
RunOptions after(const std::string& prefix, bool refuse_threads = false) {
  RunOptions options;
  options.prefix = prefix;
  options.refuse_threads = refuse_threads;
  return options;
}

std::string dataset(const char* name) {
  return std::string(EMBER_SOURCE_DIR) + "/data/datasets/" + name + ".csv";
}

// Every failure: exit 1, nothing on stdout, one stderr line starting "error:".
void expect_failure_with(const RunResult& r, const std::string& fragment) {
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error:", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
}

void expect_failure(const std::string& args, const std::string& fragment) {
  SCOPED_TRACE(args);
  expect_failure_with(run_ember(args), fragment);
}

TEST(MlCli, FitThenPredictWithLabelsAndProbabilities) {
  const std::string model = tmp_path("iris.model");
  const RunResult fit =
      run_ember("ml fit --algo LogisticRegression --param C=10 --param max_iter=500 --train " +
                dataset("iris") + " --target target --out " + model);
  ASSERT_EQ(fit.status, 0) << fit.err;
  EXPECT_NE(fit.out.find("\"classes\":[\"setosa\",\"versicolor\",\"virginica\"]"),
            std::string::npos);
  const RunResult pred =
      run_ember("ml predict --model " + model + " --data " + dataset("iris") + " --proba");
  ASSERT_EQ(pred.status, 0) << pred.err;
  const auto table = ember::ml::parse_csv(pred.out);
  ASSERT_EQ(table.rows, 150);
  ASSERT_EQ(table.columns.size(), 4u);
  EXPECT_EQ(table.columns[0].name, "prediction");
  EXPECT_EQ(table.columns[1].name, "proba_setosa");
  EXPECT_EQ(table.columns[3].name, "proba_virginica");
  const auto truth = ember::ml::read_csv(dataset("iris"));
  int correct = 0;
  for (int64_t i = 0; i < 150; ++i) {
    correct += table.columns[0].text[static_cast<size_t>(i)] ==
               truth.columns[4].text[static_cast<size_t>(i)];
    const double sum = table.columns[1].numbers[static_cast<size_t>(i)] +
                       table.columns[2].numbers[static_cast<size_t>(i)] +
                       table.columns[3].numbers[static_cast<size_t>(i)];
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
  EXPECT_GE(correct, 145);  // training accuracy of C=10 multinomial logistic on iris: 98%
  // Columns are matched by name, and the target column may be absent.
  write(tmp_path("reordered.csv"),
        "petal_width_cm,petal_length_cm,sepal_width_cm,sepal_length_cm\n0.2,1.4,3.5,5.1\n2.3,5.4,3."
        "1,6.9\n");
  const RunResult re =
      run_ember("ml predict --model " + model + " --data " + tmp_path("reordered.csv"));
  ASSERT_EQ(re.status, 0) << re.err;
  EXPECT_EQ(re.out, "prediction\nsetosa\nvirginica\n");
}

TEST(MlCli, RegressionPredictionsAreNumbers) {
  const std::string model = tmp_path("diabetes.model");
  ASSERT_EQ(run_ember("ml fit --algo Ridge --param alpha=0.5 --train " + dataset("diabetes") +
                      " --target target --out " + model)
                .status,
            0);
  const RunResult pred =
      run_ember("ml predict --model " + model + " --data " + dataset("diabetes"));
  ASSERT_EQ(pred.status, 0) << pred.err;
  const auto table = ember::ml::parse_csv(pred.out);
  EXPECT_EQ(table.rows, 442);
  EXPECT_TRUE(table.columns[0].numeric);
  expect_failure("ml predict --model " + model + " --data " + dataset("diabetes") + " --proba",
                 "probabilities");
}

TEST(MlCli, CategoricalFeaturesAreOneHotEncoded) {
  write(tmp_path("cat.csv"),
        "colour,size,label\nred,1,yes\nblue,2,no\nred,3,yes\ngreen,4,no\nred,5,yes\nblue,6,no\n");
  const std::string model = tmp_path("cat.model");
  const RunResult fit = run_ember("ml fit --algo GaussianNB --train " + tmp_path("cat.csv") +
                                  " --target label --out " + model);
  ASSERT_EQ(fit.status, 0) << fit.err;
  EXPECT_NE(fit.out.find("\"n_features\":4"), std::string::npos) << fit.out;
  write(tmp_path("cat_q.csv"), "colour,size\nred,2\n");
  EXPECT_EQ(run_ember("ml predict --model " + model + " --data " + tmp_path("cat_q.csv")).status,
            0);
  write(tmp_path("cat_bad.csv"), "colour,size\npurple,2\n");
  expect_failure("ml predict --model " + model + " --data " + tmp_path("cat_bad.csv"),
                 "not seen in the training data");
}

TEST(MlCli, UnsupervisedAlgorithmsDropTheTargetColumn) {
  const std::string model = tmp_path("scaler.model");
  const RunResult fit = run_ember("ml fit --algo StandardScaler --train " + dataset("iris") +
                                  " --target target --out " + model);
  ASSERT_EQ(fit.status, 0) << fit.err;
  EXPECT_NE(fit.out.find("\"n_features\":4"), std::string::npos) << fit.out;
  const RunResult pred = run_ember("ml predict --model " + model + " --data " + dataset("iris"));
  ASSERT_EQ(pred.status, 0) << pred.err;
  const auto table = ember::ml::parse_csv(pred.out);
  ASSERT_EQ(table.columns.size(), 4u);
  EXPECT_EQ(table.columns[0].name, "x0");
  double mean = 0;
  for (double v : table.columns[0].numbers) mean += v / 150;
  EXPECT_NEAR(mean, 0.0, 1e-12);  // standardised
  // Without --target every column is a feature: iris's text target is one-hot encoded.
  const RunResult all =
      run_ember("ml fit --algo StandardScaler --train " + dataset("iris") + " --out " + model);
  ASSERT_EQ(all.status, 0) << all.err;
  EXPECT_NE(all.out.find("\"n_features\":7"), std::string::npos) << all.out;
  expect_failure("ml eval --algo StandardScaler --data " + dataset("iris") + " --target target",
                 "neither");
}

TEST(MlCli, NeighboursLargerThanTheSampleCountIsAnError) {
  // Throws (failing the test) if the algorithm is not registered: that would be a bug.
  ASSERT_EQ(ember::ml::find_algorithm("KNeighborsClassifier").name, "KNeighborsClassifier");
  expect_failure("ml fit --algo KNeighborsClassifier --param n_neighbors=500 --train " +
                     dataset("iris") + " --target target --out " + tmp_path("knn.model"),
                 "n_neighbors");
  expect_failure("ml eval --algo KNeighborsClassifier --param n_neighbors=140 --data " +
                     dataset("iris") + " --target target",
                 "n_neighbors");
}

// Model files written before the format moved into the library (tools/ml/pipeline_v1_fixtures.sh)
// predict what the CLI of then printed (the numbers to 1e-12 relative, see pipeline_test.cpp).
TEST(MlCli, ModelFilesOfFormatVersionOneStillPredict) {
  const std::string dir = std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/ml/pipeline/";
  for (const auto& [model, args] :
       {std::pair<std::string, std::string>{"logistic", "--proba --data " + dir + "query.csv"},
        {"ridge", "--data " + dir + "ridge_query.csv"},
        {"standard_scaler", "--data " + dir + "query.csv"}}) {
    SCOPED_TRACE(model);
    std::string command = "ml predict --model " + dir;
    command.append(model).append(".v1.model ").append(args);
    const RunResult r = run_ember(command);
    ASSERT_EQ(r.status, 0) << r.err;
    const auto ours = ember::ml::parse_csv(r.out);
    const auto recorded = ember::ml::read_csv(dir + model + ".v1.predict.csv");
    ASSERT_EQ(ours.columns.size(), recorded.columns.size());
    for (size_t c = 0; c < ours.columns.size(); ++c) {
      const auto& a = ours.columns[c];
      const auto& b = recorded.columns[c];
      EXPECT_EQ(a.name, b.name);
      ASSERT_EQ(a.numeric, b.numeric) << b.name;
      if (!b.numeric) {
        EXPECT_EQ(a.text, b.text);
      }
      for (size_t i = 0; i < b.numbers.size(); ++i) {
        EXPECT_NEAR(a.numbers[i], b.numbers[i], 1e-12 * std::fabs(b.numbers[i])) << b.name;
      }
    }
  }
}

TEST(MlCli, EvalPrintsFoldScoresAndMean) {
  const RunResult r =
      run_ember("ml eval --algo GaussianNB --data " + dataset("iris") + " --target target --cv 5");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["metric"], "accuracy");
  ASSERT_EQ(j["scores"].size(), 5u);
  double sum = 0;
  for (const auto& s : j["scores"]) sum += s.get<double>();
  EXPECT_DOUBLE_EQ(j["mean"].get<double>(), sum / 5);
  // scikit-learn: cross_val_score(GaussianNB(), iris, cv=5).mean() = 0.9533333333333334.
  EXPECT_NEAR(j["mean"].get<double>(), 0.9533333333333334, 1e-12);
  const RunResult reg = run_ember("ml eval --algo LinearRegression --data " + dataset("diabetes") +
                                  " --target target --cv 3 --metric neg_mean_squared_error");
  ASSERT_EQ(reg.status, 0) << reg.err;
  EXPECT_EQ(nlohmann::json::parse(reg.out)["scores"].size(), 3u);
}

TEST(MlCli, FailuresPrintOneErrorLineAndNothingOnStdout) {
  const std::string iris = dataset("iris");
  const std::string out = " --out " + tmp_path("never.model");
  expect_failure("ml fit --algo NoSuchModel --train " + iris + " --target target" + out,
                 "unknown algorithm");
  expect_failure("ml fit --algo Ridge --param alpah=1 --train " + dataset("diabetes") +
                     " --target target" + out,
                 "unknown parameter 'alpah'");
  expect_failure(
      "ml fit --algo Ridge --param alpha --train " + dataset("diabetes") + " --target target" + out,
      "key=value");
  expect_failure("ml fit --algo GaussianNB --train " + iris + " --target species" + out,
                 "target column 'species' not found");
  expect_failure("ml fit --algo GaussianNB --train " + iris + out, "--target");
  expect_failure("ml fit --algo GaussianNB --train /nonexistent.csv --target target" + out,
                 "cannot open");
  write(tmp_path("nan.csv"), "a,b,target\n1,2,x\n3,nan,y\n");
  expect_failure(
      "ml fit --algo GaussianNB --train " + tmp_path("nan.csv") + " --target target" + out,
      "non-finite value 'nan' at row 2, column 'b'");
  write(tmp_path("inf.csv"), "a,b,target\n1,2,x\n3,-inf,y\n");
  expect_failure(
      "ml fit --algo GaussianNB --train " + tmp_path("inf.csv") + " --target target" + out,
      "row 2, column 'b'");
  write(tmp_path("missing.csv"), "a,b,target\n1,2,x\n3,,y\n");
  expect_failure(
      "ml fit --algo GaussianNB --train " + tmp_path("missing.csv") + " --target target" + out,
      "missing value at row 2, column 'b'");
  write(tmp_path("ragged.csv"), "a,b,target\n1,2,x\n3,y\n");
  expect_failure(
      "ml fit --algo GaussianNB --train " + tmp_path("ragged.csv") + " --target target" + out,
      "has 2 fields");
  write(tmp_path("single.csv"), "a,target\n1,x\n2,x\n3,x\n");
  expect_failure(
      "ml fit --algo GaussianNB --train " + tmp_path("single.csv") + " --target target" + out,
      "single class");
  expect_failure("ml eval --algo GaussianNB --data " + tmp_path("nan.csv") + " --target target",
                 "non-finite");
  expect_failure("ml eval --algo GaussianNB --data " + iris + " --target target --cv 200",
                 "greater than the number of samples");
  expect_failure("ml eval --algo GaussianNB --data " + iris + " --target target --metric r2",
                 "does not apply");
  expect_failure("ml eval --algo LinearRegression --data " + iris + " --target target",
                 "not numeric");
  // Predict-time feature mismatch: an extra column, a missing column, a corrupt model.
  const std::string model = tmp_path("nb.model");
  ASSERT_EQ(
      run_ember("ml fit --algo GaussianNB --train " + iris + " --target target --out " + model)
          .status,
      0);
  write(tmp_path("extra.csv"),
        "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,extra\n1,2,3,4,5\n");
  expect_failure("ml predict --model " + model + " --data " + tmp_path("extra.csv"),
                 "was not fitted with");
  write(tmp_path("fewer.csv"), "sepal_length_cm,sepal_width_cm,petal_length_cm\n1,2,3\n");
  expect_failure("ml predict --model " + model + " --data " + tmp_path("fewer.csv"),
                 "'petal_width_cm' is missing");
  const std::string bytes = slurp(model);
  write(tmp_path("truncated.model"), bytes.substr(0, bytes.size() / 2));
  expect_failure("ml predict --model " + tmp_path("truncated.model") + " --data " + iris,
                 "truncated or corrupt");
  write(tmp_path("garbage.model"), "hello");
  expect_failure("ml predict --model " + tmp_path("garbage.model") + " --data " + iris, "error");
}

// A full disk, simulated by a file-size limit (SIGXFSZ ignored, so the write fails with EFBIG):
// the fit used to print its success JSON, exit 0 and leave a 0-byte model.
TEST(MlCli, AFailedModelWriteKeepsTheOldModel) {
  const std::string dir = tmp_path("fit_dir");
  std::filesystem::create_directories(dir);
  const std::string model = dir + "/model.bin";
  const std::string fit = "ml fit --algo RandomForestClassifier --param n_estimators=50 --train " +
                          dataset("iris") + " --target target --out " + model;
  ASSERT_EQ(run_ember("ml fit --algo GaussianNB --train " + dataset("iris") +
                      " --target target --out " + model)
                .status,
            0);
  const std::string old = slurp(model);
  expect_failure_with(run_ember(fit, after("trap '' XFSZ; ulimit -f 1;")), "cannot write");
  EXPECT_EQ(slurp(model), old);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  std::filesystem::remove_all(dir);
}

// Labels (and --out paths) are bytes: invalid UTF-8 in them used to make the summary throw after
// the model was written, exiting 1 over a replaced file.
TEST(MlCli, NonUtf8LabelsGiveAValidSummary) {
  const std::string csv = tmp_path("latin1.csv");
  write(csv, "a,target\n1,caf\xe9\n2,caf\xe9\n10,tea\n11,tea\n");
  const std::string model = tmp_path("latin1.model");
  const RunResult fit =
      run_ember("ml fit --algo GaussianNB --train " + csv + " --target target --out " + model);
  ASSERT_EQ(fit.status, 0) << fit.err;
  const auto summary = nlohmann::json::parse(fit.out);
  EXPECT_EQ(summary["classes"][0], "caf\xef\xbf\xbd");
  const RunResult pred = run_ember("ml predict --model " + model + " --data " + csv);
  ASSERT_EQ(pred.status, 0) << pred.err;
  EXPECT_EQ(pred.out, "prediction\ncaf\xe9\ncaf\xe9\ntea\ntea\n");
}

// The old fixed "<out>.tmp" consumed a user's file of that name, and replaced read-only files
// and (as root) device nodes.
TEST(MlCli, ModelTargetsAreCheckedBeforeWriting) {
  const std::string fit =
      "ml fit --algo GaussianNB --train " + dataset("iris") + " --target target --out ";
  const std::string model = tmp_path("keep.bin");
  write(model + ".tmp", "the user's file");
  ASSERT_EQ(run_ember(fit + model).status, 0);
  EXPECT_EQ(slurp(model + ".tmp"), "the user's file");
  const std::string readonly = tmp_path("readonly.bin");
  write(readonly, "keep me");
  ASSERT_EQ(::chmod(readonly.c_str(), 0444), 0);
  expect_failure(fit + readonly, "read-only");
  EXPECT_EQ(slurp(readonly), "keep me");
  // A device node of the test's own (a twin of /dev/null; a FIFO where mknod needs root that is
  // missing), so that a regression replaces nothing the system needs.
  const std::string device = tmp_path("null_device");
  std::remove(device.c_str());
  const bool is_device = ::mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;
  if (!is_device) {
    ASSERT_EQ(::mkfifo(device.c_str(), 0600), 0);
  }
  expect_failure(fit + device, "not a regular file");
  struct stat st {};
  ASSERT_EQ(::stat(device.c_str(), &st), 0);
  EXPECT_TRUE(is_device ? S_ISCHR(st.st_mode) : S_ISFIFO(st.st_mode));
  std::remove(device.c_str());
}

// Every command used to exit 0 with its output lost on a full stdout.
TEST(MlCli, StdoutWriteErrorsFail) {
  const std::string model = tmp_path("full.model");
  ASSERT_EQ(run_ember("ml fit --algo GaussianNB --train " + dataset("iris") +
                      " --target target --out " + model)
                .status,
            0);
  for (const std::string& args :
       {std::string("ml list"), "ml predict --model " + model + " --data " + dataset("iris"),
        "ml predict --proba --model " + model + " --data " + dataset("iris"),
        "ml eval --algo GaussianNB --data " + dataset("iris") + " --target target --cv 3"}) {
    RunOptions full;
    full.stdout_to = "/dev/full";
    expect_failure_with(run_ember(args, full), "cannot write to stdout");
  }
}

// A FIFO used to block forever and /dev/zero to be read until memory ran out.
TEST(MlCli, InputsMustBeRegularFiles) {
  const std::string fifo = tmp_path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string model = tmp_path("fifo.model");
  ASSERT_EQ(run_ember("ml fit --algo GaussianNB --train " + dataset("iris") +
                      " --target target --out " + model)
                .status,
            0);
  expect_failure("ml predict --model " + fifo + " --data " + dataset("iris"), "not a regular file");
  expect_failure("ml predict --model /dev/zero --data " + dataset("iris"), "not a regular file");
  expect_failure("ml predict --model " + model + " --data " + fifo, "not a regular file");
  expect_failure("ml fit --algo GaussianNB --train " + fifo + " --target target --out " + model,
                 "not a regular file");
  std::remove(fifo.c_str());
}

TEST(MlCli, AnUnknownVerbIsNamed) {
  const RunResult r = run_ember("bogus");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unknown command 'bogus'"), std::string::npos) << r.err;
}

// The thread pool starts on the first parallel fit: a bad EMBER_NUM_THREADS, or a system that
// refuses the threads, is one error line and exit 1, never a hang or a crash.
TEST(MlCli, ThreadPoolFailuresAreOneErrorLine) {
  const std::string fit = "ml fit --algo RandomForestClassifier --param n_estimators=8 --train " +
                          dataset("iris") + " --target target --out " + tmp_path("forest.model");
  for (const char* bad : {"abc", "0", "-2", "1025", "99999999999", "4x", "' '"}) {
    SCOPED_TRACE(bad);
    expect_failure_with(run_ember(fit, after(std::string("EMBER_NUM_THREADS=") + bad)),
                        "EMBER_NUM_THREADS");
  }
  // OpenBLAS keeps to the calling thread, so that only Ember's pool asks for threads.
  const std::string env = "EMBER_NUM_THREADS=4 OPENBLAS_NUM_THREADS=1";
  EMBER_REQUIRE_OR_SKIP(
      run_ember("--version", after("", true)).status != ember::test::kNoThreadFilter,
      "no seccomp filters here");
  expect_failure_with(run_ember(fit, after(env, true)), "cannot start worker thread 1 of 3");
  EXPECT_EQ(run_ember(fit, after(env)).status, 0);  // the same command with threads allowed
}

// Some workers start and then the system says no (here: 2 GB of address space, room for a few
// hundred 8 MB thread stacks, not a thousand). The started workers must be joined, not left
// waiting: this used to hang in the pool's destructor.
TEST(MlCli, ThreadPoolPartlyStartedIsOneErrorLine) {
#ifdef EMBER_TEST_ASAN
  GTEST_SKIP() << "AddressSanitizer reserves more address space than the limit this test sets";
#else
  const std::string fit = "ml fit --algo RandomForestClassifier --param n_estimators=8 --train " +
                          dataset("iris") + " --target target --out " + tmp_path("forest.model");
  expect_failure_with(
      run_ember(fit, after("ulimit -v 2000000; EMBER_NUM_THREADS=1000 OPENBLAS_NUM_THREADS=1")),
      "cannot start worker thread");
#endif
}

}  // namespace
