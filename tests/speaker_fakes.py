"""Stand-ins for speakers: voices as low tones, and an encoder that hears only those tones.

Speaker ``k`` speaks with a hum at ``VOICES[k]`` Hz under a word tone above 400 Hz (the
recognizer's tone words of ``speech_fakes``). :class:`HumEncoder` embeds a window as its energy
in 40 Hz bands between 80 and 1040 Hz (below the word tones), so two voices are near orthogonal and
one voice is near identical to itself, at any level: the tracker's logic is tested in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000
VOICES = [100.0 + 40.0 * k for k in range(24)]  # Hz: 24 hums, one per 40 Hz band


def voice(speaker: int, seconds: float, *, level: float = 0.3, seed: int = 0) -> np.ndarray:
    """``seconds`` of speaker ``speaker``: syllable bursts of their hum plus a word tone."""
    rng = np.random.default_rng(seed + 1000 * speaker)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    hum = np.sin(2 * np.pi * VOICES[speaker] * t)
    word = 0.3 * np.sin(2 * np.pi * (1500 + 300 * rng.random()) * t)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2  # 4 syllables/s, never silent
    audio = level * envelope * (hum + word) / 1.3
    return (audio + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


class HumEncoder:
    """Embeds a window as its normalized energy in 40 Hz bands from 80 Hz (24 bands, to
    1040 Hz, or fewer: 8 stay below the recognizer's tone words)."""

    def __init__(self, bands: int = 24) -> None:
        self.dim = bands
        self.calls: list[int] = []  # windows per call

    def embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(windows))
        out = np.zeros((len(windows), self.dim), np.float32)
        for i, w in enumerate(windows):
            spectrum = np.abs(np.fft.rfft(w)) ** 2
            freqs = np.fft.rfftfreq(len(w), 1 / SAMPLE_RATE)
            for b in range(self.dim):
                band = (freqs >= 80 + 40 * b) & (freqs < 120 + 40 * b)
                out[i, b] = spectrum[band].sum()
            out[i] = np.sqrt(out[i])
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


def hummed(audio: np.ndarray, spans: list[tuple[float, float, int]]) -> np.ndarray:
    """``audio`` (tone words) with speaker ``k``'s hum under its sounding parts in each
    ``(start_s, end_s, k)``."""
    out = audio.copy()
    t = np.arange(len(audio)) / SAMPLE_RATE
    loud = np.abs(audio) > 1e-4
    for start, end, k in spans:
        part = (t >= start) & (t < end) & loud
        out[part] += 0.1 * np.sin(2 * np.pi * VOICES[k] * t[part])
    return out.astype(np.float32)


class OneVoiceEncoder:
    """Every window sounds like the same speaker (tone speech has no voice of its own)."""

    dim = 4

    def embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        return np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (len(windows), 1))
