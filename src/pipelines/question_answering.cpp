// Extractive question answering, as transformers 5.2's QuestionAnsweringPipeline on a fast
// tokenizer with align_to_words: overflowing windows over the context, a softmax per window,
// the best spans of each window widened to whole words, answers merged by their text.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/pipelines/text_tasks.hpp"
#include "ember/tokenizers/lowercase.hpp"
#include "task_common.hpp"

namespace ember::pipelines {
namespace {

// transformers' defaults: windows of 384 tokens (at most model_max_length), overlapping by half a
// window up to 128 tokens.
constexpr size_t kDefaultSeqLen = 384;
constexpr size_t kDefaultStride = 128;
// What transformers writes over the logits of tokens that cannot be in an answer.
constexpr float kMasked = -10000.0F;

// One window of an input: the tokens before the context, a stretch of the context's tokens and
// the tokens after it, as indices into the input's whole encoding. This is the layout the
// tokenizers library gives an overflowing pair truncated on the context with a stride.
struct Window {
  size_t input = 0;
  std::vector<size_t> tokens;
};

struct Span {
  size_t start = 0, end = 0;  // window positions, inclusive
  double score = 0;
};

// The context's tokens [first, last) in `e`, whose context is sequence `seq`.
std::pair<size_t, size_t> sequence_range(const tokenizers::Encoding& e, int64_t seq) {
  size_t first = e.size(), last = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] != seq) continue;
    first = std::min(first, i);
    last = i + 1;
  }
  return first < last ? std::make_pair(first, last) : std::make_pair(e.size(), e.size());
}

// Cuts input `input`'s encoding into windows of at most max_len tokens. Like the tokenizers
// library's truncation with a stride: the context stretches start every (room - stride) tokens
// and the last one ends with the context.
void cut_windows(const tokenizers::Encoding& e, int64_t context_seq, size_t input, size_t max_len,
                 size_t stride, std::vector<Window>& out) {
  const std::pair<size_t, size_t> range = sequence_range(e, context_seq);
  const size_t first = range.first, last = range.second;
  const auto add = [&](size_t begin, size_t end) {
    Window w{input, {}};
    w.tokens.reserve(first + (end - begin) + (e.size() - last));
    for (size_t i = 0; i < first; ++i) w.tokens.push_back(i);
    for (size_t i = begin; i < end; ++i) w.tokens.push_back(i);
    for (size_t i = last; i < e.size(); ++i) w.tokens.push_back(i);
    out.push_back(std::move(w));
  };
  if (e.size() <= max_len) {
    add(first, last);
    return;
  }
  const size_t context = last - first;
  const size_t fixed = e.size() - context;
  const std::string which = "question answering: input " + std::to_string(input + 1) + ": ";
  if (fixed >= max_len) {
    throw Error(which + "the question and special tokens take " + std::to_string(fixed) +
                " tokens, which leaves no room for the context in max_seq_len " +
                std::to_string(max_len));
  }
  const size_t room = max_len - fixed;
  if (stride >= room) {
    throw Error(which + "doc_stride " + std::to_string(stride) + " is not below the " +
                std::to_string(room) +
                " context tokens a window has room for (max_seq_len less the question and "
                "special tokens)");
  }
  for (size_t begin = 0;; begin += room - stride) {
    const size_t end = std::min(context, begin + room);
    add(first + begin, first + end);
    if (end == context) break;
  }
}

// The first and last window positions of word `word` of sequence `seq` (tokenizers'
// word_to_tokens within one window), or nullopt when the window has none of its tokens.
std::optional<std::pair<size_t, size_t>> word_tokens(const tokenizers::Encoding& e, const Window& w,
                                                     int64_t word, int64_t seq) {
  std::optional<std::pair<size_t, size_t>> found;
  for (size_t p = 0; p < w.tokens.size(); ++p) {
    const size_t t = w.tokens[p];
    if (e.sequence_ids[t] != seq || e.word_ids[t] != word) continue;
    if (!found) found = std::make_pair(p, p);
    found->second = p;
  }
  return found;
}

