"""The synthesizer protocol: text and a voice in, audio out clause by clause.

Every backend (Kokoro, Piper, espeak-ng) implements :class:`Synthesizer`. The speech scheduler
(``tts/scheduler.py``) and the pipeline's speech sink only see this protocol, so a voice per
speaker (a blended style vector, say) is just another ``voice`` name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

OUTPUT_RATE = 24_000
"""Sample rate of the interpretation audio (every backend's output is resampled to it)."""


class SynthesisError(RuntimeError):
    """The synthesizer cannot say this text (or failed); the text output goes on without it."""


@dataclass(frozen=True)
class SpokenClause:
    """One clause of synthesized speech.

    Attributes:
        text: the clause as it was spoken (after normalization: numbers as words, etc.).
        samples: float32 mono audio at the synthesizer's ``sample_rate``.
        sample_rate: Hz.
        compute_s: seconds it took to synthesize.
    """

    text: str
    samples: np.ndarray
    sample_rate: int
    compute_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


class Synthesizer(Protocol):
    """Text-to-speech for one or more languages.

    Attributes:
        name: the backend (``kokoro``, ``piper``, ``espeak``).
        sample_rate: Hz of the audio it yields.
        license: the license of its weights and code, for the README and ``--list-voices``.
    """

    name: str
    sample_rate: int
    license: str

    def voices(self, lang: str) -> list[str]:
        """The voices that speak ``lang`` (``"zh"`` or ``"en"``), best first."""
        ...

    def synthesize(
        self, text: str, voice: str, lang: str, *, speed: float = 1.0
    ) -> Iterator[SpokenClause]:
        """Speak ``text`` in ``lang`` with ``voice``.

        Args:
            text: target text, possibly mixed (Latin words in Chinese, numbers, units, symbols;
                emoji and the like are skipped).
            voice: one of :meth:`voices`.
            lang: ``"zh"`` or ``"en"``.
            speed: speaking rate, 1.0 normal; the scheduler raises it (up to about 1.3) to
                catch up.

        Yields:
            one :class:`SpokenClause` per clause of ``text``, as soon as it is synthesized.
            Text with nothing to say (only punctuation or emoji) yields nothing.

        Raises:
            SynthesisError: the backend failed on this text.
        """
        ...


def to_output_rate(clause: SpokenClause) -> np.ndarray:
    """The clause's samples resampled to :data:`OUTPUT_RATE` (float32, soxr)."""
    samples = np.asarray(clause.samples, dtype=np.float32)
    if clause.sample_rate == OUTPUT_RATE or len(samples) == 0:
        return samples
    try:
        import soxr
    except ImportError as err:
        raise ImportError("resampling speech needs soxr: pip install soxr") from err
    return soxr.resample(samples, clause.sample_rate, OUTPUT_RATE).astype(np.float32)
