"""Speakable text: clauses, numbers, units, symbols, emoji and language runs."""

from __future__ import annotations

import pytest

from simulinterp.tts.english import EnglishG2P
from simulinterp.tts.numbers import english_cardinal, english_ordinal, english_year
from simulinterp.tts.text import Run, language_runs, normalize, speakable_clauses, split_clauses


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("所以我的美国同胞，不要问。", ["所以我的美国同胞，", "不要问。"]),
        ("真的吗？是的！好；走：", ["真的吗？", "是的！", "好；", "走："]),
        ("ask not, ask what. Yes!", ["ask not,", "ask what.", "Yes!"]),
        ("他说：“好。”然后走了", ["他说：", "“好。”", "然后走了"]),
        ("The U.S. economy and Mr. Smith.", ["The U.S. economy and Mr. Smith."]),
        ("no punctuation", ["no punctuation"]),
        ("。，！", []),
        ("", []),
    ],
)
def test_split_clauses(text, clauses):
    assert split_clauses(text) == clauses


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("我有3个", "我有三个"),
        ("2024年", "二零二四年"),
        ("2020-2024年", "二零二零到二零二四年"),
        ("3.5倍", "三点五倍"),
        ("50%", "百分之五十"),
        ("3~5%", "百分之三到百分之五"),
        ("1,000人", "一千人"),
        ("-3度", "负三度"),
        ("1/2", "二分之一"),
        ("10:30开会", "十点三十分开会"),
        ("电话010-12345678", "电话零一零、一二三四五六七八"),
        ("100000000", "一亿"),
        ("９５％", "百分之九十五"),
    ],
)
def test_chinese_numbers(text, spoken):
    assert normalize(text, "zh") == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("3 models", "three models"),
        ("1234", "one thousand two hundred thirty-four"),
        ("in 1984", "in nineteen eighty-four"),
        ("in 2005", "in two thousand five"),
        ("2024", "twenty twenty-four"),
        ("the 1990s", "the nineteen nineties"),
        ("3.14", "three point one four"),
        ("50%", "fifty percent"),
        ("the 21st time", "the twenty-first time"),
        ("2nd and 3rd", "second and third"),
        ("1,000,000", "one million"),
        ("-3", "minus three"),
        ("007", "zero zero seven"),
        ("3-5 days", "three to five days"),
        ("at 10:05", "at ten oh five"),
        ("at 9:00", "at nine o'clock"),
    ],
)
def test_english_numbers(text, spoken):
    assert normalize(text, "en") == spoken


@pytest.mark.parametrize(
    ("text", "lang", "spoken"),
    [
        ("$5", "en", "five dollars"),
        ("$1", "en", "one dollar"),
        ("$3.50", "en", "three dollars fifty cents"),
        ("$1.5 million", "en", "one point five million dollars"),
        ("€10", "en", "ten euros"),
        ("¥100", "zh", "一百元"),
        ("$5", "zh", "五美元"),
        ("5 km", "en", "five kilometers"),
        ("1 kg", "en", "one kilogram"),
        ("25°C", "en", "twenty-five degrees Celsius"),
        ("25℃", "zh", "二十五摄氏度"),
        ("3km", "zh", "三公里"),
        ("60 km/h", "zh", "六十公里每小时"),
        ("A & B", "en", "A and B"),
        ("C++", "en", "C plus plus"),
        ("1+1=2", "en", "one plus one equals two"),
        ("me@home", "en", "me at home"),
        ("1+1=2", "zh", "一加一等于二"),
        ("研发&销售", "zh", "研发和销售"),
    ],
)
def test_units_and_symbols(text, lang, spoken):
    assert normalize(text, lang) == spoken


@pytest.mark.parametrize(
    ("text", "lang", "spoken"),
    [
        ("今天天气很好😀，我们出去玩", "zh", "今天天气很好，我们出去玩"),
        ("Great 👍 job!", "en", "Great job!"),
        ("👨‍👩‍👧 family", "en", "family"),
        ("好❤️️的", "zh", "好的"),
        ("**bold** text", "en", "bold text"),
    ],
)
def test_emoji_and_unspeakable_symbols_are_removed(text, lang, spoken):
    assert normalize(text, lang) == spoken


