#!/usr/bin/env python3
"""Generates tests/fixtures/tokenizers/cases/<case>/expected.jsonl with the reference library.

Reference: HF `tokenizers` (pinned in tools/requirements.txt); for `sentencepiece_model` cases the
`sentencepiece` library. Deterministic: re-running reproduces the same bytes.

A case is a directory tests/fixtures/tokenizers/cases/<case>/ (dev_* cases belong to the C++ side
and are skipped) holding one of:
  tokenizer.json                      a committed tokenizer (trained by train_cases.py)
  source.txt                          path of a real tokenizer.json, relative to the model cache
                                      (${EMBER_MODEL_CACHE:-~/.cache/ember-models}, filled by
                                      scripts/fetch_models.sh)
  format.txt + legacy files           vocab_txt (vocab.txt or source.txt), gpt2_vocab_merges
                                      (vocab.json + merges.txt), sentencepiece_model (spm.model)
The line format is described in tests/fixtures/tokenizers/MANIFEST.md.

Usage: make_fixtures.py [case ...]   (no argument: every case)
"""
import json
import os
import pathlib
import sys

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream
from tokenizers.implementations import BertWordPieceTokenizer, ByteLevelBPETokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
CASES = FIXTURES / "cases"
CORPUS = FIXTURES / "corpus.jsonl"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))

SUMMARY_THRESHOLD = 4096  # inputs longer than this many UTF-8 bytes get hashed summaries
# The ~100 KB corpus line is encoded in full only in these cases (and only with special tokens);
# the others get its first MEDIUM_BYTES bytes, which still takes the summary path. This keeps the
# committed fixtures small while every case still covers long inputs.
FULL_LONG_LINE_CASES = {"minilm", "deepseek_bpe"}
MEDIUM_BYTES = 4500

PAIRS = [
    ["Hello world", "How are you?"],
    ["", "second only"],
    ["first only", ""],
    ["", ""],
    ["[CLS] hi", "there [SEP]"],
    ["Crème brûlée", "naïve café"],
    ["你好，世界！", "こんにちは、世界。"],
    ["👍🏽 thumbs", "👨‍👩‍👧 family"],
    ["def f(x):\n    return x", "int main() { return 0; }"],
    ["I'm here, you're there.", "THEY'VE GONE; WE'LL STAY."],
    ["  spaces  around  ", "\ttabs\tand\nnewlines\n"],
    ["The quick brown fox jumps over the lazy dog and keeps running far away into the forest",
     "short"],
    ["1,000,000 dollars", "3.14159 radians"],
]

BATCHES = [
    ["Hello world", "a", "The quick brown fox jumps over the lazy dog.", ""],
    ["你好，世界！", "👍🏽 thumbs up", "I'm here"],
    [["Hello world", "How are you?"], ["a", "b"], ["longer first sequence here", "x"]],
]

STREAM_TEXTS = [
    "Hello world! 👍🏽 👨‍👩‍👧 🇫🇷",
    "你好，世界！日本語のテキスト：こんにちは。한국어 텍스트",
    "Crème brûlée naïve café Straße",
    "[CLS] hi [SEP] <s> hello </s> <|endoftext|> text",
    "  leading spaces\tand tabs\nnewline",
]


# ----------------------------------------------------------------------------------------------
# Helpers


def fnv1a64(data: bytes) -> int:
    h = 14695981039346656037
    for b in data:
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def summary(ids, offsets):
    ids_bytes = b"".join(i.to_bytes(4, "little") for i in ids)
    off_bytes = b"".join(s.to_bytes(8, "little") + e.to_bytes(8, "little") for s, e in offsets)
    return {"n": len(ids), "ids_fnv1a": str(fnv1a64(ids_bytes)),
            "offsets_fnv1a": str(fnv1a64(off_bytes))}


class ByteMap:
    """Maps char offsets of one input string to byte offsets of its UTF-8 encoding."""

    def __init__(self, text):
        self.text = text
        self.prefix = [0]
        for ch in text:
            self.prefix.append(self.prefix[-1] + len(ch.encode("utf-8")))

    def __call__(self, k):
        assert 0 <= k < len(self.prefix), (k, len(self.text))
        return self.prefix[k]


