"""Text analysis: the one function that turns passages and queries alike into index terms.

The pipeline (each step measured on CMRC 2018, see docs/retrieval.md):
NFKC (full-width letters and digits) → lower case → traditional to simplified (OpenCC)
→ jieba segmentation with the HMM off (its guesses glue names to the next character)
→ name aliases (川普 → 特朗普) → stopwords and punctuation dropped
→ words, plus the character bigrams of every run of Chinese text.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from importlib.metadata import version
from itertools import chain
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType

import numpy as np
import opencc
import rjieba

from retrieval.text import merge_spans

# Bump when the analysis changes in a way that alters index terms: saved indexes rebuild.
ANALYZER_VERSION = 6

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# 中文名(English Name): the gloss tells us the Chinese run before it is one name.
_GLOSS = re.compile(r"[(（]\s*([A-Za-z][A-Za-z.'\- ]{1,60}?)\s*[)）]")
_RUN_BEFORE_GLOSS = re.compile(r"([\u3400-\u9fff·]{2,16})\s*\Z")
_HAN_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+(?:[.'\-]\w+)*")
_LATIN = re.compile(r"[a-z0-9]+(?:[.'\-][a-z0-9]+)*")
_ADDS, _RUN_TEXT = itemgetter(0), itemgetter(1)  # of Analyzer._word
# Bigrams as codes: a run's characters (all in _HAN_WORD's ranges) numbered densely in 15
# bits, a bigram's code its two characters' numbers; "\0" ends a run, "\1" a text.
_RUN_END, _TEXT_END = "\0", "\1"
_TEXT_BREAK = 1  # the highest code point of the two
_CHAR_BITS = 15
_SECOND_BLOCK = 0x9FFF - 0x3400 + 1  # where U+F900.. starts among the numbers
BIGRAM_CODES = 1 << (2 * _CHAR_BITS)  # every bigram's code is below this


def _char_code(chars: np.ndarray) -> np.ndarray:
    return np.where(chars < 0xA000, chars - 0x3400, chars - 0xF900 + _SECOND_BLOCK)


def chinese_characters(normalized: str) -> frozenset[str]:
    """The distinct Chinese characters of a normalized text."""
    return frozenset(_HAN.findall(normalized))


_LATIN_WORD = re.compile(r"[a-z]{2,}")


def written_in(normalized: str) -> str | None:
    """The script a normalized text is mostly written in, "han" or "latin": its Chinese
    characters against its words of Latin letters, one each (None: neither)."""
    han, latin = len(_HAN.findall(normalized)), len(_LATIN_WORD.findall(normalized))
    if not han and not latin:
        return None
    return "han" if han >= latin else "latin"


def latin_words(normalized: str) -> int:
    """How many words of Latin letters a normalized text holds."""
    return len(_LATIN_WORD.findall(normalized))


def bigram_code(term: str) -> int | None:
    """The code of a term of two Chinese characters (None for any other term), whether it is
    a bigram or a word: one term, one id, as for strings."""
    if len(term) != 2 or not _HAN_WORD.fullmatch(term):
        return None
    first, second = (
        c - 0x3400 if c < 0xA000 else c - 0xF900 + _SECOND_BLOCK for c in map(ord, term)
    )
    return (first << _CHAR_BITS) | second


def bigram_strings(codes: np.ndarray) -> list[str]:
    """The bigrams these codes stand for (see `Analyzer.texts_terms`)."""
    numbers = np.stack([codes >> _CHAR_BITS, codes & ((1 << _CHAR_BITS) - 1)], axis=1)
    chars = np.where(numbers < _SECOND_BLOCK, numbers + 0x3400, numbers - _SECOND_BLOCK + 0xF900)
    text = chars.astype("<u4").tobytes().decode("utf-32-le")
    return [text[i : i + 2] for i in range(0, len(text), 2)]


@dataclass(frozen=True)
class TextTerms:
    """The terms of several texts: words and whole names as strings, end to end, `word_counts`
    of them a text, then every bigram as a code (`bigram_strings`) with the text it is of."""

    words: list[str]
    word_counts: list[int]
    bigram_codes: np.ndarray  # int64, below BIGRAM_CODES
    bigram_texts: np.ndarray  # int64: the text each bigram is of

    def of(self, text: int) -> list[str]:
        """One text's terms as strings."""
        start = sum(self.word_counts[:text])
        words = self.words[start : start + self.word_counts[text]]
        return words + bigram_strings(self.bigram_codes[self.bigram_texts == text])


