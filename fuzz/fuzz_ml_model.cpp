// Fuzzes ML model files (what `ember ml predict --model` loads after its table schema): any input
// must load or throw ember::Error, never crash, hang or allocate without bound. A loaded model
// then predicts, gives probabilities and transforms a fixed matrix, each of which may only
// throw ember::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/base/error.hpp"
#include "ember/ml/common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ml = ember::ml;
  std::unique_ptr<ml::FittedModel> model;
  try {
    model = ml::load_model(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const ember::Error&) {
    return 0;
  }
  const int64_t cols = model->n_features();
  if (cols < 1 || cols > 4096) return 0;  // loadable, but too wide for a fixed probe matrix
  ml::Matrix x(3, cols);
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < cols; ++j) x(i, j) = 0.5 * static_cast<double>(i + j) - 1.0;
  try {
    (void)model->predict(x);
  } catch (const ember::Error&) {
  }
  try {
    (void)model->predict_proba(x);
  } catch (const ember::Error&) {
  }
  try {
    (void)model->transform(x);
  } catch (const ember::Error&) {
  }
  return 0;
}