def to_byte_offsets(enc, texts):
    maps = [ByteMap(t) for t in texts]
    out = []
    for (s, e), seq in zip(enc.offsets, enc.sequence_ids):
        assert s <= e, (s, e)
        if seq is None:  # special tokens from the post-processor and padding
            assert (s, e) == (0, 0), (s, e)
            out.append([0, 0])
            continue
        m = maps[seq]
        bs, be = m(s), m(e)
        # Round trip: the byte offsets must land on char boundaries and map back exactly.
        assert m.text.encode("utf-8")[:bs].decode("utf-8") == m.text[:s]
        assert m.text.encode("utf-8")[bs:be].decode("utf-8") == m.text[s:e]
        out.append([bs, be])
    return out


def encoding_fields(enc, texts, with_word_ids=True):
    d = {
        "ids": list(enc.ids),
        "type_ids": list(enc.type_ids),
        "tokens": list(enc.tokens),
        "offsets": to_byte_offsets(enc, texts),
        "special_tokens_mask": list(enc.special_tokens_mask),
        "attention_mask": list(enc.attention_mask),
    }
    if with_word_ids:
        d["word_ids"] = list(enc.word_ids)
    return d


def dump(obj):
    line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for ch in ("\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"):
        line = line.replace(ch, "\\u%04x" % ord(ch))
    return line


def input_bytes(inp):
    parts = inp if isinstance(inp, list) else [inp]
    return sum(len(p.encode("utf-8")) for p in parts)


def prefix_by_bytes(text, limit):
    out, n = [], 0
    for ch in text:
        b = len(ch.encode("utf-8"))
        if n + b > limit:
            break
        out.append(ch)
        n += b
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Loading cases


def read_source(case_dir):
    rel = (case_dir / "source.txt").read_text().strip()
    path = CACHE / rel
    if not path.exists():
        sys.exit(f"error: {path} missing: run scripts/fetch_models.sh")
    return path


def load_case(case_dir):
    """Returns (kind, object): kind 'hf' with a tokenizers.Tokenizer or 'spm' with a processor."""
    fmt_file = case_dir / "format.txt"
    if fmt_file.exists():
        fmt = fmt_file.read_text().strip()
        if fmt == "vocab_txt":
            has_source = (case_dir / "source.txt").exists()
            path = read_source(case_dir) if has_source else case_dir / "vocab.txt"
            return "hf", BertWordPieceTokenizer(str(path))._tokenizer
        if fmt == "gpt2_vocab_merges":
            return "hf", ByteLevelBPETokenizer.from_file(
                str(case_dir / "vocab.json"), str(case_dir / "merges.txt"))._tokenizer
        if fmt == "sentencepiece_model":
            import sentencepiece as spm
            return "spm", spm.SentencePieceProcessor(model_file=str(case_dir / "spm.model"))
        sys.exit(f"error: {case_dir}: unknown format {fmt!r}")
    if (case_dir / "tokenizer.json").exists():
        return "hf", Tokenizer.from_file(str(case_dir / "tokenizer.json"))
    if (case_dir / "source.txt").exists():
        return "hf", Tokenizer.from_file(str(read_source(case_dir)))
    sys.exit(f"error: {case_dir}: no tokenizer.json, source.txt or format.txt")


def tokenizer_json(case_dir):
    """The JSON config of a case (for the coverage check); None for sentencepiece cases."""
    kind, tok = load_case(case_dir)
    if kind != "hf":
        return None
    return json.loads(tok.to_str())


# ----------------------------------------------------------------------------------------------
# Generating lines


