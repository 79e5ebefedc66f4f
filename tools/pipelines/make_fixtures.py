#!/usr/bin/env python3
"""Writes tests/fixtures/pipelines/: tiny random task-head models and transformers.pipeline's
outputs on them.

Reference: transformers (pinned in tools/requirements.txt), CPU, F32, eager attention,
torch.set_num_threads(1). Each model folder (config.json with id2label / problem_type,
model.safetensors, tokenizer.json, tokenizer_config.json) is written, reloaded by
transformers.pipeline from disk, and run on the committed corpus (corpus.json beside the
outputs). expected.json holds every pipeline call and its output.

The tokenizers are small vocabularies counted from the corpus (deterministic, no trainer): a cased
WordPiece (BERT), a lowercasing accent-stripping WordPiece (DistilBERT, ELECTRA), a byte-level BPE
made of the byte alphabet plus merges of frequent pairs (RoBERTa), a SentencePiece-style Unigram
with log-frequency scores (DeBERTa-v3) and a lowercasing Unigram of the corpus' characters, words
and word endings scored by log frequency (ALBERT). Some characters are kept out of the
WordPiece vocabularies so that [UNK] and its offsets are exercised. Before any output is recorded,
the script checks that the pipeline's tokenizer (which transformers 5 may rebuild from
tokenizer_config.json) gives exactly the ids and offsets of tokenizer.json read by the tokenizers
library, which is what Ember reads.

DeBERTa-v2 also gets deberta_hidden/ (a bare DebertaV2Model and its last hidden states on a batch
longer than position_buckets, reference.safetensors) and deberta_buckets.json
(make_log_bucket_position over every distance for a few bucket settings).

Usage: make_fixtures.py   (rewrites the whole folder; deterministic)
"""
import collections
import json
import pathlib
import shutil
import sys

import numpy as np
import safetensors.torch
import tokenizers
import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "pipelines"
sys.path.insert(0, str(ROOT / "tools" / "models"))
# The model fixtures' weight scales and counted vocabularies.
from make_fixtures import (WORDPIECE_SPECIALS, by_count, count_words,  # noqa: E402
                           counted_wordpiece, init_weights)

# Scores closer than this within one output (or a winning label closer than this to the runner-up)
# would let F32 rounding differences reorder labels; the script fails instead of recording them.
MIN_GAP = 1e-4

SEED_TRIES = 16


class NearTie(Exception):
    pass


BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# DeBERTa-v3's ids: [PAD] [CLS] [SEP] [UNK] first, [MASK] after the pieces.
DEBERTA_SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
ALBERT_SPECIALS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
# Kept out of the WordPiece vocabularies: they become [UNK] (whose word is the input text).
UNKNOWN_CHARS = set("🎉Ω")


def corpus():
    return json.loads((OUT / "corpus.json").read_text())


def all_texts(c):
    texts = list(c["texts"]) + list(c["zero_shot"]["sequences"])
    texts += [t.replace("{mask}", " ") for t in c["fill_mask"]]
    texts += [t.format("x") for t in c["zero_shot"]["templates"]]
    texts += c["zero_shot"]["labels"]
    return texts


def wordpiece_tokenizer(folder, texts, lowercase):
    normalizer = tokenizers.normalizers.BertNormalizer(
        lowercase=lowercase, strip_accents=lowercase, handle_chinese_chars=True)
    tok = counted_wordpiece(texts, normalizer, words_kept=60, endings_kept=40, longest_ending=4,
                            unknown_chars=UNKNOWN_CHARS)
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase,
              "strip_accents": lowercase, "tokenize_chinese_chars": True,
              "model_max_length": 64, "clean_up_tokenization_spaces": True,
              "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
              "cls_token": "[CLS]", "mask_token": "[MASK]"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return tok


