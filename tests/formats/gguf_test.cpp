// GGUF reader and writer: the reference writer's files (tools/gguf/make_gguf_fixtures.py, gguf
// 0.19.0) read back as the reference reader read them, Ember's writer reproduces their bytes,
// and malformed files (mutated fixtures and hand-built headers) are refused with errors that
// name the fault.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "safetensors_fixtures.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::read_bytes;
using test::read_json;

fs::path gguf_dir() {
  return fs::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "gguf";
}

const char* kFixtures[] = {"all_types", "v2", "aligned_64", "no_tensors"};

// The reference package's value type names, in GgufType order.
const char* kReferenceTypeNames[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                     "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                     "UINT64", "INT64",   "FLOAT64"};

void expect_type(GgufType type, GgufType element, const GgufValue* array,
                 const nlohmann::json& expected, const std::string& key) {
  EXPECT_EQ(kReferenceTypeNames[static_cast<uint32_t>(type)], expected["type"].get<std::string>())
      << key;
  if (type != GgufType::Array) return;
  const nlohmann::json& e = expected["element"];
  // Nested arrays: the element's element type is that of the first item (all items share it).
  const GgufValue* first =
      array && !array->as_array()->empty() ? &array->as_array()->front() : nullptr;
  expect_type(element, first ? first->element_type() : GgufType::U8, first, e, key);
}

void expect_value(const GgufValue& v, const nlohmann::json& expected, const std::string& key) {
  switch (v.type()) {
    case GgufType::String:
      EXPECT_EQ(*v.as_string(), expected.get<std::string>()) << key;
      return;
    case GgufType::Bool:
      EXPECT_EQ(*v.as_bool(), expected.get<bool>()) << key;
      return;
    case GgufType::F32:
    case GgufType::F64:
      // The reference printed the stored float exactly (a double holds any float).
      EXPECT_EQ(*v.as_f64(), expected.get<double>()) << key;
      return;
    case GgufType::Array: {
      const auto& items = *v.as_array();
      ASSERT_EQ(items.size(), expected.size()) << key;
      for (size_t i = 0; i < items.size(); ++i) expect_value(items[i], expected[i], key);
      return;
    }
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      EXPECT_EQ(*v.as_u64(), expected.get<uint64_t>()) << key;
      return;
    default:
      EXPECT_EQ(*v.as_i64(), expected.get<int64_t>()) << key;
      return;
  }
}

TEST(GgufReader, ReadsWhatTheReferenceReads) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const GgufFile f = GgufFile::open(gguf_dir() / (std::string(name) + ".gguf"));
    const nlohmann::json want = read_json(gguf_dir() / (std::string(name) + ".json"));
    EXPECT_EQ(f.version(), want["version"].get<uint32_t>());
    EXPECT_EQ(f.alignment(), want["alignment"].get<uint32_t>());
    EXPECT_EQ(f.data_offset(), want["data_offset"].get<uint64_t>());
    EXPECT_EQ(f.file_size(), want["file_size"].get<uint64_t>());
    ASSERT_EQ(f.metadata().size(), want["metadata"].size());
    for (size_t k = 0; k < f.metadata().size(); ++k) {
      const GgufKeyValue& kv = f.metadata()[k];
      const nlohmann::json& w = want["metadata"][k];
      EXPECT_EQ(kv.key, w["key"].get<std::string>());
      expect_type(kv.value.type(), kv.value.element_type(), &kv.value, w, kv.key);
      expect_value(kv.value, w["value"], kv.key);
      EXPECT_EQ(f.find(kv.key), &kv.value);
    }
    ASSERT_EQ(f.tensors().size(), want["tensors"].size());
    for (size_t k = 0; k < f.tensors().size(); ++k) {
      const GgufTensorInfo& t = f.tensors()[k];
      const nlohmann::json& w = want["tensors"][k];
      EXPECT_EQ(t.name, w["name"].get<std::string>());
      EXPECT_EQ(t.ggml_type, w["ggml_type"].get<uint32_t>());
      EXPECT_EQ(t.shape, w["shape"].get<Shape>());
      EXPECT_EQ(t.offset, w["offset"].get<uint64_t>());
      EXPECT_EQ(t.nbytes, w["nbytes"].get<uint64_t>());
      const Tensor x = f.tensor(t.name);
      EXPECT_EQ(x.shape(), t.shape);
      EXPECT_EQ(x.dtype(), t.dtype);
      // Widening to double is exact for every dtype in the fixtures.
      EXPECT_EQ(x.to_f64_vector(), w["values"].get<std::vector<double>>()) << t.name;
    }
  }
}

