// PyTorch checkpoint reader: fixtures saved by the reference torch (tools/pytorch/
// make_fixtures.py) must give torch's names, dtypes, shapes, strides, offsets and shared storages,
// and the bytes the reference safetensors writer wrote for the same tensors; the refused inputs
// of tools/pytorch/make_malicious.py must fail with the error their manifest names.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "ember/base/error.hpp"
#include "ember/formats/pytorch.hpp"
#include "ember/formats/safetensors.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

using test::read_bytes;

std::filesystem::path pytorch_dir() {
  return std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "pytorch";
}

nlohmann::ordered_json read_ordered_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::ordered_json::parse(in);
}

std::map<std::string, Tensor> all_tensors(const PyTorchCheckpoint& ckpt) {
  std::map<std::string, Tensor> out;
  for (const std::string& name : ckpt.names()) out.emplace(name, ckpt.tensor(name));
  return out;
}

const char* const kGoodFixtures[] = {"basic_zip",   "basic_zip_protocol4", "basic_legacy",
                                     "nested_zip",  "nested_legacy",       "parameters_zip",
                                     "basic_zip64", "newer_dtypes_zip",    "wrapped_twice_zip"};

class PyTorchFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(PyTorchFixture, MatchesTorchLayoutAndValues) {
  const std::string name = GetParam();
  const auto dir = pytorch_dir() / "good";
  const auto expected = read_ordered_json(dir / (name + ".json"));
  const PyTorchCheckpoint ckpt = PyTorchCheckpoint::open(dir / (name + ".bin"));
  EXPECT_EQ(ckpt.format(),
            expected["format"] == "zip" ? PyTorchFormat::Zip : PyTorchFormat::Legacy);

  std::vector<std::string> names;
  for (const auto& [key, value] : expected["tensors"].items()) names.push_back(key);
  EXPECT_EQ(ckpt.names(), names);  // the state dict's order

  const SafeTensors reference = SafeTensors::open(dir / (name + ".safetensors"));
  std::map<int, std::string> key_of_group;
  std::map<std::string, int> group_of_key;
  for (const auto& [key, t] : expected["tensors"].items()) {
    SCOPED_TRACE(key);
    const PyTorchTensorInfo& info = ckpt.info(key);
    EXPECT_EQ(dtype_name(info.dtype), t["dtype"].get<std::string>());
    EXPECT_EQ(info.shape, t["shape"].get<Shape>());
    EXPECT_EQ(info.strides, t["stride"].get<Shape>());
    EXPECT_EQ(info.storage_offset, t["storage_offset"].get<int64_t>());
    // Tensors share a storage here exactly when they do in torch.
    const int group = t["storage_group"].get<int>();
    EXPECT_EQ(key_of_group.emplace(group, info.storage_key).first->second, info.storage_key);
    EXPECT_EQ(group_of_key.emplace(info.storage_key, group).first->second, group);

    const Tensor tensor = ckpt.tensor(key);
    EXPECT_EQ(tensor.strides(), info.strides);
    const Tensor packed = tensor.contiguous();
    const auto want = reference.tensor_bytes(key);
    ASSERT_EQ(packed.nbytes(), want.size());
    EXPECT_TRUE(want.empty() || std::memcmp(packed.data(), want.data(), want.size()) == 0);
    if (ckpt.format() == PyTorchFormat::Zip) {
      EXPECT_FALSE(tensor.storage()->owned()) << "zip storages are views of the mapping";
    }
  }
  // Tied weights are one Storage, not two copies.
  for (const auto& [key, t] : expected["tensors"].items()) {
    for (const auto& [other, u] : expected["tensors"].items()) {
      if (u["storage_group"] == t["storage_group"]) {
        EXPECT_EQ(ckpt.tensor(key).storage(), ckpt.tensor(other).storage()) << key << " " << other;
      }
    }
  }

  // Converting gives the reference writer's bytes.
  EXPECT_EQ(serialize_safetensors(all_tensors(ckpt), SafeTensorsMetadata{{"format", "pt"}}),
            read_bytes(dir / (name + ".safetensors")));
}

