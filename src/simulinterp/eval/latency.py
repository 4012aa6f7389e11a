"""Latency metrics for simultaneous translation, as pure functions (SimulEval-compatible).

Conventions shared by every function here:

* ``delays[i - 1]`` is d_i, the amount of source consumed when target unit i was emitted, in
  the unit of ``source_length`` |X|: source units (words, Chinese characters) for text input,
  or seconds / milliseconds of audio for speech input. For the computation-aware variants d_i
  is the elapsed wall-clock time at emission and |X| the source duration. Target units are
  words for English and characters for Chinese; |Y| = ``len(delays)``.
* Delays are expected to be non-decreasing. d_1 = 0 (output before any source) is legal.
* Empty output (no delays) gives 0.0 for every metric. SimulEval skips such instances; we
  return 0.0 instead so that a result is always a finite float that ``json.dump`` accepts.
  Callers that average over a corpus should skip or count empty outputs themselves.
* A non-finite delay or length, or ``source_length <= 0`` with non-empty output, raises
  :class:`ValueError`. No function returns nan or inf.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence


def _checked(delays: Sequence[float], source_length: float) -> list[float]:
    """Return the delays as floats after validating them and ``source_length``."""
    ds = [float(d) for d in delays]
    if not all(math.isfinite(d) for d in ds):
        raise ValueError(f"delays must be finite, got {ds!r}")
    if ds and not (math.isfinite(source_length) and source_length > 0):
        raise ValueError(f"source_length must be a finite number > 0, got {source_length!r}")
    return ds


def start_offset(delays: Sequence[float]) -> float:
    """StartOffset: the source consumed before the first output unit, d_1.

    Args:
        delays: d_i per target unit (see the module docstring).

    Returns:
        d_1, or 0.0 for empty output.
    """
    return float(delays[0]) if len(delays) > 0 else 0.0


def average_proportion(delays: Sequence[float], source_length: float) -> float:
    """Average Proportion (AP) of Cho & Esipova (2016), "Can neural machine translation do
    simultaneous translation?" (arXiv:1606.02012).

    AP = sum_{i=1..|Y|} d_i / (|X| * |Y|). It lies in [0, 1] when 0 <= d_i <= |X|: 1 means
    every unit waited for the whole source. |Y| is the output length (SimulEval uses the
    reference length when one is given).

    Args:
        delays: d_i per target unit, in the unit of ``source_length``.
        source_length: |X|.

    Returns:
        AP, or 0.0 for empty output.
    """
    ds = _checked(delays, source_length)
    if not ds:
        return 0.0
    return sum(ds) / (source_length * len(ds))


def _lagging(ds: list[float], source_length: float, gamma: float) -> float:
    """AL's sum over i = 1..tau of d_i - (i - 1) / gamma, divided by tau."""
    if ds[0] > source_length:  # first output only after the source ended (SimulEval)
        return ds[0]
    total, tau = 0.0, 0
    for i_minus_1, d in enumerate(ds):
        total += d - i_minus_1 / gamma
        tau = i_minus_1 + 1
        if d >= source_length:
            break
    return total / tau


def average_lagging(
    delays: Sequence[float], source_length: float, target_length: int | None = None
) -> float:
    """Average Lagging (AL) of Ma et al. (2019), "STACL: Simultaneous Translation with
    Implicit Anticipation and Controllable Latency using Prefix-to-Prefix Framework"
    (arXiv:1810.08398).

    AL = (1 / tau) * sum_{i=1..tau} (d_i - (i - 1) / gamma), with gamma = |Y| / |X| and tau
    the first (1-based) i with d_i >= |X|, or |Y| when no unit saw the whole source.
    As in SimulEval, AL = d_1 when d_1 > |X| (possible for computation-aware delays).
    Wait-k on |X| = |Y| gives AL = k.

    Args:
        delays: d_i per target unit, in the unit of ``source_length``.
        source_length: |X|.
        target_length: the |Y| used in gamma; defaults to ``len(delays)``. SimulEval's
            default (``use_ref_len``) corresponds to passing the reference length.

    Returns:
        AL in the unit of ``source_length``, or 0.0 for empty output.
    """
    ds = _checked(delays, source_length)
    if not ds:
        return 0.0
    length = len(ds) if target_length is None else target_length
    if length <= 0:
        raise ValueError(f"target_length must be > 0, got {target_length!r}")
    return _lagging(ds, source_length, length / source_length)


def length_adaptive_average_lagging(
    delays: Sequence[float], source_length: float, reference_length: int
) -> float:
    """Length-Adaptive Average Lagging (LAAL) of Papi et al. (2022), "Over-Generation Cannot
    Be Rewarded: Length-Adaptive Average Lagging for Simultaneous Speech Translation"
    (arXiv:2206.05807).

    AL (see :func:`average_lagging`, same tau and d_1 > |X| rule) with
    gamma = max(|Y|, |Y_ref|) / |X|. A longer output than the reference therefore cannot
    lower the lag, and LAAL >= AL computed with gamma = |Y| / |X|.

    Args:
        delays: d_i per target unit, in the unit of ``source_length``.
        source_length: |X|.
        reference_length: |Y_ref|, the reference length in target units (>= 0).

    Returns:
        LAAL in the unit of ``source_length``, or 0.0 for empty output.
    """
    ds = _checked(delays, source_length)
    if reference_length < 0:
        raise ValueError(f"reference_length must be >= 0, got {reference_length!r}")
    if not ds:
        return 0.0
    return _lagging(ds, source_length, max(len(ds), reference_length) / source_length)


