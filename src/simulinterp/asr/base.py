"""What a streaming recognizer needs from its models: two small protocols.

:class:`~simulinterp.asr.stream.StreamingRecognizer` drives any :class:`SpeechModel` (an
encoder-decoder recognizer that can encode a short window once and decode it with a forced
prefix) and any :class:`VadModel` (frame scores with a recurrent state). whisper-base through
CTranslate2 (:mod:`simulinterp.asr.whisper`) and silero (:mod:`simulinterp.asr.vad`) are the
packaged ones; a second recognizer plugs in beside them by implementing the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Decoded:
    """One decode of a window.

    Attributes:
        text: the new text after the forced prefix (the model's own spacing kept).
        finished: the decoder ended the text itself (not cut by the token cap).
        avg_logprob: mean log-probability of the new tokens.
    """

    text: str
    finished: bool
    avg_logprob: float


@runtime_checkable
class SpeechModel(Protocol):
    """A loaded recognizer model, shared by every session (stateless between calls).

    Attributes:
        name: the preset name or path it was loaded from.
        languages: the language codes it transcribes.
    """

    name: str
    languages: tuple[str, ...]

    def encode(self, audio: np.ndarray, pad_s: float = 1.5) -> Any:
        """Encode ``audio`` (float32, 16 kHz, at most 30 s) followed by ``pad_s`` of silence;
        the result is opaque and only passed back to this model."""
        ...

    def decode(
        self,
        encoded: Any,
        lang: str,
        *,
        prompt: str = "",
        prefix: str = "",
        max_new_tokens: int = 64,
        beam_size: int = 1,
    ) -> Decoded:
        """Decode after a forced ``prefix``; ``prompt`` is earlier text given as context."""
        ...

    def word_times(
        self, encoded: Any, lang: str, text: str, audio_s: float
    ) -> list[tuple[str, float, float]]:
        """(word, start_s, end_s) of ``text`` in the window, seconds from its start; an empty
        list when the model cannot align (the recognizer then keeps its window)."""
        ...

    def detect_language(self, encoded: Any) -> list[tuple[str, float]]:
        """Language probabilities of an encoded window, best first."""
        ...

    def transcribe(self, audio: np.ndarray, lang: str) -> str:
        """Offline transcription of a whole recording (the reference cascade's recognizer)."""
        ...


@runtime_checkable
class VadModel(Protocol):
    """Voice activity scores for 32 ms frames, with a recurrent state carried by the caller."""

    def initial_state(self) -> np.ndarray:
        """The state before the first frame."""
        ...

    def score(self, frames: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Speech probabilities of ``frames`` [n, 576] and the state after them."""
        ...
