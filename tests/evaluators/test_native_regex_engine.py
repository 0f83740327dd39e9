"""The native regex engine (evaluators/native/runtime/re_engine.c) against Python's `re`, differentially.

The engine is built as a native shared library for the host with the zig toolchain from PyPI and driven
through ctypes. For every (pattern, flags, text): whether Python's search and fullmatch match, and where (in
code points); for patterns Python rejects, the same error message; patterns the engine refuses must use a
documented unsupported construct.
"""

# ruff: noqa: RUF001  (look-alike characters are the point here)
from __future__ import annotations

import ctypes
import random
import re
import signal
import subprocess
import sys
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ENGINE_DIR = Path(__file__).resolve().parents[2] / "evaluators" / "native" / "runtime"

# The API's flag bits (re_engine.h) and Python's.
RE_IGNORECASE, RE_MULTILINE, RE_DOTALL = 1, 2, 4
IC, ML, DA = RE_IGNORECASE, RE_MULTILINE, RE_DOTALL
PY_FLAGS = {RE_IGNORECASE: re.IGNORECASE, RE_MULTILINE: re.MULTILINE, RE_DOTALL: re.DOTALL}

# What the engine may refuse ("unsupported: <construct> at position N"), as documented in re_engine.c.
UNSUPPORTED = (
    "\\N{...} named character escape",
    "ASCII flag (?a)",
    "TEMPLATE flag (?t)",
    "non-ASCII group name",
    "pattern nested too deeply",
)

SHIM = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "re_engine.h"

/* The arena: every allocation is freed by shim_reset(); `budget` simulates running out of memory. */
typedef struct chunk { struct chunk *next; void *pad; } chunk;
static chunk *chunks;
static size_t used, budget = (size_t)-1;

void *vg_alloc(size_t size) {
    if (size > budget - used) return NULL;
    used += size;
    chunk *c = malloc(sizeof(chunk) + size);
    if (!c) return NULL;
    c->next = chunks;
    chunks = c;
    return c + 1;
}

void shim_reset(size_t limit) {
    while (chunks) {
        chunk *next = chunks->next;
        free(chunks);
        chunks = next;
    }
    used = 0;
    budget = limit;
}

void shim_limit(size_t extra) { budget = used + extra; }

static re_prog *prog;

int shim_compile(const char *pattern, size_t len, int flags, char *err, size_t cap) {
    const char *e = NULL;
    prog = re_compile(pattern, len, flags, &e);
    if (prog) return 1;
    size_t n = strlen(e);
    if (n >= cap) n = cap - 1;
    memcpy(err, e, n);
    err[n] = 0;
    return 0;
}

int shim_exec(const char *text, size_t len, int fullmatch, size_t *out) {
    return re_exec(prog, text, len, fullmatch, out, out + 1, out + 2, out + 3);
}
"""


class Engine:
    """The engine in a shared library: compile one pattern, then run it on texts."""

    def __init__(self, path: Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.lib.shim_reset.argtypes = [ctypes.c_size_t]
        self.lib.shim_limit.argtypes = [ctypes.c_size_t]
        self.lib.shim_compile.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p]
        self.lib.shim_compile.argtypes += [ctypes.c_size_t]
        self.lib.shim_exec.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
        self.err = ctypes.create_string_buffer(4096)
        self.out = (ctypes.c_size_t * 4)()

    def compile(self, pattern: str, flags: int = 0, memory: int = 2**62) -> str | None:
        """None when compiled, else the error message."""
        self.lib.shim_reset(memory)
        data = pattern.encode("utf-8", "surrogatepass")
        if self.lib.shim_compile(data, len(data), flags, self.err, len(self.err)):
            return None
        return self.err.value.decode("utf-8", "surrogatepass")

    def run(self, text: str, fullmatch: bool) -> tuple[int, int] | None:
        data = text.encode()
        r = self.lib.shim_exec(data, len(data), int(fullmatch), self.out)
        assert r in (0, 1), f"re_exec returned {r}"
        if not r:
            return None
        start, end, start_byte, end_byte = self.out
        assert data[:start_byte].decode() == text[:start] and data[start_byte:end_byte].decode() == text[start:end]
        return start, end

    def exec_raw(self, text: bytes, fullmatch: bool) -> int:
        return self.lib.shim_exec(text, len(text), int(fullmatch), self.out)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    try:
        import ziglang  # noqa: F401
    except ImportError:
        pytest.fail("the zig toolchain is missing: pip install ziglang (requirements.txt)", pytrace=False)
    tmp = tmp_path_factory.mktemp("re_engine")
    subprocess.run([sys.executable, str(ENGINE_DIR / "gen_re_tables.py"), str(tmp / "re_tables.h")], check=True)
    (tmp / "shim.c").write_text(SHIM)
    lib = tmp / "re_engine.so"
    # -Bsymbolic: glibc has a legacy re_exec() of its own, which would otherwise win over the engine's.
    cc = [sys.executable, "-m", "ziglang", "cc", "-shared", "-fPIC", "-Wl,-Bsymbolic", "-O2", "-std=c11"]
    cc += ["-Wall", "-Wextra", "-Werror"]
    cc += ["-I", str(tmp), "-I", str(ENGINE_DIR), str(ENGINE_DIR / "re_engine.c"), str(tmp / "shim.c"), "-o", str(lib)]
    proc = subprocess.run(cc, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return Engine(lib)


# --- comparing with Python ---------------------------------------------------------------------------------


def py_flags(flags: int) -> int:
    out = 0
    for bit, py in PY_FLAGS.items():
        if flags & bit:
            out |= py
    return out


def python_compile(pattern: str, flags: int) -> re.Pattern[str] | str:
    """The compiled pattern, or the text of the exception Python raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return re.compile(pattern, py_flags(flags))
        except (re.error, OverflowError) as e:
            return str(e)