def corpus_lines():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def encode_record(tok, inp, add_special):
    texts = inp if isinstance(inp, list) else [inp]
    enc = tok.encode(*texts, add_special_tokens=add_special) if isinstance(inp, list) else \
        tok.encode(inp, add_special_tokens=add_special)
    rec = {"input": inp, "add_special_tokens": add_special}
    long_input = input_bytes(inp) > SUMMARY_THRESHOLD
    if long_input:
        rec["summary"] = summary(enc.ids, to_byte_offsets(enc, texts))
    else:
        rec.update(encoding_fields(enc, texts))
    if tok.truncation is not None:
        overflow = []
        for o in enc.overflowing:
            if long_input:
                overflow.append({"summary": summary(o.ids, to_byte_offsets(o, texts))})
            else:
                overflow.append(encoding_fields(o, texts))
        rec["overflowing"] = overflow
    rec["decode"] = tok.decode(enc.ids, skip_special_tokens=False)
    rec["decode_skip_special"] = tok.decode(enc.ids, skip_special_tokens=True)
    return rec


def batch_record(tok, batch, add_special):
    inputs = [tuple(b) if isinstance(b, list) else b for b in batch]
    encs = tok.encode_batch(inputs, add_special_tokens=add_special)
    out = []
    for b, enc in zip(batch, encs):
        texts = b if isinstance(b, list) else [b]
        out.append(encoding_fields(enc, texts, with_word_ids=False))
    return {"batch": batch, "add_special_tokens": add_special, "encodings": out}


def stream_record(tok, ids, skip):
    stream = DecodeStream(skip_special_tokens=skip)
    chunks = [stream.step(tok, i) for i in ids]
    return {"stream_ids": ids, "skip_special_tokens": skip, "chunks": chunks}


def add_encode_lines(lines, errors, name, tok, inp, flags=(True, False)):
    """Appends the encode lines of one input. The add_special_tokens=false line is left out when
    it would equal the true one except for the flag (tokenizers that add no special tokens).
    Inputs the reference rejects (only_first/only_second truncation of a sequence that is too
    short, or a stride too long for what is left) go to `errors` instead."""
    recs = []
    for add in flags:
        try:
            recs.append(encode_record(tok, inp, add))
        except BaseException as e:  # noqa: B036 (pyo3 panics derive from BaseException)
            if isinstance(e, KeyboardInterrupt):
                raise
            errors.append({"input": inp, "add_special_tokens": add,
                           "error": str(e).splitlines()[0]})
    if len(recs) == 2:
        same = dict(recs[1], add_special_tokens=True) == recs[0]
        lines.extend(recs[:1] if same else recs)
    else:
        lines.extend(recs)


def hf_lines(name, tok, corpus, errors):
    lines = []
    for text in corpus:
        if len(text.encode("utf-8")) > 20000:
            if name in FULL_LONG_LINE_CASES:
                add_encode_lines(lines, errors, name, tok, text, flags=(True,))
                continue
            text = prefix_by_bytes(text, MEDIUM_BYTES)
        add_encode_lines(lines, errors, name, tok, text)
    for pair in PAIRS:
        add_encode_lines(lines, errors, name, tok, pair)
    if tok.padding is not None:
        for batch in BATCHES:
            for add in (True, False):
                try:
                    lines.append(batch_record(tok, batch, add))
                except Exception as e:
                    errors.append({"batch": batch, "add_special_tokens": add,
                                   "error": str(e).splitlines()[0]})
    for text in STREAM_TEXTS:
        try:
            ids = tok.encode(text, add_special_tokens=True).ids
        except Exception:  # rejected by only_second truncation: stream the untruncated ids
            saved = tok.truncation
            tok.no_truncation()
            ids = tok.encode(text, add_special_tokens=True).ids
            tok.enable_truncation(**{k: v for k, v in saved.items()})
        for skip in (False, True):
            lines.append(stream_record(tok, ids, skip))
    return lines


def spm_lines(name, sp, corpus):
    """sentencepiece_model cases: the sentencepiece library is the reference (see MANIFEST.md)."""
    lines = []
    for text in corpus:
        if len(text.encode("utf-8")) > 20000 and name not in FULL_LONG_LINE_CASES:
            text = prefix_by_bytes(text, MEDIUM_BYTES)
        proto = sp.encode(text, return_type="proto")
        ids = [p.id for p in proto.pieces]
        rec = {"input": text, "add_special_tokens": False}
        offsets = [[p.begin, p.end] for p in proto.pieces]
        if len(text.encode("utf-8")) > SUMMARY_THRESHOLD:
            rec["summary"] = summary(ids, offsets)
        else:
            rec["ids"] = ids
            rec["tokens"] = [p.piece for p in proto.pieces]
            rec["offsets"] = offsets
        rec["decode"] = sp.decode(ids)
        lines.append(rec)
    return lines


