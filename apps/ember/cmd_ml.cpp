// `ember ml fit|predict|eval|list`: classical ML on CSV files through the algorithm registry.
//
// Choices (documented in `ember ml --help`):
// - Categorical (text) feature columns are one-hot encoded automatically over the categories
//   seen in the training file; an unseen category at predict time is an error.
// - Unsupervised algorithms (clustering, transformers) accept --target: that column is then
//   left out of the features (so a labelled file can be clustered as is).
// - At predict time columns are matched by name; the target column is ignored; any other
//   column the model was not fitted with is an error (a feature-count mismatch).
#include <charconv>
#include <numeric>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "ember/core/atomic_file.hpp"
#include "ember/ml/common.hpp"
#include "ember/ml/csv.hpp"
#include "ember/ml/model_selection.hpp"
#include "ember/ml/pipeline.hpp"
#include "output.hpp"

namespace ember::cli {
namespace {

using namespace ember::ml;

std::string number_text(double v) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, ptr);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

struct FitOptions {
  std::string algo, train, target, out;
  std::vector<std::string> params;
};

void run_fit(const FitOptions& o) {
  const Algorithm& algorithm = find_algorithm(o.algo);
  ParamMap params = ParamMap::parse(o.params);
  require_target_column(algorithm, o.target);
  // Opened first, so that a target that cannot be written fails before a long fit. It replaces
  // the old file only at commit(), after everything else has succeeded.
  AtomicFile model_file(o.out);
  const CsvTable table = read_csv(o.train);
  const TablePipeline pipeline = TablePipeline::fit(algorithm, params, table, o.target);
  // Labels and paths are bytes that need not be UTF-8: the summary shows such bytes as U+FFFD
  // instead of failing.
  nlohmann::json summary = {{"algorithm", o.algo},
                            {"n_samples", table.rows},
                            {"n_features", pipeline.model().n_features()},
                            {"model", o.out}};
  if (algorithm.task == Task::Classification) summary["classes"] = pipeline.schema().classes;
  const std::string summary_line =
      summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  model_file.write(pipeline.save());
  model_file.commit();
  cli::out().line(summary_line);
}

struct PredictOptions {
  std::string model, data;
  bool proba = false;
};

void run_predict(const PredictOptions& o) {
  const TablePipeline p = TablePipeline::load_file(o.model);
  const Algorithm& algorithm = p.algorithm();
  if (o.proba && !algorithm.supports_proba) {
    throw Error(algorithm.name + " does not provide class probabilities (--proba)");
  }
  const CsvTable table = read_csv(o.data);
  Output& out = cli::out();
  std::string row;
  if (algorithm.task == Task::Transform) {
    const Matrix t = p.transform(table);
    for (int64_t c = 0; c < t.cols; ++c) row += (c ? ",x" : "x") + std::to_string(c);
    out.line(row);
    for (int64_t r = 0; r < t.rows; ++r) {
      row.clear();
      for (int64_t c = 0; c < t.cols; ++c) row += (c ? "," : "") + number_text(t(r, c));
      out.line(row);
    }
    return;
  }
  const Vector pred = p.predict(table);
  Matrix proba;
  if (o.proba) proba = p.predict_proba(table);
  row = "prediction";
  if (o.proba) {
    for (const auto& label : p.schema().classes) row += "," + csv_field("proba_" + label);
  }
  out.line(row);
  for (size_t r = 0; r < pred.size(); ++r) {
    row = algorithm.task == Task::Classification ? csv_field(p.class_label(pred[r]))
                                                 : number_text(pred[r]);
    if (o.proba) {
      for (int64_t c = 0; c < proba.cols; ++c) {
        row += "," + number_text(proba(static_cast<int64_t>(r), c));
      }
    }
    out.line(row);
  }
}

struct EvalOptions {
  std::string algo, data, target, metric;
  std::vector<std::string> params;
  int64_t cv = 5;
};

void run_eval(const EvalOptions& o) {
  const Algorithm& algorithm = find_algorithm(o.algo);
  if (!is_supervised(algorithm.task)) {
    throw Error("eval cross-validates classifiers and regressors; " + o.algo + " is neither");
  }
  const ParamMap params = ParamMap::parse(o.params);
  const CsvTable table = read_csv(o.data);
  const TableSchema schema =
      TableSchema::fit(table, o.target, algorithm.task == Task::Classification);
  const Matrix x = schema.features_of(table);
  const Vector y = schema.target_of(table);
  const std::string metric =
      o.metric.empty() ? (algorithm.task == Task::Classification ? "accuracy" : "r2") : o.metric;
  const std::vector<double> scores = cross_val_score(o.algo, params, x, y, o.cv, metric);
  const double mean =
      std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(scores.size());
  nlohmann::json result = {
      {"algorithm", o.algo}, {"metric", metric}, {"cv", o.cv}, {"scores", scores}, {"mean", mean}};
  cli::out().line(result.dump());
}

const CommandRegistrar register_ml{
    {"ml", [](CLI::App& app) {
       auto* ml = app.add_subcommand(
           "ml",
           "Classical ML on CSV files (scikit-learn algorithm and parameter names). Text feature "
           "columns are one-hot encoded; unsupervised algorithms drop --target from the features.");
       ml->require_subcommand(1);

       auto fit = std::make_shared<FitOptions>();
       auto* fit_cmd = ml->add_subcommand("fit", "Fit a model on a CSV file and save it");
       fit_cmd
           ->add_option("--algo", fit->algo, "scikit-learn class name, e.g. RandomForestClassifier")
           ->required();
       fit_cmd->add_option("--param", fit->params, "key=value (scikit-learn parameter names)");
       fit_cmd->add_option("--train", fit->train, "training CSV with a header row")->required();
       fit_cmd->add_option("--target", fit->target, "target column (supervised algorithms)");
       fit_cmd->add_option("--out", fit->out, "model file to write")->required();
       fit_cmd->callback([fit] { run_fit(*fit); });

       auto predict = std::make_shared<PredictOptions>();
       auto* predict_cmd = ml->add_subcommand("predict", "Predict with a saved model; prints CSV");
       predict_cmd->add_option("--model", predict->model, "model file from `ember ml fit`")
           ->required();
       predict_cmd->add_option("--data", predict->data, "CSV with the training feature columns")
           ->required();
       predict_cmd->add_flag("--proba", predict->proba, "add a proba_<label> column per class");
       predict_cmd->callback([predict] { run_predict(*predict); });

       auto eval = std::make_shared<EvalOptions>();
       auto* eval_cmd = ml->add_subcommand(
           "eval",
           "Cross-validate (StratifiedKFold for classifiers, KFold otherwise); prints JSON");
       eval_cmd->add_option("--algo", eval->algo, "scikit-learn class name")->required();
       eval_cmd->add_option("--param", eval->params, "key=value (scikit-learn parameter names)");
       eval_cmd->add_option("--data", eval->data, "CSV with a header row")->required();
       eval_cmd->add_option("--target", eval->target, "target column")->required();
       eval_cmd->add_option("--cv", eval->cv, "number of folds (default 5)");
       eval_cmd->add_option("--metric", eval->metric,
                            "accuracy (classifiers) or r2 (regressors) by default; also f1_macro, "
                            "roc_auc, neg_log_loss, neg_mean_squared_error, ...");
       eval_cmd->callback([eval] { run_eval(*eval); });

       auto* list_cmd = ml->add_subcommand("list", "List the registered algorithms");
       list_cmd->callback([] {
         for (const auto& name : algorithm_names()) {
           const Algorithm& a = find_algorithm(name);
           const char* task = a.task == Task::Classification ? "classifier"
                              : a.task == Task::Regression   ? "regressor"
                              : a.task == Task::Clustering   ? "clustering"
                                                             : "transformer";
           cli::out().line(name + "\t" + task + (a.supports_proba ? "\tproba" : ""));
         }
       });
     }}};

}  // namespace
}  // namespace ember::cli