// The spans of one window, best first: every start and end the mask allows, end not before
// start and at most max_answer_len tokens on, scored start * end probability; the best `keep`
// of those that score above zero (transformers' zero-score candidates only fill up windows too
// short to have `keep` spans). Sets `null_score` to the lower of it and the window's first token's
// score.
std::vector<Span> best_spans(const detail::Logits& logits, const std::vector<bool>& allowed,
                             size_t max_answer_len, size_t keep, double& null_score) {
  const auto n = static_cast<size_t>(logits.rows);
  std::vector<float> start(n), end(n);
  for (size_t i = 0; i < n; ++i) {
    start[i] = allowed[i] ? logits.row(static_cast<int64_t>(i))[0] : kMasked;
    end[i] = allowed[i] ? logits.row(static_cast<int64_t>(i))[1] : kMasked;
  }
  std::vector<double> ps = detail::softmax(start.data(), static_cast<int64_t>(n));
  std::vector<double> pe = detail::softmax(end.data(), static_cast<int64_t>(n));
  // The first token is [CLS] (the "no answer" score), never part of an answer.
  null_score = std::min(null_score, ps[0] * pe[0]);
  ps[0] = pe[0] = 0;
  std::vector<Span> spans;
  for (size_t s = 0; s < n; ++s) {
    if (!allowed[s] || ps[s] == 0) continue;
    for (size_t e = s; e < n && e < s + max_answer_len; ++e) {
      if (allowed[e] && pe[e] > 0) spans.push_back({s, e, ps[s] * pe[e]});
    }
  }
  // Ties keep numpy's row-major candidate order.
  const auto better = [](const Span& a, const Span& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.start != b.start ? a.start < b.start : a.end < b.end;
  };
  keep = std::min(keep, spans.size());
  std::partial_sort(spans.begin(), spans.begin() + static_cast<ptrdiff_t>(keep), spans.end(),
                    better);
  spans.resize(keep);
  return spans;
}

// The code points of `text` from character `begin` to `end`, as Python slices a str (clamped;
// empty when end <= begin).
std::string char_slice(const std::string& text, const std::vector<size_t>& byte_of_char,
                       size_t begin, size_t end) {
  const size_t chars = byte_of_char.size() - 1;
  begin = std::min(begin, chars);
  end = std::min(end, chars);
  if (end <= begin) return {};
  return text.substr(byte_of_char[begin], byte_of_char[end] - byte_of_char[begin]);
}

}  // namespace

QuestionAnswerer QuestionAnswerer::load(const std::filesystem::path& folder) {
  TaskModel m = TaskModel::load(folder, models::HeadKind::QuestionAnswering, "qa");
  // The windows are cut from the whole encoding here.
  m.tokenizer.set_truncation(std::nullopt);
  return QuestionAnswerer(std::move(m));
}

