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
- m2m100_spm: M2M100 as the Hub ships it: sentencepiece.bpe.model (a BPE model) and vocab.json
  (fairseq's dictionary, pieces in another order than the model's, a few missing), no
  tokenizer.json; transformers' M2M100Tokenizer appends its 100 language codes after vocab.json.
- mbart_cc25: mBART-cc25's form: sentencepiece.bpe.model alone (fairseq's offset of 1, the 25
  language codes and <mask> after the pieces), the source as text </s> en_XX and the decoder
  started by the target's code (generate()'s decoder_start_token_id).
- marian_separate: Marian with separate_vocabs: vocab.json for the source, target_vocab.json for
  the decoder's embedding and head (decoder_vocab_size, share_encoder_decoder_embeddings false).
- pegasus: pre-norm with final norms (as mBART) but Marian's sinusoidal positions and no
  layernorm_embedding, ReLU, scale_embedding, pad 0 starting the decoder, EOS 1 appended to the
  source and forced at the last step, no forced BOS; tokenizer.json.

Tokenizer-only folders (no model), spiece.model alone with config.json's model_type:
- t5_spm: T5Tokenizer's form (the pieces, then tokenizer_config.json's extra_ids, the last first).
- pegasus_spm: PegasusTokenizer's (<pad> </s> <mask_1> <mask_2> <unk_2..102>, the pieces from
  id 2 on at id + 103), its class taken from model_type.

The sentencepiece cases (marian too) also write tokenize.json: the reference tokenizer's
ids of a few texts (with its language codes) and its decoding of ids.

Seeds are searched as in make_t5_fixtures.py until no reference decision is a near-tie.

Usage: make_bart_fixtures.py [bart|mbart|marian|m2m100|m2m100_spm|mbart_cc25|marian_separate|pegasus
|t5_spm|pegasus_spm ...]
(no argument: all)
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


def runs(eos, forced_bos=None, start=None):
    """transformers generate() keyword arguments of each run (those of make_t5_fixtures.py with
    this family's ids, `start` overriding the decoder start); the generation_config.json
    defaults apply to what a run leaves out."""
    bos = {} if forced_bos is None else dict(forced_bos_token_id=forced_bos)
    if start is not None:
        return {name: dict(kw, decoder_start_token_id=start)
                for name, kw in runs(eos, forced_bos).items()}
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
    if kind in ("marian", "marian_separate"):
        tok = None  # Marian folders have source.spm, target.spm and vocab.json instead
        vocab = json.loads((SPM_DIR / "vocab.json").read_text())
        shape = dict(SHAPE)
        if kind == "marian_separate":
            vocab = json.loads((SPM_DIR / "source_vocab.json").read_text())
            target = json.loads((SPM_DIR / "target_vocab.json").read_text())
            shape.update(decoder_vocab_size=len(target), share_encoder_decoder_embeddings=False)
        # The source's <pad> starts the decoder and is banned, as transformers takes it from
        # config.json whichever vocabulary the ids index.
        pad = vocab["<pad>"]
        config = transformers.MarianConfig(
            vocab_size=len(vocab), pad_token_id=pad, eos_token_id=0,
            decoder_start_token_id=pad, forced_eos_token_id=0, activation_function="swish",
            scale_embedding=True, **shape)
        gen = dict(bad_words_ids=[[pad]], bos_token_id=0, decoder_start_token_id=pad,
                   eos_token_id=0, forced_eos_token_id=0, pad_token_id=pad,
                   renormalize_logits=True)
        return tok, config, gen, runs(0), [], [0]
    if kind == "pegasus":
        tok = make_tokenizer(100, specials=("<pad>", "</s>", "<mask_1>", "<unk>"))
        ids = dict(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                   forced_eos_token_id=1)
        config = transformers.PegasusConfig(vocab_size=tok.get_vocab_size(),
                                            activation_function="relu", scale_embedding=True,
                                            **ids, **SHAPE)
        return tok, config, ids, runs(1), [], [1]
    common = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    if kind == "m2m100_spm":
        tok = transformers.M2M100Tokenizer(str(SPM_DIR / "m2m100_vocab.json"),
                                           str(SPM_DIR / "m2m100.model"), src_lang="en",
                                           tgt_lang="fr")
        # As the Hub's checkpoints: vocab.json, the codes, then 8 "madeup words" padding the table.
        vocab = len(tok.encoder) + len(tok.lang_code_to_id) + 8
        config = transformers.M2M100Config(vocab_size=vocab, activation_function="relu",
                                           scale_embedding=True, **common, **SHAPE)
        return (tok, config, dict(common), runs(2, tok.get_lang_id("fr")),
                [tok.get_lang_id("en")], [2])
    if kind == "mbart_cc25":
        tok = transformers.MBartTokenizer.from_pretrained(str(SPM_DIR / "mbart"), src_lang="en_XX",
                                                          tgt_lang="ro_RO")
        config = transformers.MBartConfig(vocab_size=len(tok), activation_function="gelu",
                                          scale_embedding=True, **common, **SHAPE)
        codes = tok.convert_tokens_to_ids(["en_XX", "ro_RO"])
        return tok, config, dict(common), runs(2, start=codes[1]), [], [2, codes[0]]
    specials = ("<s>", "<pad>", "</s>", "<unk>")
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
          "m2m100": transformers.M2M100ForConditionalGeneration,
          "m2m100_spm": transformers.M2M100ForConditionalGeneration,
          "mbart_cc25": transformers.MBartForConditionalGeneration,
          "marian_separate": transformers.MarianMTModel,
          "pegasus": transformers.PegasusForConditionalGeneration}


