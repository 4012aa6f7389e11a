"""The ONNX engine's pure parts: the cached decoder step and the offline windows."""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.asr.onnx_whisper import _CachedStep, offline_windows, prompt_tokens
from simulinterp.asr.search import search
from simulinterp.audio.io import SAMPLE_RATE

HEADS, DIM, VOCAB, EOT = 2, 3, 5, 0


class FakeDecoder:
    """Stands in for the engine's merged decoder on the cache branch.

    Each row's self-attention cache holds the tokens fed to it so far (one position per token,
    the token's id in every entry), so a test can read which history each row carries. The
    logits favour ``token + 1`` and end after token 3.
    """

    _heads, _head_dim = HEADS, DIM

    def __init__(self) -> None:
        self.seen: list[dict[str, np.ndarray]] = []

    def _step(self, tokens, cache, hidden):
        self.seen.append(cache)
        present = {}
        for name, value in cache.items():
            if ".decoder." in name:
                new = np.broadcast_to(
                    tokens[:, None, None, None].astype(np.float32), (len(tokens), HEADS, 1, DIM)
                )
                present[name] = np.concatenate([value, new], axis=2)
        logits = np.full((len(tokens), VOCAB), -5.0)
        for row, token in enumerate(tokens):
            logits[row, (int(token) + 1) % VOCAB if token < 3 else EOT] = 5.0
        return logits, present


def first_cache(prompt_tokens: int, frames: int) -> dict[str, np.ndarray]:
    return {
        "0.decoder.key": np.full((1, HEADS, prompt_tokens, DIM), -1.0, dtype=np.float32),
        "0.decoder.value": np.full((1, HEADS, prompt_tokens, DIM), -1.0, dtype=np.float32),
        "0.encoder.key": np.ones((1, HEADS, frames, DIM), dtype=np.float32),
        "0.encoder.value": np.ones((1, HEADS, frames, DIM), dtype=np.float32),
    }


def test_greedy_steps_grow_the_self_attention_cache_and_keep_the_cross_cache():
    decoder = FakeDecoder()
    step = _CachedStep(decoder, first_cache(4, 7))
    first = np.full(VOCAB, -5.0)
    first[1] = 5.0
    found = search(first, step, eot=EOT, max_new_tokens=10)
    assert found.tokens == (1, 2, 3) and found.finished
    lengths = [cache["0.decoder.key"].shape[2] for cache in decoder.seen]
    assert lengths == [4, 5, 6]  # the prompt, then one position per token
    assert all(cache["0.encoder.key"].shape == (1, HEADS, 7, DIM) for cache in decoder.seen)


def test_rows_are_reordered_by_origin_and_the_cross_cache_follows_the_batch():
    decoder = FakeDecoder()
    step = _CachedStep(decoder, first_cache(2, 5))
    step(np.array([1, 2]), np.array([0, 0]))  # two beams out of the single first row
    step(np.array([3, 4]), np.array([1, 1]))  # both continue the second beam
    last = decoder.seen[-1]
    assert last["0.encoder.key"].shape == (2, HEADS, 5, DIM)
    history = last["0.decoder.key"][:, 0, :, 0]
    np.testing.assert_array_equal(history, [[-1, -1, 2], [-1, -1, 2]])


@pytest.mark.parametrize("seconds", [0.5, 10.0, 28.0])
def test_short_audio_is_one_window(seconds: float):
    audio = np.ones(int(seconds * SAMPLE_RATE), dtype=np.float32)
    assert offline_windows(audio, 28 * SAMPLE_RATE) == [(0, len(audio))]


def test_long_audio_is_cut_at_the_quiet_moment_near_each_window_end():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(70 * SAMPLE_RATE).astype(np.float32)
    quiet = [25 * SAMPLE_RATE, 50 * SAMPLE_RATE]
    for at in quiet:
        audio[at : at + SAMPLE_RATE // 5] = 0.0
    windows = offline_windows(audio, 28 * SAMPLE_RATE)
    assert windows[0][0] == 0 and windows[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert all(end - start <= 28 * SAMPLE_RATE for start, end in windows)
    for (_, end), at in zip(windows, quiet, strict=False):
        assert at <= end <= at + SAMPLE_RATE // 5


@pytest.mark.parametrize(
    ("n", "room", "kept"), [(5, 100, 5), (300, 400, 200), (50, 10, 10), (50, 0, 0), (50, -3, 0)]
)
def test_the_prompt_keeps_its_most_recent_tokens_that_fit(n: int, room: int, kept: int):
    tokens = list(range(n))
    expected = tokens[n - kept :] if kept else []
    assert prompt_tokens(tokens, room) == expected
