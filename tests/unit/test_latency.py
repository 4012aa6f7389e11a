"""Hand-computed checks of the latency metrics in simulinterp.eval.latency."""

from __future__ import annotations

import json
import math

import pytest

from simulinterp.eval.latency import (
    average_lagging,
    average_proportion,
    average_token_delay,
    differentiable_average_lagging,
    latency_scores,
    length_adaptive_average_lagging,
    start_offset,
)

# Each case: delays, |X|, |Y_ref| and the expected value of every metric of latency_scores.
# ATD (text convention): source unit s ends at time s; T(y_t) = max(d_t, T(y_{t-1})) + 1;
# a(t) = min(t - max(0, Y_<c - X_<c), d_t) for t in chunk c; ATD = mean(T(y_t) - a(t)).
CASES = {
    # wait-2, |X| = |Y| = 5. gamma = 1, tau = 4 (d_4 = 5).
    # AL = [(2-0) + (3-1) + (4-2) + (5-3)] / 4 = 8/4 = 2; LAAL: gamma = max(5,5)/5 = 1 -> 2.
    # DAL: d' = 2, 3, 4, 5, max(5, 5+1) = 6; minus 0..4 -> 2 each -> 2.  AP = 19/25 = 0.76.
    # ATD: T(y) = 3, 4, 5, 6, 7; a = 1, 2, 3, 4, min(5 - max(0, 3-4), 5) = 5 -> 2 each -> 2.
    "wait2_equal_lengths": (
        [2, 3, 4, 5, 5],
        5,
        5,
        {"AL": 2.0, "LAAL": 2.0, "DAL": 2.0, "AP": 0.76, "ATD": 2.0, "StartOffset": 2.0},
    ),
    # wait-3, |X| = |Y| = 4. tau = 2: AL = [3 + (4-1)] / 2 = 3.  DAL: d' = 3, 4, 5, 6 minus
    # 0..3 -> 3.  AP = 15/16.  ATD: T(y) = 4, 5, 6, 7; a = 1, 2, 3, 4 -> 3 each -> 3.
    "wait3_equal_lengths": (
        [3, 4, 4, 4],
        4,
        4,
        {"AL": 3.0, "LAAL": 3.0, "DAL": 3.0, "AP": 0.9375, "ATD": 3.0, "StartOffset": 3.0},
    ),
    # Output before any source (d_1 = 0), |X| = 3, |Y| = 4: gamma = 4/3, 1/gamma = 0.75.
    # AL: tau = 4, terms 0, 1-0.75, 2-1.5, 3-2.25 = 0, .25, .5, .75 -> 1.5/4 = 0.375 (LAAL same).
    # DAL: d' = 0, max(1, .75), max(2, 1.75), max(3, 2.75) = d -> 0.375.  AP = 6/12 = 0.5.
    # ATD: T(y) = 1, 2, 3, 4; a = min(1, 0) = 0, 2-(1-0) = 1, 3-(2-1) = 2, 4-(3-2) = 3 -> 1.
    "output_before_source": (
        [0, 1, 2, 3],
        3,
        4,
        {"AL": 0.375, "LAAL": 0.375, "DAL": 0.375, "AP": 0.5, "ATD": 1.0, "StartOffset": 0.0},
    ),
    # Over-generation: |X| = 4, |Y| = 8, |Y_ref| = 4. gamma = 8/4 = 2 for AL and LAAL.
    # AL: tau = 7, terms 1, .5, 1, .5, 1, .5, 1 = 5.5 -> 5.5/7 = 11/14.
    # DAL: d' = 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5 minus 0, .5, ..., 3.5 -> 1 each -> 1.
    # AP = 20/32 = 0.625.  ATD: T(y) = 2..9; a = 1, 1, 2, 2, 3, 3, 4, 4 (e.g. t = 3: chunk 2,
    # X_<c = 1, Y_<c = 2, 3 - 1 = 2) -> 1, 2, 2, 3, 3, 4, 4, 5 = 24/8 = 3.
    "over_generation": (
        [1, 1, 2, 2, 3, 3, 4, 4],
        4,
        4,
        {"AL": 11 / 14, "LAAL": 11 / 14, "DAL": 1.0, "AP": 0.625, "ATD": 3.0, "StartOffset": 1.0},
    ),
    # Under-generation: |X| = 4, |Y| = 2, |Y_ref| = 4.  AL: gamma = 0.5, tau = 2,
    # [2 + (4-2)] / 2 = 2.  LAAL: gamma = 4/4 = 1, [2 + (4-1)] / 2 = 2.5.
    # DAL: step 2, d' = 2, max(4, 4) = 4 -> (2 + 2)/2 = 2.  AP = 6/8 = 0.75.
    # ATD: T(y) = 3, 5; a = 1, min(2 - max(0, 1-2), 4) = 2 -> (2 + 3)/2 = 2.5.
    "under_generation": (
        [2, 4],
        4,
        4,
        {"AL": 2.0, "LAAL": 2.5, "DAL": 2.0, "AP": 0.75, "ATD": 2.5, "StartOffset": 2.0},
    ),
    # Single unit after the whole source: AL = LAAL = DAL = 3, AP = 3/3 = 1,
    # ATD: T(y_1) = 4, a = min(1, 3) = 1 -> 3.
    "single_unit": (
        [3],
        3,
        1,
        {"AL": 3.0, "LAAL": 3.0, "DAL": 3.0, "AP": 1.0, "ATD": 3.0, "StartOffset": 3.0},
    ),
    # Single unit before any source, |X| = 5: no d_i >= 5 so tau = |Y| = 1, AL = 0; DAL = 0;
    # AP = 0; ATD: T(y_1) = 1, a = min(1, 0) = 0 -> 1.
    "single_unit_at_zero": (
        [0],
        5,
        1,
        {"AL": 0.0, "LAAL": 0.0, "DAL": 0.0, "AP": 0.0, "ATD": 1.0, "StartOffset": 0.0},
    ),
    # A burst after a read: |X| = |Y| = 4.  AL: no d_i >= 4 so tau = 4, terms 1, 3-1, 3-2, 3-3
    # = 4 -> 1.  DAL: d' = 1, 3, max(3, 4) = 4, 5; minus 0..3 -> 1, 2, 2, 2 -> 7/4 = 1.75.
    # AP = 10/16.  ATD: T(y) = 2, 4, 5, 6; a = 1, 2, 3, min(4, 3) = 3 -> 1, 2, 2, 3 -> 2.
    "dal_burst": (
        [1, 3, 3, 3],
        4,
        4,
        {"AL": 1.0, "LAAL": 1.0, "DAL": 1.75, "AP": 0.625, "ATD": 2.0, "StartOffset": 1.0},
    ),
    # Two bursts: |X| = 4, |Y| = 6, gamma = 1.5, 1/gamma = 2/3.  AL: tau = 4,
    # 2 + (2 - 2/3) + (2 - 4/3) + (4 - 2) = 6 -> 1.5.  DAL: d' = 2, 8/3, 10/3, 4, 14/3, 16/3;
    # minus 0, 2/3, ..., 10/3 -> 2 each -> 2.  AP = 18/24 = 0.75.
    # ATD: T(y) = 3..8; a = 1, 2, 2 | chunk 2 (X_<c = 2, Y_<c = 3): 4-1, 5-1, 6-1 -> 3, 4, 4
    # -> 2, 2, 3, 3, 3, 4 = 17 -> 17/6.
    "dal_two_bursts": (
        [2, 2, 2, 4, 4, 4],
        4,
        6,
        {"AL": 1.5, "LAAL": 1.5, "DAL": 2.0, "AP": 0.75, "ATD": 17 / 6, "StartOffset": 2.0},
    ),
    # Full wait: |X| = |Y| = 3, all delays 3. AL: tau = 1 -> 3.  DAL: d' = 3, 4, 5 -> 3.
    # AP = 9/9 = 1.  ATD: T(y) = 4, 5, 6; a = 1, 2, 3 -> 3.
    "full_wait": (
        [3, 3, 3],
        3,
        3,
        {"AL": 3.0, "LAAL": 3.0, "DAL": 3.0, "AP": 1.0, "ATD": 3.0, "StartOffset": 3.0},
    ),
}

