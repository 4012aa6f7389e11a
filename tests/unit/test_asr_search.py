"""Greedy and beam search over a fake step function, and DTW word timing (asr/search.py)."""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.asr.search import (
    Hypothesis,
    align_words,
    dtw,
    log_softmax,
    median_filter,
    search,
)

EOT, VOCAB = 0, 6


def probs_to_logits(probs: dict[int, float]) -> np.ndarray:
    row = np.full(VOCAB, 1e-9)
    for token, p in probs.items():
        row[token] = p
    return np.log(row)


class Table:
    """A fake decoder: the next token's distribution depends on the text so far.

    ``table`` maps a tuple of earlier tokens to {token: probability}; unknown texts end.
    It records the origins it was given, as a cache would be reordered.
    """

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]]):
        self.table = table
        self.texts: list[tuple[int, ...]] = [()]
        self.calls: list[list[int]] = []

    def first(self) -> np.ndarray:
        return self._logits(())

    def _logits(self, text: tuple[int, ...]) -> np.ndarray:
        return probs_to_logits(self.table.get(text, {EOT: 1.0}))

    def __call__(self, tokens: np.ndarray, origins: np.ndarray) -> np.ndarray:
        self.calls.append([int(o) for o in origins])
        self.texts = [self.texts[o] + (int(t),) for t, o in zip(tokens, origins, strict=True)]
        return np.stack([self._logits(text) for text in self.texts])


def run(table: Table, **kwargs) -> Hypothesis:
    kwargs.setdefault("max_new_tokens", 10)
    return search(table.first(), table, eot=EOT, **kwargs)


def test_greedy_follows_the_most_likely_token_until_the_end_token():
    table = Table({(): {1: 0.6, 2: 0.4}, (1,): {3: 0.9, EOT: 0.1}, (1, 3): {EOT: 1.0}})
    found = run(table)
    assert found.tokens == (1, 3) and found.finished
    assert found.logprob == pytest.approx(np.log(0.6) + np.log(0.9) + np.log(1.0), abs=1e-6)
    assert found.avg_logprob == pytest.approx(found.logprob / 3)


def test_the_cap_cuts_a_hypothesis_and_says_so():
    table = Table({(): {1: 1.0}, (1,): {1: 1.0}, (1, 1): {1: 1.0}, (1, 1, 1): {1: 1.0}})
    found = run(table, max_new_tokens=3)
    assert found.tokens == (1, 1, 1) and not found.finished
    assert len(table.calls) == 2  # no step is spent on a token that would exceed the cap


def test_an_end_at_the_cap_is_finished():
    table = Table({(): {1: 1.0}, (1,): {EOT: 1.0}})
    assert run(table, max_new_tokens=2) == Hypothesis((1,), pytest.approx(0.0, abs=1e-6), True)


def test_no_tokens_allowed_gives_an_empty_unfinished_text():
    assert run(Table({}), max_new_tokens=0) == Hypothesis((), 0.0, False)


def test_suppressed_tokens_are_never_produced_and_blank_only_at_first():
    table = Table({(): {EOT: 0.5, 4: 0.3, 2: 0.2}, (2,): {4: 0.9, EOT: 0.1}, (2, 4): {EOT: 1.0}})
    found = run(table, suppress_first=[EOT, 4])
    assert found.tokens == (2, 4) and found.finished
    assert run(Table({(): {5: 0.9, 1: 0.1}}), suppress=[5]).tokens == (1,)


def test_beam_search_finds_the_sequence_greedy_misses():
    # greedy takes 1 (0.5) and then has only 0.3; 2 (0.4) leads to a sure end
    table = Table(
        {
            (): {1: 0.5, 2: 0.4, 3: 0.1},
            (1,): {4: 0.3, 5: 0.3, EOT: 0.4},
            (1, 4): {EOT: 1.0},
            (1, 5): {EOT: 1.0},
            (2,): {3: 1.0},
            (2, 3): {EOT: 1.0},
        }
    )
    assert run(table).tokens == (1,)
    beam = Table(table.table)
    found = run(beam, beam_size=2)
    assert found.tokens == (2, 3) and found.finished
    assert beam.calls[0] == [0, 0]  # both beams start from the single first row


def test_beam_search_reorders_the_rows_it_continues():
    table = Table(
        {
            (): {1: 0.6, 2: 0.4},
            (1,): {3: 0.2, 4: 0.2, EOT: 0.6},
            (2,): {3: 0.9, EOT: 0.1},
            (2, 3): {EOT: 1.0},
        }
    )
    found = run(table, beam_size=2)
    assert found.tokens == (2, 3)
    assert table.calls[1][0] == 1  # the best continuation now comes from the second row


def test_log_softmax_normalizes_rows():
    rows = log_softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]]))
    assert np.exp(rows).sum(axis=1) == pytest.approx([1.0, 1.0])


def test_median_filter_removes_a_spike():
    x = np.array([[1.0, 1.0, 9.0, 1.0, 1.0]])
    assert median_filter(x, 3).tolist() == [[1.0, 1.0, 1.0, 1.0, 1.0]]
    assert median_filter(x, 1) is x


def test_dtw_walks_the_cheap_diagonal_corner_to_corner():
    cost = np.array([[0, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 0]], dtype=float)
    rows, cols = dtw(cost)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0), (1, 1), (1, 2), (2, 3)]


def test_align_words_reads_word_times_off_the_attention():
    # 2 start tokens, a no-timestamps row, 3 text tokens (words of 1 and 2 tokens), an end row;
    # the row before each text token attends to where that token is spoken
    frames, rows = 30, 2 + 1 + 3 + 1
    weights = np.full((1, rows, frames), 0.01)
    for row, (a, b) in {2: (0, 10), 3: (10, 20), 4: (20, 25), 5: (25, 30), 6: (25, 30)}.items():
        weights[0, row, a:b] = 1.0
    spans = align_words(weights, [1, 2], text_start=2, filter_width=1)
    assert len(spans) == 2
    (s1, e1), (s2, e2) = spans
    assert s1 == 0.0 and s1 < e1 <= s2 < e2 <= frames / 50
    assert e1 == pytest.approx(10 / 50, abs=0.05) and e2 == pytest.approx(25 / 50, abs=0.05)


def test_align_words_without_text_is_empty():
    assert align_words(np.ones((1, 3, 10)), [], text_start=2) == []
