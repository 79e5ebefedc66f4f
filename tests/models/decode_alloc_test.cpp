// The decode step of a decoder-only model allocates no activation buffers: they live in the KV
// cache's DecoderScratch, sized once for (batch, tokens). This binary replaces the global
// operator new to count what one forward call allocates (its own binary, so no other test pays
// for the counter).
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/models/causal_lm.hpp"

// NOLINTNEXTLINE(bugprone-reserved-identifier): the name ld --wrap=aligned_alloc defines
extern "C" void* __real_aligned_alloc(size_t align, size_t size);

namespace {

std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_count{0}, g_bytes{0}, g_large{0};
// Every block this big or bigger is counted as "large": far above tensor metadata (shape and
// stride vectors, a few dozen bytes) and below every activation row of the test model.
constexpr size_t kLargeBytes = 1024;

void count_allocation(size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_count.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
    if (size >= kLargeBytes) g_large.fetch_add(1, std::memory_order_relaxed);
  }
}

void* counted(size_t size, size_t align) {
  count_allocation(size);
  void* p = align > alignof(std::max_align_t)
                ? __real_aligned_alloc(align, (size + align - 1) / align * align)
                : std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

// Tensor storage comes from std::aligned_alloc, not operator new; this binary is linked with
// --wrap=aligned_alloc so those calls are counted too.
// NOLINTNEXTLINE(bugprone-reserved-identifier): the name ld --wrap=aligned_alloc calls
extern "C" void* __wrap_aligned_alloc(size_t align, size_t size) {
  count_allocation(size);
  return __real_aligned_alloc(align, size);
}

void* operator new(size_t size) {
  return counted(size, 0);
}
void* operator new[](size_t size) {
  return counted(size, 0);
}
void* operator new(size_t size, std::align_val_t align) {
  return counted(size, static_cast<size_t>(align));
}
void* operator new[](size_t size, std::align_val_t align) {
  return counted(size, static_cast<size_t>(align));
}
// The nothrow forms too (std::stable_sort's buffer uses them), so every form pairs with the
// operator delete below.
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted(size, 0);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted(size, 0);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new(size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  try {
    return counted(size, static_cast<size_t>(align));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  try {
    return counted(size, static_cast<size_t>(align));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace ember {
namespace {

constexpr int64_t kHidden = 256, kHeads = 4, kKvHeads = 2, kHeadDim = 64, kInner = 1024,
                  kLayers = 2, kVocab = 384;

Tensor random_weight(Shape shape, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = normal(rng);
  return Tensor::from_f32(std::move(shape), v);
}

// A small random Llama with activation rows of at least kLargeBytes (hidden 256 floats).
std::filesystem::path write_model() {
  // Per process, so concurrent runs (release and sanitizer builds) never share the files.
  auto dir = std::filesystem::temp_directory_path() /
             ("ember_decode_alloc_llama_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::mt19937 rng(5);
  std::map<std::string, Tensor> w;
  w["model.embed_tokens.weight"] = random_weight({kVocab, kHidden}, rng);
  w["model.norm.weight"] = random_weight({kHidden}, rng);
  w["lm_head.weight"] = random_weight({kVocab, kHidden}, rng);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    w[p + "input_layernorm.weight"] = random_weight({kHidden}, rng);
    w[p + "post_attention_layernorm.weight"] = random_weight({kHidden}, rng);
    w[p + "self_attn.q_proj.weight"] = random_weight({kHeads * kHeadDim, kHidden}, rng);
    w[p + "self_attn.k_proj.weight"] = random_weight({kKvHeads * kHeadDim, kHidden}, rng);
    w[p + "self_attn.v_proj.weight"] = random_weight({kKvHeads * kHeadDim, kHidden}, rng);
    w[p + "self_attn.o_proj.weight"] = random_weight({kHidden, kHeads * kHeadDim}, rng);
    w[p + "mlp.gate_proj.weight"] = random_weight({kInner, kHidden}, rng);
    w[p + "mlp.up_proj.weight"] = random_weight({kInner, kHidden}, rng);
    w[p + "mlp.down_proj.weight"] = random_weight({kHidden, kInner}, rng);
  }
  write_safetensors(dir / "model.safetensors", w);
  const nlohmann::json config = {{"model_type", "llama"},
                                 {"hidden_size", kHidden},
                                 {"num_attention_heads", kHeads},
                                 {"num_key_value_heads", kKvHeads},
                                 {"head_dim", kHeadDim},
                                 {"intermediate_size", kInner},
                                 {"num_hidden_layers", kLayers},
                                 {"vocab_size", kVocab},
                                 {"max_position_embeddings", 256},
                                 {"rms_norm_eps", 1e-5},
                                 {"hidden_act", "silu"}};
  std::ofstream(dir / "config.json") << config.dump();
  return dir;
}

struct StepAllocations {
  int64_t count, bytes, large;
};

TEST(DecodeStep, AllocatesNoActivationBuffers) {
  const std::filesystem::path dir = write_model();
  const auto model = models::load_causal_lm(dir);
  // The weights are mapped or copied at load; a mapping outlives its unlinked file.
  std::filesystem::remove_all(dir);
  const int64_t capacity = 64, prompt = 5;
  models::KvCache cache = model->new_cache(1, capacity);
  Tensor key_mask = Tensor::zeros(DType::I64, {1, capacity});
  for (int64_t i = 0; i < capacity; ++i) key_mask.mutable_data_as<int64_t>()[i] = 1;
  std::vector<int64_t> prompt_ids{1, 7, 42, 9, 3}, positions{0, 1, 2, 3, 4};
  Tensor logits = model->forward(Tensor::from_values<int64_t>(DType::I64, {1, prompt}, prompt_ids),
                                 positions, key_mask.narrow(1, 0, prompt), cache, false);
  std::vector<StepAllocations> steps;
  for (int64_t step = 0; step < 40; ++step) {
    // The caller's inputs are made outside the counted region.
    const int64_t past = cache.length;
    const std::vector<int64_t> id{(step * 37) % kVocab};
    const Tensor ids = Tensor::from_values<int64_t>(DType::I64, {1, 1}, id);
    const std::vector<int64_t> position{past};
    const Tensor mask = key_mask.narrow(1, 0, past + 1);
    g_count = 0;
    g_bytes = 0;
    g_large = 0;
    g_counting = true;
    logits = model->forward(ids, position, mask, cache, false);
    g_counting = false;
    steps.push_back({g_count.load(), g_bytes.load(), g_large.load()});
    ASSERT_EQ(logits.shape(), (Shape{1, 1, kVocab}));
  }
  const auto logits_bytes = static_cast<int64_t>(kVocab * sizeof(float));
  // One layer's activations alone (normed, qkv, context, branch, up, gated rows) take
  // (3 * 256 + 512 + 256 + 2048 + 1024) * 4 = 18 KiB; what a step may allocate besides the
  // returned logits is tensor metadata and the per-call mask and score rows of attention
  // (O(past) bytes, under 1 KiB each at this context), bounded here by 12 KiB at every step.
  constexpr int64_t kSmallBytesBound = int64_t{12} * 1024;
  for (size_t i = 1; i < steps.size(); ++i) {
    SCOPED_TRACE("decode step " + std::to_string(i));
    EXPECT_EQ(steps[i].large, 1) << "only the returned logits may be a large block";
    EXPECT_LE(steps[i].bytes - logits_bytes, kSmallBytesBound);
    // The first step resizes the scratch from the prompt's shape to one token; from then on
    // the number of allocations is the same for every step: nothing grows with the context.
    EXPECT_EQ(steps[i].count, steps[1].count);
  }
}

}  // namespace
}  // namespace ember