def bpe_tokenizer(folder, texts):
    """Byte-level BPE: the 256 byte symbols, then greedy merges of the most frequent pair."""
    pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = sorted(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    words = count_words(texts, pre_tokenizer)
    split = {w: list(w) for w in words}
    merges = []
    for _ in range(90):
        pairs = collections.Counter()
        for w, n in words.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w in words:
            s, out, i = split[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            split[w] = out
    vocab = BPE_SPECIALS + alphabet + [a + b for a, b in merges]
    vocab = list(dict.fromkeys(vocab))
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(
        {t: i for i, t in enumerate(vocab)}, merges))
    tok.add_special_tokens(BPE_SPECIALS)
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.post_processor = tokenizers.processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "RobertaTokenizer", "add_prefix_space": False,
              "model_max_length": 64, "clean_up_tokenization_spaces": False,
              "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
              "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return tok


def save_unigram(folder, vocab, specials, normalizer, pre_tokenizer, config):
    """A SentencePiece-style Unigram tokenizer over `vocab` ((piece, score) pairs, the specials
    among them) with a Metaspace decoder and [CLS] A [SEP] (B [SEP]) templates, saved with its
    tokenizer_config.json (`config` plus the [CLS] and [MASK] tokens); the unknown piece is
    `config["unk_token"]`."""
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    tok = tokenizers.Tokenizer(tokenizers.models.Unigram(
        vocab, unk_id=ids[config["unk_token"]], byte_fallback=False))
    tok.add_special_tokens(specials)
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = tokenizers.decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok.save(str(folder / "tokenizer.json"))
    config = dict(config, cls_token="[CLS]", mask_token="[MASK]")
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return tok


def deberta_unigram_tokenizer(folder, texts, punctuated_words=True):
    """DeBERTa-v3's SentencePiece Unigram, laid out as transformers' DebertaV2Tokenizer builds it
    (whitespace-run normalizer, NFC, right strip; Metaspace always prepending). Pieces: the
    characters, the frequent words and 2-4 character prefixes and suffixes of words, each scored
    log(count / total) minus a small rank term, so that no two segmentations tie. Without
    `punctuated_words`, no whole word that ends in punctuation is a piece (a one-word context
    such as "Nobody." is then more than one token)."""
    normalizer = tokenizers.normalizers.Sequence([
        tokenizers.normalizers.Replace(tokenizers.Regex(r"\s{2,}|[\n\r\t]"), " "),
        tokenizers.normalizers.NFC(),
        tokenizers.normalizers.Strip(left=False, right=True)])
    pre_tokenizer = tokenizers.pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    words = count_words(texts, pre_tokenizer, normalizer)
    counts = collections.Counter()
    for w, n in words.items():
        for c in w:
            counts[c] += n
    chars = sorted(set(counts) - UNKNOWN_CHARS)
    pieces = collections.Counter()
    for w, n in words.items():
        for k in range(2, min(len(w), 5)):
            pieces[w[:k]] += n
            pieces[w[-k:]] += n
    known = [w for w in by_count(words) if len(w) > 2 and not set(w) & UNKNOWN_CHARS
             and (punctuated_words or w[-1].isalnum())][:60]
    counts.update({w: words[w] for w in known})
    affixes = [p for p in by_count(pieces) if p not in known and len(p) > 1
               and not set(p) & UNKNOWN_CHARS][:60]
    counts.update({p: pieces[p] for p in affixes})
    total = sum(counts[p] for p in chars + known + affixes)
    vocab = [(t, 0.0) for t in DEBERTA_SPECIALS]
    for rank, piece in enumerate(chars + known + affixes):
        vocab.append((piece, float(np.log(counts[piece] / total)) - 1e-3 * rank))
    vocab.append(("[MASK]", 0.0))
    return save_unigram(
        folder, vocab, DEBERTA_SPECIALS + ["[MASK]"], normalizer,
        tokenizers.pre_tokenizers.Sequence([pre_tokenizer]),
        {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False,
         "split_by_punct": False, "add_prefix_space": True, "vocab_type": "spm",
         "model_max_length": 64, "bos_token": "[CLS]", "eos_token": "[SEP]",
         "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]"})


def albert_unigram_tokenizer(folder, texts):
    """SentencePiece-style Unigram as AlbertTokenizer builds it (lowercasing, accent-stripping,
    Metaspace). Pieces: the corpus' characters, its frequent words and word endings, scored by
    log frequency; the UNKNOWN_CHARS are left out and become <unk>."""
    normalizer = tokenizers.normalizers.Sequence([
        tokenizers.normalizers.Replace("``", '"'), tokenizers.normalizers.Replace("''", '"'),
        tokenizers.normalizers.NFKD(), tokenizers.normalizers.StripAccents(),
        tokenizers.normalizers.Lowercase()])
    pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
        tokenizers.pre_tokenizers.WhitespaceSplit(),
        tokenizers.pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")])
    words = count_words(texts, pre_tokenizer, normalizer)
    chars = collections.Counter()
    pieces = collections.Counter()
    for w, n in words.items():
        for c in w:
            chars[c] += n
        for k in range(2, min(len(w), 5)):
            pieces[w[-k:]] += n
    counts = {c: n for c, n in chars.items() if c not in UNKNOWN_CHARS}
    for w in [w for w in by_count(words) if len(w) > 2 and not set(w) & UNKNOWN_CHARS][:60]:
        counts[w] = words[w]
    for p in [p for p in by_count(pieces) if p not in counts and not set(p) & UNKNOWN_CHARS][:40]:
        counts[p] = pieces[p]
    total = sum(counts.values())
    vocab = [(t, 0.0) for t in ALBERT_SPECIALS]
    vocab += [(t, float(np.log(counts[t] / total))) for t in sorted(counts)]
    return save_unigram(
        folder, vocab, ALBERT_SPECIALS, normalizer, pre_tokenizer,
        {"tokenizer_class": "AlbertTokenizer", "do_lower_case": True,
         "keep_accents": False, "model_max_length": 64,
         "clean_up_tokenization_spaces": True, "bos_token": "[CLS]", "eos_token": "[SEP]",
         "unk_token": "<unk>", "sep_token": "[SEP]", "pad_token": "<pad>"})


def deberta_config(vocab, **overrides):
    """A tiny DeBERTa-v3-shaped config: relative attention with c2p and p2c over 8 log buckets
    (distances above 4 are bucketed), no absolute positions, no token types."""
    settings = dict(vocab_size=vocab, hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
                    intermediate_size=48, max_position_embeddings=64, pad_token_id=0,
                    relative_attention=True, pos_att_type="p2c|c2p", position_buckets=8,
                    max_relative_positions=64, share_att_key=True, norm_rel_ebd="layer_norm",
                    position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7)
    settings.update(overrides)
    return transformers.DebertaV2Config(**settings)


ARCHS = {
    "bert": dict(
        tokenizer=lambda folder, texts: wordpiece_tokenizer(folder, texts, lowercase=False),
        config=lambda vocab: transformers.BertConfig(
            vocab_size=vocab, hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
            intermediate_size=48, max_position_embeddings=64, pad_token_id=0),
        classes={"seq": transformers.BertForSequenceClassification,
                 "tok": transformers.BertForTokenClassification,
                 "mlm": transformers.BertForMaskedLM}),
    "roberta": dict(
        tokenizer=bpe_tokenizer,
        config=lambda vocab: transformers.RobertaConfig(
            vocab_size=vocab, hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
            intermediate_size=48, max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
            eos_token_id=2, type_vocab_size=1),
        classes={"seq": transformers.RobertaForSequenceClassification,
                 "tok": transformers.RobertaForTokenClassification,
                 "mlm": transformers.RobertaForMaskedLM}),
    "distilbert": dict(
        tokenizer=lambda folder, texts: wordpiece_tokenizer(folder, texts, lowercase=True),
        config=lambda vocab: transformers.DistilBertConfig(
            vocab_size=vocab, dim=32, n_heads=4, n_layers=2, hidden_dim=48,
            max_position_embeddings=64, pad_token_id=0),
        classes={"seq": transformers.DistilBertForSequenceClassification,
                 "tok": transformers.DistilBertForTokenClassification,
                 "mlm": transformers.DistilBertForMaskedLM}),
    "deberta": dict(
        tokenizer=deberta_unigram_tokenizer,
        config=deberta_config,
        seed=7000,  # its own seeds, whatever the order of the architectures
        classes={"seq": transformers.DebertaV2ForSequenceClassification,
                 "tok": transformers.DebertaV2ForTokenClassification,
                 "mlm": transformers.DebertaV2ForMaskedLM}),
    # Embeddings narrower than the layers; 3 layer steps over 2 groups (groups do not divide the
    # steps: steps 0 and 1 run group 0, as transformers rounds). More steps through shared
    # weights make random models' tokens collapse to one NER label.
    "albert": dict(
        tokenizer=albert_unigram_tokenizer, seed=5000,
        config=lambda vocab: transformers.AlbertConfig(
            vocab_size=vocab, embedding_size=16, hidden_size=32, num_attention_heads=4,
            num_hidden_layers=3, num_hidden_groups=2, inner_group_num=1, intermediate_size=48,
            max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=3),
        classes={"seq": transformers.AlbertForSequenceClassification,
                 "tok": transformers.AlbertForTokenClassification,
                 "mlm": transformers.AlbertForMaskedLM}),
    # embedding_size != hidden_size, so embeddings_project is used.
    "electra": dict(
        tokenizer=lambda folder, texts: wordpiece_tokenizer(folder, texts, lowercase=True),
        seed=6000,
        config=lambda vocab: transformers.ElectraConfig(
            vocab_size=vocab, embedding_size=24, hidden_size=32, num_attention_heads=4,
            num_hidden_layers=2, intermediate_size=48, max_position_embeddings=64,
            pad_token_id=0),
        classes={"seq": transformers.ElectraForSequenceClassification,
                 "tok": transformers.ElectraForTokenClassification,
                 "mlm": transformers.ElectraForMaskedLM}),
}

# Per architecture: the label sets and problem types of its heads (varied on purpose).
HEADS = {
    "bert": {
        "seq": dict(labels=["negative", "neutral", "positive"]),
        "tok": dict(labels=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC",
                            "I-MISC"]),
        "nli": dict(labels=["contradiction", "neutral", "entailment"]),
    },
    "roberta": {
        "seq": dict(labels=["joy", "anger", "fear", "surprise", "sadness"],
                    problem_type="multi_label_classification"),
        "tok": dict(labels=["B-LOC", "I-LOC", "O", "B-PER", "I-PER"]),
        # Entailment first: multi-label mode then pairs it with the last column.
        "nli": dict(labels=["ENTAILMENT", "Neutral", "CONTRADICTION"]),
    },
    "distilbert": {
        "seq": dict(labels=["LABEL_0"]),  # one label: sigmoid by default
        "tok": dict(labels=["O", "PER", "LOC"]),
        "nli": dict(labels=["neutral", "entailment", "contradiction"]),
    },
    # DeBERTa's config options vary by head: the v3 layout (seq); separate position projections,
    # c2p only, unbucketed distances clamped at 6, absolute positions and token types (tok); the
    # lm_predictions masked-LM layout (mlm); the convolution beside the first layer, p2c only,
    # token types and a two-label NLI head as zero-shot DeBERTa-v3 checkpoints have (nli).
    "deberta": {
        "seq": dict(labels=["anger", "joy", "optimism", "sadness"]),
        "tok": dict(labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
                    config=dict(share_att_key=False, pos_att_type="c2p", position_buckets=-1,
                                max_relative_positions=6, norm_rel_ebd="none",
                                position_biased_input=True, type_vocab_size=2)),
        "mlm": dict(config=dict(legacy=False)),
        "nli": dict(labels=["not_entailment", "entailment"],
                    config=dict(conv_kernel_size=3, conv_act="gelu", pos_att_type=["p2c"],
                                type_vocab_size=2, pooler_hidden_act="tanh")),
    },
    "albert": {
        "seq": dict(labels=["sad", "happy"]),
        "tok": dict(labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]),
        "nli": dict(labels=["contradiction", "entailment", "neutral"]),
    },
    "electra": {
        "seq": dict(labels=["toxic", "obscene", "insult", "threat"],
                    problem_type="multi_label_classification"),
        "tok": dict(labels=["O", "B-MISC", "I-MISC", "B-PER", "I-PER"]),
        # Two-way NLI (as RTE/QNLI models): "not_entailment" does not start with "entail".
        "nli": dict(labels=["not_entailment", "entailment"]),
    },
}


