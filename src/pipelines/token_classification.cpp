// Token classification (NER), as transformers' TokenClassificationPipeline: per-token softmax,
// then optional aggregation of a word's pieces and of adjacent tokens with the same tag.
#include <algorithm>

#include "ember/base/error.hpp"
#include "ember/pipelines/text_tasks.hpp"
#include "task_common.hpp"

namespace ember::pipelines {
namespace {

size_t code_points(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), detail::utf8_lead));
}

// One scored token (transformers' "pre-entity").
struct Piece {
  std::string word;
  std::vector<double> scores;
  int64_t index = 0;
  size_t start = 0, end = 0;  // characters
  bool is_subword = false;
};

// B-/I- prefixes; a tag without one counts as I.
std::pair<char, std::string> split_tag(const std::string& label) {
  if (label.starts_with("B-") || label.starts_with("I-")) return {label[0], label.substr(2)};
  return {'I', label};
}

}  // namespace

Aggregation parse_aggregation(const std::string& name) {
  if (name == "none") return Aggregation::None;
  if (name == "simple") return Aggregation::Simple;
  if (name == "first") return Aggregation::First;
  if (name == "average") return Aggregation::Average;
  if (name == "max") return Aggregation::Max;
  throw Error("unknown aggregation '" + name + "' (none, simple, first, average, max)");
}

TokenClassifier TokenClassifier::load(const std::filesystem::path& folder) {
  return TokenClassifier(TaskModel::load(folder, models::HeadKind::TokenClassification, "ner"));
}

std::vector<std::vector<Entity>> TokenClassifier::operator()(const std::vector<std::string>& texts,
                                                             const Options& options) const {
  const std::vector<std::string>& labels = m_.model.labels;
  const std::vector<tokenizers::Encoding> encodings = m_.tokenizer.encode_batch(texts, true);
  const std::vector<detail::Logits> logits = detail::run_sorted(m_, encodings, options.batch_size);
  // WordPiece marks continuations, so a token is a subword when its string is longer than its
  // text; BPE and Unigram do not, and then a token is a subword when no space touches its start.
  const bool wordpiece = m_.tokenizer.continuing_subword_prefix().has_value();
  const auto label_of = [&](const std::vector<double>& scores) {
    return labels[static_cast<size_t>(detail::argmax(scores))];
  };
  std::vector<std::vector<Entity>> out(texts.size());
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::string& text = texts[t];
    const tokenizers::Encoding& e = encodings[t];
    const std::vector<size_t> chars = detail::char_index(text);
    std::vector<Piece> pieces;
    for (size_t i = 0; i < e.size(); ++i) {
      if (e.special_tokens_mask[i] != 0) continue;
      Piece p;
      p.word = e.tokens[i];
      p.scores = detail::softmax(logits[t].row(static_cast<int64_t>(i)), logits[t].cols);
      p.index = static_cast<int64_t>(i);
      const auto [begin, end] = e.offsets[i];
      p.start = chars[begin];
      p.end = chars[end];
      const std::string_view ref = std::string_view(text).substr(begin, end - begin);
      if (wordpiece) {
        p.is_subword = code_points(p.word) != p.end - p.start;
      } else {
        p.is_subword =
            begin > 0 && text[begin - 1] != ' ' && (begin >= text.size() || text[begin] != ' ');
      }
      if (m_.unk_id && e.ids[i] == *m_.unk_id) {
        p.word = std::string(ref);
        p.is_subword = false;
      }
      pieces.push_back(std::move(p));
    }
    std::vector<Entity> entities;
    if (options.aggregation == Aggregation::None || options.aggregation == Aggregation::Simple) {
      for (const Piece& p : pieces) {
        const int64_t best = detail::argmax(p.scores);
        entities.push_back({labels[static_cast<size_t>(best)], p.scores[static_cast<size_t>(best)],
                            p.index, p.word, p.start, p.end});
      }
    } else {
      // A word's pieces take one label: the first piece's, the most confident piece's, or the
      // label of the averaged scores.
      for (size_t first = 0; first < pieces.size();) {
        size_t last = first + 1;
        while (last < pieces.size() && pieces[last].is_subword) ++last;
        std::vector<std::string> words;
        for (size_t k = first; k < last; ++k) words.push_back(pieces[k].word);
        std::vector<double> scores = pieces[first].scores;
        if (options.aggregation == Aggregation::Max) {
          double top = -1;
          for (size_t k = first; k < last; ++k) {
            const double m = *std::max_element(pieces[k].scores.begin(), pieces[k].scores.end());
            if (m > top) {
              top = m;
              scores = pieces[k].scores;
            }
          }
        } else if (options.aggregation == Aggregation::Average) {
          for (size_t k = first + 1; k < last; ++k) {
            for (size_t c = 0; c < scores.size(); ++c) scores[c] += pieces[k].scores[c];
          }
          for (double& s : scores) s /= static_cast<double>(last - first);
        }
        const int64_t best = detail::argmax(scores);
        entities.push_back({label_of(scores), scores[static_cast<size_t>(best)], -1,
                            m_.tokenizer.decode_tokens(std::move(words)), pieces[first].start,
                            pieces[last - 1].end});
        first = last;
      }
    }
    if (options.aggregation != Aggregation::None) {
      // Adjacent entities with the same tag form a group, unless the next one begins (B-).
      std::vector<Entity> groups;
      for (size_t first = 0; first < entities.size();) {
        const std::string tag = split_tag(entities[first].entity).second;
        size_t last = first + 1;
        while (last < entities.size()) {
          const auto [bi, next_tag] = split_tag(entities[last].entity);
          if (next_tag != tag || bi == 'B') break;
          ++last;
        }
        Entity g;
        const std::string& label = entities[first].entity;
        const size_t dash = label.find('-');
        g.entity = dash == std::string::npos ? label : label.substr(dash + 1);
        std::vector<std::string> words;
        for (size_t k = first; k < last; ++k) {
          g.score += entities[k].score;
          words.push_back(entities[k].word);
        }
        g.score /= static_cast<double>(last - first);
        g.word = m_.tokenizer.decode_tokens(std::move(words));
        g.start = entities[first].start;
        g.end = entities[last - 1].end;
        groups.push_back(std::move(g));
        first = last;
      }
      entities = std::move(groups);
    }
    for (Entity& entity : entities) {
      if (std::find(options.ignore_labels.begin(), options.ignore_labels.end(), entity.entity) ==
          options.ignore_labels.end()) {
        out[t].push_back(std::move(entity));
      }
    }
  }
  return out;
}

}  // namespace ember::pipelines
