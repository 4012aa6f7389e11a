"""The synthesizer registry: backends by name, their default voices, ``--list-voices`` text."""

from __future__ import annotations

from simulinterp.tts.base import Synthesizer

BACKENDS = {
    "kokoro": "Kokoro-82M int8 ONNX, zh and en (default; Apache-2.0)",
    "piper": "Piper joe, en only (MIT; needs espeak-ng, GPL-3.0, as a program)",
    "espeak": "espeak-ng formant voices, zh and en (last resort; GPL-3.0 program)",
}
LANGUAGES = {"kokoro": ("zh", "en"), "piper": ("en",), "espeak": ("zh", "en")}
DEFAULT_BACKEND = "kokoro"


def load_synthesizer(name: str = DEFAULT_BACKEND, *, threads: int = 1) -> Synthesizer:
    """A synthesizer by backend name; nothing is loaded until it first speaks.

    Args:
        name: ``kokoro`` (default), ``piper`` or ``espeak``.
        threads: onnxruntime intra-op threads (the ONNX backends).

    Raises:
        ValueError: unknown name (the message lists the choices).
    """
    if name == "kokoro":
        from simulinterp.tts.kokoro import KokoroSynthesizer

        return KokoroSynthesizer(threads=threads)
    if name == "piper":
        from simulinterp.tts.piper import PiperSynthesizer

        return PiperSynthesizer(threads=threads)
    if name == "espeak":
        from simulinterp.tts.espeak import EspeakSynthesizer

        return EspeakSynthesizer()
    raise ValueError(f"unknown synthesizer {name!r}; choose one of: {', '.join(BACKENDS)}")


def check_language(name: str, lang: str) -> None:
    """Raise ``ValueError`` naming the backends that speak ``lang`` when ``name`` does not."""
    if name not in LANGUAGES:
        raise ValueError(f"unknown synthesizer {name!r}; choose one of: {', '.join(BACKENDS)}")
    if lang not in LANGUAGES[name]:
        able = [b for b, langs in LANGUAGES.items() if lang in langs]
        choices = ", ".join(able) if able else "none"
        raise ValueError(f"the {name} synthesizer does not speak {lang!r}; these do: {choices}")


def default_voice(synth: Synthesizer, lang: str) -> str:
    """The best voice of ``synth`` for ``lang``.

    Raises:
        ValueError: ``synth`` does not speak ``lang`` (the message names those that do).
    """
    check_language(synth.name, lang)
    return synth.voices(lang)[0]


def list_voices() -> str:
    """Every backend, its license and its voices per language, best first (``--list-voices``)."""
    lines = []
    for name, about in BACKENDS.items():
        synth = load_synthesizer(name)
        lines.append(f"{name}{' (default)' if name == DEFAULT_BACKEND else ''}: {about}")
        for lang in LANGUAGES[name]:
            lines.append(f"  {lang}: {', '.join(synth.voices(lang))}")
    return "\n".join(lines)
