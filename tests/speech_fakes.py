"""Stand-ins for the speech models: audio that spells words with tones, and a fake whisper.

Each word of a script is a 0.3 s sine whose frequency names it (``tone_of``), followed by a short
gap; utterances are separated by a long silence. ``ToneWhisper`` "recognizes" a window by
finding its tone bursts and their frequencies, exactly and deterministically; a burst cut off at
the end of the window is misheard ("uh" and its length), which the recognizer must not commit.
``EnergyVAD`` scores frames by their energy. Together they test the streaming logic in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulinterp.asr.base import Decoded

SAMPLE_RATE = 16000
WORD_S = 0.3
GAP_S = 0.15
PAUSE_S = 1.0
VOCAB = ["we", "go", "to", "the", "park", "he", "likes", "it", "very", "good", "good."]


def tone_of(word: str) -> float:
    return 400.0 + 100.0 * VOCAB.index(word)


def speak(utterances: list[list[str]], lead_s: float = 0.5) -> np.ndarray:
    """Audio for ``utterances`` (lists of words from VOCAB), starting after ``lead_s``."""
    parts = [np.zeros(int(lead_s * SAMPLE_RATE), np.float32)]
    t = np.arange(int(WORD_S * SAMPLE_RATE)) / SAMPLE_RATE
    for words in utterances:
        for word in words:
            parts.append((0.3 * np.sin(2 * np.pi * tone_of(word) * t)).astype(np.float32))
            parts.append(np.zeros(int(GAP_S * SAMPLE_RATE), np.float32))
        parts.append(np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32))
    return np.concatenate(parts)


def bursts(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample indices of the tone bursts in ``audio``."""
    frame = 160
    n = len(audio) // frame
    loud = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) > 0.01
    spans, start = [], None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append((start * frame, i * frame))
            start = None
    if start is not None:
        spans.append((start * frame, n * frame))
    return spans


def hear(audio: np.ndarray) -> list[tuple[str, float, float]]:
    """The words in ``audio`` with their times; a burst shorter than a word is "uh"."""
    words = []
    for a, b in bursts(audio):
        if (b - a) / SAMPLE_RATE < WORD_S - 0.02:  # cut off: a different guess each time
            words.append((f"uh{b - a}", a / SAMPLE_RATE, b / SAMPLE_RATE))
            continue
        spectrum = np.abs(np.fft.rfft(audio[a:b]))
        freq = np.fft.rfftfreq(b - a, 1 / SAMPLE_RATE)[int(np.argmax(spectrum))]
        index = min(range(len(VOCAB)), key=lambda i: abs(tone_of(VOCAB[i]) - freq))
        words.append((VOCAB[index], a / SAMPLE_RATE, b / SAMPLE_RATE))
    return words


@dataclass
class ToneWhisper:
    """A fake :class:`WhisperEngine`: forced prefix, token cap and cost like the real one.

    Attributes:
        language: what ``detect_language`` answers.
        cost_s: seconds a decode takes on the injected clock (see ``advance``).
        advance: moves a fake clock forward; called with ``cost_s`` at each decode.
    """

    language: str = "en"
    languages: tuple[str, ...] = ("en", "zh")
    cost_s: float = 0.0
    advance: Callable[[float], None] | None = None
    name: str = "tone"

    def __post_init__(self) -> None:
        self.decodes: list[float] = []  # window lengths, seconds

    def encode(self, audio: np.ndarray, pad_s: float = 1.5) -> np.ndarray:
        return audio.copy()

    def detect_language(self, encoded: np.ndarray) -> list[tuple[str, float]]:
        return [(self.language, 0.97)]

    def decode(
        self,
        encoded: np.ndarray,
        lang: str,
        *,
        prompt: str = "",
        prefix: str = "",
        max_new_tokens: int = 64,
        beam_size: int = 1,
    ) -> Decoded:
        self.decodes.append(len(encoded) / SAMPLE_RATE)
        if self.advance is not None:
            self.advance(self.cost_s)
        heard = [w for w, _, _ in hear(encoded)]
        forced = prefix.split()
        new = heard[len(forced) :][:max_new_tokens]
        return Decoded(text="".join(" " + w for w in new), finished=True, avg_logprob=-0.1)

    def transcribe(self, audio: np.ndarray, lang: str) -> str:
        return " ".join(w for w, _, _ in hear(audio))

    def word_times(
        self, encoded: np.ndarray, lang: str, text: str, audio_s: float
    ) -> list[tuple[str, float, float]]:
        return hear(encoded)[: len(text.split())]


class EnergyVAD:
    """A fake :class:`SileroVAD`: a frame is speech when its energy is high."""

    @staticmethod
    def initial_state() -> np.ndarray:
        return np.zeros((2, 1, 128), np.float32)

    def score(self, frames: np.ndarray, state: object) -> tuple[np.ndarray, object]:
        new = frames[:, 64:]
        rms = np.sqrt((new**2).mean(axis=1))
        return (rms > 0.01).astype(np.float32), state


class FakeClock:
    """A clock that moves only when told to (or by a fixed tick per reading)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ToneSynth:
    """A synthesizer stand-in: 0.08 s of tone per target character, at 22.05 kHz.

    Text holding ``"#"`` cannot be said (:class:`SynthesisError`); after ``fail_after`` clauses
    every call raises ``RuntimeError``. ``sleep_s`` makes each call take that long, and
    ``spans`` records (start, end) perf_counter times of each call.
    """

    name = "tones"
    sample_rate = 22050
    license = "test"

    def __init__(self, *, sleep_s: float = 0.0, fail_after: int | None = None) -> None:
        self.sleep_s, self.fail_after = sleep_s, fail_after
        self.calls: list[tuple[str, float]] = []
        self.spans: list[tuple[float, float]] = []

    def voices(self, lang: str) -> list[str]:
        return ["tone"]

    def synthesize(self, text: str, voice: str, lang: str, *, speed: float = 1.0):
        import time

        from simulinterp.tts.base import SpokenClause, SynthesisError

        started = time.perf_counter()
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("the voice model crashed")
        self.calls.append((text, speed))
        if "#" in text:
            raise SynthesisError("cannot say '#'")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        chars = [c for c in text if c.isalnum()]
        n = int(0.08 * len(chars) / speed * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        samples = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
        self.spans.append((started, time.perf_counter()))
        if n:
            yield SpokenClause(
                text.strip(), samples, self.sample_rate, time.perf_counter() - started
            )
