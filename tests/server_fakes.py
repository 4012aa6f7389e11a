"""A server on the tone stand-ins: English tones in, the dictionary's Chinese out, in real time.

``python tests/server_fakes.py PORT SAVE_DIR [CERT KEY]`` runs it under uvicorn (the kill -9
and TLS tests).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from fakes import EN_ZH, DictionaryLLM
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.pipeline import SpeechSession
from simulinterp.policy import make_policy
from simulinterp.server.engine import ServerEngine, ServerSettings
from simulinterp.server.protocol import ClientConfig, pcm16_bytes
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from speech_fakes import EnergyVAD, ToneSynth, ToneWhisper, speak

SCRIPT = [["we", "go", "to", "the", "park"], ["he", "likes", "it"]]
CONFIG = {"type": "config", "version": 1, "from": "en", "to": "zh"}


class SlowToneWhisper(ToneWhisper):
    """Each decode takes ``sleep_s`` of real time per second of audio in its window."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        super().__init__()
        self.sleep_s = sleep_s

    def decode(self, encoded, lang, **kwargs):
        if self.sleep_s:
            time.sleep(self.sleep_s * len(encoded) / 16000)
        return super().decode(encoded, lang, **kwargs)


def tone_engine(*, decode_s: float = 0.0, voice: bool = True) -> ServerEngine:
    """An engine whose sessions hear tones (``speech_fakes``) and speak them as tones.

    Args:
        decode_s: seconds a decode takes per second of audio decoded.
        voice: the sessions can speak.
    """
    whisper = SlowToneWhisper(decode_s)

    def session(config: ClientConfig) -> SpeechSession:
        rec = StreamingRecognizer(
            whisper,  # type: ignore[arg-type]
            EnergyVAD(),  # type: ignore[arg-type]
            RecognizerConfig(lang="en", max_duty=1.0, sentence_pause_s=0.8),
        )
        translator = SimultaneousTranslator(
            DictionaryLLM(EN_ZH, target_lang="zh"),
            make_policy("wait-k", 2, "en", "zh"),
            TranslatorConfig(source_lang="en", target_lang="zh"),
        )
        return SpeechSession(rec, translator, realtime=True)

    loader = (lambda lang: (ToneSynth(), "tone")) if voice else None
    return ServerEngine(None, session_factory=session, voice_loader=loader)


def frames(audio: np.ndarray, rate: int = 16000, frame_s: float = 0.1) -> list[bytes]:
    """PCM16 frames of ``frame_s`` seconds."""
    step = int(rate * frame_s)
    return [pcm16_bytes(audio[i : i + step]) for i in range(0, len(audio), step)]


def script_audio(repeats: int = 1) -> np.ndarray:
    return np.concatenate([speak(SCRIPT)] * repeats)


def main() -> None:  # pragma: no cover - run as a subprocess
    import uvicorn

    from simulinterp.server.app import create_app

    port, save_dir = int(sys.argv[1]), Path(sys.argv[2])
    cert, key = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
    settings = ServerSettings(port=port, save_dir=save_dir)
    uvicorn.run(
        create_app(tone_engine(), settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )


if __name__ == "__main__":
    main()
