"""Unsupervised word alignment of sentence pairs, for oracle latency and training schedules.

IBM Model 1 (Brown et al., 1993) trained by EM on the pairs themselves, with fast_align's
diagonal prior (Dyer et al., 2013) favouring links near the diagonal, run in both directions
and symmetrized by intersection plus the links of each direction that touch an otherwise
unaligned word. Small and dependency-free beyond numpy: aligning the 1,156-line TED dev set
takes seconds on two cores.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

logger = logging.getLogger(__name__)

_NULL = "<null>"


def align_corpus(
    sources: list[list[str]],
    targets: list[list[str]],
    iterations: int = 5,
    diagonal_tension: float = 4.0,
) -> list[list[tuple[int, int]]]:
    """Align every (source, target) pair of unit lists.

    Args:
        sources: source units per pair.
        targets: target units per pair (same length as ``sources``).
        iterations: EM iterations of IBM Model 1.
        diagonal_tension: strength of the preference for links near the diagonal.

    Returns:
        Per pair, sorted 0-based ``(source_index, target_index)`` links.
    """
    if len(sources) != len(targets):
        raise ValueError("sources and targets must have the same number of pairs")
    forward = _directional(sources, targets, iterations, diagonal_tension)
    backward = _directional(targets, sources, iterations, diagonal_tension)
    return [
        _symmetrize(f, {(s, t) for t, s in b}, len(src), len(tgt))
        for f, b, src, tgt in zip(forward, backward, sources, targets, strict=True)
    ]


def oracle_delays(
    links: list[tuple[int, int]], source_length: int, target_length: int
) -> list[float]:
    """Delay of each target unit if it is written as soon as its aligned source is read.

    ``d_j = max(d_{j-1}, 1 + max source index linked to target j)``, in source units read
    (1-based); an unaligned target unit inherits the previous delay (the first one waits for
    one source unit). Delays never exceed ``source_length``. This is the oracle lower bound on
    latency for a monotone writer that never anticipates.
    """
    if target_length <= 0:
        return []
    needed: dict[int, int] = defaultdict(int)
    for s, t in links:
        needed[t] = max(needed[t], s + 1)
    delays: list[float] = []
    previous = 1.0 if source_length > 0 else 0.0
    for j in range(target_length):
        previous = max(previous, float(needed.get(j, 0)))
        delays.append(min(previous, float(source_length)))
    return delays


def _directional(
    sources: list[list[str]], targets: list[list[str]], iterations: int, tension: float
) -> list[list[tuple[int, int]]]:
    """IBM-1 with a diagonal prior: for each target unit, its best source unit (or none)."""
    vocab_s = {w: i for i, w in enumerate({_NULL, *(w.lower() for s in sources for w in s)})}
    vocab_t = {w: i for i, w in enumerate({w.lower() for t in targets for w in t})}
    pairs = [
        (
            np.array([vocab_s[_NULL], *(vocab_s[w.lower()] for w in s)]),
            np.array([vocab_t[w.lower()] for w in t]),
        )
        for s, t in zip(sources, targets, strict=True)
    ]
    prob: dict[tuple[int, int], float] = defaultdict(lambda: 1.0)
    for _ in range(iterations):
        counts: dict[tuple[int, int], float] = defaultdict(float)
        totals: dict[int, float] = defaultdict(float)
        for s_ids, t_ids in pairs:
            if len(t_ids) == 0 or len(s_ids) == 1:
                continue
            post = _posterior(s_ids, t_ids, prob, tension)
            for i, s_id in enumerate(s_ids):
                for j, t_id in enumerate(t_ids):
                    counts[(s_id, t_id)] += post[i, j]
                totals[s_id] += post[i].sum()
        prob = defaultdict(float, {k: v / totals[k[0]] for k, v in counts.items()})
    links = []
    for s_ids, t_ids in pairs:
        if len(t_ids) == 0 or len(s_ids) == 1:
            links.append([])
            continue
        best = _posterior(s_ids, t_ids, prob, tension).argmax(axis=0)
        links.append([(int(i) - 1, j) for j, i in enumerate(best) if i > 0])
    return links


def _posterior(s_ids: np.ndarray, t_ids: np.ndarray, prob, tension: float) -> np.ndarray:
    """P(source i generates target j) for one pair, columns normalised; row 0 is NULL."""
    table = np.array([[prob[(s, t)] for t in t_ids] for s in s_ids], dtype=np.float64)
    n, m = len(s_ids) - 1, len(t_ids)
    i_pos = (np.arange(1, n + 1) - 0.5)[:, None] / n
    j_pos = (np.arange(1, m + 1) - 0.5)[None, :] / m
    prior = np.exp(-tension * np.abs(i_pos - j_pos))
    prior /= prior.sum(axis=0, keepdims=True)
    weights = np.vstack([np.full((1, m), 0.08), 0.92 * prior])
    scores = table * weights + 1e-12
    return scores / scores.sum(axis=0, keepdims=True)


def _symmetrize(
    forward: list[tuple[int, int]], backward: set[tuple[int, int]], n: int, m: int
) -> list[tuple[int, int]]:
    """Intersection, plus links of either direction touching a still-unaligned unit."""
    links = set(forward) & backward
    for s, t in sorted(set(forward) | backward):
        if (s, t) in links or not (0 <= s < n and 0 <= t < m):
            continue
        if all(ls != s for ls, _ in links) or all(lt != t for _, lt in links):
            links.add((s, t))
    return sorted(links)
