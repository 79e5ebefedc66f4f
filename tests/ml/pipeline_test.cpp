// TablePipeline: fit on a CSV table, save, load, predict; files of format version 1 written by the
// CLI before the format moved into the library (tests/fixtures/ml/pipeline, from
// tools/ml/pipeline_v1_fixtures.sh) still load and predict what that CLI printed.
#include "ember/ml/pipeline.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

#include "../cli_runner.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

std::string fixture_path(const std::string& name) {
  return std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/ml/pipeline/" + name;
}

TablePipeline fit_pipeline(const std::string& algorithm, const CsvTable& table,
                           const std::string& target,
                           std::map<std::string, std::string> params = {}) {
  ParamMap p(std::move(params));
  return TablePipeline::fit(find_algorithm(algorithm), p, table, target);
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TablePipeline, SavedAndLoadedPipelinesPredictIdentically) {
  const CsvTable iris = testing::read_dataset("iris");
  struct Case {
    std::string algorithm, target;
    std::map<std::string, std::string> params;
  };
  for (const Case& c : {Case{"LogisticRegression", "target", {{"max_iter", "500"}}},
                        Case{"RandomForestClassifier", "target", {{"n_estimators", "10"}}},
                        Case{"Ridge", "sepal_length_cm", {}}, Case{"StandardScaler", "target", {}},
                        Case{"KMeans", "", {}}}) {
    SCOPED_TRACE(c.algorithm);
    const TablePipeline fitted = fit_pipeline(c.algorithm, iris, c.target, c.params);
    const std::string bytes = fitted.save();
    const TablePipeline loaded = TablePipeline::load(bytes);
    EXPECT_EQ(loaded.save(), bytes);
    EXPECT_EQ(loaded.algorithm().name, c.algorithm);
    EXPECT_EQ(loaded.schema().classes, fitted.schema().classes);
    EXPECT_EQ(loaded.schema().target, c.target);
    if (fitted.algorithm().task == Task::Transform) {
      EXPECT_EQ(loaded.transform(iris).data, fitted.transform(iris).data);
      continue;
    }
    const Vector predicted = fitted.predict(iris);
    ASSERT_EQ(predicted.size(), 150u);
    EXPECT_EQ(loaded.predict(iris), predicted);
    if (fitted.algorithm().supports_proba) {
      EXPECT_EQ(loaded.predict_proba(iris).data, fitted.predict_proba(iris).data);
    }
  }
  // Supervised: the target is not a feature; unsupervised without a target: every column is.
  EXPECT_EQ(fit_pipeline("GaussianNB", iris, "target").model().n_features(), 4);
  EXPECT_EQ(fit_pipeline("StandardScaler", iris, "").model().n_features(), 7);
}

TEST(TablePipeline, TextColumnsAreOneHotEncodedAndLabelsKept) {
  const CsvTable train = parse_csv(
      "colour,size,label\nred,1,yes\nblue,2,no\nred,3,yes\n"
      "green,4,no\nred,5,yes\nblue,6,no\n");
  const TablePipeline p = fit_pipeline("GaussianNB", train, "label");
  EXPECT_EQ(p.model().n_features(), 4);  // blue, green, red, size
  ASSERT_EQ(p.schema().classes, (std::vector<std::string>{"no", "yes"}));
  const Vector predicted = p.predict(train);
  for (int64_t r = 0; r < train.rows; ++r) {
    EXPECT_EQ(p.class_label(predicted[static_cast<size_t>(r)]),
              train.columns[2].text[static_cast<size_t>(r)]);
  }
  expect_error([&] { p.class_label(2); }, "out of range");
}

TEST(TablePipeline, SchemaErrorsNameTheColumn) {
  const CsvTable train =
      parse_csv("colour,size,label\nred,1,yes\nblue,2,no\nred,3,yes\nblue,4,no\n");
  const TablePipeline p = fit_pipeline("GaussianNB", train, "label");
  expect_error([&] { p.predict(parse_csv("colour,size,extra\nred,1,0\n")); },
               "the data has column 'extra', which the model was not fitted with");
  expect_error([&] { p.predict(parse_csv("colour\nred\n")); }, "'size' is missing");
  expect_error([&] { p.predict(parse_csv("colour,size\npurple,1\n")); },
               "not seen in the training data");
  expect_error([&] { p.predict(parse_csv("colour,size\nred,big\n")); }, "size");
  expect_error([&] { fit_pipeline("GaussianNB", train, ""); }, "give the target column");
  expect_error([&] { fit_pipeline("GaussianNB", train, "weight"); },
               "target column 'weight' not found");
  const TablePipeline ridge = fit_pipeline("Ridge", parse_csv("a,b\n1,2\n2,4\n3,7\n"), "b");
  expect_error([&] { ridge.predict_proba(parse_csv("a\n1\n")); }, "Ridge");
}

