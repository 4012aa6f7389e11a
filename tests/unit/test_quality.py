"""Checks of the sacrebleu-backed quality metrics in simulinterp.eval.quality."""

from __future__ import annotations

import math

import pytest

from simulinterp.eval.quality import bleu, chrf

ZH_HYP = "我今天很高兴见到你"  # 9 characters
ZH_REF = "我今天非常高兴见到你们"  # 11 characters


@pytest.mark.parametrize(
    ("hypothesis", "target_lang"),
    [
        ("the cat sat on the mat today", "en"),
        ("我们明天早上九点在会议室见面。", "zh"),
        ("我们明天早上九点在会议室见面。", "zh-CN"),
    ],
)
def test_perfect_hypothesis_scores_100(hypothesis: str, target_lang: str) -> None:
    assert bleu([hypothesis], [hypothesis], target_lang) == pytest.approx(100.0)
    assert chrf([hypothesis], [hypothesis], target_lang) == pytest.approx(100.0)


def test_chinese_bleu_uses_character_tokens() -> None:
    # With the zh tokenizer each character is a token (9 hypothesis, 11 reference).
    # Matches: 1-grams 8/9 (all but 很); 2-grams 6/8 (not 天很, 很高); 3-grams 4/7
    # (我今天 高兴见 兴见到 见到你); 4-grams 2/6 (高兴见到 兴见到你).
    # BP = exp(1 - 11/9); BLEU = 100 * BP * (8/9 * 6/8 * 4/7 * 2/6) ** (1/4) ~= 47.80.
    expected = 100 * math.exp(1 - 11 / 9) * (8 / 9 * 6 / 8 * 4 / 7 * 2 / 6) ** 0.25
    assert bleu([ZH_HYP], [ZH_REF], "zh") == pytest.approx(expected)
    # Under 13a the unspaced sentence is one token that does not match: BLEU 0.
    assert bleu([ZH_HYP], [ZH_REF], "en") == 0.0


def test_bleu_is_raw_not_rounded() -> None:
    score = bleu([ZH_HYP], [ZH_REF], "zh")
    assert score != round(score, 2)


def test_multiple_reference_streams() -> None:
    hyps = ["the cat sat on the mat", "a dog ran in the park"]
    one_stream = [["a cat sat on a mat", "a dog ran in a park"]]
    two_streams = [*one_stream, ["the cat sat on the mat", "a dog ran in the park"]]
    assert bleu(hyps, two_streams, "en") == pytest.approx(100.0)
    assert bleu(hyps, one_stream, "en") < bleu(hyps, two_streams, "en")
    assert bleu(hyps, one_stream, "en") == pytest.approx(bleu(hyps, one_stream[0], "en"))
    assert chrf(hyps, two_streams) == pytest.approx(100.0)


def test_chrf_of_disjoint_pair_is_low() -> None:
    # No character of the hypothesis occurs in the reference: no n-gram matches, chrF = 0.
    assert chrf(["abc def ghi"], ["xyz uvw qrs"]) == 0.0
    assert chrf(["the meeting starts at nine"], ["hello world"]) < 20.0


@pytest.mark.parametrize("metric", [bleu, chrf])
def test_empty_hypothesis_list(metric) -> None:
    assert metric([], [], "en") == 0.0
    assert metric([], [[], []], "zh") == 0.0


@pytest.mark.parametrize("metric", [bleu, chrf])
@pytest.mark.parametrize(
    "references",
    [
        [],  # no references for one hypothesis
        ["a", "b"],  # two references for one hypothesis
        [["a"], ["a", "b"]],  # a stream of the wrong length
        ["a", ["a"]],  # mixed strings and streams
    ],
)
def test_mismatched_references_raise(metric, references) -> None:
    with pytest.raises(ValueError):
        metric(["a"], references, "en")
