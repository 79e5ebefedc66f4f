// The tokenizer pipeline: added tokens -> normalizer -> pre-tokenizer -> model -> truncation ->
// post-processor -> padding, plus tokenizer.json loading, decoding and batches on the
// process-wide thread pool.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ember/base/thread_pool.hpp"
#include "json_util.hpp"
#include "tokenizer_impl.hpp"

namespace ember::tokenizers {

using namespace detail;

namespace detail {
std::string lossy_utf8(std::string_view s);
}

// ---- Added vocabulary -------------------------------------------------------------------------
void AddedVocabulary::build(const Normalizer* normalizer) {
  for (auto& b : by_first_raw) b.clear();
  for (auto& b : by_first_norm) b.clear();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const AddedToken& t = tokens[i];
    if (t.content.empty()) continue;
    if (t.normalized) {
      auto ns = NormalizedString::from_original(t.content);
      if (normalizer) normalizer->normalize(ns);
      if (ns.normalized.empty()) continue;
      normalized_content[i] = ns.normalized;
      by_first_norm[static_cast<unsigned char>(ns.normalized[0])].push_back(i);
    } else {
      by_first_raw[static_cast<unsigned char>(t.content[0])].push_back(i);
    }
  }
}

static bool is_word_char(char32_t c) {
  return is_alphanumeric(c) || c == '_';
}

void AddedVocabulary::find_matches(
    std::string_view s, bool normalized_pass,
    std::vector<std::pair<int64_t, std::pair<size_t, size_t>>>& out) const {
  out.clear();
  const auto& buckets = normalized_pass ? by_first_norm : by_first_raw;
  size_t start_offset = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto& bucket = buckets[static_cast<unsigned char>(s[i])];
    int64_t best = -1;
    size_t best_len = 0;
    for (size_t idx : bucket) {
      const std::string& pat = normalized_pass ? normalized_content[idx] : tokens[idx].content;
      if (pat.size() > best_len && s.compare(i, pat.size(), pat) == 0) {
        best = static_cast<int64_t>(idx);
        best_len = pat.size();
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens[static_cast<size_t>(best)];
    size_t start = i, stop = i + best_len;
    i = stop;  // matches never overlap
    if (t.single_word) {
      bool start_space = true, stop_space = true;
      if (start > 0) {
        size_t k = start - 1;
        while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t kk = k;
        start_space = !is_word_char(decode_utf8(s, kk));
      }
      if (stop < s.size()) {
        size_t kk = stop;
        stop_space = !is_word_char(decode_utf8(s, kk));
      }
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      size_t ns = start;
      while (ns > 0) {
        size_t k = ns - 1;
        while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t kk = k;
        if (!is_whitespace(decode_utf8(s, kk))) break;
        ns = k;
      }
      start = std::max(ns, start_offset);
    }
    if (t.rstrip) {
      while (stop < s.size()) {
        size_t kk = stop;
        if (!is_whitespace(decode_utf8(s, kk))) break;
        stop = kk;
      }
      i = std::max(i, stop);
    }
    if (start_offset < start) out.push_back({-1, {start_offset, start}});
    out.push_back({best, {start, stop}});
    start_offset = stop;
  }
  if (start_offset != s.size()) out.push_back({-1, {start_offset, s.size()}});
}

// ---- Encoding ---------------------------------------------------------------------------------
// The reference's Python binding converts offsets to char units before post-processing (so
// offset trimming counts chars) and the fixtures convert them back to bytes; doing the same
// round trip reproduces its offsets exactly.
static bool is_ascii(std::string_view s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) >= 0x80) return false;
  return true;
}

static void offsets_to_chars(std::string_view text, std::vector<std::pair<size_t, size_t>>& offs) {
  const size_t n = text.size();
  std::vector<uint32_t> char_of(n);
  uint32_t ci = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++ci;
    char_of[i] = ci;
  }
  for (auto& [s, e] : offs) {
    if (s == 0 && e == 0) continue;
    if (s == e) {
      if (s < n) s = e = char_of[s];
      continue;
    }
    if (s < n && e >= 1 && e - 1 < n) {
      s = char_of[s];
      e = char_of[e - 1] + 1;
    }
  }
}

