"""Token search and word timing for a whisper decoder seen as a step function (pure numpy).

A recognizer backend that runs its own decoder (:mod:`simulinterp.asr.onnx_whisper`) hands
:func:`search` the logits after its prompt and a ``step`` that advances the hypotheses by one
token each, and gets back the new tokens. Greedy search is beam search with one beam.
:func:`align_words` turns cross-attention weights into word times by dynamic time warping, as
openai/whisper's ``timing.py`` does (Radford et al., 2022, "Robust Speech Recognition via
Large-Scale Weak Supervision", word-level timestamps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Step = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``step(tokens, origins) -> logits``: row ``i`` of the batch continues row ``origins[i]`` of
the previous call (the backend reorders its cache) with token ``tokens[i]``; returns the next
token's logits, [n, vocab]."""

FRAMES_PER_S = 50  # encoder positions per second (whisper halves the 100 log-mel frames)


@dataclass(frozen=True)
class Hypothesis:
    """The outcome of one search.

    Attributes:
        tokens: the new tokens, the end-of-text token excluded.
        logprob: sum of their log-probabilities (the end token's included when finished).
        finished: the decoder ended the text itself, not the token cap.
    """

    tokens: tuple[int, ...]
    logprob: float
    finished: bool

    @property
    def avg_logprob(self) -> float:
        """Mean log-probability per scored token (whisper's ``avg_logprob``)."""
        return self.logprob / max(1, len(self.tokens) + int(self.finished))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis (float64 for stable sums)."""
    x = logits.astype(np.float64, copy=False)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def search(
    first_logits: np.ndarray,
    step: Step,
    *,
    eot: int,
    max_new_tokens: int,
    suppress: Sequence[int] = (),
    suppress_first: Sequence[int] = (),
    beam_size: int = 1,
) -> Hypothesis:
    """Decode up to ``max_new_tokens`` tokens (greedy, or beam search with ``beam_size`` > 1).

    Args:
        first_logits: logits of the first new token, [vocab].
        step: advances the live hypotheses (see :data:`Step`).
        eot: the end-of-text token.
        max_new_tokens: the cap on new tokens.
        suppress: tokens never produced.
        suppress_first: tokens not produced as the first new token (whisper's blank rule).
        beam_size: hypotheses kept; the best finished one wins by mean log-probability.
    """
    if max_new_tokens < 1:
        return Hypothesis((), 0.0, False)
    width = max(1, beam_size)
    mask = np.zeros(first_logits.shape[-1], dtype=bool)
    mask[list(suppress)] = True
    first_mask = mask.copy()
    first_mask[list(suppress_first)] = True
    beams: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    done: list[Hypothesis] = []
    logits = first_logits[None, :]
    for position in range(max_new_tokens):
        scores = log_softmax(np.where(first_mask if position == 0 else mask, -np.inf, logits))
        totals = np.array([s for _, s in beams])[:, None] + scores
        live: list[tuple[int, int, float]] = []  # (origin row, token, total)
        for flat in _best(totals, width + 1):
            row, token = divmod(int(flat), totals.shape[1])
            total = float(totals[row, token])
            if token == eot:
                done.append(Hypothesis(beams[row][0], total, True))
            else:
                live.append((row, token, total))
            if len(live) == width:
                break
        if len(done) >= width or not live or (width == 1 and done):
            break
        beams = [(beams[row][0] + (token,), total) for row, token, total in live]
        if position + 1 == max_new_tokens:
            break
        logits = step(np.array([t for _, t, _ in live]), np.array([r for r, _, _ in live]))
    if len(done) < width:
        done += [Hypothesis(tokens, total, False) for tokens, total in beams]
    return max(done, key=lambda h: h.avg_logprob)


def _best(totals: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the ``k`` largest entries, best first."""
    flat = totals.ravel()
    k = min(k, flat.size)
    top = np.argpartition(-flat, k - 1)[:k]
    return top[np.argsort(-flat[top], kind="stable")]


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a window of ``width`` (odd) along the last axis, edges reflected."""
    if width <= 1 or x.shape[-1] < width // 2 + 1:
        return x
    pad = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.median(windows, axis=-1)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The monotonic path of least total ``cost`` [tokens, frames] from corner to corner
    (ties broken as openai/whisper's ``dtw_cpu`` does).

    Returns:
        (token index, frame index) of each step of the path.
    """
    n, m = cost.shape
    inf = float("inf")
    previous = [0.0] + [inf] * m
    moves: list[bytearray] = []
    for row_cost in cost.tolist():
        current, move, left = [inf] * (m + 1), bytearray(m + 1), inf
        for j in range(1, m + 1):
            diagonal, up = previous[j - 1], previous[j]
            if diagonal < up and diagonal < left:
                best, k = diagonal, 0
            elif up < diagonal and up < left:
                best, k = up, 1
            else:
                best, k = left, 2
            left = current[j] = row_cost[j - 1] + best
            move[j] = k
        moves.append(move)
        previous = current
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        k = moves[i - 1][j]
        i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
    path.reverse()
    return np.array([p[0] for p in path], dtype=int), np.array([p[1] for p in path], dtype=int)


def align_words(
    weights: np.ndarray,
    word_lengths: Sequence[int],
    *,
    text_start: int,
    filter_width: int = 7,
) -> list[tuple[float, float]]:
    """(start_s, end_s) of each word from the alignment heads' cross-attention weights.

    Args:
        weights: [heads, positions, frames] attention probabilities of the decoder positions
            ``[*start tokens, no-timestamps, *text tokens, end]`` over the encoder frames of
            the audio (``FRAMES_PER_S`` per second).
        word_lengths: text tokens in each word, in order (summing to the text tokens).
        text_start: start tokens before the no-timestamps token.
        filter_width: median filter over time, in encoder frames.
    """
    if weights.shape[1] < text_start + 2 or weights.shape[2] < 1 or not word_lengths:
        return []
    std = weights.std(axis=-2, keepdims=True)
    normed = (weights - weights.mean(axis=-2, keepdims=True)) / np.maximum(std, 1e-8)
    matrix = median_filter(normed, filter_width).mean(axis=0)[text_start:-1]
    rows, cols = dtw(-matrix)
    jumps = np.diff(rows, prepend=-1).astype(bool)
    jump_s = cols[jumps] / FRAMES_PER_S
    bounds = np.minimum(np.concatenate([[0], np.cumsum(word_lengths)]), len(jump_s) - 1)
    return [
        (float(jump_s[a]), float(jump_s[b])) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
