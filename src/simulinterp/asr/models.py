"""Recognizer models by name: the one place that knows every speech model this package runs."""

from __future__ import annotations

from simulinterp.asr.base import SpeechModel


def load_speech_model(name: str = "base", *, threads: int = 2) -> SpeechModel:
    """Load a recognizer model: a packaged preset (``base``, ``tiny.en``) or a directory.

    A directory holding a CTranslate2 whisper conversion (``model.bin``) loads through
    CTranslate2.

    Raises:
        ModelNotFoundError: the preset's packages are missing or the directory holds no model.
    """
    from simulinterp.asr.whisper import WhisperEngine

    return WhisperEngine(name, threads=threads)
