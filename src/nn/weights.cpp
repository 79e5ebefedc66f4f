#include "ember/nn/weights.hpp"

#include "ember/base/error.hpp"
#include "ember/core/convert.hpp"
#include "ember/formats/pytorch.hpp"
#include "ember/formats/safetensors.hpp"

namespace ember::nn {
namespace {

// Any checkpoint type with the ShardedSafeTensors interface.
template <typename Checkpoint>
class CheckpointSource final : public WeightSource {
 public:
  explicit CheckpointSource(Checkpoint file) : file_(std::move(file)) {}
  const std::vector<std::string>& names() const override { return file_.names(); }
  bool contains(std::string_view name) const override { return file_.contains(name); }
  Tensor tensor(std::string_view name) const override { return file_.tensor(name); }
  std::string description() const override { return file_.path().string(); }

 private:
  Checkpoint file_;
};

bool is_pytorch_path(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  const std::string ext = path.extension().string();
  return ext == ".bin" || ext == ".pt" || ext == ".pth" || name.ends_with(".bin.index.json");
}

}  // namespace

Weights Weights::open(const std::filesystem::path& path) {
  std::error_code ec;
  bool pytorch = is_pytorch_path(path);
  if (std::filesystem::is_directory(path, ec)) {
    // safetensors first, as transformers prefers it when a folder has both.
    pytorch = !std::filesystem::exists(path / "model.safetensors.index.json", ec) &&
              !std::filesystem::exists(path / "model.safetensors", ec) &&
              (std::filesystem::exists(path / "pytorch_model.bin.index.json", ec) ||
               std::filesystem::exists(path / "pytorch_model.bin", ec));
  }
  if (pytorch) {
    return Weights(std::make_shared<CheckpointSource<ShardedPyTorchCheckpoint>>(
        ShardedPyTorchCheckpoint::open(path)));
  }
  return Weights(
      std::make_shared<CheckpointSource<ShardedSafeTensors>>(ShardedSafeTensors::open(path)));
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
