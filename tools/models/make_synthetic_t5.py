#!/usr/bin/env python3
"""Writes a t5-small-sized T5 v1.0 with random weights, for bench/seq2seq_bench.py.

Shape of t5-small (d_model 512, d_kv 64, 8 heads, d_ff 2048, 6 + 6 layers, ReLU MLP, 32
relative-position buckets, vocabulary 32128, tied head scaled by d_model^-0.5). Weights come from
transformers' own T5 initialisation under torch.manual_seed(0), so re-runs write the same files,
and random weights time as real ones do (the work per token depends only on the shapes).

The tokenizer.json is a Unigram with T5's specials (<pad> 0, </s> 1, <unk> 2) trained by the
tokenizers library on the committed English sentences, then filled deterministically up to
32000 pieces with low-scored letter n-grams, plus T5's 100 <extra_id_N>: a full-size vocabulary
whose common pieces segment text as a real SentencePiece model does.

The folder (config.json, generation_config.json, model.safetensors, tokenizer.json,
tokenizer_config.json) is what Ember, transformers and CTranslate2's converter all read.

    tools/.venv/bin/python tools/models/make_synthetic_t5.py OUT_DIR
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
VOCAB, PIECES, EXTRA_IDS = 32128, 32000, 100


def training_lines() -> list[str]:
    lines = []
    for path in TEXTS:
        for line in path.read_text().split("\n"):  # not splitlines: U+2028 inside strings
            text = json.loads(line) if line else ""
            if text.strip() and text.isascii():
                lines.append(text)
    return lines


def make_tokenizer() -> tokenizers.Tokenizer:
    trainer = tokenizers.trainers.UnigramTrainer(
        vocab_size=PIECES, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
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
    floor = min(score for _, score in vocab[3:])
    # Word-initial and inner letter n-grams, shortest first, each scored below every trained
    # piece so that they only fill the table (as rare pieces of a real vocabulary do).
    fill = (("\u2581" if start else "") + "".join(letters)
            for n in (2, 3) for start in (True, False)
            for letters in itertools.product(string.ascii_lowercase, repeat=n))
    for piece in fill:
        if len(vocab) >= PIECES:
            break
        if piece not in known:
            vocab.append([piece, floor - 1.0 - len(vocab) * 1e-4])
    vocab += [[f"<extra_id_{i}>", 0.0] for i in reversed(range(EXTRA_IDS))]
    tok = tokenizers.Tokenizer(tokenizers.models.Unigram([tuple(v) for v in vocab], unk_id=2))
    tok.add_special_tokens(["<pad>", "</s>", "<unk>"] + [v[0] for v in vocab[-EXTRA_IDS:]])
    tok.normalizer = tokenizers.normalizers.Sequence(
        [tokenizers.normalizers.Replace(tokenizers.Regex(" {2,}"), " ")])
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    tok.decoder = tokenizers.decoders.Metaspace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return tok


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    config = transformers.T5Config(
        vocab_size=VOCAB, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
        num_heads=8, relative_attention_num_buckets=32, relative_attention_max_distance=128,
        feed_forward_proj="relu", dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0, tie_word_embeddings=True)
    tok = make_tokenizer()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(out)
    pieces = tok.get_vocab_size()
    if pieces != PIECES + EXTRA_IDS or len(tok.get_vocab()) != pieces:
        sys.exit(f"tokenizer has {pieces} pieces, expected {PIECES + EXTRA_IDS} distinct ones")
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    sample = "The quick brown fox jumps over the lazy dog."
    print(f"wrote {out}: {pieces} pieces; '{sample}' -> {tok.encode(sample).tokens}")


if __name__ == "__main__":
    main()