# Question words carry no topic (为啥, 几年, 哪家, 啥时候, 多少度): the listed ones, 几/哪/多少/
# 第几 and one more character, and any word with 啥 or 咋. Like stopwords they are dropped, and
# they also end a run of characters, so that 为什 or 少人 never become bigrams.
QUESTION_WORD = re.compile(
    r"(?:几|哪|多少|第几|哪几)[\u4e00-\u9fff]?|[\u4e00-\u9fff]*[啥咋][\u4e00-\u9fff]*"
    r"|干嘛|干吗|干什么|怎么回事|多久|多大|多长|多远|多高|多重|谁家|何时|何地|何故|肯不肯"
    r"|会不会|能不能|要不要|可不可以|是不是|有没有|算不算|怎样|怎么样|如何|为何|为什么|什么样"
    r"|怎的|时候"
)


def _data_lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def read_alias_table(text: str) -> dict[str, str]:
    """Parse `variant<TAB>canonical` lines; a malformed line raises ValueError naming it."""
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [p.strip() for p in re.split(r"\t+", stripped)]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"alias line {number} is not 'variant<TAB>canonical': {line!r}")
        table[parts[0]] = parts[1]
    return table


@dataclass(frozen=True)
class Analyzer:
    """Turns text into BM25 terms; the same instance serves indexing and queries."""

    aliases: Mapping[str, str] = field(default_factory=dict)
    stopwords: frozenset[str] = frozenset()

    @classmethod
    def default(cls, extra_aliases: str | os.PathLike[str] | None = None) -> Analyzer:
        """The packaged alias and stopword tables, plus an operator's alias file if given."""
        data = resources.files("retrieval") / "data"
        aliases = read_alias_table((data / "aliases.tsv").read_text(encoding="utf-8"))
        if extra_aliases:
            aliases.update(read_alias_table(Path(extra_aliases).read_text(encoding="utf-8")))
        stopwords = frozenset(_data_lines((data / "stopwords.txt").read_text(encoding="utf-8")))
        return cls(aliases=aliases, stopwords=stopwords)

    def __reduce__(self) -> tuple[type[Analyzer], tuple[dict[str, str], frozenset[str]]]:
        # Crosses process boundaries as its data: the cached converter and segmenter below
        # are native objects that cannot be pickled, and each process builds its own.
        return (Analyzer, (dict(self.aliases), self.stopwords))

    # --- derived state, built once per process -------------------------------------------

    @cached_property
    def _t2s(self) -> opencc.OpenCC:
        return opencc.OpenCC("t2s")

    @cached_property
    def _alias_map(self) -> dict[str, str]:
        return {self.normalize(k): self.normalize(v) for k, v in self.aliases.items()}

    @cached_property
    def _variants(self) -> dict[str, tuple[str, ...]]:
        """canonical → the variants that map to it, for highlighting what the reader wrote."""
        out: dict[str, list[str]] = {}
        for variant, canonical in self._alias_map.items():
            out.setdefault(canonical, []).append(variant)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def _stop(self) -> frozenset[str]:
        return frozenset(self.normalize(w) for w in self.stopwords)

    @cached_property
    def _segmenter(self) -> rjieba.Jieba:
        # rjieba is jieba's algorithm and dictionary in Rust: identical cuts with the HMM
        # off (tests/test_analysis.py checks), 20x faster, which a million passages need.
        jieba = rjieba.Jieba()
        for word in {*self._alias_map, *self._alias_map.values()}:
            if len(word) > 1 and _HAN_WORD.fullmatch(word.replace("·", "")):
                jieba.add_word(word, max(jieba.suggest_freq(word), 10), None)
        return jieba

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever the terms this analyzer produces could change."""
        h = hashlib.sha256(f"v{ANALYZER_VERSION}|rjieba-{version('rjieba')}".encode())
        for k, v in sorted(self.aliases.items()):
            h.update(f"a|{k}|{v}\n".encode())
        for w in sorted(self.stopwords):
            h.update(f"s|{w}\n".encode())
        return h.hexdigest()[:16]

    # --- the pipeline -----------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """NFKC, lower case, traditional → simplified: the form every match is made on."""
        return self._t2s.convert(unicodedata.normalize("NFKC", text).lower())

    def glossed_names(self, normalized: str) -> dict[str, str]:
        """Chinese names a normalised text glosses in English, with the gloss in lower case:
        德地秀士(Hideshi Tokuchi) gives {"德地秀士": "hideshi tokuchi"}."""
        names = {}
        # each gloss "(english)" found first, then the Chinese run just before it: scanning
        # for the parenthesis is cheaper than trying a Chinese run at every character
        for match in _GLOSS.finditer(normalized):
            before = _RUN_BEFORE_GLOSS.search(normalized, max(0, match.start() - 40), match.start())
            if before is None:
                continue
            name = self._name_before_gloss(before.group(1))
            gloss = " ".join(_LATIN.findall(match.group(1)))
            if name and gloss:
                names[self._alias_map.get(name, name)] = gloss
        return names

    def _name_before_gloss(self, run: str) -> str | None:
        # The run before "(" holds context too (理事长德地秀士): the name is its tail — the
        # characters jieba does not know as words, or else its last word, joined across "·".
        words = [w for w in self._segmenter.cut(run, False) if w]
        tail: list[str] = []
        while words and len(words[-1]) == 1 and words[-1] != "·":
            tail.insert(0, words.pop())
        if len(tail) == 1 and words:  # 石破 + 茂: a lone character completes the word before
            tail.insert(0, words.pop())
        if not tail and words:
            tail.insert(0, words.pop())
        while len(words) >= 2 and words[-1] == "·":
            tail[:0] = words[-2:]
            del words[-2:]
        name = "".join(tail).strip("·")
        return name if len(name) >= 2 and name not in self._stop else None

    @cached_property
    def _noise_bigrams(self) -> frozenset[str]:
        """Bigrams that say nothing: stopwords, or two function characters (的是, 了吗)."""
        chars = [w for w in self._stop if len(w) == 1]
        return frozenset(
            {w for w in self._stop if len(w) == 2} | {a + b for a in chars for b in chars}
        )

    def is_question_word(self, word: str) -> bool:
        """为啥, 几年, 什么时候…: a word that asks rather than says (normalised form)."""
        return bool(QUESTION_WORD.fullmatch(word))

    @cached_property
    def _words(self) -> dict[str, tuple[tuple[str, ...], str]]:
        """What each segmented word contributes, worked out once per distinct word."""
        return {}

    def _word(self, word: str) -> tuple[tuple[str, ...], str]:
        """(the terms the word adds by itself, its characters in a run of Chinese text, or
        _RUN_END if it ends one). A Chinese stopword is part of a run (its characters make
        bigrams) but adds no word; a question word is neither: it ends the run."""
        word = self._alias_map.get(word, word)
        if _HAN_WORD.fullmatch(word):
            if QUESTION_WORD.fullmatch(word):
                return (), _RUN_END
            return (() if word in self._stop else (word,)), word
        if word.isalnum():
            adds = () if word in self._stop else (self._alias_map.get(word, word),)
        elif word.isspace():
            adds = ()
        else:
            words = _WORD.findall(word)
            adds = tuple(self._alias_map.get(w, w) for w in words if w not in self._stop)
        return adds, _RUN_END

    def terms(self, text: str, names: Iterable[str] = ()) -> list[str]:
        """The index terms of a text: words, Chinese character bigrams, and known whole names."""
        return self.normalized_terms(self.normalize(text), names)

    def normalized_terms(self, normalized: str, names: Iterable[str] = ()) -> list[str]:
        """`terms` of a text already normalised (see `normalize`), in no particular order."""
        return self.texts_terms([normalized], names).of(0)

    def texts_terms(self, normalized: Sequence[str], names: Iterable[str] = ()) -> TextTerms:
        """The terms of several normalised texts at once, their bigrams as codes: how an
        index analyses a million passages without a string (and its hash) per bigram."""
        # The hot loop of indexing: one dictionary lookup a word, the rest in C (map, chain,
        # str.join), and each text's runs of Chinese characters end to end, "\0" between
        # runs and "\1" between texts, for numpy to pair their characters in one go.
        known = self._words
        if len(known) > 500_000:  # bounded, whatever text arrives
            known.clear()
        names = list(names)
        words: list[str] = []
        word_counts: list[int] = []
        runs: list[str] = []
        for text in normalized:
            pieces = self._segmenter.cut(text, False)
            analysed = list(map(known.get, pieces))
            if None in analysed:
                analysed = [
                    w or known.setdefault(p, self._word(p))
                    for p, w in zip(pieces, analysed, strict=True)
                ]
            before = len(words)
            words += chain.from_iterable(map(_ADDS, analysed))
            for name in names:
                words += [name] * text.count(name)
            word_counts.append(len(words) - before)
            runs.append("".join(map(_RUN_TEXT, analysed)))
        chars = np.frombuffer(_TEXT_END.join(runs).encode("utf-32-le"), np.uint32).astype(np.int64)
        first, second = chars[:-1], chars[1:]
        paired = np.flatnonzero((first > _TEXT_BREAK) & (second > _TEXT_BREAK))
        codes = (_char_code(first[paired]) << _CHAR_BITS) | _char_code(second[paired])
        noise = self._noise_codes
        at = np.minimum(np.searchsorted(noise, codes), noise.shape[0] - 1)
        kept = noise[at] != codes if noise.shape[0] else np.ones(codes.shape[0], bool)
        text_of_char = np.cumsum(chars == _TEXT_BREAK)
        return TextTerms(words, word_counts, codes[kept], text_of_char[paired[kept]])

    @cached_property
    def _noise_codes(self) -> np.ndarray:
        """`_noise_bigrams` of two Chinese characters as sorted bigram codes."""
        pairs = [b for b in self._noise_bigrams if _HAN_WORD.fullmatch(b) and len(b) == 2]
        chars = np.array([[ord(a), ord(b)] for a, b in pairs], np.int64).reshape(-1, 2)
        return np.sort((_char_code(chars[:, 0]) << _CHAR_BITS) | _char_code(chars[:, 1]))

    def content_words(self, text: str) -> list[list[tuple[str, str]]]:
        """The text's content words, in runs of neighbours (stopwords, question words and
        punctuation end a run); each word as matched (normalised, aliased) and as written."""
        normalized = self.normalize(text)
        same_length = len(normalized) == len(text)
        runs: list[list[tuple[str, str]]] = [[]]
        start = 0
        for word in self._segmenter.cut(normalized, False):
            written = text[start : start + len(word)] if same_length else word
            start += len(word)
            word = word.strip()
            if (
                not any(ch.isalnum() for ch in word)
                or word in self._stop
                or self.is_question_word(word)
            ):
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((self._alias_map.get(word, word), written.strip()))
        return [run for run in runs if run]

    def question_words(self, normalized: str) -> frozenset[str]:
        """A normalised text's words as segmented, stopwords and question words included:
        what says which kind of question it is (retrieval.question.judgement)."""
        words = self._segmenter.cut(normalized, False)
        return frozenset(w.strip() for w in words if any(ch.isalnum() for ch in w))

    def query_terms(
        self,
        query: str,
        known_names: Collection[str] = frozenset(),
        glosses: Mapping[str, str] = MappingProxyType({}),
    ) -> list[str]:
        """A query's terms: as for passages, with the index's known names found inside it,
        and the Chinese names of English names the articles gloss (Hideshi Tokuchi → 德地秀士)."""
        normalized = self.normalize(query)
        names = [n for n in _substrings(normalized, 2, 16) if n in known_names]
        extra: list[str] = []
        if glosses:
            words = _LATIN.findall(normalized)
            for size in range(1, 5):
                for i in range(len(words) - size + 1):
                    name = glosses.get(" ".join(words[i : i + size]))
                    if name:
                        extra += self.terms(name, [name])  # the whole name, its bigrams
        return self.terms(query, names) + extra

    def highlight_spans(self, terms: Iterable[str], text: str) -> tuple[tuple[int, int], ...]:
        """Where the text shows one of the terms (or an alias of it), as [start, end) spans."""
        # Map each normalised character back to the original character it came from.
        flat = unicodedata.normalize("NFKC", text).lower()
        if len(flat) == len(text):  # the common case: character i came from character i
            origin = range(len(text))
        else:
            pieces = [unicodedata.normalize("NFKC", ch).lower() for ch in text]
            flat = "".join(pieces)
            origin = [i for i, piece in enumerate(pieces) for _ in piece]
        converted = self._t2s.convert(flat)
        if len(converted) == len(flat):
            flat = converted
        wanted = {t for t in terms if len(t) >= 2}
        for term in list(wanted):
            wanted.update(self._variants.get(term, ()))
        spans: list[tuple[int, int]] = []
        for term in wanted:
            latin = not _HAN.search(term)
            start = flat.find(term)
            while start != -1:
                end = start + len(term)
                boundary_ok = not latin or (
                    not _is_latin_alnum(flat, start - 1) and not _is_latin_alnum(flat, end)
                )
                if boundary_ok:
                    spans.append((origin[start], origin[end - 1] + 1))
                start = flat.find(term, start + 1)
        return merge_spans(spans)


def _is_latin_alnum(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isascii() and text[i].isalnum()


def _substrings(text: str, shortest: int, longest: int) -> set[str]:
    return {
        text[i : i + n]
        for i in range(len(text))
        for n in range(shortest, longest + 1)
        if i + n <= len(text)
    }