@pytest.mark.parametrize("text", ["😀😀", "🎉。", "!!!", "  ", "，。"])
def test_nothing_to_say_gives_no_clause(text):
    assert speakable_clauses(text, "zh") == []
    assert speakable_clauses(text, "en") == []


@pytest.mark.parametrize(
    ("text", "lang", "runs"),
    [
        ("我们用GPU训练", "zh", [("我们用", "zh"), ("GPU", "en"), ("训练", "zh")]),
        ("用deep learning做", "zh", [("用", "zh"), ("deep learning", "en"), ("做", "zh")]),
        ("iPhone很好，", "zh", [("iPhone", "en"), ("很好，", "zh")]),
        ("纯中文。", "zh", [("纯中文。", "zh")]),
        ("say 你好 now", "en", [("say", "en"), ("你好", "zh"), ("now", "en")]),
        ("plain English.", "en", [("plain English.", "en")]),
    ],
)
def test_language_runs(text, lang, runs):
    assert language_runs(text, lang) == tuple(Run(t, lg) for t, lg in runs)


def test_mixed_clause_keeps_its_latin_words_and_numbers():
    clauses = speakable_clauses("我们用GPU训练了3个模型，准确率是95%。", "zh")
    assert [c.text for c in clauses] == ["我们用GPU训练了三个模型，", "准确率是百分之九十五。"]
    assert Run("GPU", "en") in clauses[0].runs


@pytest.mark.parametrize(
    ("n", "cardinal", "ordinal"),
    [
        (0, "zero", "zeroth"),
        (12, "twelve", "twelfth"),
        (40, "forty", "fortieth"),
        (101, "one hundred one", "one hundred first"),
        (2_000_003, "two million three", "two million third"),
    ],
)
def test_english_cardinals_and_ordinals(n, cardinal, ordinal):
    assert english_cardinal(n) == cardinal
    assert english_ordinal(n) == ordinal


@pytest.mark.parametrize(
    ("year", "words"),
    [(1900, "nineteen hundred"), (1905, "nineteen oh five"), (2000, "two thousand")],
)
def test_english_years(year, words):
    assert english_year(year) == words


@pytest.fixture(scope="module")
def g2p() -> EnglishG2P:
    return EnglishG2P()


@pytest.mark.parametrize(
    ("word", "phonemes"),
    [
        ("country", "kˈʌntɹi"),
        ("Americans", "əmˈɛɹəkᵊnz"),  # plural of a dictionary word
        ("GPU", "ʤˈipˈijˈu"),  # an acronym, spelled
        ("U.S.", "jˈuˈɛs"),
        ("walked", "wˈɔkt"),
        ("stopped", "stˈɑpt"),
    ],
)
def test_english_words(g2p, word, phonemes):
    assert g2p.word(word) == phonemes


def test_english_sentence_keeps_punctuation(g2p):
    assert g2p("ask not, what.") == "ˈæsk nˌɑt, wˌʌt."
    assert g2p("Zorblax").startswith("z")  # unknown words are still spoken


@pytest.mark.parametrize(
    ("clause", "lang", "pieces"),
    [
        ("ask not what your country can do for you", "en", 1),
        (" ".join(f"w{i}" for i in range(25)), "en", 3),
        ("短句子。", "zh", 1),
        (
            "自定义语音提供的工具可让你通过将音频数据与相应的识别结果进行比较直观地检查模型的识别质量",
            "zh",
            4,
        ),
    ],
)
def test_long_clauses_are_spoken_in_balanced_pieces(clause, lang, pieces):
    from simulinterp.tts.text import MAX_PIECE, split_long

    out = split_long(clause, lang)
    assert len(out) == pieces
    assert "".join(out).replace(" ", "") == clause.replace(" ", "")  # nothing lost
    if lang == "en":
        assert all(len(p.split()) <= MAX_PIECE["en"] for p in out)
    else:
        assert all(len(p) <= MAX_PIECE["zh"] for p in out)
        assert not any(p.endswith("直") for p in out)  # words stay whole (直观)
