"""espeak-ng as a subprocess: the last-resort voice (both languages) and Piper's phonemizer.

espeak-ng is GPL-3.0, so it is never a dependency: it is run as a separate program when the
user installed it (``apt install espeak-ng``), and a clear :class:`SynthesisError` says so
when it is absent.
"""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator

import numpy as np

from simulinterp.tts.base import SpokenClause, SynthesisError
from simulinterp.tts.text import speakable_clauses

logger = logging.getLogger(__name__)

ESPEAK_VOICES = {"zh": "cmn", "en": "en-us"}
BASE_WPM = 175
"""espeak-ng's default rate, words per minute, at speed 1.0."""
_TIMEOUT_S = 30.0


def espeak_binary(purpose: str) -> str:
    """The path of ``espeak-ng`` (or ``espeak``).

    Args:
        purpose: who needs it, for the error message (``"the Piper voice"``).

    Raises:
        SynthesisError: neither is on the PATH.
    """
    found = shutil.which("espeak-ng") or shutil.which("espeak")
    if found is None:
        raise SynthesisError(
            f"{purpose} needs espeak-ng (GPL-3.0, run as a separate program): "
            "apt install espeak-ng; or use the default kokoro voice"
        )
    return found


def run_espeak(args: list[str], text: str, purpose: str) -> bytes:
    """Run espeak-ng with ``args`` on ``text`` (standard input) and return its stdout.

    Raises:
        SynthesisError: the binary is missing, failed or timed out.
    """
    cmd = [espeak_binary(purpose), *args]
    try:
        done = subprocess.run(
            cmd, input=text.encode("utf-8"), capture_output=True, check=False, timeout=_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SynthesisError(f"espeak-ng failed: {err}") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise SynthesisError(f"espeak-ng exited with {done.returncode}: {message}")
    return done.stdout


def ipa(text: str, voice: str, purpose: str = "the Piper voice") -> str:
    """espeak-ng's IPA for ``text`` (one line per espeak clause, joined by spaces)."""
    out = run_espeak(["-q", "--ipa", "-v", voice], text, purpose)
    return " ".join(line.strip() for line in out.decode("utf-8").splitlines() if line.strip())


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes (espeak-ng's ``--stdout``, whose sizes are placeholders) as
    float32 samples in [-1, 1] and the sample rate in Hz."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthesisError("espeak-ng did not write a WAV")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            rate = struct.unpack("<I", data[pos + 12 : pos + 16])[0]
        elif chunk == b"data":
            pcm = data[pos + 8 :]
            pcm = pcm[: len(pcm) // 2 * 2]
            return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, rate
        pos += 8 + size
    raise SynthesisError("espeak-ng's WAV has no data")


class EspeakSynthesizer:
    """espeak-ng's formant voices, ``cmn`` and ``en-us``: robotic but tiny and fast."""

    name = "espeak"
    sample_rate = 22_050
    license = "GPL-3.0 (espeak-ng, run as a separate program, not bundled)"

    def voices(self, lang: str) -> list[str]:
        """The espeak-ng voice for ``lang``."""
        if lang not in ESPEAK_VOICES:
            raise ValueError(f"espeak speaks zh and en, not {lang!r}")
        return [ESPEAK_VOICES[lang]]

    def synthesize(
        self, text: str, voice: str, lang: str, *, speed: float = 1.0
    ) -> Iterator[SpokenClause]:
        """Speak ``text`` clause by clause (see :class:`~simulinterp.tts.base.Synthesizer`)."""
        self.voices(lang)
        espeak_binary("the espeak voice")
        wpm = str(max(80, round(BASE_WPM * speed)))
        for clause in speakable_clauses(text, lang):
            start = time.perf_counter()
            data = run_espeak(["--stdout", "-v", voice, "-s", wpm], clause.text, "the espeak voice")
            samples, rate = parse_wav(data)
            if len(samples):
                yield SpokenClause(clause.text, samples, rate, time.perf_counter() - start)