TEST(GgufReader, TensorsAreViewsOfTheMapping) {
  const GgufFile f = GgufFile::open(gguf_dir() / "all_types.gguf");
  ASSERT_NE(f.mapped_file(), nullptr);
  const Tensor t = f.tensor("f32_matrix");
  EXPECT_EQ(t.data(),
            f.mapped_file()->bytes().data() + f.data_offset() + f.info("f32_matrix").offset);
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.shape(), (Shape{3, 5}));
  EXPECT_EQ(f.info("bf16_matrix").dtype, DType::BF16);
  EXPECT_EQ(f.info("f16_vector").dtype, DType::F16);
  EXPECT_EQ(f.info("i32_vector").dtype, DType::I32);
  EXPECT_THROW(f.info("missing"), Error);
  EXPECT_THROW(f.get("no.such.key"), Error);
}

TEST(GgufWriter, ReproducesTheReferenceBytes) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const std::vector<std::byte> bytes = read_bytes(gguf_dir() / (std::string(name) + ".gguf"));
    const GgufFile f = GgufFile::from_bytes(bytes);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const GgufTensorInfo& t : f.tensors()) tensors.emplace_back(t.name, f.tensor(t.name));
    std::vector<std::byte> written = serialize_gguf(f.metadata(), tensors);
    // Ember writes version 3; the v2 fixture differs from its v3 twin only in that field.
    if (f.version() == 2) written[4] = std::byte{2};
    EXPECT_EQ(written, bytes);
  }
}

