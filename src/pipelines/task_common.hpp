#pragma once
// What the text-task pipelines share: running a head model over length-sorted chunks and
// numpy-style score functions.
#include <cstdint>
#include <string_view>
#include <vector>

#include "ember/pipelines/text_tasks.hpp"

namespace ember::pipelines::detail {

// One input's logits, row-major [rows, cols].
struct Logits {
  std::vector<float> values;
  int64_t rows = 0, cols = 0;
  const float* row(int64_t r) const { return values.data() + r * cols; }
};

// The head's logits for every encoding (token type ids passed where task.token_types says), in
// input order. The encodings are grouped by length (shortest first, stable) into chunks of at most
// batch_size, so that a chunk's sequences cost about the same; each chunk is one forward pass on
// the thread pool. Token heads give a row per token, or per index of rows[i] (positions within
// encoding i) when `rows` is given.
std::vector<Logits> run_sorted(const TaskModel& task,
                               const std::vector<tokenizers::Encoding>& encodings,
                               size_t batch_size,
                               const std::vector<std::vector<int64_t>>* rows = nullptr);

// As transformers computes them in numpy: softmax shifted by the maximum, 1 / (1 + exp(-x)).
std::vector<double> softmax(const float* x, int64_t n);
double sigmoid(double x);

// Index of the first maximum (numpy's argmax).
int64_t argmax(const std::vector<double>& v);

// Whether byte c begins a UTF-8 character.
inline bool utf8_lead(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
}

// The character (code point) index of every byte offset of `text`, its end included: how byte
// offsets become transformers' character offsets.
std::vector<size_t> char_index(std::string_view text);

}  // namespace ember::pipelines::detail
