// Runs the real `ember convert` and compares its output with the file the reference safetensors
// writer made from the same tensors (tools/pytorch/make_fixtures.py).
#include <gtest/gtest.h>

#include "../cli_runner.hpp"
#include "ember/formats/safetensors.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

using test::read_bytes;
using test::run_ember;
using test::RunResult;
using test::shell_quote;

std::filesystem::path good_dir() {
  return std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pytorch" / "good";
}

std::filesystem::path out_dir() {
  auto dir =
      std::filesystem::path(EMBER_BINARY_DIR) / "convert_cli_test" / std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

RunResult convert(const std::filesystem::path& in, const std::filesystem::path& out) {
  return run_ember("convert " + shell_quote(in.string()) + " " + shell_quote(out.string()));
}

TEST(ConvertCli, WritesTheReferenceBytes) {
  const auto dir = out_dir();
  for (const char* name : {"basic_zip", "basic_legacy", "nested_zip", "parameters_zip"}) {
    SCOPED_TRACE(name);
    const auto out = dir / (std::string(name) + ".safetensors");
    const RunResult r = convert(good_dir() / (std::string(name) + ".bin"), out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
    EXPECT_NE(r.out.find("wrote"), std::string::npos);
    EXPECT_EQ(read_bytes(out), read_bytes(good_dir() / (std::string(name) + ".safetensors")));
  }
  // A sharded checkpoint, given as its directory and as its index.
  const auto sharded = good_dir() / "sharded";
  for (const auto& in : {sharded, sharded / "pytorch_model.bin.index.json"}) {
    const auto out = dir / "sharded.safetensors";
    ASSERT_EQ(convert(in, out).status, 0);
    EXPECT_EQ(read_bytes(out), read_bytes(sharded / "sharded.safetensors"));
  }
  std::filesystem::remove_all(dir);
}

TEST(ConvertCli, RefusalsLeaveNoOutput) {
  const auto dir = out_dir();
  const auto out = dir / "out.safetensors";
  const auto bad =
      std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pytorch" / "bad";
  const struct {
    std::filesystem::path in;
    std::string error;
  } cases[] = {
      {bad / "os_system_global.bin", "global 'posix.system' is not allowed"},
      {bad / "truncated_zip.bin", "no end of central directory record"},
      {dir / "model.gguf", "gguf: "},
      {dir / "missing.bin", "does not exist"},
      {good_dir() / "basic_zip.json", "is not a PyTorch checkpoint"},
  };
  { std::ofstream(dir / "model.gguf") << "GGUF"; }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in.string());
    const RunResult r = convert(c.in, out);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
  const RunResult wrong_ext = convert(good_dir() / "basic_zip.bin", dir / "out.bin");
  EXPECT_NE(wrong_ext.err.find("must end in .safetensors"), std::string::npos) << wrong_ext.err;
  // Nothing but the files this test made is left behind (no temporary files).
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);  // model.gguf
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ember