def generate(case_dir, corpus):
    kind, tok = load_case(case_dir)
    name = case_dir.name
    errors = []
    lines = spm_lines(name, tok, corpus) if kind == "spm" else hf_lines(name, tok, corpus, errors)
    data = "".join(dump(rec) + "\n" for rec in lines)
    (case_dir / "expected.jsonl").write_text(data, encoding="utf-8", newline="\n")
    errors_path = case_dir / "expected_errors.jsonl"
    if errors:
        errors_path.write_text("".join(dump(rec) + "\n" for rec in errors), encoding="utf-8",
                               newline="\n")
    elif errors_path.exists():
        errors_path.unlink()
    print(f"{name}: {len(lines)} lines, {len(errors)} rejected inputs, "
          f"{len(data.encode()) // 1024} KiB", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Coverage check: every component type and option listed in the suite's brief must be exercised.

REQUIRED = {
    "normalizer": ["BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip",
                   "StripAccents", "Replace:String", "Replace:Regex", "Prepend", "Nmt",
                   "Precompiled", "ByteLevel", "Sequence"],
    "pre_tokenizer": ["ByteLevel", "Whitespace", "WhitespaceSplit", "BertPreTokenizer",
                      "Metaspace:first", "Metaspace:always", "Metaspace:never",
                      "Metaspace:split=true", "Metaspace:split=false",
                      "Split:String", "Split:Regex", "Split:Removed", "Split:Isolated",
                      "Split:MergedWithPrevious", "Split:MergedWithNext", "Split:Contiguous",
                      "Split:invert", "Punctuation", "Digits", "UnicodeScripts",
                      "CharDelimiterSplit", "FixedLength", "Sequence"],
    "model": ["BPE", "BPE:unk_token", "BPE:continuing_subword_prefix", "BPE:end_of_word_suffix",
              "BPE:fuse_unk", "BPE:byte_fallback", "BPE:ignore_merges", "BPE:merges_strings",
              "BPE:merges_pairs", "WordPiece", "WordLevel", "Unigram", "Unigram:byte_fallback"],
    "post_processor": ["TemplateProcessing", "TemplateProcessing:pair_type_ids",
                       "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"],
    "decoder": ["ByteLevel", "WordPiece", "Metaspace", "BPEDecoder", "CTC", "Replace", "Fuse",
                "Strip", "ByteFallback", "Sequence"],
    "added_tokens": ["single_word", "lstrip", "rstrip", "normalized=true", "normalized=false",
                     "special=true", "special=false"],
    "truncation": ["direction:Left", "direction:Right", "LongestFirst", "OnlyFirst", "OnlySecond",
                   "stride>0"],
    "padding": ["BatchLongest", "Fixed", "direction:Left", "direction:Right",
                "pad_to_multiple_of"],
    "legacy": ["vocab_txt", "gpt2_vocab_merges", "sentencepiece_model"],
}


def features_of(cfg):
    feats = set()

    def walk(section, node):
        if node is None:
            return
        t = node.get("type")
        feats.add((section, t))
        if section == "normalizer":
            if t == "Sequence":
                for n in node["normalizers"]:
                    walk(section, n)
            if t == "Replace":
                feats.add((section, "Replace:" + next(iter(node["pattern"]))))
        elif section == "pre_tokenizer":
            if t == "Sequence":
                for n in node["pretokenizers"]:
                    walk(section, n)
            if t == "Metaspace":
                feats.add((section, "Metaspace:" + node.get("prepend_scheme", "")))
                feats.add((section, "Metaspace:split=" + str(node.get("split", True)).lower()))
            if t == "Split":
                feats.add((section, "Split:" + next(iter(node["pattern"]))))
                feats.add((section, "Split:" + node["behavior"]))
                if node.get("invert"):
                    feats.add((section, "Split:invert"))
        elif section == "post_processor":
            if t == "Sequence":
                for n in node["processors"]:
                    walk(section, n)
            if t == "TemplateProcessing":
                if any(next(iter(p.values()))["type_id"] != 0 for p in node["pair"]):
                    feats.add((section, "TemplateProcessing:pair_type_ids"))
        elif section == "decoder":
            if t == "Sequence":
                for n in node["decoders"]:
                    walk(section, n)

    walk("normalizer", cfg.get("normalizer"))
    walk("pre_tokenizer", cfg.get("pre_tokenizer"))
    walk("post_processor", cfg.get("post_processor"))
    walk("decoder", cfg.get("decoder"))
    model = cfg["model"]
    feats.add(("model", model["type"]))
    if model["type"] == "BPE":
        for opt in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(opt):
                feats.add(("model", "BPE:" + opt))
        for opt in ("fuse_unk", "byte_fallback", "ignore_merges"):
            if model.get(opt):
                feats.add(("model", "BPE:" + opt))
    if model["type"] == "Unigram" and model.get("byte_fallback"):
        feats.add(("model", "Unigram:byte_fallback"))
    for tok in cfg.get("added_tokens", []):
        for opt in ("single_word", "lstrip", "rstrip"):
            if tok[opt]:
                feats.add(("added_tokens", opt))
        feats.add(("added_tokens", "normalized=" + str(tok["normalized"]).lower()))
        feats.add(("added_tokens", "special=" + str(tok["special"]).lower()))
    trunc = cfg.get("truncation")
    if trunc:
        feats.add(("truncation", "direction:" + trunc.get("direction", "Right")))
        feats.add(("truncation", trunc["strategy"]))
        if trunc["stride"] > 0:
            feats.add(("truncation", "stride>0"))
    pad = cfg.get("padding")
    if pad:
        strategy = pad["strategy"]
        feats.add(("padding", strategy if isinstance(strategy, str) else next(iter(strategy))))
        feats.add(("padding", "direction:" + pad["direction"]))
        if pad.get("pad_to_multiple_of"):
            feats.add(("padding", "pad_to_multiple_of"))
    return feats


def merges_form(path):
    """('BPE:merges_strings'|'BPE:merges_pairs') for a tokenizer.json file, from its raw text."""
    cfg = json.loads(path.read_text(encoding="utf-8"))
    merges = cfg["model"].get("merges") if cfg["model"]["type"] == "BPE" else None
    if not merges:
        return None
    return "BPE:merges_strings" if isinstance(merges[0], str) else "BPE:merges_pairs"


def case_json_path(case_dir):
    if (case_dir / "format.txt").exists():
        return None
    if (case_dir / "tokenizer.json").exists():
        return case_dir / "tokenizer.json"
    return read_source(case_dir)


def coverage(case_dirs):
    covered = {}
    for case_dir in case_dirs:
        feats = set()
        fmt = case_dir / "format.txt"
        if fmt.exists():
            feats.add(("legacy", fmt.read_text().strip()))
        cfg = tokenizer_json(case_dir)
        if cfg is not None:
            feats |= features_of(cfg)
        path = case_json_path(case_dir)
        if path is not None:
            form = merges_form(path)
            if form:
                feats.add(("model", form))
        covered[case_dir.name] = feats
    missing = []
    for section, names in REQUIRED.items():
        for n in names:
            if not any((section, n) in f for f in covered.values()):
                missing.append(f"{section}:{n}")
    return covered, missing


def all_case_dirs():
    return sorted(d for d in CASES.iterdir() if d.is_dir() and not d.name.startswith("dev_"))


def main(argv):
    corpus = corpus_lines()
    dirs = all_case_dirs()
    if argv:
        dirs = [CASES / a for a in argv]
    for d in dirs:
        generate(d, corpus)
    covered, missing = coverage(all_case_dirs())
    with open(FIXTURES / "COVERAGE.txt", "w", encoding="utf-8") as f:
        for name, feats in covered.items():
            f.write(name + ": " + ", ".join(sorted(f"{s}:{n}" for s, n in feats)) + "\n")
    if missing:
        print("error: component types not covered by any case: " + ", ".join(missing),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