// The fixture pipelines, loaded and applied to the query the old CLI was given, give what it
// printed. Labels must match exactly; the numbers were printed in shortest round-trip form by the
// build that wrote them, and another SIMD path or BLAS may sum the few-term dot products in
// another order: 1e-12 relative covers that rounding, for these well-conditioned models, many
// times over, while any change of format or encoding moves them by far more.
void expect_same_as_recorded(const std::string& model, const std::string& query) {
  SCOPED_TRACE(model);
  const TablePipeline p = TablePipeline::load_file(fixture_path(model + ".v1.model"));
  const CsvTable data = read_csv(fixture_path(query));
  const CsvTable recorded = read_csv(fixture_path(model + ".v1.predict.csv"));
  ASSERT_EQ(recorded.rows, data.rows);
  std::vector<Vector> ours;  // the numeric columns of the recorded file, in order
  size_t first_number = 0;
  if (p.algorithm().task == Task::Transform) {
    const Matrix t = p.transform(data);
    ASSERT_EQ(static_cast<size_t>(t.cols), recorded.columns.size());
    for (int64_t c = 0; c < t.cols; ++c) {
      Vector column;
      for (int64_t r = 0; r < t.rows; ++r) column.push_back(t(r, c));
      ours.push_back(column);
    }
  } else {
    const Vector predicted = p.predict(data);
    if (p.algorithm().task == Task::Classification) {
      for (size_t r = 0; r < predicted.size(); ++r) {
        EXPECT_EQ(p.class_label(predicted[r]), recorded.columns[0].text[r]) << "row " << r;
      }
      first_number = 1;
      const Matrix proba = p.predict_proba(data);
      ASSERT_EQ(static_cast<size_t>(proba.cols) + 1, recorded.columns.size());
      for (int64_t c = 0; c < proba.cols; ++c) {
        EXPECT_EQ(recorded.columns[static_cast<size_t>(c) + 1].name,
                  "proba_" + p.schema().classes[static_cast<size_t>(c)]);
        Vector column;
        for (int64_t r = 0; r < proba.rows; ++r) column.push_back(proba(r, c));
        ours.push_back(column);
      }
    } else {
      ours.push_back(predicted);
    }
  }
  ASSERT_EQ(ours.size() + first_number, recorded.columns.size());
  for (size_t c = 0; c < ours.size(); ++c) {
    EXPECT_LE(testing::max_rel_diff(ours[c], recorded.columns[c + first_number].numbers), 1e-12)
        << "column " << recorded.columns[c + first_number].name;
  }
}

TEST(TablePipeline, VersionOneFilesWrittenByTheOldCliStillLoad) {
  expect_same_as_recorded("logistic", "query.csv");
  expect_same_as_recorded("ridge", "ridge_query.csv");
  expect_same_as_recorded("standard_scaler", "query.csv");
  // Saving what was loaded writes the same bytes: version 1 is still the format written.
  const std::string bytes = test::slurp(fixture_path("logistic.v1.model"));
  EXPECT_EQ(TablePipeline::load(bytes).save(), bytes);
}

TEST(TablePipeline, BadFilesAreClearErrors) {
  const std::string bytes = test::slurp(fixture_path("ridge.v1.model"));
  // The version follows the magic: an 8-byte length and the 17 bytes of "EMBER-ML-PIPELINE".
  ASSERT_EQ(bytes.substr(8, 17), "EMBER-ML-PIPELINE");
  std::string future = bytes;
  future[25] = 7;
  expect_error([&] { TablePipeline::load(future); }, "unsupported model file version 7");
  expect_error([&] { TablePipeline::load(bytes + "x"); }, "trailing bytes");
  expect_error([&] { TablePipeline::load(bytes.substr(0, bytes.size() / 2)); },
               "truncated or corrupt");
  expect_error([&] { TablePipeline::load("hello"); }, "not an Ember ML model file");
  expect_error([&] { TablePipeline::load(""); }, "not an Ember ML model file");
  expect_error([&] { TablePipeline::load_file("/nonexistent.model"); }, "/nonexistent.model: ");
  // A model whose feature count disagrees with the schema.
  const CsvTable two = parse_csv("a,b,t\n1,2,3\n2,1,5\n3,3,8\n");
  const CsvTable one = parse_csv("a,t\n1,3\n2,5\n3,8\n");
  ArchiveWriter mixed;
  mixed.str("EMBER-ML-PIPELINE");
  mixed.u64(1);
  fit_pipeline("Ridge", two, "t").schema().save(mixed);
  mixed.str(save_model(fit_pipeline("Ridge", one, "t").model()));
  expect_error([&] { TablePipeline::load(mixed.bytes()); }, "corrupt (feature count)");
}

}  // namespace
}  // namespace ember::ml
