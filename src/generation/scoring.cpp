#include "ember/generation/scoring.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ember/base/error.hpp"
#include "ember/formats/safetensors.hpp"

namespace ember::generation {
namespace {

// Logits [T, V] after each of `tokens`, run from an empty cache in one forward pass.
Tensor teacher_forced_logits(models::CausalLM& model, std::span<const int64_t> tokens,
                             models::KvCache& cache) {
  const auto n = static_cast<int64_t>(tokens.size());
  std::vector<int64_t> positions(tokens.size());
  for (int64_t i = 0; i < n; ++i) positions[static_cast<size_t>(i)] = i;
  cache.length = 0;
  return model.forward(Tensor::from_values<int64_t>(DType::I64, {1, n}, tokens), positions,
                       Tensor(), cache, true);
}

void check_fits(const models::CausalLM& model, int64_t tokens, const std::string& what) {
  if (tokens > model.context_length()) {
    throw Error(what + " of " + std::to_string(tokens) +
                " tokens does not fit the model's context of " +
                std::to_string(model.context_length()) + " tokens");
  }
}

// One named tensor of a KL reference file, with the dtype and shape it must have.
Tensor reference_tensor(const SafeTensors& file, const std::filesystem::path& path,
                        const std::string& name, DType dtype, const Shape& shape) {
  const std::string where = "KL reference " + path.string() + ": ";
  if (!file.contains(name)) throw Error(where + "no tensor \"" + name + "\"");
  Tensor t = file.tensor(name);
  if (t.dtype() != dtype || t.shape() != shape) {
    std::string expected;
    for (const int64_t d : shape) expected += (expected.empty() ? "" : ", ") + std::to_string(d);
    throw Error(where + "tensor \"" + name + "\" must be " + std::string(dtype_name(dtype)) + " [" +
                expected + "]");
  }
  return t.contiguous();
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  const T* p = t.data_as<T>();
  return {p, p + t.numel()};
}

// Sequence i of a KL reference file; top_k is the K of the sequences before it (0 for the first).
ReferenceSequence read_sequence(const SafeTensors& file, const std::filesystem::path& path,
                                size_t i, int64_t prompt_length, int64_t vocab, int64_t& top_k) {
  const std::string where = "KL reference " + path.string() + ": ";
  // (Built with append: GCC 12 warns falsely on "." + std::to_string(...).)
  std::string suffix = ".";
  suffix.append(std::to_string(i));
  if (!file.contains("tokens" + suffix) || !file.contains("top_ids" + suffix)) {
    throw Error(where + "no tensors \"tokens" + suffix + "\" and \"top_ids" + suffix + "\"");
  }
  const Shape& token_shape = file.info("tokens" + suffix).shape;
  const Shape& id_shape = file.info("top_ids" + suffix).shape;
  if (token_shape.size() != 1 || id_shape.size() != 2) {
    throw Error(where + "\"tokens" + suffix + "\" must be [T] and \"top_ids" + suffix +
                "\" [T, K]");
  }
  const int64_t t = token_shape[0], k = id_shape[1];
  if (top_k == 0) top_k = k;
  if (k != top_k || k < 2 || k > vocab) {
    throw Error(
        where + "\"top_ids" + suffix + "\" keeps " + std::to_string(k) +
        " ids a position; every sequence must keep the same K, 2 <= K <= " + std::to_string(vocab));
  }
  ReferenceSequence s;
  s.tokens = values_of<int64_t>(reference_tensor(file, path, "tokens" + suffix, DType::I64, {t}));
  s.top_ids =
      values_of<int32_t>(reference_tensor(file, path, "top_ids" + suffix, DType::I32, {t, k}));
  s.top_logprobs =
      values_of<float>(reference_tensor(file, path, "top_logprobs" + suffix, DType::F32, {t, k}));
  s.rest_logprob =
      values_of<float>(reference_tensor(file, path, "rest_logprob" + suffix, DType::F32, {t}));
  s.prompt_length = prompt_length;
  if (t < 1 || s.prompt_length < 1 || s.prompt_length > t) {
    throw Error(where + "sequence " + std::to_string(i) + " has " + std::to_string(t) +
                " tokens and a prompt of " + std::to_string(s.prompt_length));
  }
  const auto outside = [vocab](int64_t id) { return id < 0 || id >= vocab; };
  if (std::any_of(s.tokens.begin(), s.tokens.end(), outside) ||
      std::any_of(s.top_ids.begin(), s.top_ids.end(), outside)) {
    throw Error(where + "sequence " + std::to_string(i) + " has an id outside the vocabulary of " +
                std::to_string(vocab));
  }
  if (!std::all_of(s.top_logprobs.begin(), s.top_logprobs.end(),
                   [](float v) { return std::isfinite(v); }) ||
      std::any_of(s.rest_logprob.begin(), s.rest_logprob.end(), [](float v) {
        return std::isnan(v) || v == std::numeric_limits<float>::infinity();
      })) {
    throw Error(where + "sequence " + std::to_string(i) +
                " has a log-probability that is not finite");
  }
  return s;
}

}  // namespace

double log_sum_exp(const float* logits, int64_t n) {
  const float top = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - top);
  return top + std::log(sum);
}