def differentiable_average_lagging(delays: Sequence[float], source_length: float) -> float:
    """Differentiable Average Lagging (DAL) of Cherry & Foster (2019), "Thinking Slow about
    Latency Evaluation for Simultaneous Machine Translation" (arXiv:1906.00048), as used by
    Arivazhagan et al. (2019, arXiv:1906.05218).

    d'_1 = d_1, d'_i = max(d_i, d'_{i-1} + 1 / gamma), gamma = |Y| / |X|;
    DAL = (1 / |Y|) * sum_{i=1..|Y|} (d'_i - (i - 1) / gamma). Unlike AL there is no cut-off
    tau, so units written in one burst each add a minimum delay of 1 / gamma.

    Args:
        delays: d_i per target unit, in the unit of ``source_length``.
        source_length: |X|.

    Returns:
        DAL in the unit of ``source_length``, or 0.0 for empty output.
    """
    ds = _checked(delays, source_length)
    if not ds:
        return 0.0
    step = source_length / len(ds)  # 1 / gamma
    total, prev = 0.0, 0.0
    for i_minus_1, d in enumerate(ds):
        prev = d if i_minus_1 == 0 else max(d, prev + step)
        total += prev - i_minus_1 * step
    return total / len(ds)


def _atd_alignment(consumed: list[float]) -> list[float]:
    """Source index a(t) that target unit t is measured against, per Kano et al. (2023)."""
    aligned: list[float] = []
    chunk_src: float | None = None  # source consumed by the current chunk
    prev_src, prev_tgt = 0.0, 0  # source / target sizes of all chunks before the current
    for t, n in enumerate(consumed, 1):
        if n != chunk_src:  # a read happened: a new chunk starts at t
            if chunk_src is not None:
                prev_src, prev_tgt = chunk_src, t - 1
            chunk_src = n
        aligned.append(min(t - max(0.0, prev_tgt - prev_src), n))
    return aligned


def average_token_delay(
    delays: Sequence[float],
    source_length: float,
    *,
    source_times: Sequence[float] | None = None,
    target_duration: float | None = None,
) -> float:
    """Average Token Delay (ATD) of Kano et al. (2023), "Average Token Delay: A Latency
    Metric for Simultaneous Translation" (arXiv:2211.13173), as SimulEval's ATDScorer.

    Chunks are maximal runs of consecutive target units that saw the same source amount n_t
    (for text input n_t = d_t, SimulEval's grouping by equal delays). For unit t in chunk c,
    with X_<c and Y_<c the source and target sizes of the chunks before c:
    a(t) = min(t - max(0, Y_<c - X_<c), n_t) and ATD = (1 / |Y|) * sum_t (T(y_t) - T(x_a(t))),
    where T(x_0) = 0 and T(y_t) = max(d_t, T(y_{t-1})) + target_duration, T(y_0) = 0.

    * Text input (``source_times`` is None): integer delays; source unit s ends at time s
      (each lasts 1) and target units last 1 by default, as SimulEval does for text. Wait-k
      on equal lengths gives ATD = k.
    * Time-based delays (``source_times`` given): source unit s ends at ``source_times[s-1]``,
      n_t = number of units with end time <= d_t, and target units last 0 by default (text
      output). SimulEval instead cuts speech into 300 ms pseudo-words when no word times exist.

    Args:
        delays: d_i per target unit (source units, or time for time-based delays).
        source_length: |X|; only validated, ATD does not depend on it.
        source_times: optional end (arrival) time of each source unit, non-decreasing, in the
            unit of ``delays``.
        target_duration: duration of one output unit; 1 for text input, 0 with source_times.

    Returns:
        ATD in the unit of ``delays``, or 0.0 for empty output.
    """
    ds = _checked(delays, source_length)
    if not ds:
        return 0.0
    if source_times is None:
        consumed: list[float] = ds
        src_end: list[float] | None = None  # text: T(x_s) = s
        duration = 1.0 if target_duration is None else float(target_duration)
    else:
        times = [float(x) for x in source_times]
        if any(b < a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError("source_times must be non-decreasing")
        consumed = [float(bisect_right(times, d)) for d in ds]
        src_end = [0.0, *times]
        duration = 0.0 if target_duration is None else float(target_duration)
    total, end = 0.0, 0.0
    for d, a in zip(ds, _atd_alignment(consumed), strict=True):
        end = max(d, end) + duration
        total += end - (a if src_end is None else src_end[int(a)])
    return total / len(ds)


def latency_scores(
    delays: Sequence[float], source_length: float, reference_length: int
) -> dict[str, float]:
    """All latency metrics of one output. AL, AP and DAL take |Y| = ``len(delays)``; LAAL
    also uses the reference length; ATD uses the text convention (unit durations of 1).

    Args:
        delays: d_i per target unit, in the unit of ``source_length``.
        source_length: |X|.
        reference_length: |Y_ref| in target units.

    Returns:
        Finite floats under the keys "AL", "LAAL", "DAL", "AP", "ATD" and "StartOffset";
        all 0.0 for empty output.
    """
    return {
        "AL": average_lagging(delays, source_length),
        "LAAL": length_adaptive_average_lagging(delays, source_length, reference_length),
        "DAL": differentiable_average_lagging(delays, source_length),
        "AP": average_proportion(delays, source_length),
        "ATD": average_token_delay(delays, source_length),
        "StartOffset": start_offset(delays),
    }
