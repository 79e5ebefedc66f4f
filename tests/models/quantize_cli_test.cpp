// `ember quantize` end to end on the committed tiny Qwen2 GGUF (biases, llama.cpp's names).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "../cli_runner.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/models/causal_lm.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::run_ember;
using test::shell_quote;

const fs::path kQwen2 = test::kModelFixtures / "gguf" / "qwen2.f32.gguf";

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(EMBER_BINARY_DIR) / "cli_test_output";
  fs::create_directories(dir);
  return dir / (name + "." + std::to_string(::getpid()));
}

TEST(QuantizeCli, WritesAModelThatLoads) {
  const fs::path out = scratch("qwen2-q8.gguf");
  const test::RunResult r = run_ember("quantize " + shell_quote(kQwen2.string()) + " " +
                                      shell_quote(out.string()) + " --type Q8_0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Q8_0"), std::string::npos) << r.out;
  const GgufFile file = GgufFile::open(out);
  EXPECT_EQ(file.get("general.file_type").as_u64(), 7U);  // llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0
  EXPECT_EQ(file.info("blk.0.attn_q.weight").dtype, DType::Q8_0);
  EXPECT_EQ(file.info("blk.0.attn_q.bias").dtype, DType::F32);  // 1-D: never quantized
  EXPECT_NO_THROW(models::load_causal_lm(out));
  fs::remove(out);
}

TEST(QuantizeCli, ConvertsAHuggingFaceFolder) {
  const fs::path out = scratch("llama-convert-q8.gguf");
  const test::RunResult r =
      run_ember("quantize " + shell_quote((test::kModelFixtures / "llama_convert").string()) + " " +
                shell_quote(out.string()) + " --type Q8_0");
  ASSERT_EQ(r.status, 0) << r.err;
  const GgufFile file = GgufFile::open(out);
  EXPECT_EQ(*file.get("tokenizer.ggml.model").as_string(), "gpt2");
  EXPECT_EQ(file.info("blk.0.attn_q.weight").dtype, DType::Q8_0);
  EXPECT_NO_THROW(models::load_causal_lm(out));
  fs::remove(out);
}

TEST(QuantizeCli, BadInputIsOneErrorLine) {
  const fs::path out = scratch("never.gguf");
  const test::RunResult unknown = run_ember("quantize " + shell_quote(kQwen2.string()) + " " +
                                            shell_quote(out.string()) + " --type Q4_K_Q");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("unknown type 'Q4_K_Q'"), std::string::npos) << unknown.err;
  const fs::path folder = test::kModelFixtures / "qwen2";  // a Hugging Face folder, not llama
  const test::RunResult st = run_ember("quantize " + shell_quote(folder.string()) + " " +
                                       shell_quote(out.string()) + " --type Q8_0");
  EXPECT_EQ(st.status, 1);
  EXPECT_NE(st.err.find("architecture 'qwen2' is not supported"), std::string::npos) << st.err;
  const test::RunResult same = run_ember("quantize " + shell_quote(kQwen2.string()) + " " +
                                         shell_quote(kQwen2.string()) + " --type Q8_0");
  EXPECT_EQ(same.status, 1);
  EXPECT_NE(same.err.find("same file"), std::string::npos) << same.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace ember