METRICS = {
    "AL": lambda d, x, ref: average_lagging(d, x),
    "LAAL": length_adaptive_average_lagging,
    "DAL": lambda d, x, ref: differentiable_average_lagging(d, x),
    "AP": lambda d, x, ref: average_proportion(d, x),
    "ATD": lambda d, x, ref: average_token_delay(d, x),
    "StartOffset": lambda d, x, ref: start_offset(d),
}


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_computed(case: str, metric: str) -> None:
    delays, source_length, reference_length = CASES[case][:3]
    expected = CASES[case][3][metric]
    got = METRICS[metric](delays, source_length, reference_length)
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_latency_scores_matches_table(case: str) -> None:
    delays, source_length, reference_length, expected = CASES[case]
    scores = latency_scores(delays, source_length, reference_length)
    assert scores == pytest.approx(expected, abs=1e-12)


def test_empty_output_is_zero_and_json_safe() -> None:
    scores = latency_scores([], 5, 4)
    assert scores == {k: 0.0 for k in ("AL", "LAAL", "DAL", "AP", "ATD", "StartOffset")}
    assert json.loads(json.dumps(scores, allow_nan=False)) == scores
    assert average_lagging([], 0) == 0.0  # no source and no output is not an error
    assert average_token_delay([], 3, source_times=[1.0, 2.0, 3.0]) == 0.0


