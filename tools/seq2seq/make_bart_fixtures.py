#!/usr/bin/env python3
"""Writes tests/fixtures/seq2seq/{bart,mbart,marian,m2m100}: tiny random models of the BART
family and their references, in the layout of make_t5_fixtures.py (whose helpers this imports):
config.json, generation_config.json, model.safetensors, tokenizer.json, reference.safetensors
(input_ids, attention_mask, encoder_output, first_logits) and generate.json.

What each case exercises:
- bart: post-norm layers with biases, learned positions (offset 2), layernorm_embedding, GELU,
  tied head + final_logits_bias, decoder start </s> (2), forced BOS <s> (0) and forced EOS.
- mbart: pre-norm layers, final encoder/decoder layer_norm, scale_embedding.
- marian: post-norm, sinusoidal positions (sin half, cos half), SiLU, decoder start = pad (the
  last id), pad banned through bad_words_ids, renormalize_logits; source.spm / target.spm
  trained by sentencepiece plus vocab.json, as Marian checkpoints ship them.
- m2m100: pre-norm, sinusoidal positions with offset 2 and padding_idx, ReLU, language codes
  (__en__, __fr__, __de__) as the source's first token and the forced BOS.

Seeds are searched as in make_t5_fixtures.py until no reference decision is a near-tie.

Usage: make_bart_fixtures.py [bart|mbart|marian|m2m100 ...]   (no argument: all)
"""
import json
import pathlib
import shutil
import sys

import numpy as np
import safetensors.torch
import sentencepiece
import torch
import transformers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_t5_fixtures import (CORPUS, OUT, init_weights, make_tokenizer,  # noqa: E402
                              run, search_seed, write_reference)

SHAPE = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
             decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48,
             max_position_embeddings=64, dropout=0.0, attention_dropout=0.0,
             activation_dropout=0.0)
LANGS = ["__en__", "__fr__", "__de__"]
SPM_DIR = OUT / "marian_spm.tmp"


def runs(eos, forced_bos=None):
    """transformers generate() keyword arguments of each run (those of make_t5_fixtures.py with
    this family's ids); the generation_config.json defaults apply to what a run leaves out."""
    bos = {} if forced_bos is None else dict(forced_bos_token_id=forced_bos)
    return {
        "greedy": dict(num_beams=1, max_new_tokens=12, **bos),
        "greedy_processors": dict(num_beams=1, max_length=10, min_length=6,
                                  repetition_penalty=1.3, bad_words_ids=[[5], [7, 8]],
                                  forced_bos_token_id=forced_bos or 6, forced_eos_token_id=eos),
        "beam_early_true": dict(num_beams=4, max_new_tokens=10, early_stopping=True,
                                length_penalty=1.0, num_return_sequences=2, **bos),
        "beam_early_false": dict(num_beams=4, max_new_tokens=10, early_stopping=False,
                                 length_penalty=0.6, no_repeat_ngram_size=2,
                                 num_return_sequences=4, **bos),
        "beam_never": dict(num_beams=4, max_new_tokens=10, early_stopping="never",
                           length_penalty=2.0, num_return_sequences=3, **bos),
        "beam_processors": dict(num_beams=4, max_length=9, min_length=5, repetition_penalty=1.3,
                                bad_words_ids=[[5], [7, 8]], forced_bos_token_id=forced_bos or 6,
                                forced_eos_token_id=eos, no_repeat_ngram_size=3,
                                early_stopping=False, length_penalty=1.5, num_return_sequences=2),
    }


def bart_like(kind):
    """(tokenizer, config, generation config, runs, first-input ids, last-input ids) of a case."""
    if kind == "marian":
        tok = None  # Marian folders have source.spm, target.spm and vocab.json instead
        vocab = json.loads((SPM_DIR / "vocab.json").read_text())
        pad = vocab["<pad>"]
        config = transformers.MarianConfig(
            vocab_size=len(vocab), pad_token_id=pad, eos_token_id=0,
            decoder_start_token_id=pad, forced_eos_token_id=0, activation_function="swish",
            scale_embedding=True, **SHAPE)
        gen = dict(bad_words_ids=[[pad]], bos_token_id=0, decoder_start_token_id=pad,
                   eos_token_id=0, forced_eos_token_id=0, pad_token_id=pad,
                   renormalize_logits=True)
        return tok, config, gen, runs(0), [], [0]
    specials = ("<s>", "<pad>", "</s>", "<unk>")
    common = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    if kind == "m2m100":
        tok = make_tokenizer(100, specials=specials, single="__en__ $A </s>", added=LANGS)
        config = transformers.M2M100Config(vocab_size=tok.get_vocab_size(),
                                           activation_function="relu", scale_embedding=True,
                                           **common, **SHAPE)
        return (tok, config, dict(common), runs(2, tok.token_to_id("__fr__")),
                [tok.token_to_id("__en__")], [2])
    tok = make_tokenizer(100, specials=specials, single="<s> $A </s>")
    forced = dict(forced_bos_token_id=0, forced_eos_token_id=2)
    if kind == "bart":
        config = transformers.BartConfig(vocab_size=tok.get_vocab_size(),
                                         activation_function="gelu", scale_embedding=False,
                                         **common, **forced, **SHAPE)
    else:
        config = transformers.MBartConfig(vocab_size=tok.get_vocab_size(),
                                          activation_function="gelu", scale_embedding=True,
                                          **common, **forced, **SHAPE)
    return tok, config, dict(common, **forced), runs(2), [0], [2]


MODELS = {"bart": transformers.BartForConditionalGeneration,
          "mbart": transformers.MBartForConditionalGeneration,
          "marian": transformers.MarianMTModel,
          "m2m100": transformers.M2M100ForConditionalGeneration}