def build(kind, config, seed):
    torch.manual_seed(seed)
    model = MODELS[kind](config)
    init_weights(model, seed)
    with torch.no_grad():
        for module in model.modules():
            # Sinusoidal tables are parameters init_weights overwrote: put the sinusoids back.
            if isinstance(module, (transformers.models.marian.modeling_marian
                                   .MarianSinusoidalPositionalEmbedding,
                                   transformers.models.pegasus.modeling_pegasus
                                   .PegasusSinusoidalPositionalEmbedding)):
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


def train_sentencepiece(text, prefix, size, model_type, normalization="identity", **ids):
    """A sentencepiece model at prefix.model trained on the corpus file `text`, by default without
    a normalizer (whose table would take ~240 KB)."""
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=size, model_type=model_type,
        character_coverage=0.995, normalization_rule_name=normalization, minloglevel=2, **ids)
    pathlib.Path(f"{prefix}.vocab").unlink()
    return sentencepiece.SentencePieceProcessor(model_file=f"{prefix}.model")


def train_spm(folder):
    """The tokenizer files of the spm cases, trained on the ASCII corpus lines.
    Marian: source.spm and target.spm (Unigram, lowercased corpus; different sizes so the two are
    told apart) and vocab.json, the union of their pieces (</s> 0, <unk> 1) and <pad> last, as
    Marian's conversion writes it; with separate vocabularies, source_vocab.json and
    target_vocab.json, each its model's pieces and <pad>.
    M2M100: m2m100.model (BPE) and m2m100_vocab.json, fairseq's dictionary (<s> <pad> </s> <unk>,
    then the pieces in a shuffled order, a few left out so they read as <unk>).
    mBART-cc25: mbart/sentencepiece.bpe.model (Unigram, <unk> <s> </s> first as fairseq's are)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    lines = [line for line in lines if 0 < len(line) < 500 and line.isascii()]
    text = folder / "corpus.txt"
    text.write_text("\n".join(line.lower() for line in lines))
    vocab = {}
    for name, size in (("source", 120), ("target", 140)):
        sp = train_sentencepiece(text, folder / name, size, "unigram", unk_id=1, eos_id=0,
                                 bos_id=-1, pad_id=-1)
        (folder / f"{name}.model").rename(folder / f"{name}.spm")
        own = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
        own["<pad>"] = len(own)
        (folder / f"{name}_vocab.json").write_text(json.dumps(own, indent=1) + "\n")
        for i in range(sp.get_piece_size()):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n")
    text.write_text("\n".join(lines))
    sp = train_sentencepiece(text, folder / "m2m100", 150, "bpe")
    pieces = [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    rng = np.random.default_rng(7)
    pieces = [pieces[i] for i in rng.permutation(len(pieces))][:-3]
    fairseq = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + pieces)}
    (folder / "m2m100_vocab.json").write_text(json.dumps(fairseq, indent=1) + "\n")
    (folder / "mbart").mkdir(exist_ok=True)
    train_sentencepiece(text, folder / "mbart" / "sentencepiece.bpe", 150, "unigram")
    text.unlink()


def texts_to_tokenize():
    lines = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    texts = [line.lower() for line in lines if 20 < len(line) < 80 and line.isascii()][:4]
    return texts + ["Hello, World! caf\u00e9", ">>fr<< the tokenizer", "  two  spaces "]


def write_tokenizations(folder, encode, decode, greedy_rows, target=None, extra=(), **languages):
    """tokenize.json: the reference tokenizer's ids of a few texts (unknown characters, a
    >>lang<< code, extra spaces) with its special tokens, and its decoding, special tokens
    skipped, of the greedy outputs and of the texts' ids (`target`'s, the decoder side's, when
    given) and of `extra` texts; `languages` (src, tgt) as the tokenizer was set."""
    texts = texts_to_tokenize() + list(extra)
    encoded = [{"text": t, "ids": encode(t)} for t in texts]
    rows = [r["ids"] for r in greedy_rows] + [target(t) if target else e["ids"]
                                             for t, e in zip(texts, encoded)]
    decoded = [{"ids": ids, "text": decode(ids)} for ids in rows]
    (folder / "tokenize.json").write_text(json.dumps(
        dict(languages, encode=encoded, decode=decoded), indent=1, ensure_ascii=False) + "\n")


def marian_tokenizer(folder):
    """transformers' MarianTokenizer on the folder's files (without sacremoses, whose punctuation
    normalizer it would otherwise apply)."""
    separate = (folder / "target_vocab.json").exists()
    return transformers.MarianTokenizer(
        str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"),
        target_vocab_file=str(folder / "target_vocab.json") if separate else None,
        separate_vocabs=separate)


def write_tokenizer_files(kind, tok, folder):
    """The tokenizer files of a case, as its Hub checkpoints ship them."""
    if kind in ("marian", "marian_separate"):
        for name in ("source.spm", "target.spm"):
            shutil.copy(SPM_DIR / name, folder / name)
        if kind == "marian":
            shutil.copy(SPM_DIR / "vocab.json", folder / "vocab.json")
            return
        shutil.copy(SPM_DIR / "source_vocab.json", folder / "vocab.json")
        shutil.copy(SPM_DIR / "target_vocab.json", folder / "target_vocab.json")
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"separate_vocabs": True, "tokenizer_class": "MarianTokenizer"}, indent=2) + "\n")
    elif kind == "m2m100_spm":
        shutil.copy(SPM_DIR / "m2m100.model", folder / "sentencepiece.bpe.model")
        shutil.copy(SPM_DIR / "m2m100_vocab.json", folder / "vocab.json")
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"language_codes": "m2m100", "tokenizer_class": "M2M100Tokenizer"}, indent=2) + "\n")
    elif kind == "mbart_cc25":
        shutil.copy(SPM_DIR / "mbart" / "sentencepiece.bpe.model",
                    folder / "sentencepiece.bpe.model")
    else:
        tok.save(str(folder / "tokenizer.json"))


def case(kind, base_seed):
    tok, config, gen, run_args, first, last = bart_like(kind)
    # Random input ids: past the specials (and the first code), before the language codes.
    if kind == "m2m100":
        low, high = 5, config.vocab_size - 3
    elif kind == "m2m100_spm":
        low, high = 5, len(tok.encoder)
    elif kind == "mbart_cc25":
        low, high = 5, tok.convert_tokens_to_ids("ar_AR")
    else:
        low, high = 4, config.vocab_size - 1
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
    # Hub checkpoints leave out the tied head and the per-stack copies of the shared embeddings
    # (with separate vocabularies the stacks' own tables are all there is).
    dropped = ["lm_head.weight"]
    if config.to_dict().get("share_encoder_decoder_embeddings", True):
        dropped += ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"]
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k not in dropped}
    safetensors.torch.save_file(state, str(folder / "model.safetensors"),
                                metadata={"format": "pt"})
    write_tokenizer_files(kind, tok, folder)
    greedy = results["greedy"][0]
    if kind in ("marian", "marian_separate"):
        marian = marian_tokenizer(folder)
        write_tokenizations(folder, lambda t: marian(t).input_ids,
                            lambda i: marian.decode(i, skip_special_tokens=True), greedy,
                            target=lambda t: marian(text_target=t).input_ids)
    elif kind == "m2m100_spm":
        # transformers 5.23's M2M100Tokenizer no longer registers the codes as special tokens
        # (its check for them is always false), so decode() would keep "__fr__"; they are
        # removed first, as earlier versions and the other multilingual tokenizers skip them.
        write_tokenizations(folder, lambda t: tok(t).input_ids,
                            lambda i: tok.decode([j for j in i if j not in tok.id_to_lang_token],
                                                 skip_special_tokens=True),
                            greedy, src="en", tgt="fr")
    elif kind == "mbart_cc25":
        write_tokenizations(folder, lambda t: tok(t).input_ids,
                            lambda i: tok.decode(i, skip_special_tokens=True), greedy,
                            src="en_XX", tgt="ro_RO")
    write_reference(model, folder, ids, mask, config.decoder_start_token_id)
    out = {name: {"options": run_args[name], "outputs": rows}
           for name, (rows, _) in results.items()}
    (folder / "generate.json").write_text(json.dumps(
        {"seed": seed, "transformers": transformers.__version__, "runs": out}, indent=1) + "\n")
    print(f"{kind}: seed {seed}")


def spiece_case(kind):
    """A tokenizer-only folder: spiece.model (T5's and Pegasus's ids: <pad> 0, </s> 1, <unk> 2),
    config.json's model_type and tokenize.json from transformers' tokenizer of the folder."""
    folder = OUT / kind
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    lines = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    text = folder / "corpus.txt"
    text.write_text("\n".join(line for line in lines if 0 < len(line) < 500 and line.isascii()))
    t5 = kind == "t5_spm"
    # T5's with a charsmap (NFKC + case folding, ~240 KB: the converters' Precompiled
    # normalizer), Pegasus's without (its newline and space rules instead).
    train_sentencepiece(text, folder / "spiece", 150, "unigram",
                        normalization="nfkc_cf" if t5 else "identity", pad_id=0, eos_id=1,
                        unk_id=2, bos_id=-1)
    text.unlink()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "t5" if t5 else "pegasus"}, indent=2) + "\n")
    if t5:
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"extra_ids": 100, "tokenizer_class": "T5Tokenizer"}, indent=2) + "\n")
        tok = transformers.T5Tokenizer.from_pretrained(str(folder))
        specials = [len(tok) - 1, 5, len(tok) - 100, 1]  # <extra_id_0>, a piece, <extra_id_99>
    else:
        tok = transformers.PegasusTokenizer.from_pretrained(str(folder))
        specials = [2, 3, 4, 110, 104, 1]  # <mask_1>, <mask_2>, <unk_2>, a piece, <unk_102>
    extra = ["\ufb01ne \uff21\uff22\uff23\u00a0x\u2003y", "tab\tand\nnewline\n", "\n",
             "</s> literal <extra_id_0> <mask_1> <unk_7>"]
    write_tokenizations(folder, lambda t: tok(t).input_ids,
                        lambda i: tok.decode(i, skip_special_tokens=True), [{"ids": specials}],
                        extra=extra)
    print(f"{kind}: {len(tok)} ids")


def main():
    torch.set_num_threads(1)  # tiny models: threads only add overhead
    kinds = sys.argv[1:] or list(MODELS) + ["t5_spm", "pegasus_spm"]
    for kind in ("t5_spm", "pegasus_spm"):
        if kind in kinds:
            spiece_case(kind)
    if set(kinds) & {"marian", "m2m100_spm", "mbart_cc25", "marian_separate"}:
        train_spm(SPM_DIR)
    for kind, seed in [("bart", 3000), ("mbart", 4000), ("marian", 5000), ("m2m100", 6000),
                       ("m2m100_spm", 7000), ("mbart_cc25", 8000), ("marian_separate", 9000),
                       ("pegasus", 10000)]:
        if kind in kinds:
            case(kind, seed)
    shutil.rmtree(SPM_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