static void offsets_to_bytes(Encoding& e, const std::string_view* texts, size_t n_texts) {
  std::vector<uint32_t> starts[2];
  for (size_t k = 0; k < n_texts; ++k) {
    std::string_view t = texts[k];
    for (size_t i = 0; i < t.size(); ++i)
      if ((static_cast<unsigned char>(t[i]) & 0xC0) != 0x80)
        starts[k].push_back(static_cast<uint32_t>(i));
    starts[k].push_back(static_cast<uint32_t>(t.size()));
  }
  auto fix = [&](Encoding& enc, auto& self) -> void {
    for (size_t i = 0; i < enc.offsets.size(); ++i) {
      int64_t seq = i < enc.sequence_ids.size() ? enc.sequence_ids[i] : -1;
      if (seq < 0 || static_cast<size_t>(seq) >= n_texts || is_ascii(texts[seq])) continue;
      const auto& st = starts[seq];
      auto& [s, x] = enc.offsets[i];
      if (s < st.size()) s = st[s];
      if (x < st.size()) x = st[x];
    }
    for (auto& o : enc.overflowing) self(o, self);
  };
  fix(e, fix);
}

Encoding TokenizerImpl::encode_one(std::string_view text, uint32_t type_id,
                                   bool with_offsets) const {
  if (!is_valid_utf8(text)) fail("input text is not valid UTF-8");
  if (text.size() > UINT32_MAX / 2) fail("input text is too long");
  std::vector<Split> splits;
  thread_local std::vector<std::pair<int64_t, std::pair<size_t, size_t>>> matches;

  auto push_added = [&](NormalizedString&& ns, size_t idx) {
    Split sp;
    const AddedToken& t = added.tokens[idx];
    sp.tokens.push_back({t.id, ns.normalized, 0, ns.normalized.size()});
    sp.has_tokens = true;
    sp.ns = std::move(ns);
    splits.push_back(std::move(sp));
  };
  // Splits ns around the added tokens matched in it (in the raw text or after normalization):
  // the matches become their tokens, the rest goes to on_rest.
  auto split_added = [&](const NormalizedString& ns, bool normalized_pass, auto&& on_rest) {
    added.find_matches(ns.normalized, normalized_pass, matches);
    auto local = matches;
    for (auto& [idx, r] : local) {
      if (r.first == r.second) continue;
      NormalizedString piece = ns.slice(r.first, r.second);
      if (idx >= 0)
        push_added(std::move(piece), static_cast<size_t>(idx));
      else
        on_rest(std::move(piece));
    }
  };
  auto normalize_piece = [&](NormalizedString&& ns) {
    if (normalizer) normalizer->normalize(ns);
    if (!added.any_normalized()) {
      if (!ns.empty()) splits.push_back({std::move(ns), {}, false});
      return;
    }
    split_added(ns, true, [&](NormalizedString&& piece) {
      splits.push_back({std::move(piece), {}, false});
    });
  };

  NormalizedString whole = NormalizedString::from_original(text);
  if (added.any_raw()) {
    split_added(whole, false, normalize_piece);
  } else if (!text.empty()) {
    normalize_piece(std::move(whole));
  }

  // Pre-tokenize and tokenize piece by piece; every piece is one word.
  Encoding e;
  e.ids.reserve(text.size() / 3 + 4);
  int64_t word = 0;
  thread_local std::vector<Token> tokens;
  thread_local std::vector<NormalizedString> pieces;
  auto emit = [&](const NormalizedString& ns, std::vector<Token>& toks) {
    if (!with_offsets) {
      for (const auto& tok : toks) e.ids.push_back(tok.id);
      return;
    }
    for (auto& tok : toks) {
      std::pair<size_t, size_t> off;
      if (tok.start == tok.end) {
        off = {ns.orig_start + tok.start, ns.orig_start + tok.end};
      } else if (auto o = ns.to_original(tok.start, tok.end)) {
        off = *o;
      } else {
        off = {tok.start, tok.end};
      }
      e.ids.push_back(tok.id);
      e.tokens.push_back(std::move(tok.value));
      e.offsets.push_back(off);
      e.word_ids.push_back(word);
    }
    ++word;
  };
  auto tokenize = [&](const NormalizedString& ns) {
    if (!with_offsets) {
      model->tokenize_ids(ns.normalized, e.ids);
      return;
    }
    tokens.clear();
    model->tokenize(ns.normalized, tokens);
    emit(ns, tokens);
  };
  for (auto& sp : splits) {
    if (sp.has_tokens) {
      emit(sp.ns, sp.tokens);
    } else if (pre_tokenizer) {
      pieces.clear();
      pre_tokenizer->split(std::move(sp.ns), pieces);
      for (const auto& p : pieces)
        if (!p.empty()) tokenize(p);
    } else {
      tokenize(sp.ns);
    }
  }
  if (!with_offsets) return e;
  if (!is_ascii(text)) offsets_to_chars(text, e.offsets);
  size_t n = e.ids.size();
  e.type_ids.assign(n, type_id);
  e.sequence_ids.assign(n, type_id == 0 ? 0 : 1);
  e.special_tokens_mask.assign(n, 0);
  e.attention_mask.assign(n, 1);
  return e;
}

