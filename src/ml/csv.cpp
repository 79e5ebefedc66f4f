#include "ember/ml/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "ember/core/atomic_file.hpp"

namespace ember::ml {
namespace {

std::string quote_for_message(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 40)) out += (static_cast<unsigned char>(c) < 32) ? '?' : c;
  if (s.size() > 40) out += "...";
  return out + "'";
}

// Parses a whole field as a number. Returns false if it is not one; `finite` reports NaN/inf
// (including overflow such as 1e999), which the caller rejects.
bool parse_number(std::string_view s, double& value, bool& finite) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (ptr != end) return false;
  if (ec == std::errc::result_out_of_range) {
    // from_chars leaves value untouched here; strtod tells overflow (HUGE_VAL) from
    // underflow (a harmless zero or subnormal).
    const std::string copy(s);
    value = std::strtod(copy.c_str(), nullptr);
    finite = std::isfinite(value);
    return true;
  }
  if (ec != std::errc()) return false;
  finite = std::isfinite(value);
  return true;
}

// Splits the text into records of fields. Bounded by the limits; never recursive.
class Splitter {
 public:
  Splitter(std::string_view text, const CsvLimits& limits) : text_(text), limits_(limits) {}

  // Reads the next record into `fields`; false at end of input.
  bool next(std::vector<std::string>& fields) {
    fields.clear();
    if (pos_ >= text_.size()) return false;
    ++line_;
    std::string field;
    bool quoted = false;
    bool after_quote = false;  // just closed a quoted field: only , or a line end may follow
    while (true) {
      if (pos_ >= text_.size()) {
        if (quoted)
          throw Error("csv: unterminated quoted field starting on line " +
                      std::to_string(record_line_));
        push(fields, field);
        return true;
      }
      const char c = text_[pos_++];
      if (quoted) {
        if (c == '"') {
          if (pos_ < text_.size() && text_[pos_] == '"') {
            field += '"';
            ++pos_;
          } else {
            quoted = false;
            after_quote = true;
          }
        } else {
          if (c == '\n') ++line_;
          field += c;
        }
      } else if (c == ',') {
        push(fields, field);
        field.clear();
        after_quote = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r') {
          if (pos_ < text_.size() && text_[pos_] == '\n') {
            ++pos_;
          } else {
            throw Error("csv: bare carriage return on line " + std::to_string(line_));
          }
        }
        push(fields, field);
        return true;
      } else if (after_quote) {
        throw Error("csv: unexpected character after closing quote on line " +
                    std::to_string(line_));
      } else if (c == '"') {
        if (!field.empty()) {
          throw Error("csv: quote inside an unquoted field on line " + std::to_string(line_));
        }
        quoted = true;
        record_line_ = line_;
      } else {
        field += c;
      }
      if (field.size() > limits_.max_field_bytes) {
        throw Error("csv: field longer than " + std::to_string(limits_.max_field_bytes) +
                    " bytes on line " + std::to_string(line_));
      }
    }
  }
  int64_t line() const { return line_; }
  bool at_end() const { return pos_ >= text_.size(); }

 private:
  void push(std::vector<std::string>& fields, std::string& field) {
    if (static_cast<int64_t>(fields.size()) >= limits_.max_columns) {
      throw Error("csv: more than " + std::to_string(limits_.max_columns) + " columns on line " +
                  std::to_string(line_));
    }
    fields.push_back(std::move(field));
    field.clear();
  }

  std::string_view text_;
  CsvLimits limits_;
  size_t pos_ = 0;
  int64_t line_ = 0;
  int64_t record_line_ = 0;
};

}  // namespace

int64_t CsvTable::find(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int64_t>(i);
  }
  return -1;
}