TEST(GgufWriter, WritesAtomicallyAndReadsBack) {
  const fs::path dir = fs::path(EMBER_BINARY_DIR) / "gguf_written";
  fs::create_directories(dir);
  const fs::path path = dir / "round_trip.gguf";

  std::vector<GgufKeyValue> metadata = {
      {"general.alignment", GgufValue::unsigned_int(GgufType::U32, 64)},
      {"a.i16", GgufValue::signed_int(GgufType::I16, -7)},
      {"a.f32", GgufValue::floating(GgufType::F32, 1.5)},
      {"a.strings",
       GgufValue::array(GgufType::String, {GgufValue::string("x"), GgufValue::string("")})},
      {"a.empty", GgufValue::array(GgufType::U64, {})},
      {"a.bool", GgufValue::boolean(true)},
  };
  // A transposed (non-contiguous) F32 view is written row-major; a Q4_0 tensor goes byte for byte.
  const Tensor base = Tensor::from_f32({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  std::vector<std::byte> q4(size_t{18} * 2);
  for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<std::byte>(i * 7);
  const Tensor quant = Tensor::borrow(DType::Q4_0, {2, 32}, q4.data(), q4.size(), nullptr);
  const std::vector<std::pair<std::string, Tensor>> tensors = {{"t", base.transpose(0, 1)},
                                                               {"q", quant}};
  write_gguf(path, metadata, tensors);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.metadata().size(), metadata.size());
  for (size_t k = 0; k < metadata.size(); ++k) {
    EXPECT_EQ(f.metadata()[k].key, metadata[k].key);
    EXPECT_EQ(f.metadata()[k].value, metadata[k].value);
  }
  EXPECT_EQ(f.tensor("t").shape(), (Shape{3, 2}));
  EXPECT_EQ(f.tensor("t").to_f64_vector(), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(f.info("q").dtype, DType::Q4_0);
  EXPECT_EQ(f.info("q").offset, 64u);
  const auto qb = f.tensor_bytes("q");
  EXPECT_TRUE(std::equal(qb.begin(), qb.end(), q4.begin(), q4.end()));
  EXPECT_EQ(read_bytes(path), serialize_gguf(metadata, tensors));
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().rfind(".round_trip", 0), std::string::npos)
        << "temporary left behind: " << entry.path();
  }
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(GgufWriter, RefusesWhatGgufCannotHold) {
  const Tensor t = Tensor::from_f32({2}, std::vector<float>{1, 2});
  const auto kv = [](std::string key, GgufValue v) {
    return GgufKeyValue{std::move(key), std::move(v)};
  };
  const GgufValue one = GgufValue::unsigned_int(GgufType::U32, 1);
  expect_error([&] { serialize_gguf({kv("k", one), kv("k", one)}, {}); }, "duplicate metadata key");
  expect_error([&] { serialize_gguf({}, {{"t", t}, {"t", t}}); }, "duplicate tensor name");
  expect_error([&] { serialize_gguf({kv("\xff", one)}, {}); }, "not UTF-8");
  expect_error([&] { serialize_gguf({}, {{"\xc3", t}}); }, "not UTF-8");
  expect_error(
      [&] {
        serialize_gguf({kv("general.alignment", GgufValue::unsigned_int(GgufType::U32, 48))}, {});
      },
      "power of two");
  expect_error(
      [&] {
        serialize_gguf({kv("general.alignment", GgufValue::unsigned_int(GgufType::U64, 64))}, {});
      },
      "power of two");
  expect_error(
      [&] {
        serialize_gguf({}, {{"u", Tensor::zeros(DType::U32, {2})}});
      },
      "GGUF cannot hold");
  expect_error(
      [&] {
        serialize_gguf({}, {{"r5", Tensor::zeros(DType::F32, {1, 1, 1, 1, 1})}});
      },
      "at most 4");
  expect_error([] { GgufValue::unsigned_int(GgufType::U8, 256); }, "does not fit");
  expect_error([] { GgufValue::signed_int(GgufType::I16, 40000); }, "does not fit");
  expect_error([] { GgufValue::unsigned_int(GgufType::I32, 1); }, "not unsigned");
  expect_error([] { GgufValue::array(GgufType::U8, {GgufValue::boolean(true)}); }, "holds a BOOL");
}

// Hand-built headers for faults the reference writer cannot produce.
struct Builder {
  std::vector<std::byte> b;
  Builder& raw(const void* p, size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Builder& u32(uint32_t v) { return raw(&v, 4); }
  Builder& u64(uint64_t v) { return raw(&v, 8); }
  Builder& str(std::string_view s) { return u64(s.size()).raw(s.data(), s.size()); }
  Builder& header(uint64_t tensors, uint64_t kvs) {
    return raw("GGUF", 4).u32(3).u64(tensors).u64(kvs);
  }
  Builder& pad(size_t alignment) {
    b.resize((b.size() + alignment - 1) / alignment * alignment);
    return *this;
  }
};

void expect_refused(const std::vector<std::byte>& bytes, const std::string& needle) {
  expect_error([&] { GgufFile::from_bytes(bytes); }, needle);
}

// Where `s` first occurs; throws (failing the test) rather than let a mutation write out of
// bounds when the fixture changed.
size_t find_bytes(const std::vector<std::byte>& bytes, std::string_view s) {
  const auto it = std::search(bytes.begin(), bytes.end(), s.begin(), s.end(),
                              [](std::byte a, char c) { return a == static_cast<std::byte>(c); });
  if (it == bytes.end()) throw std::runtime_error("fixture lacks " + std::string(s));
  return static_cast<size_t>(it - bytes.begin());
}

template <typename T>
void put(std::vector<std::byte>& bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof(T));
}

// Where the fields after a 2-D tensor's name start in all_types.gguf.
size_t tensor_fields(const std::vector<std::byte>& bytes, std::string_view name) {
  return find_bytes(bytes, name) + name.size();
}

TEST(GgufReader, RefusesMutatedFiles) {
  const std::vector<std::byte> good = read_bytes(gguf_dir() / "all_types.gguf");
  ASSERT_NO_THROW(GgufFile::from_bytes(good));
  auto mutated = [&](auto&& change) {
    std::vector<std::byte> b = good;
    change(b);
    return b;
  };
  expect_refused(mutated([](auto& b) { b[0] = std::byte{'X'}; }), "bad magic");
  expect_refused(mutated([](auto& b) { put<uint32_t>(b, 4, 1); }), "unsupported version 1");
  expect_refused(mutated([](auto& b) { put<uint32_t>(b, 4, 4); }), "unsupported version 4");
  expect_refused(mutated([](auto& b) { put<uint32_t>(b, 4, 0x03000000); }), "big-endian");
  expect_refused(mutated([](auto& b) { put<uint64_t>(b, 8, uint64_t{1} << 60); }),
                 "tensor count 1152921504606846976 cannot fit");
  expect_refused(mutated([](auto& b) { put<uint64_t>(b, 16, uint64_t{1} << 40); }),
                 "metadata count");
  // test.i8 -> test.u8: two equal keys.
  expect_refused(mutated([](auto& b) { b[find_bytes(b, "test.i8") + 5] = std::byte{'u'}; }),
                 "duplicate metadata key 'test.u8'");
  // f16_vector -> f32_matrix: two tensors of one name.
  expect_refused(mutated([](auto& b) {
                   const size_t at = find_bytes(b, "f16_vector");
                   std::memcpy(b.data() + at, "f32_matrix", 10);
                 }),
                 "duplicate tensor name 'f32_matrix'");
  // The string's length field sits just before its bytes.
  expect_refused(mutated([](auto& b) {
                   put<uint64_t>(b, find_bytes(b, "test.string") + 11 + 4, uint64_t{1} << 50);
                 }),
                 "bytes long but the file has");
  expect_refused(mutated([](auto& b) { put<uint32_t>(b, find_bytes(b, "test.u8") + 7, 13); }),
                 "unknown value type 13");
  expect_refused(
      mutated([](auto& b) { b[find_bytes(b, "test.bool_true") + 14 + 4] = std::byte{2}; }),
      "bool with byte value 2");
  // f32_matrix: n_dims (4), ne[0], ne[1] (8 each), type (4), offset (8).
  expect_refused(mutated([](auto& b) { put<uint32_t>(b, tensor_fields(b, "f32_matrix"), 5); }),
                 "'f32_matrix' has 5 dimensions");
  expect_refused(mutated([](auto& b) { put<uint32_t>(b, tensor_fields(b, "f32_matrix") + 20, 4); }),
                 "'f32_matrix' has unsupported ggml type id 4");
  expect_refused(
      mutated([](auto& b) { put<uint32_t>(b, tensor_fields(b, "f32_matrix") + 20, 99); }),
      "unsupported ggml type id 99");
  expect_refused(mutated([](auto& b) {
                   put<uint64_t>(b, tensor_fields(b, "f32_matrix") + 4, uint64_t{1} << 62);
                   put<uint64_t>(b, tensor_fields(b, "f32_matrix") + 12, 4);
                 }),
                 "element count overflows");
  // Zero elements, but the other extents' product overflows (a fuzzer's find: Tensor multiplies
  // the extents outermost first). f32_3d: n_dims (4), ne[0..2] (8 each).
  expect_refused(mutated([](auto& b) {
                   put<uint64_t>(b, tensor_fields(b, "f32_3d") + 4, 0);
                   put<uint64_t>(b, tensor_fields(b, "f32_3d") + 12, uint64_t{1} << 40);
                   put<uint64_t>(b, tensor_fields(b, "f32_3d") + 20, uint64_t{1} << 40);
                 }),
                 "element count overflows");
  expect_refused(mutated([](auto& b) {
                   put<uint64_t>(b, tensor_fields(b, "f32_matrix") + 4, uint64_t{1} << 61);
                 }),
                 "byte size overflows");
  expect_refused(mutated([](auto& b) { put<uint64_t>(b, tensor_fields(b, "f32_matrix") + 24, 4); }),
                 "not a multiple of the alignment 32");
  expect_refused(mutated([](auto& b) {
                   put<uint64_t>(b, tensor_fields(b, "f32_matrix") + 24, uint64_t{1} << 40);
                 }),
                 "past the end of the data section");
  // f32_3d (offset 64, 96 bytes) moved onto f32_matrix (offset 0, 60 bytes).
  expect_refused(mutated([](auto& b) { put<uint64_t>(b, tensor_fields(b, "f32_3d") + 32, 32); }),
                 "overlap");
}

TEST(GgufReader, EveryTruncationIsAnError) {
  const std::vector<std::byte> good = read_bytes(gguf_dir() / "all_types.gguf");
  const GgufFile f = GgufFile::from_bytes(good);
  uint64_t end = f.data_offset();
  for (const GgufTensorInfo& t : f.tensors())
    end = std::max(end, f.data_offset() + t.offset + t.nbytes);
  for (size_t n = 0; n < end; ++n) {
    const std::vector<std::byte> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_THROW(GgufFile::from_bytes(cut), Error) << n;
  }
  // Only the trailing padding after the last tensor may go.
  EXPECT_NO_THROW(GgufFile::from_bytes(std::span(good.data(), end)));
}

TEST(GgufReader, RefusesBadHandBuiltHeaders) {
  auto one_kv = [](std::string_view key, uint32_t type, auto&& value) {
    Builder b;
    b.header(0, 1).str(key).u32(type);
    value(b);
    return b.b;
  };
  // Arrays nested one level deeper than allowed, and exactly as deep as allowed.
  auto nested = [&](int depth) {
    return one_kv("deep", 9, [&](Builder& b) {
      for (int i = 1; i < depth; ++i) b.u32(9).u64(1);
      b.u32(0).u64(0);
    });
  };
  expect_refused(nested(kGgufMaxArrayDepth + 1), "nests arrays deeper than");
  EXPECT_NO_THROW(GgufFile::from_bytes(nested(kGgufMaxArrayDepth)));
  expect_refused(one_kv("a", 9, [](Builder& b) { b.u32(8).u64(uint64_t{1} << 40); }),
                 "element count 1099511627776 cannot fit");
  expect_refused(one_kv("general.alignment", 4, [](Builder& b) { b.u32(0); }), "power of two");
  expect_refused(one_kv("general.alignment", 4, [](Builder& b) { b.u32(24); }), "power of two");
  expect_refused(one_kv("general.alignment", 10, [](Builder& b) { b.u64(32); }), "power of two");
  expect_refused(one_kv("\xc3\x28", 4, [](Builder& b) { b.u32(0); }), "not UTF-8");

  // A Q4_0 row of 48 elements is not a whole number of 32-element blocks.
  Builder q;
  q.header(1, 0).str("q").u32(1).u64(48).u32(2).u64(0).pad(32);
  q.b.resize(q.b.size() + 64);
  expect_refused(q.b, "not a multiple of Q4_0's block of 32");

  // A well-formed Q8_0 tensor reads as a view with whole blocks.
  Builder ok;
  ok.header(1, 0).str("w").u32(2).u64(64).u64(3).u32(8).u64(0).pad(32);
  ok.b.resize(ok.b.size() + size_t{3} * 2 * 34);
  const GgufFile f = GgufFile::from_bytes(ok.b);
  EXPECT_EQ(f.info("w").shape, (Shape{3, 64}));
  EXPECT_EQ(f.info("w").nbytes, 3u * 2 * 34);
  EXPECT_EQ(f.tensor("w").dtype(), DType::Q8_0);
}

}  // namespace
}  // namespace ember
