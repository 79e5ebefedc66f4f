#!/usr/bin/env python3
"""Trains the small tokenizers of the conformance suite with the reference library's own trainers
and writes them to tests/fixtures/tokenizers/cases/<case>/ (tokenizer.json or legacy files).

The training text is generated deterministically (multilingual sentences plus the corpus lines,
a few hundred KB) and never committed. Between them the cases exercise every normalizer,
pre-tokenizer, model, post-processor and decoder type of HF tokenizers, with non-default options;
make_fixtures.py checks that coverage.

Reproducibility: the training text is deterministic and trainers run on one thread, but some
trainers break ties in hash-map order (the ids of `##x`/`x</w>` alphabet variants in BPE and
WordPiece with prefixes/suffixes, UnigramTrainer's seed pieces), so their output can differ from
run to run. The committed files are therefore the reference inputs: by default a case that already
exists is kept as it is; --retrain overwrites every case (then regenerate the fixtures).

Usage: train_cases.py [--retrain]
"""
import base64
import io
import json
import os
import pathlib
import sys

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers loads: single-threaded = deterministic
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import sentencepiece as spm  # noqa: E402
from sentencepiece import sentencepiece_model_pb2  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers  # noqa: E402
from tokenizers import pre_tokenizers as pre  # noqa: E402
from tokenizers import processors, trainers  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
CASES = FIXTURES / "cases"
CORPUS = FIXTURES / "corpus.jsonl"


# ----------------------------------------------------------------------------------------------
# Training text


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


WORDS = {
    "en": ("the of and to in is was for that with as on by at from it this be are have not "
           "tokenizer token model text word language training data number value string offset "
           "byte unicode character sentence quick brown fox jumps over lazy dog hello world "
           "running jumped happily unbelievable tokenization international preprocessing "
           "I'm you're he's she'd we'll they've can't won't isn't don't it's").split(),
    "fr": "le la les des une est pour avec être café crème brûlée naïve façade où déjà élève".split(),
    "de": "der die das und ist nicht mit für Straße Überprüfung Größe Mädchen schön über".split(),
    "es": "el la los que con para jalapeño niño año mañana corazón también".split(),
    "el": "και το της είναι Ελλάδα γλώσσα λέξη κόσμος αβγ".split(),
    "ru": "и в не на что это как Москва привет мир язык слово текст ещё".split(),
    "ar": "في من على مرحبا العالم هذا نص عربي كلمة لغة".split(),
    "he": "של את על שלום עולם עברית מילה שפה".split(),
    "hi": "का के में है और नमस्ते दुनिया हिन्दी भाषा शब्द".split(),
    "zh": "的 是 在 我们 你好 世界 中文 分词 北京 测试 语言 文字".split(),
    "ja": "の に は を こんにちは 世界 日本語 テキスト カタカナ ひらがな 漢字".split(),
    "ko": "이 가 은 는 안녕하세요 세계 한국어 텍스트 언어 단어".split(),
    "code": ("def return if else for while int main std::vector self.x {} () [] == != += "
             "-> => :: #include import from class struct const auto").split(),
    "sym": "😀 👍 👍🏽 ❤️ 🇫🇷 ... !!! ?! -- (a) [b] {c} 1,000 3.14 42 2024 100% $5 €9".split(),
}


def training_lines():
    gen = lcg(7)
    langs = sorted(WORDS)
    lines = []
    for _ in range(6000):
        lang = langs[next(gen) % len(langs)]
        words = WORDS[lang]
        n = 4 + next(gen) % 12
        sent = []
        for _ in range(n):
            w = words[next(gen) % len(words)]
            r = next(gen) % 20
            if r == 0:
                w = w.upper()
            elif r == 1:
                w = w.capitalize()
            elif r == 2:
                w += ","
            sent.append(w)
        sep = "" if lang in ("zh", "ja") else " "
        lines.append(sep.join(sent) + (". " if next(gen) % 3 else "! "))
    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    corpus = [t for t in corpus if len(t) < 4096]
    lines += corpus * 3
    return lines


# ----------------------------------------------------------------------------------------------
# Helpers


def common_chars_only(lines, keep):
    """The lines with every character outside the `keep` most frequent ones removed (ties broken
    by code point). Replaces the trainers' limit_alphabet, whose tie-breaking follows hash order
    and so changes from run to run."""
    counts = {}
    for line in lines:
        for c in line:
            counts[c] = counts.get(c, 0) + 1
    kept = set(sorted(counts, key=lambda c: (-counts[c], c))[:keep])
    return ["".join(c for c in line if c in kept) for line in lines]