bool TokenizerImpl::has_text_path() const {
  return (!normalizer || normalizer->text_only()) && (!pre_tokenizer || pre_tokenizer->text_only());
}

std::vector<uint32_t> TokenizerImpl::encode_text_ids(std::string_view text) const {
  if (!is_valid_utf8(text)) fail("input text is not valid UTF-8");
  if (text.size() > UINT32_MAX / 2) fail("input text is too long");
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  auto tokenize = [&](std::string_view piece) {
    if (!piece.empty()) model->tokenize_ids(piece, ids);
  };
  auto pre_tokenize = [&](std::string_view piece) {
    if (piece.empty()) return;
    if (pre_tokenizer)
      pre_tokenizer->split_text(piece, tokenize);
    else
      tokenize(piece);
  };
  // Added tokens split the text; a non-empty range is an added token (idx >= 0) or text for
  // on_text.
  auto split_added = [&](std::string_view s, bool normalized_pass, auto&& on_text) {
    Scratch<std::vector<std::pair<int64_t, std::pair<size_t, size_t>>>> matches;
    added.find_matches(s, normalized_pass, *matches);
    for (auto& [idx, r] : *matches) {
      if (r.first == r.second) continue;
      if (idx >= 0)
        ids.push_back(added.tokens[static_cast<size_t>(idx)].id);
      else
        on_text(s.substr(r.first, r.second - r.first));
    }
  };
  auto normalize_piece = [&](std::string_view piece) {
    Scratch<std::string> normalized;
    if (normalizer && normalizer->normalize_text(piece, *normalized)) piece = *normalized;
    if (added.any_normalized())
      split_added(piece, true, pre_tokenize);
    else
      pre_tokenize(piece);
  };
  if (added.any_raw())
    split_added(text, false, normalize_piece);
  else if (!text.empty())
    normalize_piece(text);
  return ids;
}

