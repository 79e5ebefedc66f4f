#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "ember/base/error.hpp"
#include "ember/formats/safetensors.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

using test::fixture_dir;
using test::read_bytes;
using test::read_json;

const char* kGoodFixtures[] = {"all_dtypes",       "scalar_and_empty",    "name_order",
                               "metadata_escapes", "metadata_multi",      "empty_metadata",
                               "no_tensors",       "no_tensors_metadata", "rows"};

std::map<std::string, Tensor> tensors_of(const nlohmann::json& fixture) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : fixture["tensors"].items()) {
    out.emplace(name, test::tensor_from_fixture(t));
  }
  return out;
}

std::optional<SafeTensorsMetadata> metadata_of(const nlohmann::json& fixture) {
  if (fixture["metadata"].is_null()) return std::nullopt;
  return fixture["metadata"].get<SafeTensorsMetadata>();
}

// Where Ember-written copies go for tools/safetensors/check_ember_written.py.
std::filesystem::path written_dir() {
  auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "safetensors_written";
  std::filesystem::create_directories(dir);
  return dir;
}

// The strongest check: from the same tensors, Ember writes the very bytes the Python library
// wrote.
TEST(SafeTensorsWriter, WritesByteIdenticalFilesToTheReferenceWriter) {
  int identical = 0;
  for (const char* name : kGoodFixtures) {
    SCOPED_TRACE(name);
    const auto dir = fixture_dir() / "good";
    const nlohmann::json fixture = read_json(dir / (std::string(name) + ".json"));
    const std::vector<std::byte> reference = read_bytes(dir / (std::string(name) + ".safetensors"));
    const auto tensors = tensors_of(fixture);
    const std::vector<std::byte> ours = serialize_safetensors(tensors, metadata_of(fixture));

    const auto path = written_dir() / (std::string(name) + ".safetensors");
    write_safetensors(path, tensors, metadata_of(fixture));
    EXPECT_EQ(read_bytes(path), ours) << "file and buffer writers disagree";

    if (fixture["byte_identical"].get<bool>()) {
      EXPECT_EQ(ours, reference);
      ++identical;
    } else {
      // Several metadata keys: the reference writes them in hash order, Ember sorted. Same size
      // and same content.
      EXPECT_EQ(ours.size(), reference.size());
      const SafeTensors back = SafeTensors::from_bytes(ours);
      EXPECT_EQ(back.metadata(), *metadata_of(fixture));
      for (const auto& [tname, t] : fixture["tensors"].items()) {
        test::expect_tensor_matches(back.tensor(tname), t, tname);
      }
    }
  }
  EXPECT_GE(identical, 8);
}

TEST(SafeTensorsWriter, ShardsAreByteIdenticalToo) {
  const nlohmann::json expected = read_json(fixture_dir() / "sharded_expected.json");
  std::map<std::string, std::map<std::string, Tensor>> by_file;
  for (const auto& [name, t] : expected["tensors"].items()) {
    by_file[t["file"].get<std::string>()].emplace(name, test::tensor_from_fixture(t));
  }
  ASSERT_EQ(by_file.size(), 2u);
  for (const auto& [file, tensors] : by_file) {
    EXPECT_EQ(serialize_safetensors(tensors, SafeTensorsMetadata{{"format", "pt"}}),
              read_bytes(fixture_dir() / "sharded" / file))
        << file;
  }
}

TEST(SafeTensorsWriter, NonContiguousTensorsAreWrittenRowMajor) {
  const std::vector<float> values = {0, 1, 2, 3, 4, 5};
  const Tensor t = Tensor::from_f32({2, 3}, values).transpose(0, 1);  // [3, 2] view
  ASSERT_FALSE(t.is_contiguous());
  const std::vector<std::byte> bytes = serialize_safetensors({{"t", t}});
  const SafeTensors back = SafeTensors::from_bytes(bytes);
  EXPECT_EQ(back.tensor("t").shape(), (Shape{3, 2}));
  EXPECT_EQ(back.tensor("t").to_f64_vector(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(SafeTensorsWriter, RoundTripsThroughTheReaderWithAlignedData) {
  std::map<std::string, Tensor> tensors;
  tensors.emplace("u8",
                  Tensor::from_values<uint8_t>(DType::U8, {3}, std::vector<uint8_t>{1, 2, 3}));
  tensors.emplace("f64",
                  Tensor::from_values<double>(DType::F64, {2}, std::vector<double>{1.5, -2}));
  tensors.emplace("i16", Tensor::from_values<int16_t>(DType::I16, {1}, std::vector<int16_t>{-5}));
  const std::vector<std::byte> bytes = serialize_safetensors(tensors, SafeTensorsMetadata{});
  const SafeTensors back = SafeTensors::from_bytes(bytes);
  EXPECT_TRUE(back.has_metadata());
  EXPECT_TRUE(back.metadata().empty());
  // Largest elements first, so every tensor is aligned to its element size.
  EXPECT_EQ(back.names(), (std::vector<std::string>{"f64", "i16", "u8"}));
  EXPECT_EQ((8 + back.header_size()) % 8, 0u);
  for (const auto& [name, t] : tensors) {
    EXPECT_EQ(back.tensor(name).to_f64_vector(), t.to_f64_vector()) << name;
    EXPECT_FALSE(back.tensor(name).storage()->owned()) << name;
  }
}

TEST(SafeTensorsWriter, RejectsWhatTheFormatCannotHold) {
  const Tensor t = Tensor::zeros(DType::F32, {1});
  EXPECT_THROW(serialize_safetensors({{"__metadata__", t}}), Error);
  EXPECT_THROW(serialize_safetensors({{std::string("bad\xff", 4), t}}), Error);
  EXPECT_THROW(serialize_safetensors({{"undefined", Tensor()}}), Error);
  EXPECT_THROW(serialize_safetensors({{"t", t}}, SafeTensorsMetadata{{"k", "\xc0\xaf"}}), Error);
  EXPECT_THROW(write_safetensors("/nonexistent-dir/x.safetensors", {{"t", t}}), Error);
}

// A write that fails half-way (a full disk, simulated by a file-size limit in a child process)
// and a write the format refuses both leave the old checkpoint whole, with no temporary beside it.
TEST(SafeTensorsWriter, AFailedWriteKeepsTheOldFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ember_writer_test." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "model.safetensors";
  const Tensor small = Tensor::zeros(DType::F32, {4});
  write_safetensors(path, {{"t", small}});
  const std::vector<std::byte> old = read_bytes(path);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", small}}), Error);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      write_safetensors(path, {{"t", Tensor::zeros(DType::F32, {100000})}});
    } catch (const Error& e) {
      ::_exit(std::string(e.what()).rfind("safetensors: cannot write", 0) == 0 ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(read_bytes(path), old);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ember
