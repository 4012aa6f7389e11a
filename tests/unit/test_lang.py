"""Units, sentence ends and language codes (simulinterp.lang), as hand-written tables."""

from __future__ import annotations

import pytest

from simulinterp.lang import (
    LanguageError,
    Span,
    check_language,
    check_pair,
    chinese_spacing,
    has_cjk,
    is_clause_end,
    is_sentence_end,
    join_units,
    split_units,
    unit_spans,
)

SPLIT_CASES = [
    # text, lang, units
    ("We are at a turning point.", "en", ["We", "are", "at", "a", "turning", "point."]),
    ("  Hello   world! ", "en", ["Hello", "world!"]),
    ("", "en", []),
    ("   ", "en", []),
    ("我们身处转折点。", "zh", ["我", "们", "身", "处", "转", "折", "点", "。"]),
    # A run of Latin letters or digits inside Chinese is one unit.
    (
        "我们在NASA工作了2016年。",
        "zh",
        ["我", "们", "在", "NASA", "工", "作", "了", "2016", "年", "。"],
    ),
    ("iPhone 12很好", "zh", ["iPhone", "12", "很", "好"]),
    ("3.14是π", "zh", ["3.14", "是", "π"]),
    # Spaces between Chinese characters (as in the TED transcripts) are not units.
    ("上， 人类", "zh", ["上", "，", "人", "类"]),
    ("我 爱 你", "zh", ["我", "爱", "你"]),
    ("", "zh", []),
    # Chinese read as English: one whitespace-separated run is one word.
    ("我们在NASA工作", "en", ["我们在NASA工作"]),
]


@pytest.mark.parametrize(("text", "lang", "units"), SPLIT_CASES)
def test_split_units(text: str, lang: str, units: list[str]) -> None:
    assert split_units(text, lang) == units


SPAN_CASES = [
    # Spans include the spaces before a unit, so text[:end] is the prefix ending with it.
    ("  Hello  world! ", "en", [(0, 7), (7, 15)]),
    ("I am", "en", [(0, 1), (1, 4)]),
    ("我 爱 你", "zh", [(0, 1), (1, 3), (3, 5)]),
    ("在NASA工作", "zh", [(0, 1), (1, 5), (5, 6), (6, 7)]),
    ("iPhone 12很", "zh", [(0, 6), (6, 9), (9, 10)]),
]


@pytest.mark.parametrize(("text", "lang", "spans"), SPAN_CASES)
def test_unit_spans(text: str, lang: str, spans: list[tuple[int, int]]) -> None:
    found = unit_spans(text, lang)
    assert found == [Span(start, end) for start, end in spans]
    # Gapless: each span starts where the previous one ended.
    assert all(a.end == b.start for a, b in zip(found, found[1:], strict=False))


@pytest.mark.parametrize(("text", "lang", "units"), SPLIT_CASES)
def test_spans_and_units_agree(text: str, lang: str, units: list[str]) -> None:
    assert [text[s.start : s.end].strip() for s in unit_spans(text, lang)] == units


@pytest.mark.parametrize(
    ("units", "lang", "text"),
    [
        (["We", "are", "here."], "en", "We are here."),
        ([], "en", ""),
        (["我", "们", "。"], "zh", "我们。"),
        # Latin runs next to Chinese are glued; two Latin runs get a space between them.
        (["我", "用", "NASA", "的", "2016", "数", "据"], "zh", "我用NASA的2016数据"),
        (["iPhone", "12", "很", "好"], "zh", "iPhone 12很好"),
        (["NASA", "2016"], "zh", "NASA 2016"),
        ([], "zh", ""),
    ],
)
def test_join_units(units: list[str], lang: str, text: str) -> None:
    assert join_units(units, lang) == text


@pytest.mark.parametrize(
    ("text", "lang"),
    [("我们在NASA工作了2016年。", "zh"), ("iPhone 12很好", "zh"), ("We are here.", "en")],
)
def test_join_inverts_split(text: str, lang: str) -> None:
    assert join_units(split_units(text, lang), lang) == text


