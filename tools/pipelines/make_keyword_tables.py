#!/usr/bin/env python3
"""Writes src/pipelines/keyword_text_tables.inc: what Ember needs to split a document into
KeyBERT's candidates exactly as scikit-learn's CountVectorizer does under KeyBERT's settings.

- kEnglishStopWords: scikit-learn's ENGLISH_STOP_WORDS (KeyBERT's default stop_words="english").
- kWordChars: the code points Python's `re` matches with `(?u)\\w` (the token_pattern
  `(?u)\\b\\w\\w+\\b` finds maximal runs of at least two of them).
- kLowerRuns / kLowerSpecial: Python's str.lower() per code point (the preprocessor's lowercase).
- kCaseIgnorable / kCased: the two properties str.lower() consults for capital sigma (U+03A3),
  which becomes final sigma (U+03C2) after a cased letter and before no cased letter, with
  case-ignorable characters skipped on both sides.

Everything is read from the reference itself (probing `re` and str.lower on every code point),
not from a Unicode database, so the table is what the reference does; its Unicode version is
pinned (Python 3.11's 14.0.0, the version of src/tokenizers/unicode_scripts.inc). A self-check
replays the tables in Python on random strings against re.findall and str.lower before writing.

Usage: tools/.venv/bin/python tools/pipelines/make_keyword_tables.py   (deterministic)
"""
import bisect
import pathlib
import random
import re
import sys
import unicodedata

import sklearn
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "src" / "pipelines" / "keyword_text_tables.inc"
UNICODE = "14.0.0"
SKLEARN = "1.9.1"

SIGMA, FINAL_SIGMA = 0x3A3, 0x3C2
SURROGATES = range(0xD800, 0xE000)


def code_points():
    return (c for c in range(0x110000) if c not in SURROGATES)


def ranges(predicate):
    out, start, prev = [], None, None
    for c in code_points():
        if predicate(c):
            if start is None or c != prev + 1:
                if start is not None:
                    out.append((start, prev))
                start = c
            prev = c
    if start is not None:
        out.append((start, prev))
    return out


def in_ranges(table, c):
    lo, hi = 0, len(table)
    while lo < hi:
        mid = (lo + hi) // 2
        if table[mid][1] < c:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(table) and table[lo][0] <= c


def lower_maps():
    single, special = {}, {}
    for c in code_points():
        low = chr(c).lower()
        if low == chr(c):
            continue
        if len(low) == 1:
            single[c] = ord(low)
        else:
            special[c] = [ord(x) for x in low]
    return single, special


def lower_runs(single):
    """(first, last, stride, delta): c in [first, last] with (c - first) % stride == 0 lowers to
    c + delta. Runs do not overlap, so a lookup finds at most one by binary search."""
    runs, keys, i = [], sorted(single), 0
    while i < len(keys):
        first = keys[i]
        delta = single[first] - first
        stride, last, j = 1, first, i + 1
        if j < len(keys) and keys[j] == first + 1 and single[keys[j]] - keys[j] == delta:
            while j < len(keys) and keys[j] == last + 1 and single[keys[j]] - keys[j] == delta:
                last, j = keys[j], j + 1
        elif (j < len(keys) and keys[j] == first + 2 and single[keys[j]] - keys[j] == delta
              and first + 1 not in single):
            stride = 2
            while (j < len(keys) and keys[j] == last + 2 and single[keys[j]] - keys[j] == delta
                   and last + 1 not in single):
                last, j = keys[j], j + 1
        runs.append((first, last, stride, delta))
        i = j
    return runs


def sigma_classes():
    """Probes str.lower's final-sigma rule: with A cased and 1 neither cased nor ignorable,
    "A" + c + "Σ" ends in final sigma iff c is case-ignorable or cased, and "1" + c + "Σ" iff c
    is cased and not case-ignorable (the cased-ness of an ignorable character is never read)."""
    ignorable, cased = set(), set()
    final = chr(FINAL_SIGMA)
    for c in code_points():
        if c == SIGMA:
            continue
        after_cased = ("A" + chr(c) + "Σ").lower()[-1] == final
        after_other = ("1" + chr(c) + "Σ").lower()[-1] == final
        if after_cased and not after_other:
            ignorable.add(c)
        elif after_other:
            cased.add(c)
    # Σ itself is cased (and not ignorable): "ΑΣΣ" ends in final sigma.
    assert "ΑΣΣ".lower() == "ασς"
    cased.add(SIGMA)
    return ignorable, cased


