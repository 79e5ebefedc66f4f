#pragma once
// `ember quantize` for GGUF files: which type each tensor gets, by llama.cpp's rules
// (llama_tensor_get_type in its src/llama-quant.cpp), and the re-quantization itself.
//
// A target is one of llama.cpp's file types (Q4_K_M, Q5_K_S, Q8_0, F16, ...), whose "mixture"
// rules raise some tensors above the file's default type (attn_v and ffn_down in chosen layers,
// the output matrix or a tied token embedding to Q6_K or Q8_0), or a bare K-quant tensor type
// (Q3_K, Q4_K, Q5_K) applied to every quantizable tensor, as llama.cpp's --pure does. Either
// way a row length that is not a whole number of blocks falls back to a 32-element type as
// llama.cpp does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, then F16).
// 1-D tensors, norms and the few other tensors llama.cpp never quantizes keep their type.
//
// Without an importance matrix ggml quantizes with its reference row quantizers, which Ember's
// dtype_traits reproduce bit for bit, so the output is byte-identical to llama.cpp's.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/core/dtype.hpp"
#include "ember/formats/gguf.hpp"

namespace ember {

struct QuantizeTarget {
  std::string_view name;  // as given to `ember quantize --type`
  uint32_t file_type;     // llama.cpp's llama_ftype, written as general.file_type
  DType default_type;     // the type of a tensor no rule or fallback changes
  bool mixture;           // llama.cpp's per-tensor rules apply (false: --pure)
};

// Every target, in the order `ember quantize --help` lists them.
std::span<const QuantizeTarget> quantize_targets();
// Throws ember::Error listing the valid names when `name` is not one.
const QuantizeTarget& quantize_target(std::string_view name);

struct QuantizedTensor {
  std::string name;
  DType from;
  DType to;
  Shape shape;
};

// The output tensors in llama.cpp's order (tensors outside blocks first, then block by block;
// by name within each) with the type each gets. Throws ember::Error when the architecture or
// block count is missing from the metadata, or a tensor has no possible type (a row length
// that is not a multiple of 32 for a 32-element target).
std::vector<QuantizedTensor> plan_quantization(const GgufFile& in, const QuantizeTarget& target);
// The same for tensors that are not in a GGUF file yet (a conversion from another format):
// `metadata` as the output will have it, `tensors` with the type their bytes come in.
std::vector<QuantizedTensor> plan_quantization(std::span<const GgufKeyValue> metadata,
                                               std::span<const GgufTensorInfo> tensors,
                                               const QuantizeTarget& target);

struct QuantizeSummary {
  std::vector<QuantizedTensor> tensors;  // the plan that was written
  uint64_t bytes_in = 0;                 // tensor data read
  uint64_t bytes_out = 0;                // tensor data written
};

// Writes `in` re-quantized for `target` to `out` (replaced atomically): the metadata carried
// over with general.file_type and general.quantization_version set and split keys dropped, and
// each tensor copied when its type stays, else widened to F32 and quantized, one tensor at a
// time, rows split over the thread pool. Throws ember::Error for a plan error, a tensor whose
// type cannot be widened, or non-finite weights.
QuantizeSummary quantize_gguf(const GgufFile& in, const std::filesystem::path& out,
                              const QuantizeTarget& target);

// The bytes of one input tensor (exactly info.nbytes of them, in info.dtype), valid until the
// next call.
using QuantizeSource = std::function<std::span<const std::byte>(const GgufTensorInfo& info)>;
// quantize_gguf for tensors from anywhere: `metadata` and `tensors` as plan_quantization takes
// them, each tensor's bytes asked of `read` once, in the plan's order.
QuantizeSummary quantize_tensors(std::span<const GgufKeyValue> metadata,
                                 std::span<const GgufTensorInfo> tensors,
                                 const QuantizeSource& read, const std::filesystem::path& out,
                                 const QuantizeTarget& target);

}  // namespace ember
