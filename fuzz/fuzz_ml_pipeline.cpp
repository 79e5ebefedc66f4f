// Fuzzes `ember ml` model files whole (TablePipeline: the table schema, then the model): any input
// must load or throw ember::Error, never crash, hang or allocate without bound. A loaded pipeline
// then predicts, gives probabilities and transforms a small table built from its own schema, each
// of which may only throw ember::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ember/base/error.hpp"
#include "ember/ml/pipeline.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ml = ember::ml;
  try {
    const ml::TablePipeline pipeline =
        ml::TablePipeline::load(std::string_view(reinterpret_cast<const char*>(data), size));
    const ml::TableSchema& schema = pipeline.schema();
    if (schema.features.size() > 4096) return 0;  // loadable, but too wide to probe quickly
    // Two rows: numeric columns get a number, text columns their first category (or one never
    // seen, which must be an error).
    ml::CsvTable table;
    table.rows = 2;
    for (const ml::FeatureColumn& f : schema.features) {
      ml::CsvColumn column;
      column.name = f.name;
      column.numeric = f.numeric;
      if (f.numeric) {
        column.numbers = {0.5, -1.0};
        column.text = {"0.5", "-1"};
      } else {
        const std::string value = f.categories.empty() ? "unseen" : f.categories.front();
        column.text = {value, value};
      }
      table.columns.push_back(std::move(column));
    }
    try {
      const ml::Vector predicted = pipeline.predict(table);
      if (pipeline.algorithm().task == ml::Task::Classification) {
        for (double v : predicted) (void)pipeline.class_label(v);
      }
    } catch (const ember::Error&) {
    }
    try {
      (void)pipeline.predict_proba(table);
    } catch (const ember::Error&) {
    }
    try {
      (void)pipeline.transform(table);
    } catch (const ember::Error&) {
    }
  } catch (const ember::Error&) {
  }
  return 0;
}