RETRAIN = "--retrain" in sys.argv[1:]


def case_exists(name):
    d = CASES / name
    return any((d / f).exists() for f in ("tokenizer.json", "spm.model", "vocab.json"))


def write_case(name, tok, merges_as_strings=False, edit=None):
    """Saves a tokenizer as cases/<name>/tokenizer.json, optionally rewriting its JSON."""
    cfg = json.loads(tok.to_str())
    if merges_as_strings:
        cfg["model"]["merges"] = [" ".join(m) for m in cfg["model"]["merges"]]
    if edit:
        edit(cfg)
    text = json.dumps(cfg, ensure_ascii=False, indent=1) + "\n"
    Tokenizer.from_str(text)  # must load back
    d = CASES / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "tokenizer.json").write_text(text, encoding="utf-8", newline="\n")
    print(f"{name}: {len(text.encode()) // 1024} KiB", file=sys.stderr)


BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def add_byte_tokens_bpe(cfg):
    vocab = cfg["model"]["vocab"]
    next_id = max(list(vocab.values()) + [t["id"] for t in cfg["added_tokens"]]) + 1
    for t in BYTE_TOKENS:
        if t not in vocab:
            vocab[t] = next_id
            next_id += 1


def train(tok, trainer, lines):
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


# ----------------------------------------------------------------------------------------------
# Cases


def bpe_bytelevel(lines):
    """GPT-2 style byte-level BPE; also written as legacy vocab.json + merges.txt."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    train(tok, trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False,
                                   special_tokens=["<|endoftext|>"],
                                   initial_alphabet=pre.ByteLevel.alphabet()), lines)
    tok.add_tokens([AddedToken("<|im_start|>", special=True, normalized=False),
                    AddedToken("<|im_end|>", special=True, normalized=False)])
    write_case("bpe_bytelevel", tok)
    legacy = CASES / "bpe_bytelevel_vocab_merges"
    legacy.mkdir(parents=True, exist_ok=True)
    tok.model.save(str(legacy))
    (legacy / "format.txt").write_text("gpt2_vocab_merges\n")
    return tok


def bpe_roberta(lines):
    """RoBERTa style: prefix space, merges as "a b" strings, <mask> lstrip, truncation+padding."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre.ByteLevel(add_prefix_space=True, trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    train(tok, trainers.BpeTrainer(vocab_size=900, show_progress=False,
                                   special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                   initial_alphabet=pre.ByteLevel.alphabet()), lines)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
        trim_offsets=True, add_prefix_space=True)
    tok.enable_truncation(max_length=24, stride=4, strategy="longest_first", direction="left")
    tok.enable_padding(direction="left", pad_id=tok.token_to_id("<pad>"), pad_token="<pad>")
    write_case("bpe_roberta", tok, merges_as_strings=True)


def bpe_subword(lines):
    """Classic BPE with unk, ## continuing prefix, </w> suffix and fuse_unk."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##",
                               end_of_word_suffix="</w>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre.Sequence([pre.WhitespaceSplit(), pre.Punctuation(behavior="contiguous"),
                                      pre.Digits(individual_digits=True)])
    tok.decoder = decoders.Sequence([decoders.Replace("##", ""),
                                     decoders.BPEDecoder(suffix="</w>")])
    train(tok, trainers.BpeTrainer(vocab_size=900, show_progress=False,
                                   continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                   special_tokens=["<unk>", "<s>", "</s>"]),
          common_chars_only(lines, 150))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.add_tokens([AddedToken("hello world", single_word=True, normalized=True, special=False)])
    write_case("bpe_subword", tok, merges_as_strings=True)


def bpe_byte_fallback_llama2(lines):
    """Llama-2 style: Prepend/Replace normalizer, no pre-tokenizer, byte_fallback BPE."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    # No pre-tokenizer: train on the whole (short) lines.
    train(tok, trainers.BpeTrainer(vocab_size=800, show_progress=False,
                                   special_tokens=["<unk>", "<s>", "</s>"]),
          common_chars_only(lines, 120))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1",
        special_tokens=[("<s>", tok.token_to_id("<s>"))])
    write_case("bpe_byte_fallback", tok, edit=add_byte_tokens_bpe)


