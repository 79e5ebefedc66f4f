#!/usr/bin/env python3
"""Runs the reference trainers (HF tokenizers, pinned in tools/requirements.txt) on the committed
training corpus and writes tests/fixtures/tokenizers/trainers/<case>/:

  template.json   the untrained tokenizer (pipeline + empty model) both sides start from;
  reference.json  the reference's trained tokenizer, only where the reference is deterministic;
  case.json       the trainer options (Ember's names), whether the reference was stable across
                  runs, the reference's held-out compression, and the cross-check of Ember's
                  output in the reference (below).

Determinism: each case is trained RUNS times, each in a fresh process with its own
PYTHONHASHSEED (the Rust side seeds its hash maps randomly per process anyway) and the default
thread count. A case is "stable" when every run wrote the same tokenizer.json.

Cross-check (needs build/bin/ember): Ember trains the same case through `ember train-tokenizer
--from template.json`; the reference loads Ember's tokenizer.json and encodes the held-out lines,
which must give Ember's own ids (`ember tokenize --lines --no-special`). The result and the
reference's ids for the first SAMPLE_LINES held-out lines go into case.json, so the C++ test
checks the same agreement for whatever Ember trains now.

Usage: make_trainer_fixtures.py [--ember build/bin/ember]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizers" / "trainers"
TRAIN = OUT / "corpus_train.txt"
HELDOUT = OUT / "corpus_heldout.txt"
RUNS = 4
SAMPLE_LINES = 150

BYTELEVEL = "bytelevel"  # initial_alphabet value meaning pre_tokenizers.ByteLevel.alphabet()

# name: (model, pipeline, trainer options). Options use the Python trainers' names.
CASES = {
    "bpe_gpt2": ("bpe", "bytelevel", dict(vocab_size=2000, min_frequency=2,
                                          special_tokens=["<|endoftext|>"],
                                          initial_alphabet=BYTELEVEL)),
    "bpe_lower_limit": ("bpe", "nfkc_lower_whitespace",
                        dict(vocab_size=1500, special_tokens=["<unk>", "<pad>"],
                             limit_alphabet=150, max_token_length=8)),
    "bpe_min_frequency": ("bpe", "whitespace_split", dict(vocab_size=5000, min_frequency=40)),
    "bpe_suffix": ("bpe", "metaspace", dict(vocab_size=2500, min_frequency=3,
                                            end_of_word_suffix="</w>")),
    "bpe_prefix_maxlen": ("bpe", "whitespace_split",
                          dict(vocab_size=2200, continuing_subword_prefix="##",
                               max_token_length=5)),
    "wordpiece_bert": ("wordpiece", "bert",
                       dict(vocab_size=3000,
                            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])),
    "wordpiece_limit": ("wordpiece", "nfkc_lower_whitespace",
                        dict(vocab_size=800, min_frequency=2, limit_alphabet=200,
                             initial_alphabet="xyzé", special_tokens=["[UNK]"])),
    "wordlevel_whitespace": ("wordlevel", "whitespace",
                             dict(vocab_size=3000, min_frequency=2,
                                  special_tokens=["<unk>", "<pad>"])),
    "wordlevel_bytelevel": ("wordlevel", "bytelevel",
                            dict(vocab_size=500, special_tokens=["<unk>"])),
    "unigram_t5": ("unigram", "metaspace",
                   dict(vocab_size=2000, special_tokens=["<pad>", "</s>", "<unk>"],
                        unk_token="<unk>")),
    "unigram_lower_options": ("unigram", "nfkc_lower_whitespace",
                              dict(vocab_size=2000, unk_token="<unk>", max_piece_length=8,
                                   shrinking_factor=0.8, n_sub_iterations=3, seed_size=20000,
                                   initial_alphabet="xyzé", special_tokens=["<s>"])),
}

RUN_ONE = r"""
import sys, json
from tokenizers import Tokenizer, trainers, pre_tokenizers
model, options, template, corpus = json.loads(sys.stdin.read())
tok = Tokenizer.from_str(template)
options = dict(options)
if options.get("initial_alphabet") == "bytelevel":
    options["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
elif "initial_alphabet" in options:
    options["initial_alphabet"] = list(options["initial_alphabet"])
cls = {"bpe": trainers.BpeTrainer, "wordpiece": trainers.WordPieceTrainer,
       "wordlevel": trainers.WordLevelTrainer, "unigram": trainers.UnigramTrainer}[model]
tok.train([corpus], cls(show_progress=False, **options))
sys.stdout.write(tok.to_str())
"""


def template(model, pipeline):
    from tokenizers import Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers as pre

    tok = Tokenizer({"bpe": models.BPE, "wordpiece": models.WordPiece,
                     "wordlevel": models.WordLevel, "unigram": models.Unigram}[model]())
    if model == "bpe" and pipeline == "nfkc_lower_whitespace":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
    if pipeline == "bytelevel":
        tok.pre_tokenizer = pre.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    elif pipeline == "nfkc_lower_whitespace":
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre.Whitespace()
    elif pipeline == "whitespace":
        tok.pre_tokenizer = pre.Whitespace()
    elif pipeline == "whitespace_split":
        tok.pre_tokenizer = pre.WhitespaceSplit()
    elif pipeline == "metaspace":
        tok.pre_tokenizer = pre.Metaspace()
        tok.decoder = decoders.Metaspace()
    elif pipeline == "bert":
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
    else:
        raise ValueError(pipeline)
    return tok.to_str()


def reference_runs(model, options, template_json):
    outs = []
    for seed in range(1, RUNS + 1):
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        env.pop("RAYON_NUM_THREADS", None)
        r = subprocess.run([sys.executable, "-c", RUN_ONE], env=env, check=True,
                           capture_output=True, text=True,
                           input=json.dumps([model, options, template_json, str(TRAIN)]))
        outs.append(r.stdout)
    return outs


def heldout_lines():
    return HELDOUT.read_text(encoding="utf-8").splitlines()


def cli_args(model, options):
    flags = {"vocab_size": "--vocab-size", "min_frequency": "--min-frequency",
             "limit_alphabet": "--limit-alphabet", "initial_alphabet": "--initial-alphabet",
             "continuing_subword_prefix": "--continuing-subword-prefix",
             "end_of_word_suffix": "--end-of-word-suffix",
             "max_token_length": "--max-token-length", "unk_token": "--unk-token",
             "max_piece_length": "--max-piece-length", "shrinking_factor": "--shrinking-factor",
             "n_sub_iterations": "--n-sub-iterations", "seed_size": "--seed-size"}
    args = ["--model", model]
    for k, v in options.items():
        if k == "special_tokens":
            for s in v:
                args += ["--special", s]
        else:
            args += [flags[k], str(v)]
    return args


def cross_check(ember, model, options, template_path, lines):
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "tokenizer.json"
        subprocess.run([ember, "train-tokenizer", "--from", str(template_path),
                        *cli_args(model, options), "--out", str(out), str(TRAIN)],
                       check=True, capture_output=True)
        ref = Tokenizer.from_file(str(out))
        ref_ids = [e.ids for e in ref.encode_batch(lines, add_special_tokens=False)]
        r = subprocess.run([ember, "tokenize", "--tokenizer", str(out), "--lines", "--no-special"],
                           input="\n".join(lines) + "\n", capture_output=True, text=True,
                           check=True)
        ember_ids = [json.loads(l)["ids"] for l in r.stdout.splitlines()]
        return ref_ids, ember_ids, out.read_text(encoding="utf-8")


def unigram_agreement(a_json, b_json, lines):
    """Share of a's pieces that b has, and share of held-out lines both encode to the same
    pieces (each loaded in the reference)."""
    from tokenizers import Tokenizer

    a, b = Tokenizer.from_str(a_json), Tokenizer.from_str(b_json)
    pa = [p for p, _ in json.loads(a_json)["model"]["vocab"]]
    pb = {p for p, _ in json.loads(b_json)["model"]["vocab"]}
    common = sum(p in pb for p in pa) / len(pa)
    ea = a.encode_batch(lines, add_special_tokens=False)
    eb = b.encode_batch(lines, add_special_tokens=False)
    same = sum(x.tokens == y.tokens for x, y in zip(ea, eb)) / len(lines)
    return common, same


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", default=str(ROOT / "build" / "bin" / "ember"))
    ap.add_argument("--only", default="", help="only the cases whose name starts with this")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    lines = heldout_lines()
    heldout_bytes = sum(len(l.encode("utf-8")) for l in lines)
    for name, (model, pipeline, options) in CASES.items():
        if not name.startswith(args.only):
            continue
        d = OUT / name
        d.mkdir(parents=True, exist_ok=True)
        template_json = template(model, pipeline)
        (d / "template.json").write_text(template_json, encoding="utf-8")
        runs = reference_runs(model, options, template_json)
        stable = all(r == runs[0] for r in runs)
        ref = Tokenizer.from_str(runs[0])
        ref_tokens = sum(len(e.ids) for e in ref.encode_batch(lines, add_special_tokens=False))
        # Unigram: the first run is kept even when runs differ, for the pieces-in-common and
        # same-encoding checks of the bar.
        if stable or model == "unigram":
            (d / "reference.json").write_text(runs[0], encoding="utf-8")
        elif (d / "reference.json").exists():
            (d / "reference.json").unlink()
        case = {
            "model": model,
            "options": options,
            "reference_stable": stable,
            "reference_runs": RUNS,
            "heldout_bytes": heldout_bytes,
            "reference_heldout_tokens": ref_tokens,
        }
        if model == "unigram":
            # How far apart the reference's own runs are: the least agreement with run 0.
            pairs = [unigram_agreement(runs[0], r, lines) for r in runs[1:]]
            case["reference_runs_min_pieces_in_common"] = min(p[0] for p in pairs)
            case["reference_runs_min_same_encodings"] = min(p[1] for p in pairs)
            scores = [{p: s for p, s in json.loads(r)["model"]["vocab"]} for r in runs]
            case["reference_runs_max_score_diff"] = max(
                abs(s - other[p]) for other in scores[1:] for p, s in scores[0].items()
                if p in other)
        ref_ids, ember_ids, ember_json = cross_check(args.ember, model, options, d / "template.json", lines)
        case["reference_loads_ember_identically"] = ref_ids == ember_ids
        # The reference reads JSON floats without correct rounding (serde_json's default): some
        # Unigram scores load one ulp off, which can flip a near tie between two segmentations.
        case["reference_heldout_lines_differing"] = sum(a != b for a, b in zip(ref_ids, ember_ids))
        case["ember_heldout_tokens"] = sum(len(i) for i in ember_ids)
        case["sample_lines"] = SAMPLE_LINES
        case["reference_ids_of_ember_sample"] = ref_ids[:SAMPLE_LINES]
        if model == "unigram":
            common, same = unigram_agreement(runs[0], ember_json, lines)
            case["ember_pieces_in_common"] = common
            case["ember_same_encodings"] = same
        (d / "case.json").write_text(json.dumps(case, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
        print(f"{name}: stable={stable} ref_tpb={ref_tokens / heldout_bytes:.5f} "
              f"ember_tpb={case['ember_heldout_tokens'] / heldout_bytes:.5f} "
              f"cross_check={case['reference_loads_ember_identically']}"
              + (f" ember_common={case['ember_pieces_in_common']:.4f} "
                 f"ember_same_enc={case['ember_same_encodings']:.4f} "
                 f"runs_common={case['reference_runs_min_pieces_in_common']:.4f} "
                 f"runs_same_enc={case['reference_runs_min_same_encodings']:.4f} "
                 f"runs_score_diff={case['reference_runs_max_score_diff']:.3g}"
                 if model == "unigram" else ""))


if __name__ == "__main__":
    main()