def test_over_generation_is_not_rewarded_by_laal() -> None:
    # AL with gamma from the reference (SimulEval's use_ref_len): |X| = 4, |Y_ref| = 4,
    # gamma = 1, tau = 7: 1-0, 1-1, 2-2, 2-3, 3-4, 3-5, 4-6 = -5 -> -5/7, a "negative" lag
    # that rewards the 4 extra words.  LAAL uses gamma = max(8, 4)/4 = 2 -> 11/14.
    delays = [1, 1, 2, 2, 3, 3, 4, 4]
    assert average_lagging(delays, 4, target_length=4) == pytest.approx(-5 / 7)
    assert length_adaptive_average_lagging(delays, 4, 4) == pytest.approx(11 / 14)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_wait_k_equal_lengths(k: int) -> None:
    # Wait-k with |X| = |Y| = 5: d_i = min(k + i - 1, 5). AL = k exactly (gamma = 1, and
    # tau = 6 - k: each term is (k + i - 1) - (i - 1) = k); ATD = k; AP in (0, 1].
    delays = [min(k + i, 5) for i in range(5)]
    assert average_lagging(delays, 5) == pytest.approx(k)
    assert average_token_delay(delays, 5) == pytest.approx(k)
    assert 0.0 < average_proportion(delays, 5) <= 1.0


def test_computation_aware_first_output_after_source_end() -> None:
    # Elapsed-time delays (s) over a 2 s source: d_1 = 2.5 > |X|, so AL = LAAL = d_1 = 2.5
    # (SimulEval's rule).  DAL: step = 2/2 = 1, d' = 2.5, max(3, 3.5) = 3.5 -> (2.5 + 2.5)/2.
    # AP = 5.5 / (2 * 2) = 1.375 (> 1 is possible only with computation included).
    delays = [2.5, 3.0]
    assert average_lagging(delays, 2.0) == pytest.approx(2.5)
    assert length_adaptive_average_lagging(delays, 2.0, 3) == pytest.approx(2.5)
    assert differentiable_average_lagging(delays, 2.0) == pytest.approx(2.5)
    assert average_proportion(delays, 2.0) == pytest.approx(1.375)


@pytest.mark.parametrize(
    ("delays", "source_times", "target_duration", "expected"),
    [
        # Words end at .5, 1, 1.5, 2 s. n_t = 2, 2, 4, 4 -> chunks {1, 2}, {3, 4}.
        # a = 1, 2 | chunk 2 (X_<c = 2, Y_<c = 2): 3, 4.  T(y) = d (duration 0).
        # (1 - .5) + (1 - 1) + (2 - 1.5) + (2 - 2) = 1 -> 0.25.
        ([1.0, 1.0, 2.0, 2.0], [0.5, 1.0, 1.5, 2.0], None, 0.25),
        # Same with output units lasting 0.1 s: T(y) = 1.1, 1.2, 2.1, 2.2
        # -> .6 + .2 + .6 + .2 = 1.6 -> 0.4.
        ([1.0, 1.0, 2.0, 2.0], [0.5, 1.0, 1.5, 2.0], 0.1, 0.4),
        # Output before the first word ends: n_t = 0, 2. a = min(1, 0) = 0 (T(x_0) = 0),
        # then chunk 2 (X_<c = 0, Y_<c = 1): min(2 - 1, 2) = 1 -> (.5 - 0) + (2 - 1) = 1.5 -> .75.
        ([0.5, 2.0], [1.0, 2.0], None, 0.75),
    ],
)
def test_atd_time_based(
    delays: list[float],
    source_times: list[float],
    target_duration: float | None,
    expected: float,
) -> None:
    got = average_token_delay(
        delays, source_times[-1], source_times=source_times, target_duration=target_duration
    )
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "call",
    [
        lambda: average_lagging([1, 2], 0),
        lambda: average_lagging([1, 2], 3, target_length=0),
        lambda: average_proportion([1, math.nan], 3),
        lambda: differentiable_average_lagging([1, 2], math.inf),
        lambda: length_adaptive_average_lagging([1, 2], 3, -1),
        lambda: average_token_delay([1.0], 2.0, source_times=[2.0, 1.0]),
    ],
)
def test_invalid_input_raises(call) -> None:
    with pytest.raises(ValueError):
        call()
