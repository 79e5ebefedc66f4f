// CSV loading and the table -> matrix schema.
#include <gtest/gtest.h>

#include "ember/ml/csv.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse_csv(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Csv, ParsesNumericAndTextColumnsWithQuotes) {
  const CsvTable t = parse_csv(
      "a,b,\"c,d\"\r\n1,x,\"he said \"\"hi\"\"\"\r\n-2.5e1,\"multi\nline\",z\r\n+3, y ,z");
  ASSERT_EQ(t.rows, 3);
  ASSERT_EQ(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[2].name, "c,d");
  EXPECT_TRUE(t.columns[0].numeric);
  EXPECT_EQ(t.columns[0].numbers, (Vector{1, -25, 3}));
  EXPECT_FALSE(t.columns[1].numeric);
  EXPECT_EQ(t.columns[1].text[1], "multi\nline");
  EXPECT_EQ(t.columns[1].text[2], " y ");
  EXPECT_EQ(t.columns[2].text[0], "he said \"hi\"");
  EXPECT_EQ(t.find("c,d"), 2);
  EXPECT_EQ(t.find("nope"), -1);
}

TEST(Csv, ReportsMissingValuesWithRowAndColumn) {
  EXPECT_EQ(error_of("a,b\n1,2\n3,\n"), "csv: missing value at row 2, column 'b'");
  EXPECT_NE(error_of("a,b\n1,2\n,4\n").find("row 2, column 'a'"), std::string::npos);
}

TEST(Csv, RejectsNonFiniteNumbersWithRowAndColumn) {
  for (const char* bad : {"nan", "NaN", "inf", "-Infinity", "1e999"}) {
    const std::string msg = error_of(std::string("a,b\n1,2\n3,") + bad + "\n");
    EXPECT_NE(msg.find("non-finite"), std::string::npos) << bad;
    EXPECT_NE(msg.find("row 2, column 'b'"), std::string::npos) << msg;
  }
  // Underflow is a harmless zero, not an error.
  EXPECT_EQ(parse_csv("a\n1e-400\n").columns[0].numbers[0], 0.0);
}

TEST(Csv, RejectsMalformedInput) {
  EXPECT_NE(error_of("").find("no header"), std::string::npos);
  EXPECT_NE(error_of("a,b\n").find("no data rows"), std::string::npos);
  EXPECT_NE(error_of("a,a\n1,2\n").find("duplicate column"), std::string::npos);
  EXPECT_NE(error_of("a,\n1,2\n").find("header column 2 is empty"), std::string::npos);
  EXPECT_NE(error_of("a,b\n1,2,3\n").find("row 1 (line 2) has 3 fields"), std::string::npos);
  EXPECT_NE(error_of("a,b\n1\n").find("has 1 fields"), std::string::npos);
  EXPECT_NE(error_of("a\n\"open\n").find("unterminated"), std::string::npos);
  EXPECT_NE(error_of("a\n\"x\"y\n").find("after closing quote"), std::string::npos);
  EXPECT_NE(error_of("a\nx\"y\n").find("quote inside"), std::string::npos);
  EXPECT_NE(error_of("a\n1\n\n2\n").find("empty line"), std::string::npos);
  EXPECT_NE(error_of("a\r1\n").find("carriage return"), std::string::npos);
  EXPECT_NE(error_of("a,b\n1,x\ny,2\n").find("mixes numbers"), std::string::npos);
}

TEST(Csv, EnforcesLimits) {
  CsvLimits limits;
  limits.max_columns = 2;
  EXPECT_THROW(parse_csv("a,b,c\n1,2,3\n", limits), Error);
  limits = {};
  limits.max_field_bytes = 4;
  EXPECT_THROW(parse_csv("a\n12345\n", limits), Error);
  limits = {};
  limits.max_rows = 1;
  EXPECT_THROW(parse_csv("a\n1\n2\n", limits), Error);
  limits = {};
  limits.max_bytes = 3;
  EXPECT_THROW(parse_csv("a\n1\n", limits), Error);
}

TEST(Csv, ReadsShippedDatasets) {
  const auto iris = testing::load_dataset("iris", true);
  EXPECT_EQ(iris.x.rows, 150);
  EXPECT_EQ(iris.x.cols, 4);
  EXPECT_EQ(iris.y.front(), 0);
  EXPECT_EQ(iris.y.back(), 2);
  const auto digits = testing::load_dataset("digits", true);
  EXPECT_EQ(digits.x.rows, 1797);
  EXPECT_EQ(digits.x.cols, 64);
  EXPECT_THROW(read_csv("/nonexistent/file.csv"), Error);
}

TEST(TableSchema, OneHotEncodesTextAndMapsLabels) {
  const CsvTable train = parse_csv("size,colour,label\n1,red,b\n2,blue,a\n3,red,c\n4,green,a\n");
  const TableSchema s = TableSchema::fit(train, "label", true);
  EXPECT_EQ(s.classes, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(s.n_matrix_columns(), 4);  // size + blue, green, red
  const Matrix x = s.features_of(train);
  EXPECT_EQ(x.row_span(0)[0], 1);
  EXPECT_EQ((std::vector<double>(x.row(0) + 1, x.row(0) + 4)), (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(s.target_of(train), (Vector{1, 0, 2, 0}));
  // Columns by name, in any order; the target may be absent.
  const CsvTable query = parse_csv("colour,size\ngreen,7\n");
  const Matrix q = s.features_of(query);
  EXPECT_EQ(q.data, (std::vector<double>{7, 0, 1, 0}));
  EXPECT_THROW(s.features_of(parse_csv("colour,size\npurple,1\n")), Error);
  EXPECT_THROW(s.features_of(parse_csv("colour,size\n1,1\n")), Error);    // number for text
  EXPECT_THROW(s.features_of(parse_csv("colour,size\nred,x\n")), Error);  // text for number
  EXPECT_THROW(s.features_of(parse_csv("colour\nred\n")), Error);         // missing column
  // Save/load keeps everything.
  ArchiveWriter w;
  s.save(w);
  ArchiveReader r(w.bytes());
  const TableSchema back = TableSchema::load(r);
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(back.classes, s.classes);
  EXPECT_EQ(back.features_of(query).data, q.data);
}

TEST(TableSchema, NumericLabelsSortNumericallyAndKeepTheirSpelling) {
  const CsvTable t = parse_csv("x,y\n1,10\n2,9\n3,10.0\n4,-1\n");
  const TableSchema s = TableSchema::fit(t, "y", true);
  EXPECT_EQ(s.classes, (std::vector<std::string>{"-1", "9", "10"}));
  EXPECT_EQ(s.target_of(t), (Vector{2, 1, 2, 0}));
}

TEST(TableSchema, RejectsBadTargets) {
  const CsvTable t = parse_csv("x,y,z\n1,a,5\n2,a,6\n");
  EXPECT_THROW(TableSchema::fit(t, "y", true), Error);   // single class
  EXPECT_THROW(TableSchema::fit(t, "y", false), Error);  // text target for a regressor
  EXPECT_THROW(TableSchema::fit(t, "w", true), Error);   // no such column
  EXPECT_NO_THROW(TableSchema::fit(t, "z", false));
}

}  // namespace
}  // namespace ember::ml
