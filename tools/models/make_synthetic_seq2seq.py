#!/usr/bin/env python3
"""Writes an encoder-decoder model with random weights, for bench/seq2seq_bench.py.

t5 (default): the shape of t5-small (T5 v1.0, d_model 512, d_kv 64, 8 heads, d_ff 2048, 6 + 6
layers, ReLU MLP, 32 relative-position buckets, vocabulary 32128, tied head scaled by
d_model^-0.5).
bart: the shape of facebook/bart-base (d_model 768, 12 heads, FFN 3072, 6 + 6 post-norm layers
with biases, GELU, 1024 learned positions, layernorm_embedding, vocabulary 50265, tied head with
final_logits_bias, decoder start </s>, forced BOS <s> and forced EOS).

Weights come from transformers' own initialisation under torch.manual_seed(0), so re-runs write
the same files, and random weights time as real ones do (the work per token depends only on the
shapes).

The tokenizer.json is a Unigram with the architecture's specials (T5: <pad> 0, </s> 1, <unk> 2;
BART: <s> 0, <pad> 1, </s> 2, <unk> 3) trained by the tokenizers library on the committed English
sentences, then filled deterministically up to the vocabulary size with low-scored letter
n-grams (plus T5's 100 <extra_id_N>): a full-size vocabulary whose common pieces segment text as
a real subword model does. (BART checkpoints ship a byte-level BPE; the model's work does not
depend on which subword model made the ids.)

The folder (config.json, generation_config.json, model.safetensors, tokenizer.json,
tokenizer_config.json) is what Ember, transformers and CTranslate2's converter all read.

    tools/.venv/bin/python tools/models/make_synthetic_seq2seq.py OUT_DIR [t5|bart]
"""
import itertools
import json
import pathlib
import string
import sys

import tokenizers
import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTS = [ROOT / "tests" / "fixtures" / "models" / "minilm" / "sentences.jsonl",
         ROOT / "tests" / "fixtures" / "tokenizers" / "corpus.jsonl"]

# Per architecture: specials (in id order), the post-processor's single-input template, the
# trained + filled pieces (specials included) and how many <extra_id_N> follow them.
ARCHS = {
    "t5": dict(specials=["<pad>", "</s>", "<unk>"], single="$A </s>", pieces=32000, extra_ids=100),
    "bart": dict(specials=["<s>", "<pad>", "</s>", "<unk>"], single="<s> $A </s>", pieces=50265,
                 extra_ids=0),
}


def training_lines() -> list[str]:
    lines = []
    for path in TEXTS:
        for line in path.read_text().split("\n"):  # not splitlines: U+2028 inside strings
            text = json.loads(line) if line else ""
            if text.strip() and text.isascii():
                lines.append(text)
    return lines


def make_tokenizer(specials: list[str], single: str, pieces: int,
                   extra_ids: int) -> tokenizers.Tokenizer:
    trainer = tokenizers.trainers.UnigramTrainer(
        vocab_size=pieces, special_tokens=specials, unk_token="<unk>",
        shrinking_factor=0.75, max_piece_length=12)
    trained = tokenizers.Tokenizer(tokenizers.models.Unigram())
    trained.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    trained.train_from_iterator(training_lines(), trainer)
    # The corpus holds literal special tokens ("</s>"): keep each piece once, at its first id,
    # so that every piece has one id (CTranslate2 maps pieces, not ids).
    vocab, known = [], set()
    for piece, score in json.loads(trained.to_str())["model"]["vocab"]:
        if piece not in known:
            vocab.append([piece, score])
            known.add(piece)
    floor = min(score for _, score in vocab[len(specials):])
    # Word-initial and inner letter n-grams, shortest first, each scored below every trained
    # piece so that they only fill the table (as rare pieces of a real vocabulary do).
    fill = (("\u2581" if start else "") + "".join(letters)
            for n in (2, 3, 4) for start in (True, False)
            for letters in itertools.product(string.ascii_lowercase, repeat=n))
    for piece in fill:
        if len(vocab) >= pieces:
            break
        if piece not in known:
            vocab.append([piece, floor - 1.0 - len(vocab) * 1e-4])
    extras = [f"<extra_id_{i}>" for i in reversed(range(extra_ids))]
    vocab += [[piece, 0.0] for piece in extras]
    tok = tokenizers.Tokenizer(
        tokenizers.models.Unigram([tuple(v) for v in vocab], unk_id=specials.index("<unk>")))
    tok.add_special_tokens(specials + extras)
    tok.normalizer = tokenizers.normalizers.Sequence(
        [tokenizers.normalizers.Replace(tokenizers.Regex(" {2,}"), " ")])
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    tok.decoder = tokenizers.decoders.Metaspace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single=single, pair=single + " $B </s>",
        special_tokens=[(t, specials.index(t)) for t in ("<s>", "</s>") if t in specials])
    return tok


def config_of(arch: str):
    if arch == "t5":
        return transformers.T5Config(
            vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
            num_heads=8, relative_attention_num_buckets=32, relative_attention_max_distance=128,
            feed_forward_proj="relu", dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0, tie_word_embeddings=True)
    return transformers.BartConfig(
        vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
        decoder_ffn_dim=3072, max_position_embeddings=1024, activation_function="gelu",
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, scale_embedding=False,
        bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
        forced_bos_token_id=0, forced_eos_token_id=2, tie_word_embeddings=True,
        # CTranslate2 4.8.5's converter reads BART's pre/post-norm flag from this key, which
        # transformers 5.x no longer writes (BART is post-norm); everyone else ignores it.
        normalize_before=False)


def main() -> None:
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in ARCHS):
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    arch = sys.argv[2] if len(sys.argv) == 3 else "t5"
    spec = ARCHS[arch]
    out.mkdir(parents=True, exist_ok=True)
    config = config_of(arch)
    tok = make_tokenizer(**spec)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        **({"bos_token": "<s>"} if "<s>" in spec["specials"] else {}))
    fast.save_pretrained(out)
    pieces = tok.get_vocab_size()
    expected = spec["pieces"] + spec["extra_ids"]
    if pieces != expected or len(tok.get_vocab()) != pieces or pieces > config.vocab_size:
        sys.exit(f"tokenizer has {pieces} pieces, expected {expected} distinct ones")
    torch.manual_seed(0)
    model = transformers.AutoModelForSeq2SeqLM.from_config(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    sample = "The quick brown fox jumps over the lazy dog."
    print(f"wrote {out} ({arch}): {pieces} pieces; '{sample}' -> {tok.encode(sample).tokens}")


if __name__ == "__main__":
    main()