def span(m: re.Match[str] | None) -> tuple[int, int] | None:
    return m.span() if m else None


class _TooSlow(Exception):
    pass


def python_spans(rx: re.Pattern[str], text: str, budget: float | None) -> tuple[object, object] | None:
    """Python's (search, fullmatch) spans; None when they take longer than `budget` seconds (sre checks for
    signals while it backtracks, so an interval timer can stop it) or hit sre's group-span bug."""

    def stop(signum: int, frame: object) -> None:
        raise _TooSlow

    if budget is None:
        try:
            return span(rx.search(text)), span(rx.fullmatch(text))
        except SystemError:  # sre raises "The span of capturing group is wrong" on some patterns
            return None
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        return span(rx.search(text)), span(rx.fullmatch(text))
    except (_TooSlow, SystemError):
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check(
    engine: Engine, pattern: str, flags: int, texts: tuple[str, ...] | list[str], budget: float | None = None
) -> int:
    """The engine agrees with Python on the pattern and every text (search and fullmatch); returns how many
    texts were compared."""
    expected = python_compile(pattern, flags)
    got = engine.compile(pattern, flags)
    where = f"pattern {pattern!r} flags {flags}"
    if isinstance(expected, str):
        assert got == expected, f"{where}: Python rejects it with {expected!r}, the engine says {got!r}"
        return 0
    assert got is None, f"{where}: Python compiles it, the engine says {got!r}"
    compared = 0
    for text in texts:
        spans = python_spans(expected, text, budget)
        if spans is None:
            continue
        assert engine.run(text, False) == spans[0], f"{where}: search in {text!r}"
        assert engine.run(text, True) == spans[1], f"{where}: fullmatch of {text!r}"
        compared += 1
    return compared


# --- 1. hand-written cases ---------------------------------------------------------------------------------

T_AB = ("", "a", "b", "ab", "ba", "aab", "abb", "abab", "xaby", "a\nb", "AB", "aAbB")
T_LINES = ("", "\n", "a", "a\n", "a\nb", "a\nb\n", "\na", "ab\ncd\n\n", "x\n\ny", "\n\n")
T_WORDS = ("", " ", "foo bar", "foo_bar9", "é-ß", "naïve café", "日本語 テキスト", "a1 b2", "Σσς", "--x--", "١٢٣ 42")
T_UNI = ("", "é", "eé", "ßSS", "Straße", "ΣΑΣ σας", "日本語", "a😀b", "😀😀", "İı iI", "ſs S", "Kk K", "x𐐀𐐨y", "µμΜ")
T_NUM = ("", "0", "42", "a1b22c333", "doc-1234#p5", "١٢٣", "12.5e-3", "x" * 5 + "123")
JSON = '{"citations": ["doc-0042#p7", "doc-1234#p12"], "answer": "yes", "score": 0.91, "note": "ok"}'