void TokenizerImpl::truncate(Encoding& a, Encoding* b, bool add_special) const {
  if (!truncation) return;
  size_t max_length = truncation->max_length;
  size_t n_added = post_processor ? post_processor->added_tokens(b != nullptr) : 0;
  if (add_special && n_added > 0) max_length = max_length > n_added ? max_length - n_added : 0;
  const size_t stride = truncation->stride;
  const bool left = truncation->left;
  if (max_length == 0) {
    truncate_encoding(a, 0, stride, left);
    if (b) truncate_encoding(*b, 0, stride, left);
    return;
  }
  size_t total = a.size() + (b ? b->size() : 0);
  if (total <= max_length) return;
  size_t to_remove = total - max_length;
  if (truncation->strategy == TruncationStrategy::LongestFirst) {
    if (b) {
      size_t n1 = a.size(), n2 = b->size();
      bool swap = false;
      if (n1 > n2) {
        swap = true;
        std::swap(n1, n2);
      }
      if (n1 > max_length)
        n2 = n1;
      else
        n2 = std::max(n1, max_length - n1);
      if (n1 + n2 > max_length) {
        n1 = max_length / 2;
        n2 = n1 + max_length % 2;
      }
      if (swap) std::swap(n1, n2);
      truncate_encoding(a, n1, stride, left);
      truncate_encoding(*b, n2, stride, left);
    } else {
      truncate_encoding(a, total - to_remove, stride, left);
    }
    return;
  }
  Encoding* target = truncation->strategy == TruncationStrategy::OnlyFirst ? &a : b;
  if (!target) fail("truncation: only_second needs a second sequence");
  if (target->size() > to_remove)
    truncate_encoding(*target, target->size() - to_remove, stride, left);
  else
    fail("truncation: sequence too short to remove " + std::to_string(to_remove) + " tokens");
}

// The length padding brings an encoding to: the fixed length, else the longest one (of a batch,
// or the encoding itself), rounded up to the multiple.
static size_t padded_length(const Padding& p, size_t longest) {
  size_t target = p.fixed ? p.fixed_length : longest;
  if (p.multiple > 0 && target % p.multiple != 0) target += p.multiple - target % p.multiple;
  return target;
}

Encoding TokenizerImpl::post_process(Encoding a, std::optional<Encoding> b,
                                     bool add_special) const {
  truncate(a, b ? &*b : nullptr, add_special);
  std::vector<Encoding> encs;
  encs.push_back(std::move(a));
  if (b) encs.push_back(std::move(*b));
  for (size_t i = 0; i < encs.size(); ++i) {
    set_sequence_id(encs[i], static_cast<int64_t>(i));
    for (auto& o : encs[i].overflowing) set_sequence_id(o, static_cast<int64_t>(i));
  }
  if (post_processor) post_processor->process(encs, add_special);
  Encoding out = encs.size() == 1 ? std::move(encs[0]) : merge_all(std::move(encs));
  if (padding) {
    pad_encoding(out, padded_length(*padding, out.size()), padding->pad_id, padding->pad_type_id,
                 padding->pad_token, padding->left);
  }
  return out;
}

Encoding TokenizerImpl::encode(std::string_view a, std::optional<std::string_view> b,
                               bool add_special) const {
  Encoding ea = encode_one(a, 0);
  std::optional<Encoding> eb;
  if (b) eb = encode_one(*b, 1);
  Encoding out = post_process(std::move(ea), std::move(eb), add_special);
  std::string_view texts[2] = {a, b ? *b : std::string_view()};
  if (!is_ascii(a) || (b && !is_ascii(*b))) offsets_to_bytes(out, texts, b ? 2 : 1);
  return out;
}

std::vector<uint32_t> TokenizerImpl::encode_ids(std::string_view text, bool add_special) const {
  Encoding e;
  if (has_text_path())
    e.ids = encode_text_ids(text);
  else
    e = encode_one(text, 0, false);
  const bool processed = post_processor && add_special;
  if (!processed && !truncation && !padding) return std::move(e.ids);
  // Truncation, special tokens and padding only look at ids and counts, so placeholder tokens
  // and offsets give the same ids as the full pipeline at a fraction of its cost.
  const size_t n = e.ids.size();
  e.tokens.resize(n);
  e.offsets.assign(n, {0, 0});
  e.word_ids.assign(n, -1);
  e.type_ids.assign(n, 0);
  e.sequence_ids.assign(n, 0);
  e.special_tokens_mask.assign(n, 0);
  e.attention_mask.assign(n, 1);
  return std::move(post_process(std::move(e), std::nullopt, add_special).ids);
}

std::string TokenizerImpl::decode(const std::vector<uint32_t>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (uint32_t id : ids) {
    auto it = added.by_id.find(id);
    if (it != added.by_id.end()) {
      const AddedToken& t = added.tokens[it->second];
      if (skip_special && t.special) continue;
      tokens.push_back(t.content);
      continue;
    }
    if (auto t = model->id_to_token(id)) tokens.emplace_back(*t);
  }
  return decode_tokens(std::move(tokens));
}

