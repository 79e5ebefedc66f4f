#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/corpus.jsonl: the inputs of the tokenizer conformance suite.

One JSON string per line. Deterministic: re-running reproduces the same bytes. The lines cover
scripts, normalization forms, emoji sequences, control characters, every Unicode whitespace kind,
source code, numbers, added/special tokens inside text, contractions and one ~100 KB line
without spaces (mixed scripts) that exercises long-input paths.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizers" / "corpus.jsonl"

LONG_LINE_BYTES = 100_000


def lcg(seed):
    """Tiny deterministic generator (64-bit LCG) so the long line never depends on Python's RNG."""
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def long_line():
    # Fragments without any whitespace from several scripts; mixing them produces script changes,
    # digits, punctuation and multi-byte characters inside one very long "word".
    fragments = [
        "tokenization", "Überprüfung", "naïve", "café", "東京都", "こんにちは", "カタカナ",
        "한국어", "Москва", "Ελλάδα", "مرحبا", "שלום", "नमस्ते", "1234567", "3.14159",
        "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "--", "...", "!!!", "\u00e9", "e\u0301", "ﬁ", "Ⅻ",
        "ABCdef", "_snake_case_", "CamelCase", "0x1F", "#", "@", "'s", "n't",
    ]
    gen = lcg(20241126)
    parts = []
    size = 0
    while size < LONG_LINE_BYTES:
        frag = fragments[next(gen) % len(fragments)]
        parts.append(frag)
        size += len(frag.encode("utf-8"))
    text = "".join(parts)
    assert not any(c.isspace() for c in text)
    return text


WHITESPACE = [
    "\t", "\n", "\x0b", "\x0c", "\r", " ", "\x85", "\xa0", "\u1680",
    "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008",
    "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
]
ZERO_WIDTH = ["\u200b", "\ufeff", "\u200c", "\u200d", "\u2060"]


