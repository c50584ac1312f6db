"""An English question read in the Chinese articles' words (retrieval.question.english)."""

from __future__ import annotations

from retrieval.question.english import (
    Glossary,
    Reading,
    english_words,
    forms,
    glossary,
    names_in_pinyin,
    read_in_chinese,
)

ENTRIES = [
    {"simplified": "房子", "pinyin": "fang2 zi5", "definitions": ["house", "building"]},
    {"simplified": "房", "pinyin": "fang2", "definitions": ["house", "room"]},
    {
        "simplified": "众议院",
        "pinyin": "Zhong4 yi4 yuan4",
        "definitions": ["lower house of bicameral assembly", "House of Representatives (USA)"],
    },
    {"simplified": "宅", "pinyin": "zhai2", "definitions": ["residence", "house"]},
    {"simplified": "投票", "pinyin": "tou2 piao4", "definitions": ["to vote", "vote"]},
    {"simplified": "难民", "pinyin": "nan4 min2", "definitions": ["refugee"]},
    {
        "simplified": "元朗",
        "pinyin": "Yuan2 Lang3",
        "definitions": ["Yuen Long town in northwest New Territories, Hong Kong"],
    },
    {"simplified": "逮捕", "pinyin": "dai4 bu3", "definitions": ["to arrest"]},
    {"simplified": "铭谢", "pinyin": "ming2 xie4", "definitions": ["also written 鳴謝|鸣谢"]},
]
GLOSSARY = Glossary.from_entries(ENTRIES)


def test_words_are_found_by_their_gloss_first_senses_first() -> None:
    assert GLOSSARY.words("vote") == ("投票",)  # "to vote" and "vote" alike
    assert GLOSSARY.words("house of representatives") == ("众议院",)  # (USA) set aside
    # a first sense before a second, a word of two characters before one of one; and the
    # House of Representatives, a name, by its leading capitalised words
    assert GLOSSARY.words("house") == ("房子", "房", "众议院", "宅")
    assert GLOSSARY.words("yuen long") == ("元朗",)  # a name by its leading capitalised words
    assert GLOSSARY.words("also written 鳴謝|鸣谢") == ()  # a cross-reference is no meaning
    assert GLOSSARY.words("nothing") == ()


def test_english_words_and_their_forms() -> None:
    assert english_words("did taiwan's indo-pacific plan fail?") == [
        "did", "taiwan", "indo", "pacific", "plan", "fail",
    ]  # fmt: skip
    assert "arrest" in forms("arrested") and "councillor" in forms("councillors")
    assert "policy" in forms("policies") and "vote" in forms("voting")
    assert forms("is") == ["is"]  # too short to undo an ending


def test_a_phrase_is_read_as_the_words_used_near_the_question() -> None:
    question = "when does the house vote on the refugee bill?"

    def usable(word: str) -> bool:
        return word != "房"  # say a stopword: no index term

    nearby = "难民法案通过后，他们搬出了旧宅，投票"
    assert read_in_chinese(question, GLOSSARY, usable, lambda word: word in nearby) == (
        Reading("house", ("宅",)),  # the one used nearby, though the last
        Reading("vote", ("投票",)),
        Reading("refugee", ("难民",)),
    )
    # a phrase none of whose words is used nearby is not read
    assert read_in_chinese(question, GLOSSARY, usable, lambda word: word == "难民") == (
        Reading("refugee", ("难民",)),
    )


def test_the_longest_phrase_is_read_first() -> None:
    readings = read_in_chinese(
        "were yuen long councillors arrested?", GLOSSARY, lambda w: True, lambda w: True
    )
    assert readings == (Reading("yuen long", ("元朗",)), Reading("arrested", ("逮捕",)))


def test_the_shipped_dictionary_reads_news_words() -> None:
    shipped = glossary()
    assert "难民" in shipped.words("refugee")
    assert "关税" in shipped.words("tariff")
    assert "众议院" in shipped.words("house of representatives")


def test_a_name_in_pinyin_is_read_as_the_characters_nearby_passages_spell_it_with() -> None:
    nearby = "紫光集团董事长赵伟国被带走调查。律师周泽说，赵伟国"
    assert names_in_pinyin("Was Unigroup's Zhao Weiguo investigated? Zhou Ze said", nearby) == (
        Reading("zhao weiguo", ("赵伟国",)),
        Reading("zhou ze", ("周泽",)),
    )
    # a heteronym read either way (乐 is le and yue); one syllable is no name; no characters
    # nearby spell it: not read
    assert names_in_pinyin("Le Yucheng", "外交部副部长乐玉成说") == (
        Reading("le yucheng", ("乐玉成",)),
    )
    assert names_in_pinyin("Lin said", "林说") == ()
    assert names_in_pinyin("Sun Dawu", "赵伟国说") == ()
