"""Answer-type cues: what kind of answer a question asks for, and which passages show one.

多少/几 asks for a number, 哪年/什么时候 for a date, 怎么看/说了什么 for someone's words,
多少人/几年 for a number with that unit, and 谈了什么/怎么回事 for what the story is: a news
article's first paragraph (its lead) says that, so OVERVIEW is shown by an article's first
passage, whatever its words (the index knows where each passage stands). A passage's cues are
computed once, when it is indexed, as bits (`passage_cues`); a question's (`asked_cues`) when
it is asked; `boosts` are the factors passages' scores are multiplied by. Patterns are on
normalised text (simplified, lower case), and are kinds of questions and answers, not words of
any one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

NUMBER, TIME, SPEECH, OVERVIEW = 1, 2, 4, 8


@dataclass(frozen=True)
class CueGains:
    """How much a passage that shows the asked kind of answer gains (measured: docs/quality.md)."""

    number: float = 0.4
    time: float = 0.4
    speech: float = 0.2
    unit: float = 0.4  # the asked unit too (多少人 → 人)
    overview: float = 0.4

    def by_kind(self) -> dict[int, float]:
        return {NUMBER: self.number, TIME: self.time, SPEECH: self.speech, OVERVIEW: self.overview}


_ASKS = {
    NUMBER: re.compile(
        r"多少|几(?!乎)|多久|多大|多长|多高|多远|多重|比例|占比|几成|百分之|人数|金额|数目"
    ),
    TIME: re.compile(
        r"哪年|哪一年|何时|什么时候|啥时候|几号|哪天|哪一天|几月|多久|日期|时间|何年|最早|什么时间"
    ),
    SPEECH: re.compile(
        r"怎么看|如何看|看法|怎么说|说了什么|说了啥|说啥|说什么|讲了|讲啥|讲什么|怎么讲|回应"
        r"|表态|评价|怎么评|觉得|态度|反应|怎么想|认为|立场"
    ),
    OVERVIEW: re.compile(
        r"[谈聊讨论]了?(?:什么|啥|哪些)|怎么回事|咋回事|发生了?(?:什么|啥)|(?:什么|啥)情况(?!下)"
        r"|what happened|what is going on|what's going on|what is it about|what was discussed"
    ),
}
_SHOWS = {
    NUMBER: re.compile(
        r"\d|百分之|[一二三四五六七八九十两百千万亿]+(?:个|名|人|年|岁|次|万|亿|成|倍|座|起|家"
        r"|件|架|艘|枚|张|天|月|周|小时|美元|元|分之)"
    ),
    TIME: re.compile(
        r"\d{4}年|\d{1,2}月|\d{1,2}日|星期[一二三四五六日天]|周[一二三四五六日末]|年底|年初|去年"
        r"|今年|明年|上个?月|下个?月|本月|[一二三四五六七八九十]+月"
    ),
    SPEECH: re.compile(r"说|表示|称|指出|认为|强调|批评|谴责|呼吁|回应|“|”|「"),
}

# Units a number comes with. A passage records, one bit each, the units that follow a
# numeral in it; a question asking 多少人 is answered by a number of people.
UNITS = (
    "个 名 位 人 年 岁 次 天 月 周 小时 座 起 家 件 架 艘 枚 张 块 面 封 倍 成 度 美元 元 亿 万 %"
).split()
_UNIT_BIT = {unit: 1 << (8 + i) for i, unit in enumerate(UNITS)}
# what a question's unit accepts in an answer: 多少钱 → 美元/元/亿/万; 个, 名, 位, 人 alike
_ACCEPTS = {
    "钱": ("美元", "元", "亿", "万"),
    "个": ("个", "名", "位"),
    "名": ("名", "人", "位"),
    "位": ("位", "名", "人"),
    "人": ("人", "名"),
}
_NUMERAL = r"(?:\d[\d,.]*|[一二三四五六七八九十两百千万亿几数]+)"
# a lookahead, so that overlapping matches count: 3万人 is a number of 万 and one of 人
_UNIT_AFTER_NUMBER = re.compile(
    r"(?="
    + _NUMERAL
    + r"\s*多?("
    + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True))
    + "))"
)
_ASKED_UNIT = re.compile(
    r"(?:多少|几)(个|名|位|人|年|岁|次|天|月|周|小时|座|起|家|件|架|艘|枚|张|块|面|封|倍|成|度|钱|亿|万)"
)
_ASKED_SHARE = re.compile(r"比例|占比|百分之|几成|多少成")


@dataclass(frozen=True, slots=True)
class AskedCues:
    """What kind of answer a question asks for."""

    kinds: int = 0  # NUMBER | TIME | SPEECH | OVERVIEW bits
    units: int = 0  # unit bits, any of which answers

    def __bool__(self) -> bool:
        return bool(self.kinds or self.units)


def passage_cues(normalized: str) -> int:
    """The cue bits of a passage's normalised text: the kinds of answer it shows, and the
    units that follow a numeral in it."""
    bits = 0
    for kind, pattern in _SHOWS.items():
        if pattern.search(normalized):
            bits |= kind
    for match in _UNIT_AFTER_NUMBER.finditer(normalized):
        bits |= _UNIT_BIT[match.group(1)]
    if "百分之" in normalized:
        bits |= _UNIT_BIT["%"]
    return bits


def asked_cues(normalized: str) -> AskedCues:
    """What a normalised question asks for."""
    kinds = 0
    for kind, pattern in _ASKS.items():
        if pattern.search(normalized):
            kinds |= kind
    units = 0
    if m := _ASKED_UNIT.search(normalized):
        for unit in _ACCEPTS.get(m.group(1), (m.group(1),)):
            units |= _UNIT_BIT[unit]
    elif _ASKED_SHARE.search(normalized):
        units = _UNIT_BIT["%"] | _UNIT_BIT["成"]
    return AskedCues(kinds, units)


def boosts(asked: AskedCues, cues: np.ndarray, gains: CueGains) -> np.ndarray:
    """For passages with these cue bits, the factor by which each answers the question
    better: 1 plus the gain of every kind of answer asked for that it shows."""
    factors = np.ones(cues.shape[0])
    for kind, gain in gains.by_kind().items():
        if asked.kinds & kind:
            factors += gain * ((cues & np.uint64(kind)) != 0)
    if asked.units:
        factors += gains.unit * ((cues & np.uint64(asked.units)) != 0)
    return factors