def lines():
    out = [
        # Empty, whitespace-only, leading/trailing spaces.
        "",
        " ",
        "   ",
        "Hello world",
        " Hello world",
        "Hello world ",
        "  leading and trailing  ",
        "multiple    inner     spaces",
        "Hello, world! How are you today?",
        "The quick brown fox jumps over the lazy dog.",
        "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
        "tokenization tokenizer tokenized untokenizable",
        # Latin with diacritics, precomposed and decomposed.
        "Crème brûlée, naïve café, façade, jalapeño, Zürich, Ærøskøbing, Łódź, Đặng",
        "Cre\u0300me bru\u0302le\u0301e, nai\u0308ve cafe\u0301",
        "\u00c5ngstr\u00f6m vs A\u030angstro\u0308m vs \u212bngstr\u00f6m",
        "Straße STRASSE ß ẞ ǅ ǈ ǋ ﬁ ﬂ ﬀ ﬃ",
        "\u1e9b\u0323 \u0071\u0307\u0323 \u1e0b\u0323 \u0064\u0323\u0307",
        "Ｆｕｌｌｗｉｄｔｈ　ＡＳＣＩＩ　１２３ and ｶﾀｶﾅ halfwidth",
        "①②③ ⅰⅱⅲ Ⅻ ¹²³ ½ ¼ ㎏ ㎞ ℃ ™ ℡ …",
        # Other scripts.
        "Γειά σου Κόσμε! Ελληνικά: αβγδε ΑΒΓΔΕ ς σ Σ ΐ ΰ",
        "Привет, мир! Съешь же ещё этих мягких французских булок. ЁЖИК",
        "مرحبا بالعالم! هذا نص عربي مع تشكيل: مُحَمَّد ١٢٣٤",
        "שלום עולם! עברית עם ניקוד: שָׁלוֹם",
        "नमस्ते दुनिया! हिन्दी में क्षत्रिय और ज्ञान १२३",
        "你好，世界！我们在测试中文分词。北京市朝阳区",
        "日本語のテキスト：こんにちは、世界。カタカナとひらがな、漢字。",
        "한국어 텍스트: 안녕하세요, 세계! 한글 자모 ᄀᄁᄂ",
        "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
        "Mixed: English, 中文, 日本語, 한국어, русский, العربية, עברית, हिन्दी",
        # Emoji.
        "😀 😃 😄 😁 😆 😅 🤣 😂",
        "👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
        "👨‍👩‍👧‍👦 family, 👩‍💻 coder, 🏳️‍🌈 flag, ❤️‍🔥",
        "Flags: 🇫🇷 🇩🇪 🇯🇵 🇺🇸 🇬🇧 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
        "emoji🙂inside🙂words and keycaps 1️⃣ #️⃣",
        # Control characters.
        "tab\tseparated\tvalues",
        "carriage\rreturn and\r\nCRLF",
        "null\x00byte and del\x7fchar",
        "C1 controls: \x80\x81\x85\x8d\x9f end",
        "bell\x07 backspace\x08 escape\x1b[0m",
        "line one\nline two\n\nline four",
        # Whitespace kinds, each alone between words and all in a row.
    ]
    for ws in WHITESPACE:
        out.append(f"a{ws}b")
    out.append("all" + "".join(WHITESPACE) + "whitespace")
    for zw in ZERO_WIDTH:
        out.append(f"zero{zw}width")
    out.append("\ufeffBOM at start")
    out += [
        # Source code.
        "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  return v.size() > 2 ? 0 : 1;\n}\n",
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "class Foo:\n\tdef __init__(self):\n\t\tself.x = {'a': [1, 2]}  # comment\n",
        "for (auto& [k, v] : map) { std::cout << k << \"=\" << v << '\\n'; }",
        "if (a && b || !c) x += y << 2; else x ^= ~y;",
        "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
        "https://example.com/path?query=1&b=two#frag user@example.org",
        "snake_case camelCase PascalCase SCREAMING_CASE kebab-case",
        # Numbers.
        "0 1 12 123 1234 12345 123456 1234567 12345678901234567890",
        "3.14159 2.71828 -0.5 +1e10 6.022e23 1/2 50% $19.99 €5,00",
        "1,000,000 and 1.000.000 and 1 000 000",
        "Phone: +1 (555) 123-4567, year 2024, version v1.2.3-rc4",
        "٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ ０１２３",
        # Added and special tokens inside text.
        "[CLS] hi [SEP]",
        "[CLS]hi[SEP][PAD][MASK][UNK]",
        "Hello [MASK] world",
        "partial tokens [CL S] [SE P] [CLS [SEP",
        "<s> hello </s>",
        "<s><s></s></s>",
        "<unk> <pad> <mask>",
        "<|endoftext|>",
        "text<|endoftext|>more text <|endoftext|><|endoftext|>",
        "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
        "<|endoftext <|endoftext| endoftext|>",
        "<EOT> <META> <cls> <sep>",
        "<｜begin▁of▁sentence｜>Hello<｜end▁of▁sentence｜>",
        " <special> word <special>word<special> ",
        # Repeated punctuation.
        "!!!!!!!! ???? ...... ------ ======== ******",
        "Wait... what?! No way!!! (really) [yes] {maybe} <no>",
        "\"quoted\" 'single' «guillemets» „German“ 「Japanese」",
        "a.b,c;d:e!f?g",
        "___init___ ~~~strike~~~ ```code```",
        # Contractions.
        "I'm you're he's she'd we'll they've can't won't isn't",
        "I'M YOU'RE HE'S SHE'D WE'LL THEY'VE CAN'T",
        "it's 'tis rock'n'roll o'clock y'all'd've",
        "don’t won’t it’s (curly apostrophes)",
        # Mixed-case and long words.
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "HTML <b>bold</b> &amp; &lt;tag&gt; &#x1F600;",
        "Math: ∀x∈ℝ, ∃y: x² + y² ≤ 1 → ∑ᵢ aᵢ ≠ ∞",
        "Combining marks only: \u0301\u0302\u0303 and a\u0301\u0302\u0303",
        "Private use \ue000\uf8ff and noncharacters \ufdd0 \uffff and high plane 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀",
        "Replacement char \ufffd and object \ufffc",
        long_line(),
    ]
    return out


def encode_line(text):
    line = json.dumps(text, ensure_ascii=False)
    # Keep one record per physical line for any reader that splits on Unicode line breaks.
    for ch in ("\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"):
        line = line.replace(ch, "\\u%04x" % ord(ch))
    assert json.loads(line) == text
    return line


def main():
    texts = lines()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(encode_line(t) + "\n" for t in texts)
    OUT.write_text(data, encoding="utf-8", newline="\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(texts)} lines, {len(data.encode())} bytes",
          file=sys.stderr)


if __name__ == "__main__":
    main()