def bpe_metaspace_first(lines):
    """Newer Llama/Mistral style: Metaspace(prepend_scheme=first, split=false) + byte_fallback."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(
        replacement="▁", prepend_scheme="first", split=False)])
    train(tok, trainers.BpeTrainer(vocab_size=800, show_progress=False,
                                   special_tokens=["<unk>", "<s>", "</s>"]),
          common_chars_only(lines, 120))
    tok.add_tokens([AddedToken("[INST]", special=False, normalized=False, rstrip=True),
                    AddedToken("[/INST]", special=False, normalized=False, lstrip=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B:1",
        special_tokens=[("<s>", tok.token_to_id("<s>"))])
    write_case("bpe_metaspace_first", tok, edit=add_byte_tokens_bpe)


def bpe_llama3(lines):
    """Llama-3 style: Split(regex, Isolated) + ByteLevel(use_regex=false), ignore_merges,
    post-processor Sequence[ByteLevel, TemplateProcessing]."""
    pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
               r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre.Sequence([
        pre.Split(Regex(pattern), behavior="isolated", invert=False),
        pre.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    train(tok, trainers.BpeTrainer(vocab_size=1000, show_progress=False,
                                   special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                   initial_alphabet=pre.ByteLevel.alphabet()), lines)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    write_case("bpe_llama3", tok)


def bpe_bytelevel_normalizer(lines):
    """ByteLevel normalizer + FixedLength pre-tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.ByteLevel()
    tok.pre_tokenizer = pre.FixedLength(length=6)
    tok.decoder = decoders.ByteLevel()
    train(tok, trainers.BpeTrainer(vocab_size=700, show_progress=False,
                                   initial_alphabet=pre.ByteLevel.alphabet()), lines)
    write_case("bpe_bytelevel_normalizer", tok)


def split_behaviors(lines):
    """Split with every behavior, String and Regex patterns, invert; CharDelimiterSplit."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Strip(left=False, right=True)
    tok.pre_tokenizer = pre.Sequence([
        pre.CharDelimiterSplit("|"),
        pre.Split(" ", behavior="removed"),
        pre.Split(Regex(r"\d+"), behavior="merged_with_previous"),
        pre.Split(Regex(r"[.,;:]"), behavior="merged_with_next"),
        pre.Split("-", behavior="contiguous"),
        pre.Split(Regex(r"\p{L}+"), behavior="isolated", invert=True),
    ])
    tok.decoder = decoders.Fuse()
    train(tok, trainers.BpeTrainer(vocab_size=700, show_progress=False,
                                   special_tokens=["[UNK]", "[CLS]", "[SEP]"]),
          common_chars_only(lines, 150))
    write_case("split_behaviors", tok)


def unigram_metaspace(lines):
    """Unigram via UnigramTrainer; Nmt + NFKC + Replace(Regex); Metaspace(never, split=true)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.NFKC(),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    train(tok, trainers.UnigramTrainer(vocab_size=900, show_progress=False, unk_token="<unk>",
                                       special_tokens=["<pad>", "</s>", "<unk>"],
                                       max_piece_length=12), lines)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B:1 </s>:1",
        special_tokens=[("</s>", tok.token_to_id("</s>"))])
    tok.add_special_tokens([AddedToken("<extra_id_0>", special=True, normalized=False,
                                       lstrip=True, rstrip=True)])
    tok.enable_padding(pad_to_multiple_of=8, pad_id=tok.token_to_id("<pad>"), pad_token="<pad>",
                       direction="right")
    write_case("unigram_metaspace", tok)


def wordpiece_custom(lines):
    """WordPiece with a Sequence normalizer, Whitespace + Digits, BertProcessing, OnlySecond
    truncation with stride and Fixed left padding with pad_to_multiple_of."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=30))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
        normalizers.Strip(left=True, right=True)])
    tok.pre_tokenizer = pre.Sequence([pre.Whitespace(), pre.Digits(individual_digits=False)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    train(tok, trainers.WordPieceTrainer(vocab_size=1000, show_progress=False,
                                         special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                         "[MASK]"]),
          common_chars_only(lines, 200))
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    tok.add_tokens([AddedToken("tokenizer", single_word=True, special=False, normalized=True)])
    tok.enable_truncation(max_length=20, stride=2, strategy="only_second", direction="right")
    tok.enable_padding(length=22, pad_to_multiple_of=8, direction="left",
                       pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]", pad_type_id=1)
    write_case("wordpiece_custom", tok)


def wordpiece_bert_options(lines):
    """BertNormalizer with non-default options (no lowercase, strip accents, no CJK split)."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="@@"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                                strip_accents=True, lowercase=False)
    tok.pre_tokenizer = pre.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="@@", cleanup=True)
    train(tok, trainers.WordPieceTrainer(vocab_size=1000, show_progress=False,
                                         continuing_subword_prefix="@@",
                                         special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                         "[MASK]"]),
          common_chars_only(lines, 200))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=False, normalized=False)])
    write_case("wordpiece_bert_options", tok)


