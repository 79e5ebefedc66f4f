#!/usr/bin/env python3
"""Writes the tokenizer-training corpus: tests/fixtures/tokenizers/trainers/corpus_train.txt and
corpus_heldout.txt (~1.5 MB together; every 7th line is held out).

Sources, all text that ships with Debian (so the corpus can be rebuilt, give or take the
packages' versions, on any Debian machine; the committed files are the reference inputs):
  - English prose: the licence texts in /usr/share/common-licenses;
  - source code: modules of Python's standard library in /usr/lib/python3.11;
  - many scripts and languages: the native month, day and locale names of glibc's locale sources
    (/usr/share/i18n/locales, whose <Uxxxx> escapes are decoded), one line per locale section;
  - numbers: dates, prices, versions and measurements from a fixed 64-bit LCG.
Deterministic: the same inputs give the same bytes.

Usage: make_trainer_corpus.py
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizers" / "trainers"

PY_MODULES = [
    "textwrap", "difflib", "argparse", "json/decoder", "json/encoder", "csv", "heapq", "bisect",
    "fractions", "statistics", "shlex", "string", "calendar", "base64", "ipaddress", "gettext",
    "colorsys", "graphlib", "dataclasses", "enum",
]
UESC = re.compile(r"<U([0-9A-Fa-f]{4,6})>")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def licences():
    lines = []
    for p in sorted(pathlib.Path("/usr/share/common-licenses").iterdir()):
        if p.is_file() and not p.is_symlink():
            lines += p.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines


def python_code():
    lines = []
    for m in PY_MODULES:
        lines += pathlib.Path(f"/usr/lib/python3.11/{m}.py").read_text(encoding="utf-8").splitlines()
    return lines


def locale_lines():
    lines = []
    for p in sorted(pathlib.Path("/usr/share/i18n/locales").iterdir()):
        if not p.is_file():
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        # Continuation lines end in '/': join them so one keyword's strings form one line.
        text = re.sub(r"/\n", " ", text)
        for raw in text.splitlines():
            key = raw.split(None, 1)[0] if raw.strip() else ""
            if key not in ("mon", "day", "abday", "abmon", "title", "language", "territory",
                           "lang_name", "country_name", "yesstr", "nostr"):
                continue
            words = [UESC.sub(lambda m: chr(int(m.group(1), 16)), s) for s in QUOTED.findall(raw)]
            words = [w for w in words if w.strip()]
            if words:
                lines.append(" ".join(words))
    return lines


def number_lines(n):
    gen = lcg(20261130)
    units = ["km", "kg", "ms", "MB", "%", "°C", "€", "$", "¥"]
    out = []
    for _ in range(n):
        a, b, c, d = (next(gen) for _ in range(4))
        out.append(
            f"{2000 + a % 40}-{1 + b % 12:02d}-{1 + c % 28:02d}: {a % 100000}.{b % 100:02d} "
            f"{units[d % len(units)]}, v{a % 10}.{b % 20}.{c % 100}, x={d % 1000 - 500}e{b % 7}, "
            f"#{c % 65536:04x} {(a * b) % 1000003}")
    return out


def main():
    blocks = [licences(), python_code(), locale_lines(), number_lines(3000)]
    # Interleave the sources so that train and held-out parts both see every kind.
    lines = []
    longest = max(len(b) for b in blocks)
    for i in range(longest):
        for b in blocks:
            if i < len(b):
                lines.append(b[i])
    train = [l for i, l in enumerate(lines) if i % 7 != 6]
    held = [l for i, l in enumerate(lines) if i % 7 == 6]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "corpus_train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (OUT / "corpus_heldout.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
    for name in ("corpus_train.txt", "corpus_heldout.txt"):
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
