"""term_accuracy and leak_rate (simulinterp.eval.terms), as hand-written tables."""

from __future__ import annotations

import pytest

from simulinterp.eval.terms import leak_rate, term_accuracy, term_found


@pytest.mark.parametrize(
    ("term", "output", "lang", "found"),
    [
        ("Hao Ren", "Hao Ren was a good man.", "en", True),
        ("Hao Ren", "hao ren was a good man.", "en", True),  # any case
        ("Hao Ren", "Haoren was a good man.", "en", False),
        ("Su Yu", "Su Yu's sword", "en", True),  # a possessive is a word boundary
        ("Su Yu", "Su Yuan left", "en", False),  # whole words only
        ("Feng-er", "Feng - er smiled", "en", True),  # spacing around hyphens
        (
            "Galaxy Media Pan-Cultural Development Co.,",
            "at Galaxy Media Pan-Cultural Development Co. today",
            "en",
            True,
        ),  # the term's end punctuation is ignored
        ("the Holy King", "The Holy King came", "en", True),
        ("his woman", "“his woman”", "en", True),
        ("Duke Qin", "Duke Qin’s son", "en", True),  # typographic apostrophe
        ("郝仁", "郝 仁是一个好人", "zh", True),  # whitespace is ignored
        ("郝仁", "郝人是一个好人", "zh", False),
        ("", "anything", "en", False),
    ],
)
def test_term_found(term: str, output: str, lang: str, found: bool) -> None:
    assert term_found(term, output, lang) is found


def test_term_accuracy_counts_every_required_term() -> None:
    outputs = ["Hao Ren met Su Yu.", "He left.", "Hao Ren and Hao Ren"]
    required = [["Hao Ren", "Su Yu"], ["Su Yu"], ["Hao Ren", "Hao Ren"]]
    assert term_accuracy(outputs, required, "en") == pytest.approx(4 / 5)
    assert term_accuracy(outputs, [[], [], []], "en") is None
    with pytest.raises(ValueError, match="3 outputs for 2 lines"):
        term_accuracy(outputs, required[:2], "en")


def test_leak_rate_is_the_share_of_lines_with_a_leak() -> None:
    outputs = ["他擦掉了 fence。", "NASA的任务", "我们走了。", "We are here."]
    sources = ["He wiped off the fence.", "NASA's mission", "We left.", "We are here."]
    assert leak_rate(outputs, sources, "zh") == pytest.approx(2 / 4)
    allowed = [("fence",), (), (), ()]
    assert leak_rate(outputs, sources, "zh", allowed) == pytest.approx(1 / 4)
    assert leak_rate([], [], "zh") == 0.0