CsvTable parse_csv(std::string_view text, const CsvLimits& limits) {
  if (text.size() > limits.max_bytes) {
    throw Error("csv: input is larger than " + std::to_string(limits.max_bytes) + " bytes");
  }
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM
  Splitter splitter(text, limits);
  std::vector<std::string> fields;
  if (!splitter.next(fields) || (fields.size() == 1 && fields[0].empty())) {
    throw Error("csv: no header row");
  }
  CsvTable table;
  std::set<std::string> seen;
  for (size_t c = 0; c < fields.size(); ++c) {
    if (fields[c].empty()) throw Error("csv: header column " + std::to_string(c + 1) + " is empty");
    if (!seen.insert(fields[c]).second) {
      throw Error("csv: duplicate column name " + quote_for_message(fields[c]));
    }
    CsvColumn column;
    column.name = fields[c];
    table.columns.push_back(std::move(column));
  }
  const size_t n_cols = table.columns.size();
  while (splitter.next(fields)) {
    if (fields.size() == 1 && fields[0].empty()) {
      // Only a final line end is allowed to produce an empty record.
      if (splitter.at_end()) break;
      throw Error("csv: empty line " + std::to_string(splitter.line()));
    }
    const int64_t row = table.rows + 1;
    if (fields.size() != n_cols) {
      throw Error("csv: row " + std::to_string(row) + " (line " + std::to_string(splitter.line()) +
                  ") has " + std::to_string(fields.size()) + " fields, the header has " +
                  std::to_string(n_cols));
    }
    if (table.rows >= limits.max_rows) {
      throw Error("csv: more than " + std::to_string(limits.max_rows) + " rows");
    }
    for (size_t c = 0; c < n_cols; ++c) {
      if (fields[c].empty()) {
        throw Error("csv: missing value at row " + std::to_string(row) + ", column " +
                    quote_for_message(table.columns[c].name));
      }
      table.columns[c].text.push_back(std::move(fields[c]));
    }
    ++table.rows;
  }
  if (table.rows == 0) throw Error("csv: no data rows");
  for (CsvColumn& column : table.columns) {
    int64_t numeric_rows = 0;
    int64_t first_text_row = -1;
    int64_t first_number_row = -1;
    column.numbers.resize(static_cast<size_t>(table.rows));
    for (int64_t r = 0; r < table.rows; ++r) {
      double value = 0;
      bool finite = true;
      const std::string& field = column.text[static_cast<size_t>(r)];
      if (parse_number(field, value, finite)) {
        if (!finite) {
          throw Error("csv: non-finite value " + quote_for_message(field) + " at row " +
                      std::to_string(r + 1) + ", column " + quote_for_message(column.name));
        }
        column.numbers[static_cast<size_t>(r)] = value;
        ++numeric_rows;
        if (first_number_row < 0) first_number_row = r;
      } else if (first_text_row < 0) {
        first_text_row = r;
      }
    }
    if (numeric_rows == table.rows) continue;
    if (numeric_rows != 0) {
      throw Error("csv: column " + quote_for_message(column.name) + " mixes numbers (row " +
                  std::to_string(first_number_row + 1) + ") and text (row " +
                  std::to_string(first_text_row + 1) + ": " +
                  quote_for_message(column.text[static_cast<size_t>(first_text_row)]) + ")");
    }
    column.numeric = false;
    column.numbers.clear();
    column.numbers.shrink_to_fit();
  }
  return table;
}

