#pragma once
// Strict CSV loading for the classical ML tools, and the mapping from a table to a feature
// matrix (the "schema" the CLI stores next to a fitted model).
//
// Format: RFC 4180-style. The first row is a header of unique, non-empty column names. Fields
// may be quoted ("a,b", "say ""hi"""), quoted fields may hold newlines; CRLF or LF line ends.
// A column is numeric when every field parses as a number, categorical (strings) when none
// does; a mix is rejected. Empty fields (missing values) and NaN/inf are rejected with their
// row and column. Sizes are bounded by CsvLimits.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ember/ml/common.hpp"

namespace ember::ml {

struct CsvLimits {
  uint64_t max_bytes = uint64_t{1} << 30;
  int64_t max_columns = 100000;
  int64_t max_rows = int64_t{1} << 31;
  uint64_t max_field_bytes = uint64_t{1} << 20;
};

struct CsvColumn {
  std::string name;
  bool numeric = true;
  std::vector<double> numbers;    // numeric columns only
  std::vector<std::string> text;  // every column: the fields as written (unquoted)
};

struct CsvTable {
  std::vector<CsvColumn> columns;
  int64_t rows = 0;
  // Index of the column named `name`, or -1.
  int64_t find(std::string_view name) const;
};

// Data rows are numbered from 1 in messages (row 1 is the first line after the header).
CsvTable parse_csv(std::string_view text, const CsvLimits& limits = {});
CsvTable read_csv(const std::string& path, const CsvLimits& limits = {});

// How a table's feature columns become matrix columns: numeric columns are copied, categorical
// ones are one-hot encoded over the categories seen at fit time (sorted; an unseen category at
// predict time is an error, like scikit-learn's OneHotEncoder(handle_unknown="error")).
struct FeatureColumn {
  std::string name;
  bool numeric = true;
  std::vector<std::string> categories;  // sorted, categorical columns only
};

struct TableSchema {
  std::vector<FeatureColumn> features;
  std::string target;                // empty when unsupervised
  bool classification = false;       // target holds class labels
  std::vector<std::string> classes;  // class labels as written in the training file

  // Builds the schema from a training table: every column except `target` is a feature.
  // `target_is_used` = false (unsupervised fits) only drops the column without checking it.
  static TableSchema fit(const CsvTable& table, const std::string& target, bool classification,
                         bool target_is_used = true);
  int64_t n_matrix_columns() const;
  // Feature matrix of `table`, matching columns by name (extra columns, e.g. the target, are
  // ignored); throws naming a missing column, a type mismatch or an unseen category.
  Matrix features_of(const CsvTable& table) const;
  // Target of `table`: class indices into `classes` or numbers.
  Vector target_of(const CsvTable& table) const;

  void save(ArchiveWriter& out) const;
  static TableSchema load(ArchiveReader& in);
};

// Sorted distinct labels as scikit-learn orders them: numerically when every label is a
// number, else by string.
std::vector<std::string> sorted_labels(const CsvColumn& column);

}  // namespace ember::ml
