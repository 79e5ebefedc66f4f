#!/usr/bin/env python3
"""A small GGUF file with a SentencePiece ("llama") vocabulary and llama.cpp's token ids for a
few hundred strings: tests/fixtures/models/gguf_spm/{vocab.gguf,expected.jsonl}.

The vocabulary is a SentencePiece BPE model trained here (sentencepiece, byte fallback, one
user-defined piece) on the tokenizer conformance corpus and the repository's docs, written as
tokenizer.ggml.{model,tokens,scores,token_type,...} with the `gguf` package (no tensors: a vocab-
only file). The ids are llama.cpp's (llama-cpp-python, Llama(vocab_only=True).tokenize with
add_bos and special=True, i.e. llama_tokenize(add_special, parse_special)), one
{"input", "ids"} per line. The strings: the corpus, crafted cases (spaces, digits, unicode,
bytes outside the vocabulary, special-token text), and docs lines.

Usage: make_gguf_spm_fixture.py
"""
import io
import json
import pathlib
import tempfile

import gguf
import llama_cpp
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models" / "gguf_spm"
CORPUS = ROOT / "tests" / "fixtures" / "tokenizers" / "corpus.jsonl"
DOCS = ["README.md", "docs/ARCHITECTURE.md"]
MAX_CHARS = 300

CRAFTED = [
    "", " ", "  ", "a", " a", "a ", "  two  spaces  ", "\t tab\tand\nnewline\n", "\n\n",
    "12345 678 9.0 1,000,000", "x=3.14159; y=-2e10", "<s>", "</s>", "a<s>b", "hello</s>",
    "<unk>", "<tool>", "call <tool> now", "<tool><tool>", "  <tool>  ", "<0x41>", "▁", "▁▁a",
    "Grüße aus Köln", "日本語のテキスト", "Привет, мир!", "😀 emoji 👋🏽 family 👨‍👩‍👧",
    "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "ﬁ ligature", "e\u0301 combining",
    "#$%^&*()[]{}|\\/~`", "ǅ Ǆ ǆ", "Ⅻ ② ٣", "\u0000nul", "\x7fdel",
]


def train(texts: list[str]) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="bpe", vocab_size=1200,
        byte_fallback=True, user_defined_symbols=["<tool>"], character_coverage=0.98,
        num_threads=1, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", minloglevel=2)
    return model.getvalue()


def write_gguf(model: bytes, path: pathlib.Path) -> None:
    proto = pb.ModelProto()
    proto.ParseFromString(model)
    w = gguf.GGUFWriter(str(path), "llama")
    # llama.cpp reads the hyperparameters even for a vocab-only load.
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list([p.piece.encode("utf-8") for p in proto.pieces])
    w.add_token_scores([p.score for p in proto.pieces])
    # sentencepiece's piece types are llama.cpp's token types (1 normal ... 6 byte).
    w.add_token_types([int(p.type) for p in proto.pieces])
    w.add_unk_token_id(proto.trainer_spec.unk_id)
    w.add_bos_token_id(proto.trainer_spec.bos_id)
    w.add_eos_token_id(proto.trainer_spec.eos_id)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    corpus = [c for c in corpus if isinstance(c, str)]
    docs = []
    for doc in DOCS:
        docs += [t[:MAX_CHARS] for t in (ROOT / doc).read_text(encoding="utf-8").splitlines()
                 if t.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    gguf_path = OUT / "vocab.gguf"
    write_gguf(train(corpus + docs), gguf_path)
    llama = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    inputs = []
    for text in CRAFTED + [c[:MAX_CHARS] for c in corpus] + docs[:150]:
        if text not in inputs:
            inputs.append(text)
    with (OUT / "expected.jsonl").open("w", encoding="utf-8") as out:
        for text in inputs:
            ids = llama.tokenize(text.encode("utf-8"), add_bos=True, special=True)
            out.write(json.dumps({"input": text, "ids": ids}, ensure_ascii=False) + "\n")
    print(f"wrote {gguf_path} and {len(inputs)} strings")


if __name__ == "__main__":
    main()
