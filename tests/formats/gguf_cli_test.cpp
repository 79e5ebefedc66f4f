// Runs the real `ember inspect` and `ember convert` on the reference writer's GGUF fixtures
// (tools/gguf/make_gguf_fixtures.py) and checks what they print and write against what the
// reference reader read from the same files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../cli_runner.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/safetensors.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::read_json;
using test::run_ember;
using test::RunResult;
using test::shell_quote;

fs::path gguf_dir() {
  return fs::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "gguf";
}

TEST(GgufCli, InspectJsonMatchesTheReferenceReader) {
  for (const char* name : {"all_types", "v2", "aligned_64", "no_tensors"}) {
    SCOPED_TRACE(name);
    const RunResult r = run_ember(
        "inspect --json " + shell_quote((gguf_dir() / (std::string(name) + ".gguf")).string()));
    ASSERT_EQ(r.status, 0) << r.err;
    const nlohmann::json got = nlohmann::json::parse(r.out);
    const nlohmann::json want = read_json(gguf_dir() / (std::string(name) + ".json"));
    ASSERT_EQ(got["metadata"].size(), want["metadata"].size());
    for (const auto& kv : want["metadata"]) {
      const std::string key = kv["key"].get<std::string>();
      ASSERT_TRUE(got["metadata"].contains(key)) << key;
      // Floats print with the shortest round-trip digits, so they compare as numbers.
      EXPECT_EQ(got["metadata"][key], kv["value"]) << key;
    }
    ASSERT_EQ(got["tensors"].size(), want["tensors"].size());
    for (const auto& t : want["tensors"]) {
      const nlohmann::json& g = got["tensors"][t["name"].get<std::string>()];
      EXPECT_EQ(g["shape"], t["shape"]);
      const uint64_t begin = t["offset"].get<uint64_t>();
      EXPECT_EQ(g["data_offsets"],
                nlohmann::json::array({begin, begin + t["nbytes"].get<uint64_t>()}));
    }
  }
}

TEST(GgufCli, InspectTextShowsTypesAndTheTable) {
  const RunResult r = run_ember("inspect " + shell_quote((gguf_dir() / "all_types.gguf").string()));
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* needle :
       {"GGUF v3, alignment 32, data at 1280", "test.u8 (U8): 250",
        "test.array_string (ARRAY[STRING]): [\"a\", \"\"", "test.bool_false (BOOL): false",
        "tensors: 6", "bf16_matrix", "BF16", "[4, 2]"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
}

TEST(GgufCli, InspectRefusesAMalformedFile) {
  const fs::path dir = fs::path(EMBER_BINARY_DIR) / "gguf_cli_test" / std::to_string(::getpid());
  fs::create_directories(dir);
  std::vector<std::byte> bytes = test::read_bytes(gguf_dir() / "all_types.gguf");
  bytes.resize(100);
  const fs::path bad = dir / "cut.gguf";
  {
    std::ofstream out(bad, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  const RunResult r = run_ember("inspect " + shell_quote(bad.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err.rfind("error: gguf: ", 0), 0u) << r.err;
  fs::remove_all(dir);
}

TEST(GgufCli, ConvertKeepsFloatTensorsAsTheyAre) {
  const fs::path dir = fs::path(EMBER_BINARY_DIR) / "gguf_cli_test" / std::to_string(::getpid());
  fs::create_directories(dir);
  const fs::path out = dir / "all_types.safetensors";
  const RunResult r = run_ember("convert " + shell_quote((gguf_dir() / "all_types.gguf").string()) +
                                " " + shell_quote(out.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 6 tensors"), std::string::npos) << r.out;
  const SafeTensors st = SafeTensors::open(out);
  const nlohmann::json want = read_json(gguf_dir() / "all_types.json");
  ASSERT_EQ(st.size(), want["tensors"].size());
  for (const auto& t : want["tensors"]) {
    const std::string name = t["name"].get<std::string>();
    const Tensor x = st.tensor(name);
    EXPECT_EQ(x.shape(), t["shape"].get<Shape>()) << name;
    EXPECT_EQ(x.to_f64_vector(), t["values"].get<std::vector<double>>()) << name;
  }
  EXPECT_EQ(st.info("f16_vector").dtype, DType::F16);
  EXPECT_EQ(st.info("bf16_matrix").dtype, DType::BF16);
  fs::remove_all(dir);
}

TEST(GgufCli, ConvertDequantizesBlockTypes) {
  const fs::path dir = fs::path(EMBER_BINARY_DIR) / "gguf_cli_test" / std::to_string(::getpid());
  fs::create_directories(dir);
  // Two Q8_0 rows of 32: scale 0.5 (F16 0x3800) times q = i - 16, exact in F32.
  std::vector<std::byte> blocks(size_t{2} * 34);
  for (size_t row = 0; row < 2; ++row) {
    std::byte* b = blocks.data() + row * 34;
    b[0] = std::byte{0x00};
    b[1] = std::byte{0x38};
    for (int i = 0; i < 32; ++i) b[2 + i] = static_cast<std::byte>(static_cast<int8_t>(i - 16));
  }
  const Tensor q = Tensor::borrow(DType::Q8_0, {2, 32}, blocks.data(), blocks.size(), nullptr);
  const fs::path in = dir / "q8.gguf";
  write_gguf(in, {}, {{"q", q}});
  const fs::path out = dir / "q8.safetensors";
  const RunResult r =
      run_ember("convert " + shell_quote(in.string()) + " " + shell_quote(out.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  const SafeTensors st = SafeTensors::open(out);
  EXPECT_EQ(st.info("q").dtype, DType::F32);
  EXPECT_EQ(st.info("q").shape, (Shape{2, 32}));
  std::vector<double> want;
  for (int row = 0; row < 2; ++row)
    for (int i = 0; i < 32; ++i) want.push_back(0.5 * (i - 16));
  EXPECT_EQ(st.tensor("q").to_f64_vector(), want);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ember
