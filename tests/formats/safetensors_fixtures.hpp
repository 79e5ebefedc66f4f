#pragma once
// Helpers shared by the safetensors tests: reading committed fixtures written by the Python
// reference (tools/safetensors/make_fixtures.py) and checking tensors against them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::test {

inline std::filesystem::path fixture_dir() {
  return std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "safetensors";
}

inline std::vector<std::byte> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

inline std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

inline Shape shape_of(const nlohmann::json& j) {
  return j.get<Shape>();
}

// Builds the tensor the reference wrote, from its raw bytes.
inline Tensor tensor_from_fixture(const nlohmann::json& t) {
  const auto dtype = dtype_from_name(t["dtype"].get<std::string>());
  EXPECT_TRUE(dtype.has_value());
  Tensor out = Tensor::zeros(*dtype, shape_of(t["shape"]));
  const std::vector<std::byte> bytes = from_hex(t["hex"].get<std::string>());
  EXPECT_EQ(bytes.size(), out.nbytes());
  if (!bytes.empty()) std::memcpy(out.mutable_data(), bytes.data(), bytes.size());
  return out;
}

// Compares a loaded tensor with the fixture's description: dtype, shape, raw bytes, and the
// values the Python side decoded (exact integers; floats bit-for-bit via double, NaN as NaN).
inline void expect_tensor_matches(const Tensor& got, const nlohmann::json& want,
                                  const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_EQ(std::string(dtype_name(got.dtype())), want["dtype"].get<std::string>());
  ASSERT_EQ(got.shape(), shape_of(want["shape"]));
  const std::vector<std::byte> bytes = from_hex(want["hex"].get<std::string>());
  ASSERT_EQ(got.nbytes(), bytes.size());
  const Tensor c = got.contiguous();
  if (!bytes.empty()) {
    EXPECT_EQ(std::memcmp(c.data(), bytes.data(), bytes.size()), 0);
  }

  const nlohmann::json& values = want["values"];
  ASSERT_EQ(values.size(), static_cast<size_t>(got.numel()));
  const DType dt = got.dtype();
  for (size_t i = 0; i < values.size(); ++i) {
    const nlohmann::json& v = values[i];
    switch (dt) {
      case DType::I64:
        EXPECT_EQ(c.data_as<int64_t>()[i], v.get<int64_t>()) << i;
        break;
      case DType::I32:
        EXPECT_EQ(c.data_as<int32_t>()[i], v.get<int32_t>()) << i;
        break;
      case DType::I16:
        EXPECT_EQ(c.data_as<int16_t>()[i], v.get<int16_t>()) << i;
        break;
      case DType::I8:
        EXPECT_EQ(c.data_as<int8_t>()[i], v.get<int8_t>()) << i;
        break;
      case DType::U64:
        EXPECT_EQ(c.data_as<uint64_t>()[i], v.get<uint64_t>()) << i;
        break;
      case DType::U32:
        EXPECT_EQ(c.data_as<uint32_t>()[i], v.get<uint32_t>()) << i;
        break;
      case DType::U16:
        EXPECT_EQ(c.data_as<uint16_t>()[i], v.get<uint16_t>()) << i;
        break;
      case DType::U8:
      case DType::Bool:
        EXPECT_EQ(c.data_as<uint8_t>()[i], v.get<uint8_t>()) << i;
        break;
      default: {
        const double x = c.to_f64_vector()[i];
        if (v.is_string()) {
          const std::string s = v.get<std::string>();
          if (s == "nan") {
            EXPECT_TRUE(std::isnan(x)) << i;
          } else {
            EXPECT_EQ(x, s == "inf" ? INFINITY : -INFINITY) << i;
          }
        } else {
          EXPECT_EQ(x, v.get<double>()) << i;
          EXPECT_EQ(std::signbit(x), std::signbit(v.get<double>())) << i;
        }
      }
    }
  }
}

}  // namespace ember::test
