"""Deterministic generator of tokenizer test strings (many scripts, digits, whitespace, code,
special-token strings, emoji sequences, random code points, edge cases)."""
import random

SCRIPTS = {
    "latin": "The quick brown fox jumps over the lazy dog. Größe, naïve café, déjà vu, Ærøskøbing.",
    "cjk": "我们今天讨论大规模语言模型的推理服务。日本語の文章も含まれます。한국어 문장도 있습니다。",
    "kana": "カタカナとひらがなが混ざったテキストです。ｶﾀｶﾅ半角もある。",
    "arabic": "مرحبا بالعالم، هذا نص عربي مع تشكيل: السَّلَامُ عَلَيْكُمْ ١٢٣٤٥٦٧٨٩٠",
    "hebrew": "שלום עולם, זהו טקסט בעברית עם ניקוד: בְּרֵאשִׁית",
    "devanagari": "नमस्ते दुनिया, यह हिन्दी में लिखा गया पाठ है। क्षत्रिय ज्ञान ०१२३४५६७८९",
    "thai": "สวัสดีชาวโลก นี่คือข้อความภาษาไทยที่ไม่มีช่องว่างระหว่างคำ",
    "cyrillic": "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка",
    "greek": "Γειά σου Κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ΐΰ ς σ Σ",
    "armenian_georgian": "Բարեւ աշխարհ ქართული ენა ანბანი",
    "tamil_bengali": "வணக்கம் உலகம் নমস্কার বিশ্ব ગુજરાતી ਪੰਜਾਬੀ",
    "emoji": "😀😃😄 👍🏽👍🏿 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 ❤️‍🔥 🧑🏾‍💻 👩🏻‍❤️‍💋‍👨🏼 ✋🏻 #️⃣ 1️⃣",
    "math": "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ = ∫₀^∞ e^{-x} dx ≈ 1.0 ± 0.01 ‰ ∞ ≠ ∅ √2 ½ ¾ Ⅻ ①②",
    "symbols": "©®™ §¶ †‡ •… ‹›«» „“ ”‘’ – — ¡¿ ¤¢£¥€ ₹ ₿ ←↑→↓ ♠♣♥♦ ☃ ✓ ✗ ░▒▓ █",
    "fullwidth": "ＡＢＣ１２３！？＂ｆｕｌｌｗｉｄｔｈ　全角スペース",
    "combining": "e\u0301 a\u0308 n\u0303 \u0301\u0302 o\u0328\u0301 Z\u0351\u0352\u0353\u0354 ก\u0e48\u0e49",
    "invisible": "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom\u00adsoft\u2028ls\u2029ps\u0085nel",
}

CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "#include <vector>\nstd::vector<int> v{1, 2, 3};\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "<html><body class=\"main\"><p>Hello &amp; welcome</p></body></html>",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "fn main() { let s: &str = \"hi\"; println!(\"{}\", s); }",
    "x = lambda a, b: a if a > b else b\r\nprint(x(3, 4))\r\n",
    "$ ls -la | grep '^d' && echo \"done\" > /dev/null 2>&1",
    "const re = /^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$/i;",
    "    \t\tindented\twith\ttabs and    spaces   \n\n\n",
    "a\\nb\\tc\\\\d 'single' \"double\" `back` ${var} %s %d {0}",
]

SPECIAL = [
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
    "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>",
    "<｜tool▁calls▁end｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁output▁begin｜>",
    "<｜tool▁output▁end｜>", "<｜tool▁outputs▁end｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>",
    "<｜fim▁end｜>", "<|EOT|>", "<｜▁pad▁｜>", "<｜place▁holder▁no▁0｜>", "<｜place▁holder▁no▁17｜>",
    "<｜place▁holder▁no▁799｜>", "<think>", "</think>", "<s>", "</s>", "<|endoftext|>",
    "<｜User", "｜>", "<｜begin▁of▁sentence", "<<｜User｜>>", "<｜User｜><｜User｜>",
]

WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n ", "\u3000", "\u00a0",
              "\u2003", "\x0b", "\x0c", "\u0085", "\u2028", " \t \n"]