std::vector<std::vector<Answer>> QuestionAnswerer::operator()(const std::vector<QaInput>& inputs,
                                                              const Options& options) const {
  if (options.top_k < 1) throw Error("question answering: top_k must be at least 1");
  if (options.max_answer_len < 1) throw Error("question answering: max_answer_len must be >= 1");
  const size_t max_len =
      options.max_seq_len > 0 ? options.max_seq_len : std::min(m_.max_length, kDefaultSeqLen);
  if (max_len > m_.max_length) {
    throw Error("question answering: max_seq_len " + std::to_string(max_len) +
                " is above the model's " + std::to_string(m_.max_length) + " tokens");
  }
  const size_t stride = options.doc_stride.value_or(std::min(max_len / 2, kDefaultStride));
  if (stride > max_len) {
    throw Error("question answering: doc_stride " + std::to_string(stride) +
                " is larger than max_seq_len " + std::to_string(max_len));
  }
  // transformers puts the question first unless the tokenizer pads on the left.
  const bool question_first = !m_.pad_left;
  const int64_t context_seq = question_first ? 1 : 0;
  std::vector<tokenizers::EncodeInput> pairs;
  pairs.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const QaInput& in = inputs[i];
    const std::string which = "question answering: input " + std::to_string(i + 1);
    if (in.question.empty()) throw Error(which + " has no question");
    if (in.context.empty()) throw Error(which + " has no context");
    pairs.push_back(question_first ? tokenizers::EncodeInput{in.question, in.context}
                                   : tokenizers::EncodeInput{in.context, in.question});
  }
  const std::vector<tokenizers::Encoding> encodings = m_.tokenizer.encode_batch(pairs, true);
  std::vector<Window> windows;
  for (size_t i = 0; i < inputs.size(); ++i)
    cut_windows(encodings[i], context_seq, i, max_len, stride, windows);
  std::vector<tokenizers::Encoding> window_encodings(windows.size());
  for (size_t w = 0; w < windows.size(); ++w) {
    const tokenizers::Encoding& e = encodings[windows[w].input];
    for (size_t t : windows[w].tokens) {
      window_encodings[w].ids.push_back(e.ids[t]);
      window_encodings[w].type_ids.push_back(e.type_ids[t]);
    }
  }
  const std::vector<detail::Logits> logits =
      detail::run_sorted(m_, window_encodings, options.batch_size);

  std::vector<std::vector<Answer>> out(inputs.size());
  // Candidates per window: transformers keeps more than top_k since widening to words merges
  // some of them.
  const size_t keep = 2 * options.top_k + 10;
  for (size_t i = 0, w = 0; i < inputs.size(); ++i) {
    const tokenizers::Encoding& e = encodings[i];
    const std::string& context = inputs[i].context;
    const std::vector<size_t> context_chars = detail::char_index(context);
    const std::vector<size_t> question_chars = detail::char_index(inputs[i].question);
    std::vector<size_t> context_bytes;  // byte offset of every character, and the end
    context_bytes.reserve(context_chars.back() + 1);
    for (size_t b = 0; b <= context.size(); ++b) {
      if (b == context.size() || detail::utf8_lead(context[b])) context_bytes.push_back(b);
    }
    // An offset of token t in characters of its own sequence's text.
    const auto chars_of = [&](size_t t, size_t byte) {
      return e.sequence_ids[t] == context_seq ? context_chars[byte] : question_chars[byte];
    };
    double null_score = 1000000;  // transformers' "large and positive" start
    std::vector<Answer>& answers = out[i];
    std::vector<std::string> lowered;  // answers' texts, lowercase, for merging
    for (; w < windows.size() && windows[w].input == i; ++w) {
      const Window& win = windows[w];
      // The context and [CLS] can be in an answer. With the question second transformers masks
      // nothing (its mask only ever marks tokens outside the second sequence).
      std::vector<bool> allowed(win.tokens.size());
      for (size_t p = 0; p < win.tokens.size(); ++p) {
        const size_t t = win.tokens[p];
        allowed[p] = !question_first || e.sequence_ids[t] == 1 || e.ids[t] == m_.cls_id;
      }
      for (const Span& span :
           best_spans(logits[w], allowed, options.max_answer_len, keep, null_score)) {
        const size_t ts = win.tokens[span.start], te = win.tokens[span.end];
        // Widened to the words of the span's first and last tokens, looked up in the context's
        // sequence of this window; where either has no word there, the tokens' own offsets.
        size_t start = chars_of(ts, e.offsets[ts].first);
        size_t end = chars_of(te, e.offsets[te].second);
        if (e.word_ids[ts] >= 0 && e.word_ids[te] >= 0) {
          const auto ws = word_tokens(e, win, e.word_ids[ts], context_seq);
          const auto we = word_tokens(e, win, e.word_ids[te], context_seq);
          if (ws && we) {
            start = context_chars[e.offsets[win.tokens[ws->first]].first];
            end = context_chars[e.offsets[win.tokens[we->second]].second];
          }
        }
        std::string text = char_slice(context, context_bytes, start, end);
        std::string lower = tokenizers::lowercase(text);
        const auto same = std::find(lowered.begin(), lowered.end(), lower);
        if (same != lowered.end()) {
          answers[static_cast<size_t>(same - lowered.begin())].score += span.score;
        } else {
          answers.push_back({std::move(text), span.score, start, end});
          lowered.push_back(std::move(lower));
        }
      }
    }
    if (options.handle_impossible_answer) answers.push_back({"", null_score, 0, 0});
    std::stable_sort(answers.begin(), answers.end(),
                     [](const Answer& a, const Answer& b) { return a.score > b.score; });
    if (answers.size() > options.top_k) answers.resize(options.top_k);
  }
  return out;
}

}  // namespace ember::pipelines