CsvTable read_csv(const std::string& path, const CsvLimits& limits) {
  const std::string bytes = read_regular_file(path, limits.max_bytes);
  try {
    return parse_csv(bytes, limits);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::vector<std::string> sorted_labels(const CsvColumn& column) {
  if (column.numeric) {
    std::map<double, std::string> by_value;  // first spelling of each value wins
    for (size_t i = 0; i < column.text.size(); ++i)
      by_value.emplace(column.numbers[i], column.text[i]);
    std::vector<std::string> out;
    out.reserve(by_value.size());
    for (auto& [value, label] : by_value) out.push_back(label);
    return out;
  }
  std::set<std::string> labels(column.text.begin(), column.text.end());
  return {labels.begin(), labels.end()};
}

TableSchema TableSchema::fit(const CsvTable& table, const std::string& target, bool classification,
                             bool target_is_used) {
  TableSchema schema;
  schema.target = target;
  schema.classification = classification;
  if (!target.empty()) {
    const int64_t t = table.find(target);
    if (t < 0) throw Error("target column " + quote_for_message(target) + " not found");
    const CsvColumn& column = table.columns[static_cast<size_t>(t)];
    if (!target_is_used) {
      schema.classification = false;
    } else if (classification) {
      schema.classes = sorted_labels(column);
      if (schema.classes.size() < 2) {
        throw Error("target column " + quote_for_message(target) +
                    " has a single class; a classifier needs at least two");
      }
    } else if (!column.numeric) {
      throw Error("target column " + quote_for_message(target) +
                  " is not numeric; a regressor needs numbers");
    }
  }
  for (const CsvColumn& column : table.columns) {
    if (column.name == target) continue;
    FeatureColumn feature;
    feature.name = column.name;
    feature.numeric = column.numeric;
    if (!column.numeric) {
      std::set<std::string> categories(column.text.begin(), column.text.end());
      feature.categories.assign(categories.begin(), categories.end());
    }
    schema.features.push_back(std::move(feature));
  }
  if (schema.features.empty()) throw Error("the table has no feature columns");
  return schema;
}

int64_t TableSchema::n_matrix_columns() const {
  int64_t n = 0;
  for (const FeatureColumn& f : features) {
    n += f.numeric ? 1 : static_cast<int64_t>(f.categories.size());
  }
  return n;
}

Matrix TableSchema::features_of(const CsvTable& table) const {
  // One-hot encoding of a column with very many distinct strings could otherwise ask for an
  // unbounded dense matrix.
  constexpr int64_t kMaxValues = int64_t{1} << 29;  // 4 GiB of doubles
  const int64_t cols = n_matrix_columns();
  if (cols > 0 && table.rows > kMaxValues / cols) {
    throw Error("the feature matrix would have " + std::to_string(table.rows) + " x " +
                std::to_string(cols) + " values (after one-hot encoding text columns); too large");
  }
  Matrix x(table.rows, cols);
  int64_t out_col = 0;
  for (const FeatureColumn& f : features) {
    const int64_t c = table.find(f.name);
    if (c < 0) throw Error("feature column " + quote_for_message(f.name) + " is missing");
    const CsvColumn& column = table.columns[static_cast<size_t>(c)];
    if (f.numeric) {
      if (!column.numeric) {
        throw Error("feature column " + quote_for_message(f.name) +
                    " was numeric in the training data but holds text here");
      }
      for (int64_t r = 0; r < table.rows; ++r)
        x(r, out_col) = column.numbers[static_cast<size_t>(r)];
      ++out_col;
      continue;
    }
    for (int64_t r = 0; r < table.rows; ++r) {
      const std::string& value = column.text[static_cast<size_t>(r)];
      auto it = std::lower_bound(f.categories.begin(), f.categories.end(), value);
      if (it == f.categories.end() || *it != value) {
        throw Error("feature column " + quote_for_message(f.name) + " row " +
                    std::to_string(r + 1) + ": category " + quote_for_message(value) +
                    " was not seen in the training data");
      }
      x(r, out_col + (it - f.categories.begin())) = 1.0;
    }
    out_col += static_cast<int64_t>(f.categories.size());
  }
  return x;
}

Vector TableSchema::target_of(const CsvTable& table) const {
  const int64_t t = table.find(target);
  if (t < 0) throw Error("target column " + quote_for_message(target) + " not found");
  const CsvColumn& column = table.columns[static_cast<size_t>(t)];
  Vector y(static_cast<size_t>(table.rows));
  if (!classification) {
    if (!column.numeric)
      throw Error("target column " + quote_for_message(target) + " is not numeric");
    return column.numbers;
  }
  if (column.numeric) {
    // Match labels by value so "1" and "1.0" are the same class.
    std::map<double, int64_t> index;
    for (size_t k = 0; k < classes.size(); ++k) {
      double v = 0;
      bool finite = true;
      if (parse_number(classes[k], v, finite)) index.emplace(v, static_cast<int64_t>(k));
    }
    for (int64_t r = 0; r < table.rows; ++r) {
      auto it = index.find(column.numbers[static_cast<size_t>(r)]);
      if (it == index.end()) {
        throw Error("target row " + std::to_string(r + 1) + ": unknown class " +
                    quote_for_message(column.text[static_cast<size_t>(r)]));
      }
      y[static_cast<size_t>(r)] = static_cast<double>(it->second);
    }
    return y;
  }
  std::map<std::string, int64_t, std::less<>> index;
  for (size_t k = 0; k < classes.size(); ++k) index.emplace(classes[k], static_cast<int64_t>(k));
  for (int64_t r = 0; r < table.rows; ++r) {
    auto it = index.find(column.text[static_cast<size_t>(r)]);
    if (it == index.end()) {
      throw Error("target row " + std::to_string(r + 1) + ": unknown class " +
                  quote_for_message(column.text[static_cast<size_t>(r)]));
    }
    y[static_cast<size_t>(r)] = static_cast<double>(it->second);
  }
  return y;
}

void TableSchema::save(ArchiveWriter& out) const {
  out.u64(features.size());
  for (const FeatureColumn& f : features) {
    out.str(f.name);
    out.u64(f.numeric ? 1 : 0);
    out.u64(f.categories.size());
    for (const std::string& c : f.categories) out.str(c);
  }
  out.str(target);
  out.u64(classification ? 1 : 0);
  out.u64(classes.size());
  for (const std::string& c : classes) out.str(c);
}

TableSchema TableSchema::load(ArchiveReader& in) {
  TableSchema schema;
  const uint64_t n_features = in.count(24);
  for (uint64_t i = 0; i < n_features; ++i) {
    FeatureColumn f;
    f.name = in.str();
    f.numeric = in.u64() != 0;
    const uint64_t n_categories = in.count(8);
    for (uint64_t k = 0; k < n_categories; ++k) f.categories.push_back(in.str());
    if (!std::is_sorted(f.categories.begin(), f.categories.end())) {
      throw Error("model file is corrupt (categories out of order)");
    }
    schema.features.push_back(std::move(f));
  }
  schema.target = in.str();
  schema.classification = in.u64() != 0;
  const uint64_t n_classes = in.count(8);
  for (uint64_t k = 0; k < n_classes; ++k) schema.classes.push_back(in.str());
  return schema;
}

}  // namespace ember::ml