CASES: list[tuple[str, int, tuple[str, ...]]] = [
    # literals and the dot
    ("a", 0, T_AB),
    ("ab", 0, T_AB),
    ("abc", 0, ("abc", "xxabcxx", "ab", "aabc", "")),
    ("", 0, T_AB),
    (".", 0, T_LINES),
    ("a.b", 0, ("ab", "aab", "a\nb", "axb", "a😀b")),
    ("a.b", DA, ("ab", "aab", "a\nb", "axb")),
    ("..", 0, T_UNI),
    ("é", 0, T_UNI),
    ("日本", 0, T_UNI),
    ("😀", 0, T_UNI),
    ("a😀b", 0, T_UNI),
    ("\x00", 0, ("\x00", "a\x00b", "")),
    ("a\x00*b", 0, ("ab", "a\x00\x00b", "a\x00")),
    # anchors
    ("^", 0, T_LINES),
    ("$", 0, T_LINES),
    ("^$", 0, T_LINES),
    ("^a", 0, T_LINES),
    ("a$", 0, T_LINES),
    ("^a$", 0, T_LINES),
    ("^", ML, T_LINES),
    ("$", ML, T_LINES),
    ("^b", ML, T_LINES),
    ("a$", ML, T_LINES),
    ("^$", ML, T_LINES),
    ("^.*$", ML, T_LINES),
    ("^.*$", 0, T_LINES),
    ("(?m)^\\w+$", 0, T_LINES),
    (r"\Aa", ML, T_LINES),
    (r"a\Z", ML, T_LINES),
    (r"\A\Z", 0, T_LINES),
    (r"$\n", 0, T_LINES),
    (r"a$\n?", 0, T_LINES),
    (r"\n$", 0, T_LINES),
    # word boundaries (Unicode \w)
    (r"\b", 0, T_WORDS),
    (r"\B", 0, T_WORDS),
    (r"\b\w+\b", 0, T_WORDS),
    (r"\B\w+", 0, T_WORDS),
    (r"\bé", 0, ("é", "aé", " é", "-é")),
    (r"ß\b", 0, ("ß", "ßa", "ß ", "ß-")),
    (r"\b\d+\b", 0, (*T_NUM, "١٢٣ ٤", "a١")),
    (r"\w+", 0, T_WORDS + T_UNI),
    (r"\W+", 0, T_WORDS + T_UNI),
    (r"\d+", 0, T_NUM + T_WORDS),
    (r"\D+", 0, T_NUM),
    (r"\s+", 0, ("a b", "\t\n\r\x0b\x0c", "\x1c\x1d\x1e\x1f", "\u00a0\u2003\u3000x", "\x85", "\u200b", "a")),
    (r"\S+", 0, ("a b", " \u00a0x", "")),
    # classes
    ("[abc]", 0, T_AB),
    ("[^abc]", 0, (*T_AB, "\n", "é")),
    ("[a-c]+", 0, (*T_AB, "abcd")),
    ("[]]", 0, ("]", "a]", "[]")),
    ("[]a]+", 0, ("]a]", "b")),
    ("[^]]+", 0, ("ab]c", "]]")),
    ("[]-a]+", 0, ("]^_`a", "b")),
    ("[-a]+", 0, ("-a-", "b")),
    ("[a-]+", 0, ("-a-", "b")),
    ("[a\\-z]+", 0, ("a-z", "b")),
    ("[\\]\\\\^-]+", 0, ("]\\^-", "a")),
    ("[\\^a]", 0, ("^", "a", "b")),
    ("[a^]+", 0, ("^a", "b")),
    ("[\\d_]+", 0, (*T_NUM, "__1")),
    ("[\\w.-]+@[\\w.-]+", 0, ("mail: ann.lee@example.org!", "a@b", "@")),
    ("[\\s\\d]+", 0, ("1 2\t3", "x")),
    ("[\\D]+", 0, T_NUM),
    ("[^\\W\\d]+", 0, T_WORDS + T_NUM),
    ("[^\\s]+", 0, ("a b", " ")),
    ("[\\S\\s]+", 0, T_LINES),
    ("[.]", 0, (".", "a")),
    ("[*+?{}()|$]+", 0, ("a*+?{}()|$b",)),
    ("[\\n\\t]", 0, ("a\tb", "\n", "n")),
    ("[\\x41-\\x43]+", 0, ("ABCD", "abc")),
    ("[\\u00e0-\\u00ff]+", 0, ("àéÿ", "É", "a")),
    ("[\\U0001F600-\\U0001F64F]+", 0, ("😀😁x", "a😀", "")),
    ("[à-ÿ]+", 0, ("àéÿ", "É")),
    ("[α-ω]+", 0, ("αβγ ΑΒΓ",)),
    ("[\\0-\\x1f]", 0, ("a\x01", "\x00")),
    ("[\\101]", 0, ("A", "a")),
    ("[\\1]", 0, ("\x01", "1")),
    ("[a-a]", 0, ("a", "b")),
    ("[aa]", 0, ("a", "b")),
    ("[\\b]", 0, ("\x08", "b")),
    # escapes
    (r"\.\*\+\?\(\)\[\]\{\}\|\^\$\-\/", 0, (".*+?()[]{}|^$-/", "x")),
    (r"\\", 0, ("\\", "a\\b", "")),
    (r"\n\t\r\f\v\a", 0, ("\n\t\r\f\v\a", "x")),
    (r"\0", 0, ("\x00", "0")),
    (r"\07", 0, ("\x07", "7")),
    (r"\012", 0, ("\n", "12")),
    (r"\101\102", 0, ("AB", "ab")),
    (r"\x41\u00e9\U0001F600", 0, ("Aé😀", "A")),
    (r"\é\ \#", 0, ("é #",)),
    (r"\%\&\'\"\,\;\:\<\>\=\!\@\`\~", 0, ("%&'\",;:<>=!@`~",)),
    # quantifiers
    ("a*", 0, T_AB),
    ("a+", 0, T_AB),
    ("a?", 0, T_AB),
    ("a*?", 0, T_AB),
    ("a+?", 0, T_AB),
    ("a??", 0, T_AB),
    ("a*b", 0, T_AB),
    ("a*?b", 0, T_AB),
    ("a{2}", 0, T_AB),
    ("a{1,2}", 0, ("aaa", "a", "")),
    ("a{1,2}?", 0, ("aaa", "a")),
    ("a{2,}", 0, ("a", "aa", "aaaa")),
    ("a{,2}", 0, ("aaa", "")),
    ("a{,}", 0, ("aaa", "")),
    ("a{0}", 0, ("a", "")),
    ("a{0,0}b", 0, ("ab", "b")),
    ("(?:ab){2,3}", 0, ("ab", "abab", "abababab")),
    ("(?:ab){2,3}?", 0, ("abababab",)),
    ("(?:a|bc)+d", 0, ("abcad", "bcbc", "d")),
    ("(a|b)*c", 0, ("abbac", "c", "ab")),
    ("(a*)*b", 0, ("aaab", "b", "aaa")),
    ("(a*)+b", 0, ("aaab", "b")),
    ("(a|)*b", 0, ("aab", "b")),
    ("(?:)*", 0, ("a", "")),
    ("(?:a?)*?b", 0, ("aab", "b")),
    ("(?:a??){2,}b", 0, ("aab", "b", "ab")),
    ("(?:x*)*y", 0, ("xxy", "y", "xx")),
    ("(?:a*?)+?b", 0, ("aab",)),
    ("a.*b", 0, ("axxbxxb", "ab", "a\nb")),
    ("a.*?b", 0, ("axxbxxb", "ab")),
    ("a.*b", DA, ("a\nb\nb",)),
    ("<.+>", 0, ("<a><b>",)),
    ("<.+?>", 0, ("<a><b>",)),
    ("x*y*z*", 0, ("", "zzz", "xyz", "yx")),
    ("(?:a|ab)(?:c|bcd)(d*)", 0, ("abcd",)),
    # `{` as a literal
    ("a{", 0, ("a{", "a")),
    ("a{}", 0, ("a{}",)),
    ("a{,", 0, ("a{,",)),
    ("a{1", 0, ("a{1",)),
    ("a{1,", 0, ("a{1,",)),
    ("a{x}", 0, ("a{x}",)),
    ("a{ 1}", 0, ("a{ 1}", "a")),
    ("{", 0, ("{",)),
    ("x{}y", 0, ("x{}y",)),
    ("}", 0, ("}",)),
    ("a{1}{", 0, ("a{",)),
    # possessive and atomic
    ("a*+", 0, T_AB),
    ("a++b", 0, T_AB),
    ("a?+a", 0, ("a", "aa")),
    ("a*+a", 0, ("aaa",)),
    ("(?:ab)*+ab", 0, ("ababab",)),
    ("(?:a|ab)++c", 0, ("abc", "ac", "aabc")),
    ("a{1,2}+a", 0, ("aa", "aaa")),
    ("(?>a*)a", 0, ("aaa",)),
    ("(?>a|ab)c", 0, ("abc", "ac")),
    ("(?>(?:a|ab)+)c", 0, ("abc", "aac")),
    ("(?>x*?)y", 0, ("xxy", "y")),
    # alternation
    ("a|b", 0, T_AB),
    ("ab|a", 0, T_AB),
    ("a|ab", 0, T_AB),
    ("|a", 0, T_AB),
    ("a|", 0, T_AB),
    ("a||b", 0, T_AB),
    ("(a|ab)(c|bcd)", 0, ("abcd",)),
    ("a?ab|a?", 0, ("ab",)),
    ("abc|abd|aef", 0, ("aef", "abd", "abx")),
    ("(?:cat|category)s?", 0, ("categorys", "cats")),
    ("x(?:|y)z", 0, ("xz", "xyz")),
    ("é|ß|日|😀", 0, T_UNI),
    # groups and backreferences
    ("(a)\\1", 0, ("aa", "ab", "baab")),
    ("(a*)\\1", 0, ("aaaa", "aaa", "")),
    ("(a|b)\\1+", 0, ("abbba", "ab")),
    ("(?P<x>a|b)(?P=x)", 0, ("abba", "ab")),
    ("(?P<first>\\w)\\w*(?P=first)", 0, ("abca", "abc", "éxé")),
    ("(a)|\\1", 0, ("a", "b")),
    ("(a)?b\\1", 0, ("b", "aba", "ab")),
    ("((a)|b)+\\2", 0, ("aba", "abb")),
    ("(?:(a)|b)*\\1", 0, ("aba", "bb")),
    ("(\\w+) \\1", 0, ("hello hello", "the the cat", "a b")),
    ("(é+)\\1", IC, ("éÉ", "ÉÉé")),
    ("(ς)\\1", IC, ("ςσ", "ςΣ")),
    ("(K)\\1", IC, ("Kk", "KK", "kK")),
    ("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\10", 0, ("abcdefghijj", "abcdefghija0")),
    ("(a)\\10", 0, ("a\x08", "aa0")),
    (
        "".join(f"({c})" for c in "abcdefghijklmnopqrstuvwxyzABCD") + "\\30\\1",
        IC,
        ("abcdefghijklmnopqrstuvwxyzABCDda",),
    ),
    ("(a)\\011", 0, ("a\t",)),
    # conditionals
    ("(a)?(?(1)b|c)", 0, ("ab", "c", "ac", "b")),
    ('(?P<q>")?\\w+(?(q)")', 0, ('"abc"', "abc", '"abc')),
    ("(a)?(?(1)b)", 0, ("ab", "a", "")),
    ("(?(1)a|b)(x)", 0, ("bx", "ax")),
    ("(?(2)a|b)(x)(y)", 0, ("bxy", "axy")),
    ("(?:(a)|b)(?(1)c|d)+", 0, ("acc", "bdd", "bc")),
    ("(?P<n>a)?(?(n)b|c)(?P=n)?", 0, ("aba", "c", "ab")),
    # lookarounds
    ("a(?=b)", 0, T_AB),
    ("a(?!b)", 0, T_AB),
    ("(?<=a)b", 0, T_AB),
    ("(?<!a)b", 0, T_AB),
    ("(?<=ab)c", 0, ("abc", "bc", "c")),
    ("(?<!ab)c", 0, ("abc", "bc", "c")),
    ("(?<=\\d{3})x", 0, ("123x", "12x")),
    ("(?<=é)😀", 0, ("é😀", "e😀")),
    ("(?<=😀)x", 0, ("😀x", "x")),
    ("(?<=^|,)\\w+", 0, ("a,b", ",x")),
    ("(?=(a+))a*b\\1", 0, ("baaabac",)),
    ("(?!(a))\\w", 0, ("ab", "b")),
    ("(?=a)*", 0, ("a", "")),
    ("(?:(?=a)|b)+", 0, ("ab", "ba")),
    ("\\w+(?=,)", 0, ("ab,cd", "ab")),
    ("(?<=(a))b\\1", 0, ("aba", "abb")),
    ("(a)(?<=\\1)", 0, ("a", "ba")),
    ("(ab)c(?<=\\1c)", 0, ("abc", "xabcx")),
    ("(?<=a|b)c", 0, ("ac", "bc", "cc")),
    ("(?<=(?:ab|cd))e", 0, ("abe", "cde", "xe")),
    ("(?<![a-z])\\d", 0, ("a1 2",)),
    ("(?<=\\b)a", 0, ("a", "ba")),
    ("^(?!.*bad).*$", ML, ("good\nbad thing\nfine",)),
    # inline flags
    ("(?i)abc", 0, ("ABC", "aBc", "abd")),
    ("(?i:a)b", 0, ("Ab", "AB")),
    ("a(?i:b)", 0, ("aB", "AB")),
    ("(?i)a(?-i:b)", 0, ("Ab", "AB")),
    ("(?s).", 0, ("\n",)),
    ("(?s:.)(.)", 0, ("\n\n", "\na")),
    ("(?m)^a", 0, ("b\na",)),
    ("(?ms)^.+$", 0, ("a\nb",)),
    ("(?x) a b # comment\n c", 0, ("abc", "a b c")),
    ("(?x)[ ]a", 0, (" a", "a")),
    ("(?x)a\\ b", 0, ("a b", "ab")),
    ("(?x)a{2} ?", 0, ("aa", "aaa")),
    ("(?x:a b)c d", 0, ("abc d", "abcd")),
    ("(?x)a#\\\nb", 0, ("a", "ab")),
    ("(?u)\\w", 0, ("é",)),
    ("(?im)^B$", 0, ("a\nb\n",)),
    ("(?i)(?m)x", 0, ("X",)),
    ("(?#comment)a(?#another)b", 0, ("ab",)),
    # IGNORECASE
    ("abc", IC, ("ABC", "aBc", "ab")),
    ("é", IC, ("É", "e")),
    ("ß", IC, ("ß", "ẞ", "SS", "ss")),
    ("ẞ", IC, ("ß", "ẞ")),
    ("σ", IC, ("Σ", "ς", "σ")),
    ("Σ", IC, ("σ", "ς")),
    ("ς", IC, ("Σ", "σ")),
    ("s", IC, ("S", "ſ", "ß")),
    ("ſ", IC, ("s", "S")),
    ("k", IC, ("K", "K", "k")),
    ("K", IC, ("k", "K")),
    ("i", IC, ("I", "İ", "ı")),
    ("I", IC, ("i", "İ", "ı")),
    ("İ", IC, ("i", "I", "ı", "İ")),
    ("ı", IC, ("i", "I", "İ")),
    ("µ", IC, ("μ", "Μ")),
    ("ΐ", IC, ("ΐ",)),
    ("[a-z]+", IC, ("ABCſK", "İı")),
    ("[A-Z]+", IC, ("abcſK", "İı")),
    ("[^a-z]+", IC, ("ABC123", "ſK")),
    ("[k]", IC, ("K", "K")),
    ("[σ]+", IC, ("ΣσςΣ",)),
    ("[ǅ]", IC, ("Ǆ", "ǆ", "ǅ")),
    ("[\\w]+", IC, T_WORDS),
    ("[^\\W]+", IC, T_WORDS),
    ("[a\\d]+", IC, ("A1a", "b")),
    ("[Α-Ω]+", IC, ("αβγ ΑΒΓ ς",)),
    ("[\\u0100-\\u017f]+", IC, ("ĀāĂăſs", "S")),
    ("[𐐀-𐐏]", IC, ("𐐨", "𐐀")),
    ("[𐐀x]", IC, ("𐐀", "𐐨", "x")),
    ("[𐐨x]", IC, ("𐐀", "𐐨", "X")),
    ("𐐀|x", IC, ("𐐀", "𐐨")),
    ("𐐀", IC, ("𐐨", "𐐀")),
    ("[\\u014a-\\U00010400]", IC, ("\u0149", "a", "ŋ")),
    ("[à-\\U00010400]+", IC, ("ßÀ", "A")),
    ("[^𐐀]", IC, ("𐐨", "𐐀", "a")),
    ("[^k]", IC, ("K", "k", "x")),
    ("[^é]", IC, ("É", "x")),
    ("a|B|ſ", IC, ("b", "S", "A")),
    ("(?i:K)+", 0, ("kKK",)),
    ("Straße", IC, ("STRASSE", "straße", "STRAẞE")),
    ("\\w+", IC, T_UNI),
    # real-world patterns
    ('"citations": \\["doc-[0-9]{4}#p[0-9]{1,2}"', 0, (JSON, JSON.replace("0042", "42"), "")),
    ('"score": (0\\.\\d+|1\\.0)', 0, (JSON,)),
    ("\\d{4}-\\d{2}-\\d{2}", 0, ("on 2024-01-31.", "2024-1-31")),
    ("^\\s*yes\\s*$", IC, (" YES \n", "yes!", "Yes")),
    ("(?i)\\b(refund|return)s?\\b", 0, ("Refunds are...", "nonrefundable")),
    ("^[A-Z][a-z]+(?: [A-Z][a-z]+)*$", 0, ("John Smith", "john", "Ann Lee Jr")),
    ("(\\d+)\\s*(?:items?|pcs)", 0, ("3 items", "12pcs", "1 item")),
    ("[^@\\s]+@[^@\\s]+\\.[a-z]{2,}", IC, ("Mail ME@Example.COM now", "a@b")),
    ("(?:https?://)?(?:www\\.)?([\\w-]+)\\.(?:com|org)", 0, ("see https://www.example.org/x", "ex.com")),
]


