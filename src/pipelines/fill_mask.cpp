// Fill-mask, as transformers' FillMaskPipeline: per mask token, a softmax over the vocabulary and
// its top_k tokens, each with the text it makes.
#include <algorithm>
#include <numeric>

#include "ember/base/error.hpp"
#include "ember/pipelines/text_tasks.hpp"
#include "task_common.hpp"

namespace ember::pipelines {

FillMask FillMask::load(const std::filesystem::path& folder) {
  FillMask f(TaskModel::load(folder, models::HeadKind::MaskedLM, "fill-mask"));
  if (!f.m_.mask_id) {
    throw Error(folder.string() +
                ": the tokenizer has no mask token (tokenizer_config.json's "
                "mask_token, or [MASK] / <mask>), which fill-mask needs");
  }
  f.mask_id_ = *f.m_.mask_id;
  return f;
}

std::string FillMask::mask_token() const {
  return m_.tokenizer.id_to_token(mask_id_).value_or("");
}

std::vector<std::vector<std::vector<MaskPrediction>>> FillMask::operator()(
    const std::vector<std::string>& texts, const Options& options) const {
  const std::vector<tokenizers::Encoding> encodings = m_.tokenizer.encode_batch(texts, true);
  std::vector<std::vector<int64_t>> masks(texts.size());
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::vector<uint32_t>& ids = encodings[t].ids;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == mask_id_) masks[t].push_back(static_cast<int64_t>(i));
    }
    if (masks[t].empty()) {
      throw Error("fill-mask: input " + std::to_string(t + 1) + " has no mask token '" +
                  mask_token() + "'");
    }
  }
  const std::vector<detail::Logits> logits =
      detail::run_sorted(m_, encodings, options.batch_size, &masks);
  std::vector<std::vector<std::vector<MaskPrediction>>> out(texts.size());
  for (size_t t = 0; t < texts.size(); ++t) {
    // With several masks transformers keeps the special tokens in each sequence.
    const bool single = masks[t].size() == 1;
    for (size_t m = 0; m < masks[t].size(); ++m) {
      const std::vector<double> probs =
          detail::softmax(logits[t].row(static_cast<int64_t>(m)), logits[t].cols);
      const size_t k = std::min(options.top_k, probs.size());
      std::vector<uint32_t> best(probs.size());
      std::iota(best.begin(), best.end(), 0U);
      std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(k), best.end(),
                        [&](uint32_t a, uint32_t b) {
                          return probs[a] != probs[b] ? probs[a] > probs[b] : a < b;
                        });
      std::vector<MaskPrediction>& row = out[t].emplace_back();
      for (size_t j = 0; j < k; ++j) {
        const uint32_t token = best[j];
        std::vector<uint32_t> ids = encodings[t].ids;
        ids[static_cast<size_t>(masks[t][m])] = token;
        if (m_.pad_id) std::erase(ids, *m_.pad_id);
        row.push_back({probs[token], token, m_.decode({token}, false), m_.decode(ids, single)});
      }
    }
  }
  return out;
}

}  // namespace ember::pipelines
