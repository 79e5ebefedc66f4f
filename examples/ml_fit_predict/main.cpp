// Fits any registered estimator (scikit-learn class name) on a CSV and predicts another CSV:
// prints one predicted label per row of the second file.
//   ml_fit_predict ALGORITHM TRAIN_CSV TARGET_COLUMN TEST_CSV
#include <iostream>
#include <string>

#include "ember/ml/common.hpp"
#include "ember/ml/csv.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: ml_fit_predict ALGORITHM TRAIN_CSV TARGET_COLUMN TEST_CSV\n";
    return 2;
  }
  namespace ml = ember::ml;
  try {
    const ml::Algorithm& algorithm = ml::find_algorithm(argv[1]);
    const bool classification = algorithm.task == ml::Task::Classification;
    const ml::CsvTable train = ml::read_csv(argv[2]);
    const auto schema = ml::TableSchema::fit(train, argv[3], classification);
    const ml::Vector y = schema.target_of(train);
    ml::ParamMap params;
    const auto model = algorithm.fit(params, schema.features_of(train), &y);
    const ml::Vector predicted = model->predict(schema.features_of(ml::read_csv(argv[4])));
    for (const double p : predicted) {
      if (classification)
        std::cout << schema.classes.at(static_cast<size_t>(p)) << '\n';
      else
        std::cout << p << '\n';
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
  return std::cout.flush() ? 0 : 1;
}
