// Fuzzes the ML CSV loader and the table -> matrix schema: any input must either parse or
// throw ember::Error, never crash, hang or allocate without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/base/error.hpp"
#include "ember/ml/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember::ml::CsvLimits limits;
  limits.max_bytes = 1 << 16;
  limits.max_columns = 256;
  limits.max_field_bytes = 1 << 12;
  try {
    const ember::ml::CsvTable table =
        ember::ml::parse_csv(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    // Use the last column as a classification target and again as a regression target.
    const std::string target = table.columns.back().name;
    for (bool classification : {true, false}) {
      try {
        const auto schema = ember::ml::TableSchema::fit(table, target, classification);
        if (schema.n_matrix_columns() > 4096) continue;  // one-hot width bound for the fuzzer
        (void)schema.features_of(table);
        (void)schema.target_of(table);
        ember::ml::ArchiveWriter out;
        schema.save(out);
        ember::ml::ArchiveReader in(out.bytes());
        (void)ember::ml::TableSchema::load(in);
      } catch (const ember::Error&) {
      }
    }
  } catch (const ember::Error&) {
  }
  return 0;
}