@pytest.mark.parametrize(
    ("unit", "sentence", "clause"),
    [
        ("。", True, True),
        ("！", True, True),
        ("？", True, True),
        ("；", True, True),
        ("…", True, True),
        ("point.", True, True),
        ("now!", True, True),
        ("why?", True, True),
        ("end.”", True, True),  # closing quote after the stop
        ('end."', True, True),
        ("etc.", True, True),
        # Abbreviations and initials do not end a sentence.
        ("Dr.", False, False),
        ("dr.", False, False),
        ("U.S.", False, False),
        ("e.g.", False, False),
        ("A.", False, False),
        # Clause ends that are not sentence ends.
        ("，", False, True),
        ("、", False, True),
        ("：", False, True),
        ("however,", False, True),
        ("follows:", False, True),
        # Neither.
        ("我", False, False),
        ("word", False, False),
        ("3.14", False, False),
        ("”", False, False),
        ("", False, False),
    ],
)
def test_sentence_and_clause_ends(unit: str, sentence: bool, clause: bool) -> None:
    assert is_sentence_end(unit) is sentence
    assert is_clause_end(unit) is clause


@pytest.mark.parametrize(
    ("text", "cjk"),
    [
        ("我们", True),
        ("，", True),
        ("ＡＢ", True),
        ("We are", False),
        ("π 3.14", False),
        ("", False),
    ],
)
def test_has_cjk(text: str, cjk: bool) -> None:
    assert has_cjk(text) is cjk


@pytest.mark.parametrize(
    ("code", "norm"),
    [("zh", "zh"), ("en", "en"), ("zh-CN", "zh"), ("zh_TW", "zh"), ("EN", "en"), (" en-US ", "en")],
)
def test_check_language_normalizes(code: str, norm: str) -> None:
    assert check_language(code) == norm


@pytest.mark.parametrize("code", ["fr", "", "chinese", "de-DE"])
def test_check_language_rejects_unknown_codes(code: str) -> None:
    with pytest.raises(LanguageError) as err:
        check_language(code)
    assert repr(code) in str(err.value)
    assert "knows: en, zh" in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("source", "target", "pair"),
    [("zh", "en", ("zh", "en")), ("EN", "zh-Hans", ("en", "zh")), ("zh_CN", "en-GB", ("zh", "en"))],
)
def test_check_pair(source: str, target: str, pair: tuple[str, str]) -> None:
    assert check_pair(source, target) == pair


@pytest.mark.parametrize(("source", "target"), [("zh", "zh"), ("zh-CN", "ZH"), ("en", "en-US")])
def test_check_pair_rejects_the_same_language(source: str, target: str) -> None:
    with pytest.raises(LanguageError, match="both"):
        check_pair(source, target)


def test_check_pair_rejects_an_unknown_target() -> None:
    with pytest.raises(LanguageError, match="knows: en, zh"):
        check_pair("zh", "fr")


def test_a_lone_punctuation_unit_joins_the_word_before_it() -> None:
    assert join_units(["Americans", ",", "ask", "not"], "en") == "Americans, ask not"
    assert join_units(["so", ".", "Ask"], "en") == "so. Ask"
    assert join_units([",", "so"], "en") == ", so"
    assert join_units(["a", "", "b"], "en") == "a  b"


@pytest.mark.parametrize(
    ("text", "before", "tidy"),
    [
        ("什 么来", "", "什么来"),
        (" 么来", "什", "么来"),  # the leading space touches the character before
        (" 15", "iPhone", " 15"),  # between Latin words a space stays
        ("使用 Python 3 编程", "", "使用Python 3编程"),
        ("你好 。 他", "", "你好。他"),
    ],
)
def test_chinese_spacing(text: str, before: str, tidy: str) -> None:
    assert chinese_spacing(text, before) == tidy
