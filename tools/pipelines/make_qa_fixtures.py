#!/usr/bin/env python3
"""Writes the question-answering fixtures of tests/fixtures/pipelines/: tiny random BERT, RoBERTa,
DistilBERT, ALBERT, ELECTRA and DeBERTa-v2 ForQuestionAnswering models (*_qa, and bert_qa_left: a
BERT whose tokenizer_config.json says padding_side "left", for which transformers puts the
question second and masks no token) and the outputs of
transformers' question-answering pipeline on qa_corpus.json (qa_expected.json).

Reference: transformers 5.2.0, the last release with that pipeline, in its own venv
(tools/pipelines/setup_qa_venv.sh); CPU, F32, eager attention, torch.set_num_threads(1). The
tokenizers and model configs are make_fixtures.py's, counted from this corpus. Before anything is
written the script checks, for every call, that the windows transformers 5.2.0's tokenizer cuts
(ids, offsets, word and sequence ids of every overflowing window) are exactly those of
tokenizer.json under the pinned tokenizers of tools/.venv (0.23.3), which is what Ember reads: it
runs itself there with --check-windows.

Every call is also checked to be stable under F32 rounding, through hooks on the pipeline's own
functions: answers, the null score and each window's kept spans differ by a relative 1e-4 (so
their order cannot change), and so do each window's last kept span and the first one left out.
No output may hold a zero-score answer (numpy orders those spans arbitrarily). The corpus must
exercise what the issue lists: several windows, an answer merged from two windows, merged
duplicate texts within a window, and the impossible answer among the outputs.

Usage: tools/.venv-qa/bin/python tools/pipelines/make_qa_fixtures.py   (deterministic)
"""
import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "pipelines"
REFERENCE_VENV_PYTHON = ROOT / "tools" / ".venv" / "bin" / "python"

# Relative gap between scores whose order matters: F32 rounding moves a probability by ~1e-6
# relative, so 1e-4 leaves a wide margin.
MIN_REL_GAP = 1e-4
SEED_TRIES = 32
# qa_outputs is scaled up from init_weights' 1/sqrt(fan_in) so that start and end logits have a
# std of ~3: peaked distributions, whose best spans stand apart.
QA_LOGIT_SCALE = 3.0

OPTIONS = [
    {},
    {"top_k": 3},
    {"top_k": 2, "max_seq_len": 40, "doc_stride": 8},
    {"top_k": 3, "handle_impossible_answer": True},
    {"top_k": 3, "max_answer_len": 3, "max_seq_len": 48, "doc_stride": 16},
]


def qa_inputs():
    return json.loads((OUT / "qa_corpus.json").read_text())["inputs"]


