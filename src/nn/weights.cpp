#include "ember/nn/weights.hpp"

#include "ember/core/convert.hpp"
#include "ember/core/error.hpp"
#include "ember/formats/safetensors.hpp"

namespace ember::nn {
namespace {

class SafeTensorsSource final : public WeightSource {
 public:
  explicit SafeTensorsSource(ShardedSafeTensors file) : file_(std::move(file)) {}
  const std::vector<std::string>& names() const override { return file_.names(); }
  bool contains(std::string_view name) const override { return file_.contains(name); }
  Tensor tensor(std::string_view name) const override { return file_.tensor(name); }
  std::string description() const override { return file_.path().string(); }

 private:
  ShardedSafeTensors file_;
};

}  // namespace

Weights Weights::open(const std::filesystem::path& path) {
  return Weights(std::make_shared<SafeTensorsSource>(ShardedSafeTensors::open(path)));
}

Weights::Weights(std::shared_ptr<const WeightSource> source, std::string prefix)
    : source_(std::move(source)), prefix_(std::move(prefix)) {}

Weights Weights::with_prefix(std::string_view prefix) const {
  return Weights(source_, prefix_ + std::string(prefix));
}

std::optional<std::string> Weights::find_prefix(std::string_view probe,
                                                const std::vector<std::string>& prefixes) const {
  for (const std::string& p : prefixes) {
    if (source_->contains(prefix_ + p + std::string(probe))) return p;
  }
  return std::nullopt;
}

bool Weights::contains(std::string_view name) const {
  return source_->contains(prefix_ + std::string(name));
}

Tensor Weights::get(std::string_view name, const Shape& shape) const {
  const std::string full = prefix_ + std::string(name);
  if (!source_->contains(full)) {
    throw Error("missing weight '" + full + "' (expected shape " + shape_to_string(shape) +
                ") in " + source_->description());
  }
  Tensor t = source_->tensor(full);
  if (t.shape() != shape) {
    throw Error("weight '" + full + "' in " + source_->description() + " has shape " +
                shape_to_string(t.shape()) + ", expected " + shape_to_string(shape));
  }
  if (!is_float(t.dtype()) && !is_quantized(t.dtype())) {
    throw Error("weight '" + full + "' in " + source_->description() + " has dtype " +
                std::string(dtype_name(t.dtype())) + ", expected a float type");
  }
  if (t.dtype() == DType::F8_E4M3 || t.dtype() == DType::F8_E5M2 || t.dtype() == DType::F64) {
    throw Error("weight '" + full + "' in " + source_->description() + ": dtype " +
                std::string(dtype_name(t.dtype())) + " is not supported for model weights");
  }
  return t;
}

Tensor Weights::get_optional(std::string_view name, const Shape& shape) const {
  return contains(name) ? get(name, shape) : Tensor();
}

Tensor Weights::get_f32(std::string_view name, const Shape& shape) const {
  return to_f32(get(name, shape));
}

Tensor Weights::get_optional_f32(std::string_view name, const Shape& shape) const {
  return contains(name) ? get_f32(name, shape) : Tensor();
}

}  // namespace ember::nn