@pytest.mark.parametrize(("pattern", "flags", "texts"), CASES)
def test_hand_written_case(engine: Engine, pattern: str, flags: int, texts: tuple[str, ...]) -> None:
    check(engine, pattern, flags, texts)


def test_the_hand_written_table_is_big_enough() -> None:
    assert len(CASES) >= 150
    assert sum(len(texts) for _, _, texts in CASES) >= 800


# --- errors: Python's messages ------------------------------------------------------------------------------

ERRORS: list[tuple[str, int]] = [
    ("(", 0),
    ("(a", 0),
    ("a(b", 0),
    ("(?:a", 0),
    ("a)", 0),
    ("a)b)", 0),
    (")", 0),
    ("*", 0),
    ("+a", 0),
    ("?", 0),
    ("{1}", 0),
    ("{1,2}", 0),
    ("a|*", 0),
    ("(*)", 0),
    ("^*", 0),
    ("$+", 0),
    ("\\b*", 0),
    ("\\A?", 0),
    ("a**", 0),
    ("a*+*", 0),
    ("a+?+", 0),
    ("a{2}{3}", 0),
    ("a{2}*", 0),
    ("a??+", 0),
    ("a{3,2}", 0),
    ("{3,2}", 0),
    ("a{5000000000}", 0),
    ("a{1,99999999999999999999}", 0),
    ("\\q", 0),
    ("a\\q", 0),
    ("\\p{L}", 0),
    ("\\E", 0),
    ("[\\q]", 0),
    ("[\\A]", 0),
    ("[\\Z]", 0),
    ("[\\B]", 0),
    ("[\\8]", 0),
    ("\\", 0),
    ("a\\", 0),
    ("[a\\", 0),
    ("(?x)a#\\", 0),
    ("\\x", 0),
    ("\\x4", 0),
    ("\\xg", 0),
    ("\\u12", 0),
    ("\\U0001F60", 0),
    ("\\U00110000", 0),
    ("[\\x4]", 0),
    ("[\\U00110000]", 0),
    ("\\777", 0),
    ("[\\777]", 0),
    ("[\\400]", 0),
    ("\\1", 0),
    ("(a)\\2", 0),
    ("(a\\1)", 0),
    ("(a)\\1\\2", 0),
    ("\\99", 0),
    ("\\8", 0),
    ("(a)\\28", 0),
    ("[", 0),
    ("[a", 0),
    ("[^", 0),
    ("[]", 0),
    ("[^]", 0),
    ("[a-", 0),
    ("[a-b", 0),
    ("ab[c", 0),
    ("[z-a]", 0),
    ("[b-a]", 0),
    ("[\\x62-\\x61]", 0),
    ("[\\d-z]", 0),
    ("[a-\\d]", 0),
    ("[\\w-\\d]", 0),
    ("[é-a]", 0),
    ("(?", 0),
    ("(?z)", 0),
    ("(?<a>x)", 0),
    ("(?<", 0),
    ("(?<x", 0),
    ("(?P", 0),
    ("(?Px", 0),
    ("(?P<", 0),
    ("(?P<>a)", 0),
    ("(?P<a", 0),
    ("(?P<1a>x)", 0),
    ("(?P<a-b>x)", 0),
    ("(?P<a b>x)", 0),
    ("(?P<a'b>x)", 0),
    ("(?P<a>x)(?P<a>y)", 0),
    ("(?P=a)", 0),
    ("(?P=)", 0),
    ("(?P=a", 0),
    ("(?P<a>(?P=a))", 0),
    ("(?P=1)", 0),
    ("(?#abc", 0),
    ("(?i", 0),
    ("(?i-", 0),
    ("(?i-s", 0),
    ("(?iz)", 0),
    ("(?i1)", 0),
    ("(?-)", 0),
    ("(?-z:a)", 0),
    ("(?-1:a)", 0),
    ("(?-i)", 0),
    ("(?i-i:a)", 0),
    ("(?L)a", 0),
    ("(?au)a", 0),
    ("(?-u:a)", 0),
    ("(?t:a)", 0),
    ("(?ié)", 0),
    ("(?i-é:a)", 0),
    ("a(?i)", 0),
    ("(?:(?i)a)", 0),
    ("a|(?i)b", 0),
    ("(a)(?i)", 0),
    ("(?<=a+)b", 0),
    ("(?<=a|bc)b", 0),
    ("(?<!a*)b", 0),
    ("(?<=a{1,2})b", 0),
    ("(?<=(a)\\1*)b", 0),
    ("(?<=(?:a{4000000000}){2})b", 0),
    ("(?<=(a)\\1)", 0),
    ("(?<=(?P<n>a)(?P=n))", 0),
    ("(?(1)a", 0),
    ("(?(1)a|b|c)", 0),
    ("(?(x)a)", 0),
    ("(?(0)a)", 0),
    ("(?(-1)a)", 0),
    ("(?(1a)a)", 0),
    ("(?(2)a)(b)", 0),
    ("(?()a)", 0),
    ("(?(1", 0),
    ("\\N", 0),
    ("\\N{", 0),
    ("\\N{}", 0),
    ("\\N{SPACE", 0),
    ("x\n(", 0),
    ("a\nb\n**", 0),
    ("\n)", 0),
    ("é(", 0),
    ("😀*+*", 0),
    ("😀[z-a]", 0),
    ("日本)", 0),
]