def wordlevel_scripts(lines):
    """WordLevel; NFKD + Lowercase; WhitespaceSplit + UnicodeScripts; OnlyFirst left truncation."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre.Sequence([pre.WhitespaceSplit(), pre.UnicodeScripts()])
    train(tok, trainers.WordLevelTrainer(vocab_size=1500, show_progress=False,
                                         special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]),
          lines)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $0 [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.enable_truncation(max_length=16, stride=3, strategy="only_first", direction="left")
    tok.enable_padding(pad_to_multiple_of=4, pad_id=0, pad_token="[PAD]")
    write_case("wordlevel_scripts", tok)


def wordlevel_ctc(lines):
    """Character WordLevel vocabulary with the CTC decoder (wav2vec2 style)."""
    chars = sorted({c for line in lines for c in line.lower() if c.isalpha() and ord(c) < 0x250})
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" ", "|")])
    tok.pre_tokenizer = pre.FixedLength(length=1)
    tok.decoder = decoders.CTC(pad_token="<pad>", word_delimiter_token="|", cleanup=True)
    tok.add_special_tokens(["<pad>", "<unk>"])
    write_case("wordlevel_ctc", tok)


# ----------------------------------------------------------------------------------------------
# SentencePiece models: legacy .model cases (reference: sentencepiece) and an HF conversion of
# the Unigram one with its Precompiled normalizer (reference: tokenizers).


def train_spm(lines, model_type, vocab_size, normalization, byte_fallback):
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, model_type=model_type,
        vocab_size=vocab_size, normalization_rule_name=normalization, byte_fallback=byte_fallback,
        character_coverage=0.995, num_threads=1, shuffle_input_sentence=False,
        input_sentence_size=0, minloglevel=2, max_sentencepiece_length=12,
        user_defined_symbols=["<sep>"])
    return out.getvalue()


def write_spm_case(name, data):
    d = CASES / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "spm.model").write_bytes(data)
    (d / "format.txt").write_text("sentencepiece_model\n")
    print(f"{name}: {len(data) // 1024} KiB", file=sys.stderr)


def spm_cases(lines):
    uni = train_spm(lines, "unigram", 1500, "nmt_nfkc", True)
    write_spm_case("spm_unigram_model", uni)
    write_spm_case("spm_bpe_model", train_spm(lines, "bpe", 1000, "identity", False))

    # HF conversion of the Unigram model, written by hand the way converters do it for
    # Llama-like models: Precompiled charsmap, Metaspace(always), byte-fallback decoding.
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(uni)
    vocab = [(p.piece, p.score) for p in proto.pieces]
    tok = Tokenizer(models.Unigram(vocab, proto.trainer_spec.unk_id, True))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    special = [p.piece for p in proto.pieces if p.type in (2, 3, 4)]  # unknown, control, user
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    write_case("unigram_precompiled", tok)


BUILDERS = [
    (bpe_bytelevel, ["bpe_bytelevel", "bpe_bytelevel_vocab_merges"]),
    (bpe_roberta, ["bpe_roberta"]),
    (bpe_subword, ["bpe_subword"]),
    (bpe_byte_fallback_llama2, ["bpe_byte_fallback"]),
    (bpe_metaspace_first, ["bpe_metaspace_first"]),
    (bpe_llama3, ["bpe_llama3"]),
    (bpe_bytelevel_normalizer, ["bpe_bytelevel_normalizer"]),
    (split_behaviors, ["split_behaviors"]),
    (unigram_metaspace, ["unigram_metaspace"]),
    (wordpiece_custom, ["wordpiece_custom"]),
    (wordpiece_bert_options, ["wordpiece_bert_options"]),
    (wordlevel_scripts, ["wordlevel_scripts"]),
    (wordlevel_ctc, ["wordlevel_ctc"]),
    (spm_cases, ["spm_unigram_model", "spm_bpe_model", "unigram_precompiled"]),
]


def main():
    lines = training_lines()
    print(f"training text: {len(lines)} lines, "
          f"{sum(len(t.encode()) for t in lines) // 1024} KiB", file=sys.stderr)
    for build, names in BUILDERS:
        if not RETRAIN and all(case_exists(n) for n in names):
            print(f"{', '.join(names)}: kept (use --retrain to overwrite)", file=sys.stderr)
            continue
        build(lines)


if __name__ == "__main__":
    main()
