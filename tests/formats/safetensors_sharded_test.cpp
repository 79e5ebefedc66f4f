#include <gtest/gtest.h>

#include <fstream>

#include "ember/base/error.hpp"
#include "ember/formats/safetensors.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

using test::fixture_dir;
using test::read_json;

void expect_sharded_fixture(const ShardedSafeTensors& st) {
  const nlohmann::json want = read_json(fixture_dir() / "sharded_expected.json");
  EXPECT_TRUE(st.is_sharded());
  ASSERT_EQ(st.names().size(), want["tensors"].size());
  for (const auto& [name, t] : want["tensors"].items()) {
    ASSERT_TRUE(st.contains(name)) << name;
    EXPECT_EQ(st.file_of(name), t["file"].get<std::string>());
    EXPECT_EQ(st.info(name).data_begin, t["data_offsets"][0].get<uint64_t>());
    test::expect_tensor_matches(st.tensor(name), t, name);
  }
  EXPECT_EQ(nlohmann::json::parse(st.index_metadata_json()), want["index_metadata"]);
  EXPECT_EQ(st.shard_files(), (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                                        "model-00002-of-00002.safetensors"}));
  EXPECT_EQ(st.slice("embed.weight", 1, 3).to_f64_vector(),
            st.tensor("embed.weight").narrow(0, 1, 2).to_f64_vector());
  EXPECT_THROW(st.tensor("nope"), Error);
}

TEST(ShardedSafeTensors, OpensTheIndexFile) {
  expect_sharded_fixture(
      ShardedSafeTensors::open(fixture_dir() / "sharded" / "model.safetensors.index.json"));
}

TEST(ShardedSafeTensors, OpensADirectoryWithAnIndex) {
  expect_sharded_fixture(ShardedSafeTensors::open(fixture_dir() / "sharded"));
}

TEST(ShardedSafeTensors, OpensADirectoryOrFileWithOneModelFile) {
  const nlohmann::json want = read_json(fixture_dir() / "single_dir_expected.json");
  for (const auto& path :
       {fixture_dir() / "single_dir", fixture_dir() / "single_dir" / "model.safetensors"}) {
    const ShardedSafeTensors st = ShardedSafeTensors::open(path);
    EXPECT_FALSE(st.is_sharded());
    EXPECT_EQ(st.names(), std::vector<std::string>{"w"});
    EXPECT_EQ(st.file_of("w"), "model.safetensors");
    test::expect_tensor_matches(st.tensor("w"), want["tensors"]["w"], "w");
    EXPECT_EQ(st.shards()[0].metadata(), want["metadata"].get<SafeTensorsMetadata>());
  }
  EXPECT_THROW(ShardedSafeTensors::open(fixture_dir() / "good"), Error);  // neither file
}

class BrokenIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(EMBER_BINARY_DIR) / "safetensors_index_test" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (const char* shard :
         {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
      std::filesystem::copy_file(fixture_dir() / "sharded" / shard, dir_ / shard);
    }
  }
  std::string open_error(const std::string& index_text) {
    std::ofstream(dir_ / "model.safetensors.index.json") << index_text;
    try {
      (void)ShardedSafeTensors::open(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  }
  std::filesystem::path dir_;
};

constexpr const char* kGoodMap = R"("embed.ids":"model-00001-of-00002.safetensors",)"
                                 R"("embed.weight":"model-00001-of-00002.safetensors",)"
                                 R"("head.bias":"model-00002-of-00002.safetensors",)"
                                 R"("head.weight":"model-00002-of-00002.safetensors")";

TEST_F(BrokenIndex, GoodIndexOpens) {
  EXPECT_EQ(open_error(std::string(R"({"weight_map":{)") + kGoodMap + "}}"), "(accepted)");
}

TEST_F(BrokenIndex, EachBrokenRuleIsNamed) {
  EXPECT_NE(open_error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(open_error("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(open_error("{}").find("missing 'weight_map'"), std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":[]})").find("missing 'weight_map'"), std::string::npos);
  EXPECT_NE(open_error(R"({"metadata":5,"weight_map":{}})").find("'metadata' is not an object"),
            std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":{"a":1}})").find("is not a file name"), std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":{"a":"../x.safetensors"}})").find("not a plain file name"),
            std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":{"a":"missing.safetensors"}})").find("cannot open"),
            std::string::npos);
  // A tensor listed but absent, and a tensor present but unlisted.
  EXPECT_NE(open_error(std::string(R"({"weight_map":{)") + kGoodMap +
                       R"(,"extra":"model-00001-of-00002.safetensors"}})")
                .find("tensor 'extra' is missing from shard"),
            std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":{"embed.ids":"model-00001-of-00002.safetensors"}})")
                .find("which weight_map does not list"),
            std::string::npos);
  EXPECT_NE(open_error(std::string(R"({"weight_map":{)") + kGoodMap + "," + kGoodMap + "}}")
                .find("duplicate JSON key"),
            std::string::npos);
  // Deep nesting in a key that is skipped unread still counts towards the depth.
  EXPECT_NE(open_error(R"({"other":)" + std::string(100000, '[')).find("nests deeper"),
            std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":[])").find("missing 'weight_map' object"),
            std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map":{"a":{}}})").find("weight_map entry 'a' is not a file"),
            std::string::npos);
}

TEST_F(BrokenIndex, BadShardIsReportedWithItsPath) {
  std::filesystem::copy_file(fixture_dir() / "bad" / "gap.safetensors",
                             dir_ / "model-00002-of-00002.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  const std::string error = open_error(std::string(R"({"weight_map":{)") + kGoodMap + "}}");
  EXPECT_NE(error.find("model-00002-of-00002.safetensors"), std::string::npos) << error;
  EXPECT_NE(error.find("gap of 4 bytes"), std::string::npos) << error;
}

}  // namespace
}  // namespace ember