@pytest.mark.parametrize(("pattern", "flags"), ERRORS)
def test_python_rejects_and_so_does_the_engine(engine: Engine, pattern: str, flags: int) -> None:
    expected = python_compile(pattern, flags)
    assert isinstance(expected, str), f"Python accepts {pattern!r}"
    assert engine.compile(pattern, flags) == expected


# --- refused constructs ------------------------------------------------------------------------------------

REFUSED: list[tuple[str, str]] = [
    ("\\N{EM DASH}", "unsupported: \\N{...} named character escape at position 0"),
    ("[\\N{LATIN SMALL LETTER A}-z]", "unsupported: \\N{...} named character escape at position 1"),
    ("(?a)\\w", "unsupported: ASCII flag (?a) at position 0"),
    ("x(?a:\\w)", "unsupported: ASCII flag (?a) at position 1"),
    ("(?t)a", "unsupported: TEMPLATE flag (?t) at position 0"),
    ("(?P<é>a)", "unsupported: non-ASCII group name at position 4"),
    ("(" * 101 + ")" * 101, "unsupported: pattern nested too deeply at position 100"),
    ("(?:" * 150 + ")" * 150, "unsupported: pattern nested too deeply at position 300"),
    ("(?=" * 101 + ")" * 101, "unsupported: pattern nested too deeply at position 300"),
]