std::string TokenizerImpl::decode_tokens(std::vector<std::string> tokens) const {
  if (!decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

// ---- JSON loading -----------------------------------------------------------------------------
Json detail::parse_json_bounded(std::string_view text, const std::string& what) {
  struct TooDeep {};
  // nlohmann parses iteratively; its callback sees each container's depth as it opens.
  const auto bound_depth = [](int depth, Json::parse_event_t event, Json&) {
    const bool opens =
        event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth) throw TooDeep{};
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), bound_depth, true, false);
  } catch (const TooDeep&) {
    fail(what + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } catch (const Json::exception& e) {
    fail(what + ": invalid JSON: " + e.what());
  }
}

std::unique_ptr<TokenizerImpl> TokenizerImpl::from_json(std::string_view text) {
  return from_json_value(parse_json_bounded(text, "tokenizer.json"));
}

std::unique_ptr<TokenizerImpl> TokenizerImpl::from_json_value(const Json& j) {
  if (!j.is_object()) fail("tokenizer.json: expected a JSON object");
  auto impl = std::make_unique<TokenizerImpl>();
  std::string version = get_string(j, "version", "tokenizer", "1.0");
  if (version != "1.0") fail("tokenizer.version: unsupported version '" + version + "'");
  if (const Json* m = field(j, "model"))
    impl->model = make_model(*m, "model");
  else
    fail("tokenizer.model: missing required field");
  if (const Json* n = field(j, "normalizer")) impl->normalizer = make_normalizer(*n, "normalizer");
  if (const Json* p = field(j, "pre_tokenizer"))
    impl->pre_tokenizer = make_pre_tokenizer(*p, "pre_tokenizer");
  if (const Json* p = field(j, "post_processor"))
    impl->post_processor = make_post_processor(*p, "post_processor");
  if (const Json* d = field(j, "decoder")) impl->decoder = make_decoder(*d, "decoder");
  if (const Json* t = field(j, "truncation")) {
    if (!t->is_object()) fail("truncation: expected an object");
    Truncation tr;
    tr.max_length = get_uint(*t, "max_length", "truncation", 512, false, UINT32_MAX);
    tr.stride = get_uint(*t, "stride", "truncation", 0, false, UINT32_MAX);
    std::string dir = get_string(*t, "direction", "truncation", "Right");
    if (dir != "Right" && dir != "Left") fail("truncation.direction: expected Left or Right");
    tr.left = dir == "Left";
    std::string st = get_string(*t, "strategy", "truncation", "LongestFirst");
    if (st == "LongestFirst")
      tr.strategy = TruncationStrategy::LongestFirst;
    else if (st == "OnlyFirst")
      tr.strategy = TruncationStrategy::OnlyFirst;
    else if (st == "OnlySecond")
      tr.strategy = TruncationStrategy::OnlySecond;
    else
      fail("truncation.strategy: unknown value '" + st + "'");
    impl->truncation = tr;
  }
  if (const Json* p = field(j, "padding")) {
    if (!p->is_object()) fail("padding: expected an object");
    Padding pd;
    const Json* s = field(*p, "strategy");
    if (!s || (s->is_string() && s->get<std::string>() == "BatchLongest")) {
      pd.fixed = false;
    } else if (s->is_object() && field(*s, "Fixed")) {
      pd.fixed = true;
      pd.fixed_length = get_uint(*s, "Fixed", "padding.strategy", 0, true, 1u << 24);
    } else {
      fail("padding.strategy: expected \"BatchLongest\" or {\"Fixed\": n}");
    }
    std::string dir = get_string(*p, "direction", "padding", "Right");
    if (dir != "Right" && dir != "Left") fail("padding.direction: expected Left or Right");
    pd.left = dir == "Left";
    pd.multiple = get_uint(*p, "pad_to_multiple_of", "padding", 0, false, 1u << 24);
    pd.pad_id = static_cast<uint32_t>(get_uint(*p, "pad_id", "padding", 0));
    pd.pad_type_id = static_cast<uint32_t>(get_uint(*p, "pad_type_id", "padding", 0));
    pd.pad_token = get_string(*p, "pad_token", "padding", "[PAD]");
    impl->padding = pd;
  }
  if (const Json* a = field(j, "added_tokens")) {
    if (!a->is_array()) fail("added_tokens: expected an array");
    for (size_t i = 0; i < a->size(); ++i) {
      const Json& t = (*a)[i];
      std::string ctx = "added_tokens[" + std::to_string(i) + "]";
      if (!t.is_object()) fail(ctx + ": expected an object");
      AddedToken tok;
      tok.id = static_cast<uint32_t>(get_uint(t, "id", ctx, 0, true));
      tok.content = get_string(t, "content", ctx, "", true);
      if (!is_valid_utf8(tok.content)) fail(ctx + ".content: invalid UTF-8");
      tok.single_word = get_bool(t, "single_word", ctx, false);
      tok.lstrip = get_bool(t, "lstrip", ctx, false);
      tok.rstrip = get_bool(t, "rstrip", ctx, false);
      tok.special = get_bool(t, "special", ctx, false);
      tok.normalized = get_bool(t, "normalized", ctx, !tok.special);
      impl->add_token(std::move(tok), ctx);
    }
  }
  impl->added.build(impl->normalizer.get());
  auto spec = std::make_shared<Json>(Json::object());
  auto options = std::make_shared<Json>(Json::object());
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "model") (*spec)[it.key()] = it.value();
  const Json& m = j.at("model");
  for (auto it = m.begin(); it != m.end(); ++it)
    if (it.key() != "vocab" && it.key() != "merges") (*options)[it.key()] = it.value();
  impl->spec = std::move(spec);
  impl->model_options = std::move(options);
  return impl;
}