def replay_lower(text, runs, special, ignorable, cased):
    firsts = [r[0] for r in runs]
    out = []
    for i, ch in enumerate(text):
        c = ord(ch)
        if c == SIGMA:
            j = i - 1
            while j >= 0 and ord(text[j]) in ignorable:
                j -= 1
            final = j >= 0 and ord(text[j]) in cased
            if final:
                j = i + 1
                while j < len(text) and ord(text[j]) in ignorable:
                    j += 1
                final = j == len(text) or ord(text[j]) not in cased
            out.append(chr(FINAL_SIGMA if final else 0x3C3))
            continue
        if c in special:
            out.extend(chr(x) for x in special[c])
            continue
        k = bisect.bisect_right(firsts, c) - 1
        if k >= 0:
            first, last, stride, delta = runs[k]
            if c <= last and (c - first) % stride == 0:
                out.append(chr(c + delta))
                continue
        out.append(ch)
    return "".join(out)


def self_check(word, runs, special, ignorable, cased):
    rng = random.Random(14)
    pool = [chr(c) for c in list(special) + [SIGMA] * 20 + [r[0] for r in runs] + [r[1] for r in runs]]
    pool += [chr(c) for c in rng.sample(sorted(ignorable), 200) + rng.sample(sorted(cased), 200)]
    pool += list("  ab1_,.'-") * 10 + [chr(rng.randrange(0x110000)) for _ in range(300)]
    pool = [p for p in pool if ord(p) not in SURROGATES]
    pattern = re.compile(r"(?u)\b\w\w+\b")
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(1, 12)))
        expect = text.lower()
        got = replay_lower(text, runs, special, ignorable, cased)
        assert got == expect, (text, got, expect)
        tokens, run = [], ""
        for ch in expect + " ":
            if in_ranges(word, ord(ch)):
                run += ch
            else:
                if len(run) >= 2:
                    tokens.append(run)
                run = ""
        assert tokens == pattern.findall(expect), (expect, tokens)


def hex_ranges(table):
    items = [f"{{0x{a:X}, 0x{b:X}}}" for a, b in table]
    return "\n".join("    " + ", ".join(items[i:i + 4]) + "," for i in range(0, len(items), 4))


def main():
    if unicodedata.unidata_version != UNICODE:
        sys.exit(f"error: this Python carries Unicode {unicodedata.unidata_version}, "
                 f"the tables are pinned to {UNICODE}")
    if sklearn.__version__ != SKLEARN:
        sys.exit(f"error: scikit-learn {sklearn.__version__}, the stop words are pinned to {SKLEARN}")
    word_re = re.compile(r"(?u)\w")
    word = ranges(lambda c: word_re.match(chr(c)) is not None)
    single, special = lower_maps()
    runs = lower_runs(single)
    assert all(len(v) == 2 for v in special.values()), special
    ignorable, cased = sigma_classes()
    self_check(word, runs, special, ignorable, cased)
    stop = sorted(ENGLISH_STOP_WORDS)
    stop_lines = []
    line = "   "
    for w in stop:
        item = f' "{w}",'
        if len(line) + len(item) > 100:
            stop_lines.append(line)
            line = "   "
        line += item
    stop_lines.append(line)
    run_items = [f"{{0x{a:X}, 0x{b:X}, {s}, {d}}}" for a, b, s, d in runs]
    run_lines = "\n".join("    " + ", ".join(run_items[i:i + 3]) + ","
                          for i in range(0, len(run_items), 3))
    special_lines = "\n".join(f"    {{0x{c:X}, 0x{v[0]:X}, 0x{v[1]:X}}},"
                              for c, v in sorted(special.items()))
    text = f"""// Generated by tools/pipelines/make_keyword_tables.py from Python {sys.version.split()[0]}
// (Unicode {UNICODE}) and scikit-learn {SKLEARN}; do not edit. What the reference does, probed
// code point by code point: kWordChars is `(?u)\\w` of Python's re, kLowerRuns and kLowerSpecial
// are str.lower(), kCaseIgnorable and kCased are the properties its final-sigma rule reads;
// kEnglishStopWords is sklearn.feature_extraction.text.ENGLISH_STOP_WORDS. Ranges are sorted and
// disjoint.
// clang-format off
static constexpr std::string_view kEnglishStopWords[] = {{
{chr(10).join(stop_lines)}
}};
static constexpr CodeRange kWordChars[] = {{
{hex_ranges(word)}
}};
// c in [first, last] with (c - first) % stride == 0 lowers to c + delta.
static constexpr LowerRun kLowerRuns[] = {{
{run_lines}
}};
// Code points whose lowercase is two code points.
static constexpr LowerSpecial kLowerSpecial[] = {{
{special_lines}
}};
static constexpr CodeRange kCaseIgnorable[] = {{
{hex_ranges(ranges(lambda c: c in ignorable))}
}};
static constexpr CodeRange kCased[] = {{
{hex_ranges(ranges(lambda c: c in cased))}
}};
// clang-format on
"""
    OUT.write_text(text)
    print(f"{OUT.relative_to(ROOT)}: {len(stop)} stop words, {len(word)} word ranges, "
          f"{len(runs)} lowercase runs, {len(special)} special, "
          f"{len(ranges(lambda c: c in ignorable))} ignorable and "
          f"{len(ranges(lambda c: c in cased))} cased ranges")


if __name__ == "__main__":
    main()