@pytest.mark.parametrize(("pattern", "message"), REFUSED)
def test_refused_constructs_are_documented(engine: Engine, pattern: str, message: str) -> None:
    assert message.removeprefix("unsupported: ").rsplit(" at position ", 1)[0] in UNSUPPORTED
    expected = python_compile(pattern, 0)
    if isinstance(expected, str):  # (?t) is an error since Python 3.13: then the engine says so too
        message = expected
    assert engine.compile(pattern, 0) == message


def test_nesting_up_to_the_limit_works(engine: Engine) -> None:
    check(engine, "(" * 100 + "a" + ")" * 100, 0, ("a", "ba", ""))
    check(engine, "(?:" * 100 + "a|b" + ")*" * 100, 0, ("abba", ""))


# --- 2. random patterns ------------------------------------------------------------------------------------

TEXT_ALPHABET = "aaabbbAB \n1_é-😀Kſσ"
SINGLE = ["a", "a", "b", "b", "ab", "ba", ".", "[ab]", "[^a]", "[a-b]", "[b-]", "\\d", "\\w", "\\W", "\\s", "A",
          "é", "[]a]", "[^\\w]", "\\n", "[\\sa]", "[é-ü]", "\\x61", "[^\\n]", "\\-", "😀", "k", "S", "[kς]",
          "[^s]"]  # fmt: skip
