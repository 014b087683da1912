"""Hand-written Unicode and whitespace edge cases for the tokenizer comparisons.

Each string targets one behaviour: NFKC folding that SentencePiece does and the reference fast
v2 tokenizer gets wrong (″ ½ ⅓ ﬁ ＡＢＣ, "A\\u0302\\u0300"), combining marks, characters outside
the v3 vocabulary (byte fallback), emoji sequences, CJK, right-to-left scripts, zero-width and
control characters, unusual whitespace, and added tokens typed into text.
"""

EDGE_CASES = [
    # empty and whitespace only
    "", " ", "   ", "\t", "\n", "\r\n", " \t \n ", "\u3000", "\u00a0", "\u2028", "\x85", "\x1c\x1d",
    # runs of whitespace inside and around words
    "  two leading spaces", "trailing spaces   ", "multiple     internal      spaces",
    "tabs\tand\ttabs", "new\nline\n\nand blank", "crlf\r\nline", "mixed \t\n whitespace \u3000 kinds",
    "\u00a0non-breaking\u00a0space", "ideographic\u3000space", "x \u0085 y", "a\u2028b\u2029c",
    # NFKC folding
    "½ ⅓ ″ ﬁ ＡＢＣ① ㎏", "5½ inches", "1⅓ cups", "a 6″ rule", "12″x18″", "the ﬁnal ﬂight", "ＡＢＣ ｄｅｆ １２３",
    "Ⅻ Ⅳ ⅷ", "x² + y³ = z⁴", "㈱ ㍻ ㌔", "ｶﾀｶﾅ ﾊﾝｶｸ", "Ω Å K", "µ vs μ", "ℌ ℍ ℕ", "…", "‥ ‼ ⁇",
    # combining marks, decomposed and precomposed
    "A\u0302\u0300", "\u1ea6", "Â\u0300", "e\u0301 a\u0308 n\u0303 o\u0302\u0323", "toke\u0301nized",
    "½\u0301", "ﬁ\u0308", "\u0301 leading combining mark", "Z\u0351\u0362\u0327a\u0337\u0335lgo",
    "\u1100\u1161\u11a8 \u3131\u314f hangul jamo", "가각갂 한국어", "ｱﾞｲﾟ", "\u304b\u3099 \u30cf\u309a",
    # outside the v3 vocabulary (byte fallback) and rare scripts
    "𩸽 𠀀 𪚲", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝", "\U0001d11e music", "Ꭰ Ꭱ Ꭲ cherokee", "ᚠᚢᚦ runes", "ꦗꦮ javanese",
    # emoji
    "emoji 😀😂🤔👍🏽", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵 flags", "❤️ ✨ ☺️", "1️⃣ #️⃣", "🏳️‍🌈",
    # CJK and right-to-left
    "北京是中华人民共和国的首都。", "東京は日本の首都です。カタカナ、ひらがな。", "서울은 대한민국의 수도이다.",
    "القاهرة هي عاصمة مصر.", "ירושלים היא עיר.", "\u202eRTL override\u202c text", "abc \u200fمرحبا\u200e def",
    "mixed中文English日本語한국어",
    # zero-width and control characters
    "zero\u200bwidth\u200bspace", "zero\u200cnon\u200djoiner", "\ufeffbyte order mark", "soft\u00adhyphen",
    "control \x07 bell \x1b esc \x00 nul", "del\x7fchar", "\u2060word\u2060joiner", "\ufe0fvariation",
    # text that looks like special or byte pieces
    "<0x41> <0xE1>", "▁ leading mark", "a▁b", "<unk> <s> </s> <pad> <|endoftext|>", "[UNK] [PAD]",
    "［ＭＡＳＫ］ full-width mask", "[mask] lower case", "[MASK", "MASK]",
    # the mask token, with and without spaces before it
    "The capital of France is [MASK].", "[MASK] at the start", "ends with [MASK]", "no space[MASK]here",
    "two spaces  [MASK] before", "tab\t[MASK] before", "[MASK][MASK] twice", "[CLS] and [SEP] typed in",
    # punctuation, numbers, code, urls
    "I'll we're they've she'd it's DON'T You'RE", "3.14159 1,000,000 2024-01-31 10:45pm $5.99 50%",
    "https://example.com/path?q=a&b=c#frag", "def f(x):\n    return x**2  # comment",
    "quotes “curly” ‘single’ «guillemets» — – …", "math ∀x∈ℝ: x²≥0, ∑ᵢ aᵢ ≤ ∞",
    "Zürich, Øresund, Ærø, façade, naïve, coöperate, Straße", "İstanbul ığdır şçöü ĞÜŞİÖÇ",
    "''quoted'' \"double\" `back`", "'s 't 're 've 'm 'll 'd",
]
