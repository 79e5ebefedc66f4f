// `ember quantize IN.gguf OUT.gguf --type T`: re-quantizes a GGUF model with llama.cpp's rules
// for which tensor gets which type (ember/formats/gguf_quantize.hpp), byte for byte what
// llama.cpp's quantizer writes without an importance matrix.
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/gguf_quantize.hpp"

namespace ember::cli {
namespace {

namespace fs = std::filesystem;

void quantize(const fs::path& in, const fs::path& out, const std::string& type) {
  const QuantizeTarget& target = quantize_target(type);
  std::error_code ec;
  if (!fs::exists(in, ec)) throw Error("quantize: " + in.string() + " does not exist");
  if (!looks_like_gguf(in)) {
    throw Error("quantize: " + in.string() +
                " is not a GGUF file (quantizing from safetensors is not supported yet)");
  }
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) {
    throw Error("quantize: input and output are the same file");
  }
  const QuantizeSummary summary = quantize_gguf(GgufFile::open(in), out, target);
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
      "Re-quantize a GGUF model as llama.cpp's quantizer does: its file types (Q4_K_M, ...) "
      "choose each tensor's type by its rules, bare K-quant types (Q4_K, ...) apply to every "
      "quantizable tensor; norms and 1-D tensors stay as they are. Threads: EMBER_NUM_THREADS.");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>();
  cmd->add_option("input", *in, "the GGUF file to read")->required();
  cmd->add_option("output", *out, "the GGUF file to write (replaced atomically)")->required();
  cmd->add_option("--type", *type, "one of " + types)->required();
  cmd->callback([in, out, type] { quantize(*in, *out, *type); });
}

const CommandRegistrar registrar({"quantize", setup_quantize});

}  // namespace
}  // namespace ember::cli