ZERO_WIDTH = ["\\b", "\\B", "^", "$", "\\A", "\\Z"]


@dataclass
class Gen:
    """Random patterns from a grammar of everything the engine supports, over a small alphabet."""

    rnd: random.Random
    groups: int = 0
    closed: int = 0
    names: tuple[str, ...] = ()
    in_loop: int = 0
    refs: bool = False

    def group(self, depth: int) -> str:
        self.groups += 1
        name = f"g{self.groups}" if self.rnd.random() < 0.15 else None
        body = self.alt(depth + 1)
        self.closed = self.groups
        if name:
            self.names += (name,)
            return f"(?P<{name}>{body})"
        return f"({body})"

    def atom(self, depth: int) -> str:
        if self.refs:
            return self.ref_atom(depth)
        r = self.rnd.random()
        if depth > 2 or r < 0.45:
            return self.rnd.choice(SINGLE)
        if r < 0.6:
            return self.group(depth)
        if r < 0.7:
            return f"(?:{self.alt(depth + 1)})"
        if r < 0.76:
            return f"(?{self.rnd.choice(['=', '!', '<=', '<!'])}{self.alt(depth + 1)})"
        if r < 0.8:
            return f"(?>{self.alt(depth + 1)})"
        if r < 0.86 and self.closed:
            if self.names and self.rnd.random() < 0.3:
                return f"(?P={self.rnd.choice(self.names)})"
            return f"\\{self.rnd.randint(1, self.closed)}"
        if r < 0.89 and self.groups:
            return f"(?({self.rnd.randint(1, self.groups)}){self.seq(depth + 1)}|{self.seq(depth + 1)})"
        if r < 0.95:
            return f"(?{self.rnd.choice(['i', 's', 'm', '-i', 'x', 'i-s'])}:{self.alt(depth + 1)})"
        return self.rnd.choice(["{", "a{", "}", "a{,1}", "x{1,}", "{}"])

    def ref_atom(self, depth: int) -> str:
        """Mostly groups, backreferences and conditionals: what sees how sre keeps and restores captures."""
        r = self.rnd.random()
        if depth > 3 or r < 0.3:
            return self.rnd.choice(["a", "b", "ab", ".", "[ab]", "A", "\\w", ""])
        if r < 0.55:
            return self.group(depth)
        if r < 0.62:
            return f"(?:{self.alt(depth + 1)})"
        if r < 0.66:
            return f"(?{self.rnd.choice(['=', '!', '<=', '<!'])}{self.alt(depth + 1)})"
        if r < 0.7:
            return f"(?>{self.alt(depth + 1)})"
        if r < 0.85 and self.closed:
            return f"\\{self.rnd.randint(1, self.closed)}"
        if r < 0.97 and self.groups:
            return f"(?({self.rnd.randint(1, self.groups)}){self.seq(depth + 1)}|{self.seq(depth + 1)})"
        return "a"

    def piece(self, depth: int) -> str:
        if self.rnd.random() < 0.12:
            return self.rnd.choice(ZERO_WIDTH)
        if self.rnd.random() >= 0.35:
            return self.atom(depth)
        # Unbounded repeats nest only bounded ones: Python's backtracking is exponential otherwise.
        q = self.rnd.choice(["?", "{2}", "{0,2}", "{,1}", "{1,3}", *(() if self.in_loop else ("*", "+", "{1,}"))])
        unbounded = q in ("*", "+", "{1,}")
        self.in_loop += unbounded
        a = self.atom(depth)
        self.in_loop -= unbounded
        return a + q + self.rnd.choice(["", "", "", "?", "+"])

    def seq(self, depth: int) -> str:
        return "".join(self.piece(depth) for _ in range(self.rnd.randint(1 if depth == 0 else 0, 4)))

    def alt(self, depth: int) -> str:
        parts = [self.seq(depth)]
        while self.rnd.random() < 0.3:
            parts.append(self.seq(depth))
        return "|".join(parts)