PerplexityResult perplexity(models::CausalLM& model, std::span<const int64_t> tokens,
                            const PerplexityOptions& options,
                            const std::function<void(int64_t, double)>& on_chunk) {
  const int64_t ctx = options.context;
  const auto n = static_cast<int64_t>(tokens.size());
  if (ctx < 4) throw Error("perplexity: a context of " + std::to_string(ctx) + " is too small");
  check_fits(model, ctx, "perplexity: a context");
  if (n < 2 * ctx) {
    throw Error("perplexity: the text has " + std::to_string(n) + " tokens; a context of " +
                std::to_string(ctx) + " needs at least " + std::to_string(2 * ctx));
  }
  const int64_t vocab = model.vocab_size();
  for (const int64_t id : tokens) {
    if (id < 0 || id >= vocab)
      throw Error("perplexity: token id " + std::to_string(id) + " is outside the vocabulary");
  }
  if (options.bos && (*options.bos < 0 || *options.bos >= vocab)) {
    throw Error("perplexity: BOS id " + std::to_string(*options.bos) +
                " is outside the vocabulary");
  }
  int64_t chunks = n / ctx;
  if (options.max_chunks > 0) chunks = std::min(chunks, options.max_chunks);

  const int64_t first = ctx / 2;
  models::KvCache cache = model.new_cache(1, ctx);
  PerplexityResult result;
  double nll = 0, nll2 = 0;
  std::vector<int64_t> chunk(static_cast<size_t>(ctx));
  for (int64_t c = 0; c < chunks; ++c) {
    const auto begin = tokens.begin() + c * ctx;
    std::copy(begin, begin + ctx, chunk.begin());
    if (options.bos) chunk[0] = *options.bos;
    const Tensor logits = teacher_forced_logits(model, chunk, cache);
    const float* rows = logits.data_as<float>();
    for (int64_t j = first; j < ctx - 1; ++j) {
      const float* row = rows + j * vocab;
      // The target is the text's own next token (never the BOS put in its place).
      const double v = log_sum_exp(row, vocab) - row[begin[static_cast<std::ptrdiff_t>(j + 1)]];
      nll += v;
      nll2 += v * v;
      ++result.scored;
    }
    result.chunks = c + 1;
    if (on_chunk) on_chunk(result.chunks, std::exp(nll / static_cast<double>(result.scored)));
  }
  const auto count = static_cast<double>(result.scored);
  const double mean = nll / count;
  result.ppl = std::exp(mean);
  const double variance = std::max(0.0, nll2 / count - mean * mean);
  result.ppl_error = std::sqrt(variance / (count - 1)) * result.ppl;
  return result;
}

KlReference KlReference::read(const std::filesystem::path& path, int64_t vocab) {
  const SafeTensors file = SafeTensors::open(path);
  const std::string where = "KL reference " + path.string() + ": ";
  if (!file.contains("prompt_lengths")) throw Error(where + "no tensor \"prompt_lengths\"");
  const Tensor lengths_tensor = file.tensor("prompt_lengths");
  if (lengths_tensor.dtype() != DType::I64 || lengths_tensor.shape().size() != 1 ||
      lengths_tensor.dim(0) < 1) {
    throw Error(where + "tensor \"prompt_lengths\" must be I64 [sequences], at least one");
  }
  const auto lengths = values_of<int64_t>(lengths_tensor.contiguous());
  KlReference ref;
  for (size_t i = 0; i < lengths.size(); ++i) {
    ref.sequences.push_back(read_sequence(file, path, i, lengths[i], vocab, ref.top_k));
  }
  return ref;
}

Agreement compare_with_reference(models::CausalLM& model, const KlReference& reference,
                                 double margin) {
  const int64_t vocab = model.vocab_size(), k = reference.top_k;
  size_t longest = 0;
  for (const auto& s : reference.sequences) longest = std::max(longest, s.tokens.size());
  check_fits(model, static_cast<int64_t>(longest), "compare_with_reference: a sequence");
  models::KvCache cache = model.new_cache(1, static_cast<int64_t>(longest));
  Agreement a;
  double kl_sum = 0;
  std::vector<double> q(static_cast<size_t>(vocab));
  for (const auto& s : reference.sequences) {
    const Tensor logits = teacher_forced_logits(model, s.tokens, cache);
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      const float* row = logits.data_as<float>() + static_cast<int64_t>(t) * vocab;
      const double log_norm = log_sum_exp(row, vocab);
      const int32_t* ids = s.top_ids.data() + t * static_cast<size_t>(k);
      const float* p = s.top_logprobs.data() + t * static_cast<size_t>(k);
      // The model's mass outside the reference's top K, summed directly rather than as 1 minus
      // the top K's (which cancels catastrophically when they hold nearly everything).
      for (int64_t v = 0; v < vocab; ++v) q[static_cast<size_t>(v)] = std::exp(row[v] - log_norm);
      double kl = 0;
      for (int64_t j = 0; j < k; ++j) {
        const double log_q = static_cast<double>(row[ids[j]]) - log_norm;
        kl += std::exp(static_cast<double>(p[j])) * (p[j] - log_q);
        q[static_cast<size_t>(ids[j])] = 0;
      }
      const double p_rest = s.rest_logprob[t];
      if (std::isfinite(p_rest)) {
        double q_rest = 0;
        for (const double v : q) q_rest += v;
        kl += std::exp(p_rest) * (p_rest - std::log(q_rest));
      }
      kl_sum += kl;
      a.max_kl = std::max(a.max_kl, kl);
      const auto top1 = static_cast<int64_t>(std::max_element(row, row + vocab) - row);
      const bool same = top1 == ids[0];
      ++a.positions;
      a.top1_same += same ? 1 : 0;
      if (p[0] - p[1] > margin) {
        ++a.clear_positions;
        a.clear_top1_same += same ? 1 : 0;
      }
    }
  }
  a.mean_kl = kl_sum / static_cast<double>(a.positions);
  return a;
}

}  // namespace ember::generation
