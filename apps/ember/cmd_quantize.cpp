// `ember quantize IN OUT.gguf --type T`: re-quantizes a GGUF model with llama.cpp's rules for
// which tensor gets which type (ember/formats/gguf_quantize.hpp), byte for byte what llama.cpp's
// quantizer writes without an importance matrix; or converts a Hugging Face Llama folder as
// llama.cpp's converter does and quantizes it by the same rules (ember/models/hf_to_gguf.hpp).
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/gguf_quantize.hpp"
#include "ember/models/hf_to_gguf.hpp"

namespace ember::cli {
namespace {

namespace fs = std::filesystem;

void quantize(const fs::path& in, const fs::path& out, const std::string& type) {
  const QuantizeTarget& target = quantize_target(type);
  std::error_code ec;
  if (!fs::exists(in, ec)) throw Error("quantize: " + in.string() + " does not exist");
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) {
    throw Error("quantize: input and output are the same file");
  }
  const bool gguf = !fs::is_directory(in, ec) && looks_like_gguf(in);
  if (!gguf && !models::looks_like_hf_model(in)) {
    throw Error("quantize: " + in.string() +
                " is neither a GGUF file, a .safetensors file nor a folder with a config.json");
  }
  const QuantizeSummary summary = gguf ? quantize_gguf(GgufFile::open(in), out, target)
                                       : models::convert_hf_to_gguf(in, out, target);
  std::map<std::string_view, int> counts;
  for (const QuantizedTensor& t : summary.tensors) ++counts[dtype_name(t.to)];
  std::cout << "wrote " << out.string() << ": " << summary.tensors.size() << " tensors (";
  const char* sep = "";
  for (const auto& [name, n] : counts) {
    std::cout << sep << n << " " << name;
    sep = ", ";
  }
  std::cout << "), " << summary.bytes_in << " -> " << summary.bytes_out << " bytes of data\n";
}

void setup_quantize(CLI::App& app) {
  std::string types;
  for (const QuantizeTarget& t : quantize_targets())
    types += (types.empty() ? "" : ", ") + std::string(t.name);
  auto* cmd = app.add_subcommand(
      "quantize",
      "Quantize a GGUF model, or convert a Hugging Face Llama folder (safetensors F32/F16/BF16, "
      "tokenizer.json) as llama.cpp's convert_hf_to_gguf.py does, then quantize it as "
      "llama.cpp's quantizer does: its file types (Q4_K_M, ...) "
      "choose each tensor's type by its rules, bare K-quant types (Q4_K, ...) apply to every "
      "quantizable tensor; norms and 1-D tensors stay as they are. Threads: EMBER_NUM_THREADS.");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>();
  cmd->add_option("input", *in, "the GGUF file, model folder or .safetensors file to read")
      ->required();
  cmd->add_option("output", *out, "the GGUF file to write (replaced atomically)")->required();
  cmd->add_option("--type", *type, "one of " + types)->required();
  cmd->callback([in, out, type] { quantize(*in, *out, *type); });
}

const CommandRegistrar registrar({"quantize", setup_quantize});

}  // namespace
}  // namespace ember::cli
