"""Hallucination-loop, length and refusal guards (simulinterp.translate.guard) as tables."""

from __future__ import annotations

import pytest

from simulinterp.translate.guard import (
    allowed_new_units,
    is_refusal,
    max_target_units,
    repetition_cut,
)


@pytest.mark.parametrize(
    ("units", "keep"),
    [
        # One unit four times in a row: keep its first occurrence.
        ("We are 3D 3D 3D 3D 3D 3D 3D".split(), 3),
        ("We are 3D 3D 3D 3D".split(), 3),
        ("go go go go".split(), 1),
        ("We 3D 3d 3D 3D".split(), 2),  # case-insensitive
        ("的 的 的 的 的".split(), 1),
        (list("哈哈哈哈好"), 1),
        # A 2-gram three times in a row.
        ("the cat the cat the cat sat".split(), 2),
        ("I saw the cat the cat the cat".split(), 4),
        (list("我们我们我们好"), 2),
        # A 3-gram and a 6-gram three times in a row.
        ("a b c a b c a b c".split(), 3),
        ("x a b c d e f a b c d e f a b c d e f".split(), 7),
        # No false cut on normal text.
        ("go go go".split(), 3),  # three is not a loop for one unit
        ("the cat the cat sat".split(), 5),  # twice is not a loop for a 2-gram
        ("very very good".split(), 3),
        ("I think that I think so".split(), 6),
        ("We are at a turning point in human history .".split(), 10),
        (list("哈哈哈"), 3),
        (list("谢谢大家谢谢"), 6),
        # A 7-gram is beyond max_ngram = 6.
        ("a b c d e f g a b c d e f g a b c d e f g".split(), 21),
        ([], 0),
    ],
)
def test_repetition_cut(units: list[str], keep: int) -> None:
    assert repetition_cut(units) == keep


def test_repetition_cut_ignores_surrounding_spaces() -> None:
    assert repetition_cut(["We", " are", " 3D", " 3D", " 3D", " 3D"]) == 3


def test_repetition_cut_max_ngram_bounds_the_search() -> None:
    units = "a b c a b c a b c".split()
    assert repetition_cut(units, max_ngram=2) == 9
    assert repetition_cut(units, max_ngram=3) == 3


@pytest.mark.parametrize(
    ("source_units", "source", "target", "most"),
    [
        (0, "zh", "en", 6),  # ceil(1.2 * 0) + 6
        (5, "zh", "en", 12),  # ceil(6.0) + 6
        (7, "zh", "en", 15),  # ceil(8.4) + 6
        (10, "zh", "en", 18),
        (10, "en", "zh", 38),  # ceil(3.0 * 10) + 8
        (10, "en", "fr", 28),  # unknown direction: ceil(2.0 * 10) + 8
    ],
)
def test_max_target_units(source_units: int, source: str, target: str, most: int) -> None:
    assert max_target_units(source_units, source, target) == most


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, I cannot translate that.", True),
        ("  Sorry, that is not", True),
        ("I'm  sorry,\tI", True),  # runs of whitespace count as one space
        ("I cannot", True),
        ("I can't do that", True),
        ("As an AI, I", True),
        ("The sentence is incomplete", True),
        ("抱歉，我无法翻译", True),
        ("这句话不完整", True),
        ("I can see", False),
        ("sorry about that", False),  # no comma: a translation of "对不起那件事"
        ("Sorry I am late", False),
        ("I am here", False),
        ("我们", False),
        ("", False),
    ],
)
def test_is_refusal(text: str, refusal: bool) -> None:
    assert is_refusal(text) is refusal


@pytest.mark.parametrize(
    ("committed", "candidate", "source_units", "allowed"),
    [
        ([], ["We", "are", "here"], 5, 3),
        # A loop inside the candidate: keep up to its first occurrence.
        ([], ["We", "are", "3D", "3D", "3D", "3D", "3D"], 5, 3),
        # A loop that spans the committed/candidate boundary.
        (["We", "are", "3D"], ["3D", "3D", "3D", "now"], 5, 0),
        (["We", "are", "3D", "3D"], ["3D", "3D"], 5, 0),
        (["We", "are", "3D", "3D", "3D"], ["3D", "again"], 5, 0),
        (["a", "b", "a", "b"], ["a", "b", "c"], 5, 0),
        # "a b" x3 starting in the committed part: its first occurrence is all committed.
        (["a", "b"], ["a", "b", "a", "b", "c"], 5, 0),
        (["x", "a", "b"], ["a", "b", "a", "b"], 5, 0),
        (["x"], ["a", "b", "a", "b", "a", "b"], 5, 2),
        # Length: at most max_target_units(5) = 12 units in all.
        ([], [f"w{i}" for i in range(26)], 5, 12),
        ([f"c{i}" for i in range(10)], [f"w{i}" for i in range(7)], 5, 2),
        ([f"c{i}" for i in range(12)], ["w"], 5, 0),
        ([f"c{i}" for i in range(14)], ["w"], 5, 0),  # already over: never negative
        # A refusal opening is dropped, but only before anything is committed.
        ([], ["I'm", "sorry,", "I", "can't"], 5, 0),
        ([], ["抱歉，", "我"], 5, 0),
        # Units as the translator passes them, with the space before each.
        ([], ["I'm", " sorry,", " I", " can't"], 5, 0),
        ([], ["The", " sentence", " is", " cut"], 5, 0),
        (["Well,"], ["I'm", "sorry"], 5, 2),
        ([], [], 5, 0),
    ],
)
def test_allowed_new_units(committed, candidate, source_units, allowed) -> None:
    assert allowed_new_units(committed, candidate, source_units, "zh", "en") == allowed


def test_allowed_new_units_chinese_target() -> None:
    # en -> zh: max_target_units(2) = ceil(3.0 * 2) + 8 = 14 characters.
    assert allowed_new_units([], list("我们今天去公园很好他喜欢它们吧呢"), 2, "en", "zh") == 14
    assert allowed_new_units(list("哈哈"), list("哈哈好"), 2, "en", "zh") == 0
    assert allowed_new_units(list("我们"), list("去公园"), 2, "en", "zh") == 3
    # A refusal split into characters is still recognised.
    assert allowed_new_units([], list("抱歉，我无法翻译"), 2, "en", "zh") == 0
    assert allowed_new_units([], list("这句话"), 2, "en", "zh") == 0