def window_args(pipe, options):
    """The tokenizer call of the pipeline's preprocess, with its defaults."""
    max_seq_len = options.get("max_seq_len", min(pipe.tokenizer.model_max_length, 384))
    stride = options.get("doc_stride", min(max_seq_len // 2, 128))
    return max_seq_len, stride


def windows_of(pipe, item, options):
    """Every overflowing window transformers' tokenizer cuts for one input."""
    max_seq_len, stride = window_args(pipe, options)
    first = pipe.tokenizer.padding_side == "right"
    enc = pipe.tokenizer(text=item["question"] if first else item["context"],
                         text_pair=item["context"] if first else item["question"],
                         truncation="only_second" if first else "only_first",
                         max_length=max_seq_len, stride=stride, return_overflowing_tokens=True,
                         return_offsets_mapping=True)
    return [{"ids": enc["input_ids"][k], "offsets": [list(o) for o in enc["offset_mapping"][k]],
             "words": enc.encodings[k].word_ids, "sequences": enc.encodings[k].sequence_ids}
            for k in range(len(enc["input_ids"]))]


def check_windows(path):
    """Runs under tools/.venv: tokenizer.json through the pinned tokenizers gives the windows."""
    import tokenizers
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
    for case in json.loads(pathlib.Path(path).read_text()):
        tok = tokenizers.Tokenizer.from_file(case["tokenizer"])
        tok.no_padding()
        first = case["question_first"]
        tok.enable_truncation(case["max_seq_len"], stride=case["stride"],
                              strategy="only_second" if first else "only_first")
        item = case["input"]
        enc = tok.encode(item["question"] if first else item["context"],
                         item["context"] if first else item["question"])
        got = [{"ids": e.ids, "offsets": [list(o) for o in e.offsets], "words": e.word_ids,
                "sequences": e.sequence_ids} for e in [enc] + enc.overflowing]
        if got != case["windows"]:
            raise RuntimeError(f"{case['tokenizer']}: transformers 5.2.0's windows differ from "
                               f"tokenizer.json's on {item!r} ({case['max_seq_len']}, "
                               f"{case['stride']})")
    print(f"windows identical under tokenizers {tokenizers.__version__}")


class NearTie(Exception):
    pass


def check_gaps(what, scores):
    s = sorted(scores, reverse=True)
    for x, y in zip(s, s[1:]):
        if x - y < MIN_REL_GAP * x:
            raise NearTie(f"{what}: scores {x} and {y} are too close")


class Probe:
    """Hooks on the pipeline's span selection and answer merging: what each call did."""

    def __init__(self, qa_module, pipeline_class):
        self.qa, self.cls = qa_module, pipeline_class
        self.select, self.get_answer = qa_module.select_starts_ends, pipeline_class.get_answer
        self.reset()
        qa_module.select_starts_ends = self._select
        pipeline_class.get_answer = self._get_answer

    def reset(self):
        self.window = 0
        self.last_window = 0
        self.windows_per_input = []
        self.cross_window_merges = 0
        self.same_window_merges = 0
        self.ties = []

    def _select(self, start, end, p_mask, attention_mask, min_null_score=1000000, top_k=1,
                handle_impossible_answer=False, max_answer_len=15):
        self.window += 1
        # One more span than kept: the first one left out must not tie the last one kept.
        starts, ends, scores, null = self.select(start, end, p_mask, attention_mask,
                                                 min_null_score, top_k + 1,
                                                 handle_impossible_answer, max_answer_len)
        try:
            check_gaps(f"window {self.window} spans", [float(s) for s in scores if s > 0])
        except NearTie as e:
            self.ties.append(str(e))
        return starts[:top_k], ends[:top_k], scores[:top_k], null

    def _get_answer(self, answers, target):
        for a in answers:
            a.setdefault("_window", self.last_window)
        self.last_window = self.window
        found = self.get_answer(None, answers, target)  # it does not use its pipeline
        if found is not None:
            if found["_window"] == self.window:
                self.same_window_merges += 1
            else:
                self.cross_window_merges += 1
        return found


def run_calls(name, pipe, probe, inputs):
    calls = []
    for options in OPTIONS:
        probe.reset()
        output = []
        windows = 0
        for item in inputs:
            before = probe.window
            result = pipe(question=item["question"], context=item["context"], **options)
            windows = max(windows, probe.window - before)
            answers = result if isinstance(result, list) else [result]
            for a in answers:
                a.pop("_window", None)
                # Zero-score spans only fill up the kept spans of a window that has too few, in
                # an order numpy leaves open: outputs must not depend on them.
                if a["score"] == 0:
                    raise RuntimeError(f"{name} {options}: a zero-score answer {a} on {item}; "
                                       "ask for fewer answers or give the context more tokens")
            check_gaps(f"{name} {options} answers", [a["score"] for a in answers])
            output.append(answers)
        if probe.ties:
            raise NearTie(f"{name} {options}: {probe.ties[0]}")
        calls.append({"model": name, "options": options, "inputs": inputs, "output": output,
                      "most_windows": windows, "cross_window_merges": probe.cross_window_merges,
                      "same_window_merges": probe.same_window_merges})
    return calls


def load_text_fixtures():
    """tools/pipelines/make_fixtures.py (its tokenizers, configs and weight init), under another
    module name: it imports tools/models/make_fixtures.py itself."""
    spec = importlib.util.spec_from_file_location("pipeline_fixtures",
                                                  ROOT / "tools" / "pipelines" / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_model(text_fixtures, arch, folder, vocab_size, seed, transformers, torch):
    config = text_fixtures.ARCHS[arch]["config"](vocab_size)
    cls = {"bert": transformers.BertForQuestionAnswering,
           "roberta": transformers.RobertaForQuestionAnswering,
           "distilbert": transformers.DistilBertForQuestionAnswering,
           "albert": transformers.AlbertForQuestionAnswering,
           "electra": transformers.ElectraForQuestionAnswering,
           "deberta": transformers.DebertaV2ForQuestionAnswering}[arch]
    torch.manual_seed(seed)
    model = cls(config).eval()
    text_fixtures.init_weights(model, seed)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(QA_LOGIT_SCALE)
    model.save_pretrained(folder)


def main():
    import tokenizers
    import torch
    import transformers
    from transformers.pipelines import question_answering
    text_fixtures = load_text_fixtures()
    assert transformers.__version__ == "5.2.0", transformers.__version__
    torch.set_num_threads(1)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    probe = Probe(question_answering, question_answering.QuestionAnsweringPipeline)
    inputs = qa_inputs()
    texts = [t for item in inputs for t in (item["question"], item["context"])]
    calls, window_cases = [], []
    # Appended models keep the seeds of those before them (seeds follow the list's order).
    models = [("bert", "bert_qa", False), ("roberta", "roberta_qa", False),
              ("distilbert", "distilbert_qa", False), ("bert", "bert_qa_left", True),
              ("albert", "albert_qa", False), ("electra", "electra_qa", False),
              ("deberta", "deberta_qa", False)]
    for arch_index, (arch, name, left) in enumerate(models):
        folder = OUT / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if arch == "deberta":
            # Its corpus words keep their punctuation ("Nobody."): as whole pieces they would
            # leave the one-word context fewer spans than top_k asks for.
            tok = text_fixtures.deberta_unigram_tokenizer(folder, texts, punctuated_words=False)
        else:
            tok = text_fixtures.ARCHS[arch]["tokenizer"](folder, texts)
        if left:
            config_file = folder / "tokenizer_config.json"
            config = json.loads(config_file.read_text())
            config["padding_side"] = "left"
            config_file.write_text(json.dumps(config, indent=2))
        for attempt in range(SEED_TRIES):
            seed = 3000 + 10 * arch_index + 100 * attempt
            make_model(text_fixtures, arch, folder, tok.get_vocab_size(), seed, transformers,
                       torch)
            pipe = transformers.pipeline("question-answering", model=str(folder), device="cpu",
                                         model_kwargs={"attn_implementation": "eager"})
            assert pipe.tokenizer.padding_side == ("left" if left else "right")
            try:
                model_calls = run_calls(name, pipe, probe, inputs)
                break
            except NearTie as e:
                print(f"{name}: seed {seed}: {e}; next seed")
        else:
            raise RuntimeError(f"{name}: no seed without near ties")
        calls += model_calls
        for options in OPTIONS:
            max_seq_len, stride = window_args(pipe, options)
            for item in inputs:
                window_cases.append({
                    "tokenizer": str(folder / "tokenizer.json"), "input": item,
                    "question_first": not left, "max_seq_len": max_seq_len, "stride": stride,
                    "windows": windows_of(pipe, item, options)})
        print(f"{name}: ok")

    # What the corpus must exercise, over all calls.
    if max(c["most_windows"] for c in calls) < 3:
        raise RuntimeError("no input is cut into several windows")
    if not any(c["cross_window_merges"] for c in calls):
        raise RuntimeError("no answer is merged from two windows")
    if not any(c["same_window_merges"] for c in calls):
        raise RuntimeError("no duplicate text is merged within a window")
    if not any(a["answer"] == "" for c in calls for out in c["output"] for a in out):
        raise RuntimeError("the impossible answer is never among the outputs")
    if not any(a["score"] > 1 for c in calls for out in c["output"] for a in out):
        print("note: no merged score exceeds 1")

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(window_cases, f)
    subprocess.run([str(REFERENCE_VENV_PYTHON), __file__, "--check-windows", f.name], check=True)
    pathlib.Path(f.name).unlink()

    manifest = {
        "generator": "tools/pipelines/make_qa_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__,
                     "tokenizers of the window check": "0.23.3"},
        "tolerance": "answers, start and end exact; scores within 1e-4 (scores whose order "
                     f"matters differ by a relative {MIN_REL_GAP})",
        "calls": calls,
    }
    (OUT / "qa_expected.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) +
                                          "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-windows":
        check_windows(sys.argv[2])
    else:
        main()