void TokenizerImpl::add_token(AddedToken tok, const std::string& ctx) {
  if (added.by_id.count(tok.id)) fail(ctx + ".id: id " + std::to_string(tok.id) + " is duplicated");
  added.by_id[tok.id] = added.tokens.size();
  added.by_content[tok.content] = tok.id;
  added.tokens.push_back(std::move(tok));
  added.normalized_content.resize(added.tokens.size());
}

// ---- Public API -------------------------------------------------------------------------------
Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view json) {
  return Tokenizer(TokenizerImpl::from_json(json));
}

std::string read_file_bounded(const std::string& path, size_t limit) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is then refused as not regular.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open '" + path + "': " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot read '" + path + "': " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("'" + path + "' is not a regular file");
  const auto too_large = [&] {
    fail("'" + path + "' is larger than the limit of " + std::to_string(limit) + " bytes");
  };
  if (static_cast<uint64_t>(st.st_size) > limit) too_large();
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t have = 0;
  while (true) {
    // One byte of room past the expected end tells a file that grew from one that did not.
    if (have == data.size()) {
      if (have > limit) too_large();
      data.resize(std::min(limit + 1, have + 65536));
    }
    const ssize_t n = ::read(fd, data.data() + have, data.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read '" + path + "': " + std::strerror(errno));
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  if (have > limit) too_large();
  data.resize(have);
  return data;
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  return Tokenizer(TokenizerImpl::from_json_value(
      parse_json_bounded(read_file_bounded(path, kMaxTokenizerJsonBytes), path)));
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return impl_->encode(text, std::nullopt, add_special_tokens);
}

Encoding Tokenizer::encode_pair(std::string_view first, std::string_view second,
                                bool add_special_tokens) const {
  return impl_->encode(first, second, add_special_tokens);
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<EncodeInput>& inputs,
                                              bool add_special_tokens) const {
  std::vector<Encoding> out(inputs.size());
  parallel_for_each(static_cast<int64_t>(inputs.size()), [&](int64_t item) {
    const auto& in = inputs[static_cast<size_t>(item)];
    auto& result = out[static_cast<size_t>(item)];
    result = in.second ? impl_->encode(in.first, *in.second, add_special_tokens)
                       : impl_->encode(in.first, std::nullopt, add_special_tokens);
  });
  if (impl_->padding && !out.empty()) {
    const Padding& p = *impl_->padding;
    size_t longest = 0;
    for (const auto& e : out) longest = std::max(longest, e.size());
    const size_t target = padded_length(p, longest);
    for (auto& e : out) pad_encoding(e, target, p.pad_id, p.pad_type_id, p.pad_token, p.left);
  }
  return out;
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              bool add_special_tokens) const {
  std::vector<EncodeInput> inputs;
  inputs.reserve(texts.size());
  for (const auto& t : texts) inputs.push_back({t, std::nullopt});
  return encode_batch(inputs, add_special_tokens);
}

std::vector<uint32_t> Tokenizer::encode_ids(std::string_view text, bool add_special_tokens) const {
  return impl_->encode_ids(text, add_special_tokens);
}

std::vector<std::vector<uint32_t>> Tokenizer::encode_batch_ids(
    const std::vector<std::string>& texts, bool add_special_tokens) const {
  std::vector<std::vector<uint32_t>> out(texts.size());
  parallel_for_each(static_cast<int64_t>(texts.size()), [&](int64_t item) {
    const auto i = static_cast<size_t>(item);
    out[i] = impl_->encode_ids(texts[i], add_special_tokens);
  });
  if (impl_->padding && !out.empty()) {
    const Padding& p = *impl_->padding;
    size_t longest = 0;
    for (const auto& ids : out) longest = std::max(longest, ids.size());
    const size_t target = padded_length(p, longest);
    for (auto& ids : out) {
      if (ids.size() >= target) continue;
      auto at = p.left ? ids.begin() : ids.end();
      ids.insert(at, target - ids.size(), p.pad_id);
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

std::string Tokenizer::decode_tokens(std::vector<std::string> tokens) const {
  return impl_->decode_tokens(std::move(tokens));
}

std::optional<std::string> Tokenizer::continuing_subword_prefix() const {
  const auto prefix = impl_->model->continuing_subword_prefix();
  if (!prefix || prefix->empty()) return std::nullopt;
  return std::string(*prefix);
}

std::optional<uint32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->added.by_content.find(std::string(token));
  if (it != impl_->added.by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(uint32_t id) const {
  auto it = impl_->added.by_id.find(id);
  if (it != impl_->added.by_id.end()) return impl_->added.tokens[it->second].content;
  if (auto t = impl_->model->id_to_token(id)) return std::string(*t);
  return std::nullopt;
}

void Tokenizer::set_truncation(std::optional<size_t> max_length) {
  if (!max_length) {
    impl_->truncation.reset();
    return;
  }
  impl_->truncation = Truncation{};
  impl_->truncation->max_length = *max_length;
}

void Tokenizer::disable_padding() {
  impl_->padding.reset();
}

size_t Tokenizer::vocab_size() const {
  size_t n = impl_->model->vocab_size();
  for (const auto& t : impl_->added.tokens)
    if (!impl_->model->id_to_token(t.id)) ++n;
  return n;
}

// ---- DecodeStream -----------------------------------------------------------------------------
DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

std::optional<std::string> DecodeStream::step(uint32_t id) {
  ids_.push_back(id);
  std::string s = tokenizer_->decode(ids_, skip_special_);
  static const std::string kReplacement = "\xEF\xBF\xBD";
  bool ends_bad = s.size() >= 3 && s.compare(s.size() - 3, 3, kReplacement) == 0;
  if (s.size() > prefix_.size() && !ends_bad) {
    if (s.compare(0, prefix_.size(), prefix_) != 0)
      throw TokenizerError("decode stream: the decoded text no longer starts with its prefix");
    std::string added = s.substr(prefix_.size());
    size_t new_prefix_index = ids_.size() - prefix_index_;
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
    prefix_ = tokenizer_->decode(ids_, skip_special_);
    prefix_index_ = new_prefix_index;
    return added;
  }
  return std::nullopt;
}

}  // namespace ember::tokenizers