def build(kind, config, seed):
    torch.manual_seed(seed)
    model = MODELS[kind](config)
    init_weights(model, seed)
    with torch.no_grad():
        for module in model.modules():
            # Sinusoidal tables are parameters init_weights overwrote: put the sinusoids back.
            if isinstance(module, transformers.models.marian.modeling_marian
                          .MarianSinusoidalPositionalEmbedding):
                module.weight.copy_(module.create_weight())
        if hasattr(model, "final_logits_bias"):
            gen = torch.Generator().manual_seed(seed + 1)
            model.final_logits_bias.copy_(
                0.5 * torch.randn(model.final_logits_bias.shape, generator=gen))
        # A louder EOS row makes beams end at different lengths within the short runs.
        model.get_output_embeddings().weight[config.eos_token_id] *= 1.5
    model.config._attn_implementation = "eager"
    return model.eval()


def inputs(seed, first, last, low, high):
    """Two right-padded inputs: first ids, random ids in [low, high), last ids."""
    rng = np.random.default_rng(seed)
    rows = [first + rng.integers(low, high, size=n).tolist() + last for n in (5, 9)]
    longest = max(len(r) for r in rows)
    ids = torch.full((2, longest), 1, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids, mask


def train_spm(folder):
    """Marian's tokenizer files: source.spm and target.spm (sentencepiece Unigram models trained
    on the lowercased corpus without a normalizer, whose table would take ~240 KB; different
    sizes so the two are told apart) and vocab.json, the
    union of their pieces (</s> 0, <unk> 1) and <pad> last, as Marian's conversion writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    text = folder / "corpus.txt"
    text.write_text("\n".join(line.lower() for line in lines
                              if 0 < len(line) < 500 and line.isascii()))
    for name, size in (("source", 120), ("target", 140)):
        sentencepiece.SentencePieceTrainer.train(
            input=str(text), model_prefix=str(folder / name), vocab_size=size,
            model_type="unigram", character_coverage=0.995, unk_id=1, eos_id=0, bos_id=-1,
            pad_id=-1, normalization_rule_name="identity", minloglevel=2)
        (folder / f"{name}.model").rename(folder / f"{name}.spm")
        (folder / f"{name}.vocab").unlink()
    text.unlink()
    vocab = {}
    for name in ("source", "target"):
        sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / f"{name}.spm"))
        for i in range(sp.get_piece_size()):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n")


def write_marian_tokenizations(folder, greedy_rows):
    """tokenize.json: transformers' MarianTokenizer on these files (without sacremoses, whose
    punctuation normalizer it would otherwise apply): the ids of a few texts (unknown characters,
    a >>lang<< code) and the decoded greedy outputs."""
    tok = transformers.MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"),
                                       str(folder / "vocab.json"))
    lines = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    texts = [line.lower() for line in lines if 20 < len(line) < 80 and line.isascii()][:4]
    texts += ["Hello, World! caf\u00e9", ">>fr<< the tokenizer", "  two  spaces "]
    encoded = [{"text": t, "ids": tok(t).input_ids} for t in texts]
    decoded = [{"ids": r["ids"], "text": tok.decode(r["ids"], skip_special_tokens=True)}
               for r in greedy_rows]
    (folder / "tokenize.json").write_text(json.dumps(
        {"encode": encoded, "decode": decoded}, indent=1, ensure_ascii=False) + "\n")


def case(kind, base_seed):
    tok, config, gen, run_args, first, last = bart_like(kind)
    vocab = config.vocab_size
    low, high = (1 + len(first) + 3, vocab - 3) if kind == "m2m100" else (4, vocab - 1)
    eos = config.eos_token_id

    def attempt(seed):
        model = build(kind, config, seed)
        model.generation_config = transformers.GenerationConfig(**gen)
        ids, mask = inputs(seed, first, last, low, high)
        ids[mask == 0] = config.pad_token_id
        with torch.no_grad():
            return model, ids, mask, {name: run(model, ids, mask, kw, eos)
                                      for name, kw in run_args.items()}

    seed, model, ids, mask, results = search_seed(kind, base_seed, attempt)
    folder = OUT / kind
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    saved = model.config.to_dict()
    for key in ("_attn_implementation", "transformers_version", "dtype", "output_attentions",
                "return_dict"):
        saved.pop(key, None)
    saved["architectures"] = [MODELS[kind].__name__]
    (folder / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    (folder / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    # Hub checkpoints leave out the tied head and the per-stack copies of the shared embeddings.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k not in ("lm_head.weight", "model.encoder.embed_tokens.weight",
                          "model.decoder.embed_tokens.weight")}
    safetensors.torch.save_file(state, str(folder / "model.safetensors"),
                                metadata={"format": "pt"})
    if tok is not None:
        tok.save(str(folder / "tokenizer.json"))
    else:
        for name in ("source.spm", "target.spm", "vocab.json"):
            shutil.copy(SPM_DIR / name, folder / name)
        write_marian_tokenizations(folder, results["greedy"][0])
    write_reference(model, folder, ids, mask, config.decoder_start_token_id)
    out = {name: {"options": run_args[name], "outputs": rows}
           for name, (rows, _) in results.items()}
    (folder / "generate.json").write_text(json.dumps(
        {"seed": seed, "transformers": transformers.__version__, "runs": out}, indent=1) + "\n")
    print(f"{kind}: seed {seed}")


def main():
    torch.set_num_threads(1)  # tiny models: threads only add overhead
    kinds = sys.argv[1:] or list(MODELS)
    if "marian" in kinds:
        train_spm(SPM_DIR)
    for kind, seed in [("bart", 3000), ("mbart", 4000), ("marian", 5000), ("m2m100", 6000)]:
        if kind in kinds:
            case(kind, seed)
    shutil.rmtree(SPM_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