EMOJI_BASE = ["👍", "👋", "🧑", "👩", "👨", "✋", "🤝", "🏃", "🙋", "💪"]
SKIN = ["", "\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
ZWJ_PARTS = ["💻", "🔬", "🚀", "❤️", "👩", "👧", "🦰", "🦳", "🍳", "🎤"]


def _rand_codepoint(rng):
    while True:
        r = rng.random()
        if r < 0.4:
            cp = rng.randint(0x20, 0x2FFF)
        elif r < 0.7:
            cp = rng.randint(0x3000, 0xFFFD)
        elif r < 0.9:
            cp = rng.randint(0x10000, 0x1FAFF)
        else:
            cp = rng.randint(0, 0x10FFFF)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        return chr(cp)


def _emoji(rng):
    e = rng.choice(EMOJI_BASE) + rng.choice(SKIN)
    for _ in range(rng.randint(0, 3)):
        e += "\u200d" + rng.choice(ZWJ_PARTS) + rng.choice(["", "\ufe0f"])
    return e


def _digits(rng):
    n = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 16, 20, 33, 64, 100])
    s = "".join(rng.choice("0123456789") for _ in range(n))
    return rng.choice(["", "-", "+", "$", "v", " ", "x="]) + s + rng.choice(["", ".5", ",000", "%", "px", " "])


def _script_chunk(rng):
    text = SCRIPTS[rng.choice(list(SCRIPTS))]
    a = rng.randint(0, len(text) - 1)
    b = rng.randint(a + 1, min(len(text), a + 40))
    return text[a:b]


def _fragment(rng):
    k = rng.random()
    if k < 0.30:
        return _script_chunk(rng)
    if k < 0.40:
        return _digits(rng)
    if k < 0.50:
        return rng.choice(WHITESPACE) * rng.randint(1, 4)
    if k < 0.60:
        c = rng.choice(CODE)
        a = rng.randint(0, len(c) - 1)
        return c[a:a + rng.randint(1, 60)]
    if k < 0.68:
        return rng.choice(SPECIAL)
    if k < 0.76:
        return _emoji(rng)
    if k < 0.86:
        return "".join(_rand_codepoint(rng) for _ in range(rng.randint(1, 6)))
    if k < 0.90:
        return rng.choice(["\u0301", "\u0308", "\u20dd", "\u0e31", "\u093f", "\u200d", "\ufe0f",
                           "\U000E0041", "\U0001F3FB"])
    if k < 0.95:
        return rng.choice(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "n't", "I'M"])
    return rng.choice(list(".,;:!?-_()[]{}<>/\\|@#$%^&*~`\"'+=")) * rng.randint(1, 5)


def generate(seed, n):
    """Returns n strings; the fixed edge cases come first."""
    rng = random.Random(seed)
    out = [
        "", " ", "  ", "\n", "\r\n", "\t", "a", "0", "00", "000", "0000", "1234567890123",
        "Hello world", " Hello", "Hello ", "<｜begin▁of▁sentence｜>", "<｜User｜>hi<｜Assistant｜>",
        " <｜User｜> ", "\u0301", "\u0301\u0301abc", "👨‍👩‍👧‍👦", "🏳️‍🌈", "\ufeff", "\x00", "\x00\x01\x7f",
        "a" * 5000, " " * 3000, "\n" * 1000, "1" * 4000, "你" * 3000, "!" * 2000, "ab" * 2500,
        "\r\n" * 500, "😀" * 500, "é" * 2000, "\t " * 1000,
    ]
    while len(out) < n:
        r = rng.random()
        if r < 0.02:
            # Very long: many fragments.
            parts = [_fragment(rng) for _ in range(rng.randint(300, 3000))]
        elif r < 0.06:
            parts = [rng.choice(WHITESPACE) * rng.randint(1, 50)]
        else:
            parts = [_fragment(rng) for _ in range(rng.randint(1, 12))]
        sep = rng.choice(["", "", " ", " ", "\n", ""])
        out.append(sep.join(parts))
    return out[:n]


def random_id_lists(seed, n, vocab_size, specials):
    """Random id sequences for decode tests: plain, special-heavy, and byte-fragment ids."""
    rng = random.Random(seed + 7)
    lists = []
    for _ in range(n):
        ids = []
        for _ in range(rng.randint(0, 30)):
            r = rng.random()
            if r < 0.15 and specials:
                ids.append(rng.choice(specials))
            elif r < 0.45:
                ids.append(rng.randint(0, 1000))
            else:
                ids.append(rng.randint(0, vocab_size - 1))
        lists.append(ids)
    return lists