def check_tokenization(name, pipe, tok, texts, pairs):
    fast = pipe.tokenizer
    for text in texts:
        ref = tok.encode(text)
        got = fast(text, return_offsets_mapping=True)
        if got["input_ids"] != ref.ids or [tuple(o) for o in got["offset_mapping"]] != ref.offsets:
            raise RuntimeError(f"{name}: transformers' tokenizer differs from tokenizer.json on "
                               f"{text!r}: {got['input_ids']} vs {ref.ids}")
    for a, b in pairs:
        if fast(a, b)["input_ids"] != tok.encode(a, b).ids:
            raise RuntimeError(f"{name}: pair tokenization differs on {a!r} / {b!r}")


def check_gaps(name, scores):
    s = sorted(scores, reverse=True)
    for x, y in zip(s, s[1:]):
        if x - y < MIN_GAP:
            raise NearTie(f"{name}: scores {x} and {y} are closer than {MIN_GAP}")


def plain(value):
    """Pipeline output -> JSON (numpy scalars to Python)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def token_scores(pipe, text):
    """Per-token softmax of the token-classification logits, for the gap check."""
    enc = pipe.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = pipe.model(**enc).logits[0]
    return torch.softmax(logits, -1).tolist()


def make_model(arch, head, seed, vocab_size, folder):
    spec = ARCHS[arch]
    config = spec["config"](vocab_size, **HEADS[arch].get(head, {}).get("config", {}))
    labels = HEADS[arch].get(head, {}).get("labels")
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {l: i for i, l in enumerate(labels)}
        config.num_labels = len(labels)
    problem = HEADS[arch].get(head, {}).get("problem_type")
    if problem:
        config.problem_type = problem
    cls = spec["classes"]["seq" if head == "nli" else head]
    torch.manual_seed(seed)
    model = cls(config).eval()
    init_weights(model, seed)
    model.save_pretrained(folder)


def run_case(c, texts, arch, head, name, folder, tok, seed):
    calls = []
    make_model(arch, head, seed, tok.get_vocab_size(), folder)
    task = {"seq": "text-classification", "tok": "token-classification",
            "mlm": "fill-mask", "nli": "zero-shot-classification"}[head]
    pipe = transformers.pipeline(task, model=str(folder), device="cpu",
                                 model_kwargs={"attn_implementation": "eager"})
    mask = pipe.tokenizer.mask_token
    check_tokenization(name, pipe, tok, texts,
                       [(s, t.format(l)) for s in c["zero_shot"]["sequences"]
                        for t in c["zero_shot"]["templates"] for l in c["zero_shot"]["labels"]])

    def record(options, inputs, output):
        calls.append({"model": name, "options": options, "inputs": inputs,
                      "output": plain(output)})

    if head == "seq":
        for options in [{"top_k": 1}, {"top_k": None}, {"top_k": 2},
                        {"top_k": None, "function_to_apply": "sigmoid"},
                        {"top_k": None, "function_to_apply": "softmax"},
                        {"top_k": None, "function_to_apply": "none"}]:
            out = pipe(c["texts"], **options)
            for row in out:
                check_gaps(name, [d["score"] for d in row])
            record(options, c["texts"], out)
    elif head == "tok":
        for text in c["texts"]:
            for scores in token_scores(pipe, text):
                s = sorted(scores, reverse=True)
                if s[0] - s[1] < MIN_GAP:
                    raise NearTie(f"{name}: near tie in {text!r}")
        for aggregation in ["none", "simple", "first", "average", "max"]:
            options = {"aggregation_strategy": aggregation}
            record(options, c["texts"], pipe(c["texts"], **options))
    elif head == "mlm":
        inputs = [t.replace("{mask}", mask) for t in c["fill_mask"]]
        for options in [{}, {"top_k": 3}]:
            out = [pipe(t, **options) for t in inputs]
            for row in out:
                rows = row if isinstance(row[0], list) else [row]
                for r in rows:
                    check_gaps(name, [d["score"] for d in r])
            record(options, inputs, out)
    else:
        zs = c["zero_shot"]
        for template in zs["templates"]:
            for multi in [False, True]:
                for labels in [zs["labels"], zs["labels"][:1]]:
                    options = {"candidate_labels": labels, "hypothesis_template": template,
                               "multi_label": multi}
                    out = pipe(zs["sequences"], **options)
                    for row in out:
                        check_gaps(name, row["scores"])
                    record(options, zs["sequences"], out)
    return calls


def deberta_hidden_case(seed=7900):
    """A bare DebertaV2Model whose batch (40 and 19 tokens, right padded) is longer than its 8
    position buckets, with every optional part on: separate position projections, the
    convolution, embed_proj (embedding_size 24 != hidden 32) and the normalized relative table."""
    folder = OUT / "deberta_hidden"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    config = deberta_config(100, share_att_key=False, max_relative_positions=32,
                            conv_kernel_size=3, conv_act="tanh", embedding_size=24)
    torch.manual_seed(seed)
    model = transformers.DebertaV2Model(config).eval()
    init_weights(model, seed)
    model.save_pretrained(folder)
    model = transformers.DebertaV2Model.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager").eval()
    rng = np.random.default_rng(seed)
    lengths = [40, 19]
    ids = torch.zeros((2, 40), dtype=torch.int64)
    mask = torch.zeros((2, 40), dtype=torch.int64)
    for r, n in enumerate(lengths):
        ids[r, :n] = torch.from_numpy(rng.integers(1, 100, size=n))
        mask[r, :n] = 1
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    hidden = hidden * mask.unsqueeze(-1)
    safetensors.torch.save_file({"input_ids": ids, "attention_mask": mask,
                                 "last_hidden_state": hidden.contiguous()},
                                folder / "reference.safetensors")
    settings = [(8, 32), (8, 64), (256, 512)]
    distances = torch.arange(-1100, 1101)
    buckets = {"distances": [int(distances[0]), int(distances[-1])], "cases": [
        {"position_buckets": b, "max_relative_positions": m,
         "buckets": [int(v) for v in transformers.models.deberta_v2.modeling_deberta_v2
                     .make_log_bucket_position(distances, b, m).long()]}
        for b, m in settings]}
    (OUT / "deberta_buckets.json").write_text(json.dumps(buckets, separators=(",", ":")) + "\n")
    print("deberta_hidden: ok")


def main():
    torch.set_num_threads(1)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    c = corpus()
    texts = all_texts(c)
    calls = []
    for arch_index, arch in enumerate(ARCHS):
        for head_index, head in enumerate(["seq", "tok", "mlm", "nli"]):
            name = f"{arch}_{head}"
            folder = OUT / name
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            tok = ARCHS[arch]["tokenizer"](folder, texts)
            # Architectures added later name their own seed base, so that their fixtures do not
            # depend on where they sit in ARCHS.
            base = ARCHS[arch].get("seed", 1000 + 10 * arch_index)
            for attempt in range(SEED_TRIES):
                seed = base + head_index + 100 * attempt
                try:
                    calls += run_case(c, texts, arch, head, name, folder, tok, seed)
                    break
                except NearTie as e:
                    print(f"{name}: seed {seed}: {e}; next seed")
            else:
                raise RuntimeError(f"{name}: no seed without near ties")
            print(f"{name}: ok")
    deberta_hidden_case()
    manifest = {
        "generator": "tools/pipelines/make_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "tolerance": "labels, words, tokens, sequences and offsets exact; scores within 1e-4 "
                     f"(no two scores of one output are closer than {MIN_GAP}, so F32 rounding "
                     "cannot reorder them)",
        "calls": calls,
    }
    (OUT / "expected.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
