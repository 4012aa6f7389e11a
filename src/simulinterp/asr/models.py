"""Recognizer models by name: the one place that knows every speech model this package runs."""

from __future__ import annotations

from pathlib import Path

from simulinterp.asr.base import SpeechModel

PRESETS = ("base", "tiny.en", "small")


def load_speech_model(name: str = "base", *, threads: int = 2, workers: int = 1) -> SpeechModel:
    """Load a recognizer model: a preset (``base``, ``tiny.en``, ``small``) or a directory.

    ``base`` and ``tiny.en`` ship in PyPI packages and run through CTranslate2, with
    ``workers`` decodes at once (onnxruntime models always run concurrent calls at once). ``small``
    (whisper-small, int8 ONNX, through onnxruntime) is opt-in: ``simulinterp install
    whisper-small`` puts it in the cache first. A directory holding a CTranslate2 whisper
    conversion (``model.bin``) loads through CTranslate2; one holding an installed ONNX export
    (``encoder_model_short.onnx``) through onnxruntime.

    Raises:
        ModelNotFoundError: the preset is not installed (the message has the command that
            installs it) or the directory holds no model.
        ValueError: an installed file does not match its pinned sha256.
    """
    from simulinterp.asr.onnx_install import ENCODER, ONNX_PRESETS, installed_dir

    if name in ONNX_PRESETS:
        from simulinterp.asr.onnx_whisper import OnnxWhisperEngine

        model = ONNX_PRESETS[name]
        folder = installed_dir(model)
        return OnnxWhisperEngine(folder, name=name, threads=threads, languages=model.languages)
    if (Path(name) / ENCODER).is_file():
        from simulinterp.asr.onnx_whisper import OnnxWhisperEngine

        return OnnxWhisperEngine(Path(name), name=name, threads=threads)
    from simulinterp.asr.whisper import WhisperEngine

    return WhisperEngine(name, threads=threads, workers=workers)
