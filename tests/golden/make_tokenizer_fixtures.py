#!/usr/bin/env python3
"""Parity fixtures for the C tokenizer (tests/test_tokenizer.c).

Builds the three reference tokenizers with Hugging Face `tokenizers` /
`transformers` from the vocabularies in shared/data/tokenizers, saves each one's
tokenizer.json (gzipped), and records the ids HF gives for >= 5,000 real
sentences sampled deterministically from shared/data plus hand-written hard
cases, at max_length 512 and 32 (truncation=True).

Output (tests/golden/tokenizers/):
  sentences.txt.gz            one sentence per line, escaped: "\\\\" is a backslash,
                              "\\xHH" a raw byte (control bytes and the bytes of
                              invalid UTF-8, so those cases survive as bytes)
  <name>/tokenizer.json.gz    the HF tokenizer
  <name>/ids.txt.gz           two lines per sentence: ids at max_length 512,
                              then at 32, space-separated
  features.txt.gz             "seed<TAB>escaped text<TAB>ids" for the small
                              tokenizer.json files in tests/fuzz/seeds/fuzz_tokenizer_json

HF sees invalid UTF-8 the way Python's bytes.decode('utf-8', 'replace') turns
it into text, which is the behaviour the C side reproduces.

Run from the repository root:  python3 tests/golden/make_tokenizer_fixtures.py
(needs tokenizers and transformers; shared data dir = $SIMCSE_DATA_DIR or
../shared/data). Output is deterministic (gzip mtime 0, fixed seed).
"""
import csv
import gzip
import io
import os
import random
import sys
import unicodedata

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from transformers import BertTokenizerFast, RobertaTokenizerFast

DATA = os.environ.get("SIMCSE_DATA_DIR") or "../shared/data"
OUT = "tests/golden/tokenizers"
SEED = 20240601


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [l.rstrip("\r\n") for l in f]


