#!/usr/bin/env python3
"""Converts the sentencepiece_model cases with transformers' converter and records where the
conversion and sentencepiece disagree.

For each case in CASES, writes into tests/fixtures/tokenizers/cases/<case>/:
  converted_tokenizer.json        transformers' SpmConverter output for spm.model (pinned versions
                                  in tools/requirements.txt)
  converted_differences.jsonl     one line per corpus line whose ids differ between sentencepiece
                                  and the converted tokenizer (HF tokenizers):
                                  {"line": <0-based corpus line>, "sentencepiece": [...],
                                   "converted": [...]}

tests/tokenizers (SentencePieceModelAndItsConversion) encodes the corpus with Ember's .model
loader and with the converted tokenizer.json: the ids must agree on every line not listed, and
on listed lines each side must give its own reference's ids. Deterministic: re-running
reproduces the same bytes.

Usage: convert_spm.py
"""
import json
import pathlib
import warnings
from types import SimpleNamespace

import sentencepiece
from tokenizers import Tokenizer
from transformers.convert_slow_tokenizer import SpmConverter, generate_merges, import_protobuf

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
CORPUS = FIXTURES / "corpus.jsonl"
CASES = ["spm_unigram_model", "spm_bpe_model"]


class ScoreOrderedMerges:
    """BPE merges ordered by piece score, as the converters of score-based models extract them
    (SpmConverter's default extractor does not accept this call in transformers 5.23)."""

    def __init__(self, model_file):
        self.model_file = model_file

    def extract(self, vocab_scores):
        vocab = {piece: i for i, (piece, _score) in enumerate(vocab_scores)}
        return vocab, generate_merges(vocab, vocab_scores)


def convert(model_file):
    proto = import_protobuf().ModelProto()
    proto.ParseFromString(model_file.read_bytes())

    class Converter(SpmConverter):
        handle_byte_fallback = proto.trainer_spec.byte_fallback
        SpmExtractor = ScoreOrderedMerges

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Converter(SimpleNamespace(vocab_file=str(model_file))).converted()


def main():
    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()
              if line]
    for case in CASES:
        case_dir = FIXTURES / "cases" / case
        converted = convert(case_dir / "spm.model")
        path = case_dir / "converted_tokenizer.json"
        path.write_text(converted.to_str(), encoding="utf-8", newline="\n")
        # Reloaded from the file, so the differences are those of the committed JSON.
        tok = Tokenizer.from_file(str(path))
        sp = sentencepiece.SentencePieceProcessor(model_file=str(case_dir / "spm.model"))
        lines = []
        for i, text in enumerate(corpus):
            want = sp.encode(text)
            got = tok.encode(text, add_special_tokens=False).ids
            if want != got:
                lines.append(json.dumps({"line": i, "sentencepiece": want, "converted": got},
                                        separators=(",", ":")) + "\n")
        (case_dir / "converted_differences.jsonl").write_text("".join(lines), encoding="utf-8",
                                                              newline="\n")
        print(f"{case}: {path.stat().st_size // 1024} KiB, {len(lines)} of {len(corpus)} corpus "
              f"lines differ")


if __name__ == "__main__":
    main()