def random_cases(seed: int, count: int, refs: bool = False) -> Iterator[tuple[str, int, list[str]]]:
    rnd = random.Random(seed)
    for _ in range(count):
        pattern = Gen(rnd, refs=refs).alt(0)
        flags = rnd.choice([0, 0, 0, IC, ML, DA, IC | ML | DA])
        if rnd.random() < 0.1:
            pattern = rnd.choice(["(?i)", "(?m)", "(?s)", "(?x)"]) + pattern
        alphabet = "aabbA" if refs else TEXT_ALPHABET
        texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 10))) for _ in range(6)]
        yield pattern, flags, [*texts, "ab", "aabb", "abab\nba"]


@pytest.mark.parametrize(
    ("seed", "refs"), [*((seed, False) for seed in range(10)), *((seed, True) for seed in range(6))]
)
def test_random_patterns(engine: Engine, seed: int, refs: bool) -> None:
    compared = total = 0
    for pattern, flags, texts in random_cases(seed, 600, refs):
        # A random pattern can backtrack exponentially, in Python as in the engine: those texts are skipped.
        compared += check(engine, pattern, flags, texts, budget=0.05)
        total += len(texts)
    assert compared > total * 0.5


# --- Unicode tables and case rules -------------------------------------------------------------------------


def test_character_classes_agree_with_python_on_every_code_point(engine: Engine) -> None:
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for cls in ("\\w", "\\d", "\\s"):
        inside = "".join(re.findall(cls, everything))
        outside = "".join(re.findall(cls.upper(), everything))
        assert engine.compile(f"{cls}*") is None
        assert engine.run(inside, True) == (0, len(inside)), cls
        assert engine.compile(f"{cls.upper()}*") is None
        assert engine.run(outside, True) == (0, len(outside)), cls.upper()
        assert engine.compile(f"[^{cls}]") is None
        assert engine.run(inside, False) is None


def test_case_insensitive_literals_and_classes_of_every_cased_character(engine: Engine) -> None:
    cased = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000 and chr(c).lower() != chr(c).upper()]
    for c in cased:
        candidates = {c, c.lower()[0], c.upper()[0], c.title()[0], c.casefold()[0], unicodedata.normalize("NFD", c)[0]}
        texts = sorted(candidates)
        for pattern in (re.escape(c), f"[{c}!]", f"[^{c}!]", f"[{c}-{c}]"):
            check(engine, pattern, IC, texts)


# --- robustness --------------------------------------------------------------------------------------------


def test_long_texts_use_the_backtrack_stack_not_recursion(engine: Engine) -> None:
    text = "ab" * 200_000
    for pattern in ("(?:ab|cd)*$", "(a|b)*c|.*", "(?:a(?=b)|b)+$", "(?:(a)|b)*\\1b$", "(?:ab)*?$", "(?>(?:ab)+)$"):
        check(engine, pattern, 0, [text])


def test_running_out_of_memory_is_reported(engine: Engine) -> None:
    assert engine.compile("(?:ab|cd)*c", 0) is None
    engine.lib.shim_limit(64)  # the program stays valid; the backtrack stack cannot grow
    assert engine.exec_raw(b"ab" * 10_000, False) == -1
    assert engine.compile("a" * 100, 0, memory=16) == "out of memory"