def real_sentences():
    """~5,000 sentences from each kind of text the trainer reads."""
    rng = random.Random(SEED)
    sts = []
    for split in ("train", "dev", "test"):
        for line in read_lines(f"{DATA}/stsbenchmark/original/sts-{split}.csv"):
            f = line.split("\t")  # TAB only: the file has bare quotes
            if len(f) >= 7:
                sts += [f[5], f[6]]
    sick = []
    for line in read_lines(f"{DATA}/sick/SICK_train.txt")[1:]:
        f = line.split("\t")
        if len(f) >= 3:
            sick += [f[1], f[2]]
    nli = []
    with open(f"{DATA}/nli/nli_for_simcse.subset27k.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            nli += [row["sent0"], row["sent1"], row["hard_neg"]]
    wiki = read_lines(f"{DATA}/corpus/wiki1m_for_simcse.head.txt")
    with gzip.open(f"{DATA}/corpus/enwiki_sentences_150k.txt.gz", "rt", encoding="utf-8") as f:
        enwiki = [l.rstrip("\n") for l in f]
    out = []
    for pool, k in ((sts, 1000), (sick, 800), (nli, 1000), (wiki, 1100), (enwiki, 1100)):
        pool = sorted(set(pool))
        out += rng.sample(pool, k)
    return out, sts


def hard_cases(sts):
    """Hand-written cases, str or bytes (bytes = possibly invalid UTF-8)."""
    long_text = " ".join(sts[:60])  # far over 512 tokens
    cases = [
        "", " ", "     ", "\t\n", "\r\n", "hello     world", "   leading", "trailing   ", "a\tb\nc\rd",
        "Café naïve résumé déjà vu", "Ångström coöperate façade", "e\u0301 n\u0303 a\u0308\u0304 o\u0328\u0301",
        "Tiếng Việt có dấu", "İstanbul IĞDIR ıi", "Straße STRASSE ß ẞ", "ΟΔΥΣΣΕΥΣ Σίσυφος ΣΊΣΥΦΟΣ", "ǅemal ǈubljana ǋ",
        "我爱北京天安门。", "日本語のテキストです、カタカナ。", "한국어 문장입니다.", "中文English混合mixed文本",
        "I love 🍕 and 🎉!", "👨‍👩‍👧‍👦 family ZWJ", "🇺🇸🇫🇷🇯🇵 flags", "👍🏽👍🏿 skin tones", "1️⃣ #️⃣ keycaps",
        "😀😃😄😁😆😅🤣😂🙂🙃", "🥰🥳🥺 newer emoji", "❤️ ✨ ☕",
        "a\u200bb zero\u200cwidth\u200djoiner", "\ufeffBOM at start", "soft\u00adhyphen", "no\u00a0break\u00a0space",
        "line\u2028sep para\u2029sep", "ideographic\u3000space", "mongolian\u180evowel", "bidi \u202ertl\u202c \u200e\u200f",
        "nul\x00byte", "bell\x07 vt\x0b ff\x0c esc\x1b del\x7f", "nel\x85 c1\x9f", "\x1c\x1d\x1e\x1f unit seps",
        "ﬁnance ﬂow ﬀ ﬃ ﬄ", "½ ² ³ ℌ Ⅻ ™ ℃", "ＡＢＣ１２３！ｈｅｌｌｏ　ｗｏｒｌｄ", "ｶﾀｶﾅ half-width",
        "https://example.com/path/to?q=1&x=y#frag", "mailto:john.doe@example.org", "C:\\Users\\test\\file.txt",
        "a" * 99, "b" * 100, "c" * 101, "x" * 150, "supercalifragilisticexpialidocious" * 4, "é" * 100, "é" * 101,
        "word " * 300, "abc" * 400, long_text, long_text.upper(), " ".join(["antidisestablishmentarianism"] * 80),
        "مرحبا بالعالم، كيف حالك؟", "नमस्ते दुनिया, आप कैसे हैं?", "สวัสดีครับ ยินดีต้อนรับ", "שלום עולם", "Привет, мир! Ёлка",
        "Γειά σου Κόσμε", "Բարեւ Ձեզ", "ქართული ენა", "তুমি কেমন আছ", "தமிழ் மொழி", "ພາສາລາວ", "ꦧꦱꦗꦮ",
        "١٢٣ ٤٥٦ ०१२ 3.14159 1,000,000 2021-09-01 -5 +7 1e10", "$100 €50 £30 ¥20 ₹10 ₿1",
        "[CLS] hello [SEP] world [MASK] [mask] [PAD][UNK]", "x[MASK]y", "<s>hello</s> <mask> a<mask>b <pad><unk>",
        " <mask> ", "<|endoftext|> tail",
        "I'm, you're, he'll, they've, it's, we'd, can't, DON'T, I'M", "'s 't 're 've 'm 'll 'd", "rock 'n' roll ''quoted''",
        "don’t “smart quotes” ‘single’ «guillemets» „low“", "!!!???... --- ___ *** ### @@@ $$$ %%%", "(parens) [brackets] {braces} <angles>",
        "a.b,c;d:e!f?g", "¿Qué? ¡Sí!", "…ellipsis… —dash– ·middot· •bullet•",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝟙𝟚𝟛", "\ue000 private \U000f0000 use", "\u0378 unassigned \uffff nonchar \U0010ffff",
        "replacement \ufffd char", "\u0345\u0360 combining only", "\u0301start with combining",
        "ÀÁÂÃÄÅàáâãäå ÇçÑñ ØøÆæŒœ", "ﾟ｡･ 〜 ～", "Ⓐⓑⓒ ①②③ ㈱ ㍻", "Ⅰ Ⅱ ⅲ", "𠀀𠀁 CJK ext B", "豈 更 compatibility ideographs",
        "\u3400\u4dbf ext A", "한국어 자모 각", "ᏣᎳᎩ Cherokee", "Ελληνικά ΆΈΉΊΌΎΏ", "ΐ ΰ ǰ ẖ ẘ", "ŉ ſ ﬅ ﬆ",
        "The quick brown fox jumps over the lazy dog. " * 3, "   multiple   spaces   between   words   ",
        "mixed\ttabs\tand\nnewlines\ninside", "trailing newline\n", "\n\nleading newlines",
        b"abc\xff\xfe def", b"\xc3\x28 bad continuation", b"\xe2\x82 truncated", b"\xf0\x9f\x98 truncated emoji",
        b"caf\xe9 latin-1", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong", b"\xf4\x90\x80\x80 too big",
        b"\x80\x80 lone continuations", b"end \xe2\x82", b"\xe0\x80\xaf overlong3", b"\xf8\x88\x80\x80\x80 five",
        b"ok \xc3\xa9 then \xc3", b"\xfe\xff\x00\x00", b"mix \xe6\x97\xa5\xe6\x9c bad cjk",
    ]
    return cases


def expected_bert(c, lowercase):
    """BertNormalizer + BertPreTokenizer class of one code point, derived from
    Python's own Unicode database (its version, not HF's crates')."""
    cat = unicodedata.category(c)
    ws = c in "\t\n\r" or (c.isspace() and cat in ("Zs", "Zl", "Zp", "Cc"))
    if c in "\t\n\r":
        out = " "
    elif cat in ("Cc", "Cf", "Co") or c == "\ufffd":
        out = ""
    elif ws:
        out = " "
    else:
        out = c
    if lowercase:
        out = "".join(ch for ch in unicodedata.normalize("NFD", out) if unicodedata.category(ch) != "Mn")
        out = "".join(ch.lower() for ch in out)
    return out


SAMPLED = ("CJK UNIFIED IDEOGRAPH", "HANGUL SYLLABLE", "TANGUT", "CJK COMPATIBILITY IDEOGRAPH", "YI SYLLABLE",
           "EGYPTIAN HIEROGLYPH", "CUNEIFORM", "KHITAN", "NUSHU", "ANATOLIAN", "BAMUM", "LINEAR", "SIGNWRITING")


def codepoint_sweep():
    """Every code point where HF's Unicode data agrees with Python's, in
    sentences of 64 as " x<c>" (so that both how <c> normalizes and how it
    splits from a letter show in the ids). Code points on which the Unicode
    versions of HF's crates (Rust std, unicode_categories, Oniguruma) differ
    from Python's are left out: the C side follows utf8proc/PCRE2 there, see
    the report in tests/test_tokenizer.c. Large uniform blocks are sampled."""
    un = normalizers.BertNormalizer(lowercase=True)
    ca = normalizers.BertNormalizer(lowercase=False)
    bp = pre_tokenizers.BertPreTokenizer()
    picked = []
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        if cat == "Cn" or (cat == "Co" and cp % 4099):
            continue
        if unicodedata.name(c, "").startswith(SAMPLED) and cp % 37:
            continue
        if un.normalize_str(c) != expected_bert(c, True) or ca.normalize_str(c) != expected_bert(c, False):
            continue
        n = len(bp.pre_tokenize_str("a" + c + "b"))
        punct = cat.startswith("P") or (cp < 0x80 and not c.isalnum())
        if n != (3 if punct else 1) and not (n == 2 and c.isspace()):
            continue
        picked.append(c)
    return ["".join(" x" + c for c in picked[i : i + 64]) for i in range(0, len(picked), 64)]


SEEDS = "tests/fuzz/seeds/fuzz_tokenizer_json"
FEATURE_TEXTS = [
    "Hello world!", "Hello  world", " Hello", "xHello", "hello", "HELLO there", "HeLLo wOrld", "<s>Hello</s>",
    "x <mask> y", "x<mask>y", "x  <mask>", "<mask>", "a <mask>b", "a<mask>", "<mask>!", "x <mask> ", "_<mask>", "é<mask>",
    "[CLS] x [MASK] y", "x[MASK]y", "  [MASK]  z", "a  [MASK]  b", "[MASK][MASK]", "hello[MASK]", "Hello, world! I'm here.",
    "abc", "ab", "abcx", "xyz abc", "aab abc c", "abab abc", "ab ax xa aaa", "abx", "zzz", "zabz", "azzb",
    "日本 end", "a\xff b", "xx x xxx", "e\u0301", "!", "", " ", " \u3000Hello\u00a0world ", "Hello\nworld\n\n",
]


def feature_cases():
    """The small fuzz seeds exercise what the three real tokenizers do not
    (lstrip/rstrip/single_word/normalized added tokens, add_prefix_space,
    subword prefix + end-of-word suffix in BPE, fuse_unk, Sequence post-processor)."""
    lines = []
    for name in sorted(os.listdir(SEEDS)):
        if not name.endswith(".json"):
            continue
        tok = Tokenizer.from_file(f"{SEEDS}/{name}")
        for t in FEATURE_TEXTS:
            ids = " ".join(map(str, tok.encode(t).ids))
            lines.append(f"{name}\t{escape(t.encode('utf-8'))}\t{ids}\n")
    return "".join(lines)


def escape(b):
    """Escapes one sentence (bytes) for sentences.txt: valid UTF-8 stays."""
    s = b.decode("utf-8", errors="surrogateescape")
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= o <= 0xDCFF:  # an invalid byte
            out.append("\\x%02x" % (o - 0xDC00))
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return "".join(out)


def gz_write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as g:
            g.write(text.encode("utf-8"))


def main():
    real, sts = real_sentences()
    sentences = [s.encode("utf-8") for s in real]
    sentences += [c if isinstance(c, bytes) else c.encode("utf-8", errors="surrogatepass") for c in hard_cases(sts)]
    sweep = codepoint_sweep()
    print(f"code point sweep: {len(sweep)} sentences", file=sys.stderr)
    sentences += [c.encode("utf-8") for c in sweep]
    texts = [b.decode("utf-8", errors="replace") for b in sentences]
    for b in sentences:
        assert b"\n" not in escape(b).encode() and escape(b).encode() != b"\n"
    gz_write(f"{OUT}/sentences.txt.gz", "".join(escape(b) + "\n" for b in sentences))

    gz_write(f"{OUT}/features.txt.gz", feature_cases())

    tk = f"{DATA}/tokenizers"
    built = {
        "bert-base-uncased": BertTokenizerFast(f"{tk}/bert-base-uncased/vocab.txt", do_lower_case=True),
        "bert-base-cased": BertTokenizerFast(f"{tk}/bert-base-cased/vocab.txt", do_lower_case=False),
        "roberta-base": RobertaTokenizerFast(f"{tk}/roberta-base/vocab.json", f"{tk}/roberta-base/merges.txt"),
    }
    for name, hf in built.items():
        js = hf.backend_tokenizer.to_str()
        gz_write(f"{OUT}/{name}/tokenizer.json.gz", js)
        tok = Tokenizer.from_str(js)  # what the C side loads
        lines = []
        per_len = {}
        for max_len in (512, 32):
            tok.enable_truncation(max_len)
            ids = [e.ids for e in tok.encode_batch(texts)]
            ref = hf(texts, truncation=True, max_length=max_len)["input_ids"]
            assert ids == ref, f"{name}: tokenizers and transformers disagree at {max_len}"
            per_len[max_len] = ids
        for a, b in zip(per_len[512], per_len[32]):
            lines.append(" ".join(map(str, a)))
            lines.append(" ".join(map(str, b)))
        gz_write(f"{OUT}/{name}/ids.txt.gz", "\n".join(lines) + "\n")
        print(f"{name}: {len(texts)} sentences, {sum(map(len, per_len[512]))} ids at 512", file=sys.stderr)


if __name__ == "__main__":
    main()
