"""Text analysis: the one function that turns passages and queries alike into index terms.

The pipeline (each step measured on CMRC 2018, see the README):
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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from importlib.metadata import version
from itertools import chain, filterfalse, groupby
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType

import opencc
import rjieba

# Bump when the analysis changes in a way that alters index terms: saved indexes rebuild.
ANALYZER_VERSION = 6

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# 中文名(English Name): the gloss tells us the Chinese run before it is one name.
_GLOSS = re.compile(r"[(（]\s*([A-Za-z][A-Za-z.'\- ]{1,60}?)\s*[)）]")
_RUN_BEFORE_GLOSS = re.compile(r"([\u3400-\u9fff·]{2,16})\s*\Z")
_HAN_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+(?:[.'\-]\w+)*")
_LATIN = re.compile(r"[a-z0-9]+(?:[.'\-][a-z0-9]+)*")
_IN_RUN, _WORD_OF, _ADDS = itemgetter(0), itemgetter(1), itemgetter(2)  # of Analyzer._word
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
    def _words(self) -> dict[str, tuple[bool, str, tuple[str, ...]]]:
        """What each segmented word contributes, worked out once per distinct word."""
        return {}

    def _word(self, word: str) -> tuple[bool, str, tuple[str, ...]]:
        """(whether it belongs to a run of Chinese characters, the word as indexed, the terms
        it adds by itself). A Chinese stopword is part of a run (its characters make bigrams)
        but adds no word; a question word is neither: it ends the run."""
        word = self._alias_map.get(word, word)
        if _HAN_WORD.fullmatch(word):
            if QUESTION_WORD.fullmatch(word):
                return False, word, ()
            return True, word, (() if word in self._stop else (word,))
        if word.isalnum():
            adds = () if word in self._stop else (self._alias_map.get(word, word),)
        elif word.isspace():
            adds = ()
        else:
            words = _WORD.findall(word)
            adds = tuple(self._alias_map.get(w, w) for w in words if w not in self._stop)
        return False, word, adds

    def terms(self, text: str, names: Iterable[str] = ()) -> list[str]:
        """The index terms of a text: words, Chinese character bigrams, and known whole names."""
        return self.normalized_terms(self.normalize(text), names)

    def normalized_terms(self, normalized: str, names: Iterable[str] = ()) -> list[str]:
        """`terms` of a text already normalised (see `normalize`), in no particular order."""
        # The hot loop of indexing (a million passages): one dictionary lookup a word, the
        # rest in C (map, chain, groupby over the words' runs).
        known = self._words
        if len(known) > 500_000:  # bounded, whatever text arrives
            known.clear()
        pieces = self._segmenter.cut(normalized, False)
        words = list(map(known.get, pieces))
        if None in words:
            words = [
                w or known.setdefault(p, self._word(p)) for p, w in zip(pieces, words, strict=True)
            ]
        out = list(chain.from_iterable(map(_ADDS, words)))
        noisy = self._noise_bigrams.__contains__
        for in_run, run in groupby(words, _IN_RUN):
            if in_run:  # consecutive Chinese words: the bigrams of their characters
                chars = "".join(map(_WORD_OF, run))
                out += filterfalse(noisy, map(str.__add__, chars, chars[1:]))
        for name in names:
            out += [name] * normalized.count(name)
        return out

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


def merge_spans(
    spans: Iterable[tuple[int, int]], length: int | None = None
) -> tuple[tuple[int, int], ...]:
    """[start, end) spans sorted, overlapping or touching ones merged, empty ones dropped;
    with `length`, first clipped to a text of that many characters."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if length is not None:
            start, end = max(0, start), min(length, end)
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)