INSTANTIATE_TEST_SUITE_P(Good, PyTorchFixture, ::testing::ValuesIn(kGoodFixtures));

TEST(PyTorch, WrapperKeyIsFoundAndOtherEntriesAreNotTensors) {
  const auto dir = pytorch_dir() / "good";
  const PyTorchCheckpoint nested = PyTorchCheckpoint::open(dir / "nested_zip.bin");
  EXPECT_EQ(nested.wrapper_path(), std::vector<std::string>{"state_dict"});
  EXPECT_TRUE(nested.skipped().empty());
  const PyTorchCheckpoint twice = PyTorchCheckpoint::open(dir / "wrapped_twice_zip.bin");
  EXPECT_EQ(twice.wrapper_path(), (std::vector<std::string>{"model", "state_dict"}));
  const PyTorchCheckpoint basic = PyTorchCheckpoint::open(dir / "basic_zip.bin");
  EXPECT_TRUE(basic.wrapper_path().empty());
  EXPECT_TRUE(basic.contains("proj.weight"));
  EXPECT_FALSE(basic.contains("state_dict"));
  EXPECT_THROW(basic.tensor("nope"), Error);
}

TEST(PyTorch, NonContiguousTensorsAreViewsWithTorchStrides) {
  const PyTorchCheckpoint ckpt = PyTorchCheckpoint::open(pytorch_dir() / "good" / "basic_zip.bin");
  const Tensor t = ckpt.tensor("transposed");
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_FALSE(ckpt.info("transposed").is_contiguous());
  EXPECT_TRUE(ckpt.info("proj.weight").is_contiguous());
  // `rows` is big[1:4] and `transposed` is big.t(): element (r, c) of rows is (c, r + 1) there.
  const Tensor rows = ckpt.tensor("rows").contiguous();
  const Tensor tr = t.contiguous();
  const int64_t cols = rows.dim(1);
  for (int64_t r = 0; r < rows.dim(0); ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_EQ(rows.data_as<float>()[r * cols + c], tr.data_as<float>()[c * tr.dim(1) + r + 1]);
    }
  }
}

TEST(PyTorch, ShardedIndexReadsEveryShard) {
  const auto dir = pytorch_dir() / "good" / "sharded";
  const ShardedPyTorchCheckpoint ckpt = ShardedPyTorchCheckpoint::open(dir);
  EXPECT_TRUE(ckpt.is_sharded());
  EXPECT_EQ(ckpt.shard_files().size(), 2u);
  EXPECT_EQ(ckpt.file_of("embed.weight"), "pytorch_model-00001-of-00002.bin");
  std::map<std::string, Tensor> tensors;
  for (const std::string& name : ckpt.names()) tensors.emplace(name, ckpt.tensor(name));
  EXPECT_EQ(serialize_safetensors(tensors, SafeTensorsMetadata{{"format", "pt"}}),
            read_bytes(dir / "sharded.safetensors"));
  const ShardedPyTorchCheckpoint single =
      ShardedPyTorchCheckpoint::open(dir / "pytorch_model-00002-of-00002.bin");
  EXPECT_FALSE(single.is_sharded());
  EXPECT_EQ(single.names(), single.shards()[0].names());
}

TEST(PyTorch, EveryTruncationIsRefused) {
  for (const char* name : {"basic_zip.bin", "basic_legacy.bin"}) {
    const std::vector<std::byte> bytes = read_bytes(pytorch_dir() / "good" / name);
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_THROW(PyTorchCheckpoint::from_bytes(std::span(bytes.data(), n)), Error)
          << name << " cut to " << n << " bytes";
    }
  }
}

TEST(PyTorch, RefusedInputsNameTheGlobalOrRule) {
  const auto dir = pytorch_dir() / "bad";
  const auto manifest = test::read_json(dir / "manifest.json");
  ASSERT_GE(manifest.size(), 20u);
  for (const auto& [file, want] : manifest.items()) {
    SCOPED_TRACE(file);
    try {
      PyTorchCheckpoint::open(dir / file);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want["error"].get<std::string>()), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace ember
