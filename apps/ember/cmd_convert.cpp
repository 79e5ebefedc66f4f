// `ember convert IN OUT.safetensors`: rewrites a checkpoint as one safetensors file.
//
// IN is a PyTorch checkpoint (pytorch_model.bin in the zip or legacy format), a
// pytorch_model.bin.index.json, or a directory holding either. The output holds every tensor of
// the state dict under its name, packed row-major (torch's strided views are made contiguous;
// tensors that share a storage, such as tied weights, are written once per name, since
// safetensors has no aliasing), with the metadata {"format": "pt"} that transformers expects.
// It is written to a temporary file next to OUT and renamed over OUT only when complete.
//
// IN may also be a GGUF file: its tensors under their GGUF names, block-quantized ones widened
// to F32 through dtype_traits (an error names a tensor whose type has no conversion), the
// others (F32, F16, BF16, integers) as they are.
//
// Inputs are recognised by the table `kInputs`.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/core/dtype_traits.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/pytorch.hpp"
#include "ember/formats/safetensors.hpp"

namespace ember::cli {
namespace {

namespace fs = std::filesystem;

using Tensors = std::map<std::string, Tensor>;

// The first bytes of a regular file (fewer if it is shorter).
std::string file_magic(const fs::path& path, size_t n) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {};
  std::ifstream in(path, std::ios::binary);
  std::string magic(n, '\0');
  in.read(magic.data(), static_cast<std::streamsize>(n));
  magic.resize(static_cast<size_t>(in.gcount()));
  return magic;
}

// Block-quantized tensors are widened to F32 (safetensors has no block types); every other
// dtype is copied as it is.
Tensors load_gguf(const fs::path& path) {
  const GgufFile file = GgufFile::open(path);
  Tensors out;
  for (const GgufTensorInfo& info : file.tensors()) {
    Tensor t = file.tensor(info.name);
    if (is_quantized(info.dtype)) {
      const auto to_f32 = dtype_traits(info.dtype).to_f32;
      if (to_f32 == nullptr) {
        throw Error("convert: " + path.string() + ": tensor " + quote_name(info.name) + " is " +
                    std::string(dtype_name(info.dtype)) + ", which cannot be converted to F32 yet");
      }
      Tensor wide = Tensor::empty(DType::F32, info.shape);
      to_f32(t.data(), wide.mutable_data_as<float>(), static_cast<size_t>(info.numel()));
      t = std::move(wide);
    }
    out.emplace(info.name, std::move(t));
  }
  return out;
}

bool is_pytorch(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return fs::exists(path / "pytorch_model.bin.index.json", ec) ||
           fs::exists(path / "pytorch_model.bin", ec);
  }
  const std::string name = path.filename().string();
  if (name.size() > 15 && name.ends_with(".bin.index.json")) return true;
  const std::string magic = file_magic(path, 4);
  return magic == std::string("PK\x03\x04", 4) || (!magic.empty() && magic[0] == '\x80');
}

Tensors load_pytorch(const fs::path& path) {
  const ShardedPyTorchCheckpoint ckpt = ShardedPyTorchCheckpoint::open(path);
  Tensors out;
  for (const std::string& name : ckpt.names()) out.emplace(name, ckpt.tensor(name));
  return out;
}

struct InputFormat {
  const char* name;
  bool (*matches)(const fs::path&);
  Tensors (*load)(const fs::path&);
};

// GGUF first: its check is by name or magic, and a .gguf file must never be tried as pickle.
constexpr std::array<InputFormat, 2> kInputs = {{
    {"GGUF", looks_like_gguf, load_gguf},
    {"PyTorch", is_pytorch, load_pytorch},
}};

void write_atomically(const fs::path& out, const Tensors& tensors) {
  // Written beside OUT (same file system) and renamed: OUT is never seen half-written.
  const fs::path tmp = out.string() + ".tmp." + std::to_string(::getpid());
  try {
    write_safetensors(tmp, tensors, SafeTensorsMetadata{{"format", "pt"}});
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Error("convert: cannot rename " + tmp.string() + " to " + out.string() + ": " +
                ec.message());
  }
}

void convert(const fs::path& in, const fs::path& out) {
  if (out.extension() != ".safetensors") {
    throw Error("convert: output " + out.string() + " must end in .safetensors");
  }
  std::error_code ec;
  if (!fs::exists(in, ec)) throw Error("convert: " + in.string() + " does not exist");
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) {
    throw Error("convert: input and output are the same file");
  }
  for (const InputFormat& format : kInputs) {
    if (!format.matches(in)) continue;
    const Tensors tensors = format.load(in);
    write_atomically(out, tensors);
    uint64_t bytes = 0;
    for (const auto& [name, t] : tensors) bytes += t.nbytes();
    std::cout << "wrote " << tensors.size() << " tensors (" << bytes << " bytes of data) from "
              << format.name << " checkpoint " << in.string() << " to " << out.string() << "\n";
    return;
  }
  throw Error("convert: " + in.string() +
              " is not a PyTorch checkpoint (a .bin file, a pytorch_model.bin.index.json, or a "
              "directory holding one) nor a GGUF file");
}

void setup_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Write a PyTorch checkpoint (pytorch_model.bin, zip or legacy format, read without running "
      "any pickle code; a pytorch_model.bin.index.json; or a directory holding one) or a GGUF "
      "file (quantized tensors dequantized to F32) as one .safetensors file. Tied weights are "
      "written once per name; strided tensors are packed.");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("input", *in, "checkpoint file, index or directory")->required();
  cmd->add_option("output", *out, "the .safetensors file to write (replaced atomically)")
      ->required();
  cmd->callback([in, out] { convert(*in, *out); });
}

const CommandRegistrar registrar({"convert", setup_convert});

}  // namespace
}  // namespace ember::cli
