"""Streaming voice activity detection on silero's ONNX model through onnxruntime (no torch).

The model scores 32 ms frames (512 samples at 16 kHz, each preceded by the 64 samples before
it as context) with a recurrent state carried from frame to frame. :class:`SpeechSegmenter`, a
pure hysteresis state machine, turns the scores into speech regions: speech starts above
``threshold`` and ends after ``min_silence_s`` below ``neg_threshold``; the end of a region is
the endpoint a recognizer finalizes at. :func:`speech_regions` runs it over a whole sequence.

The weights are the silero v6 file that ships in the faster-whisper wheel (a dependency
already), verified by sha256. The ``silero-vad`` wheel's ``silero_vad.onnx`` also works when
its path is given, but that wheel depends on torch, so it is never required.

Typical use: one :class:`SileroVAD` per process, one :class:`VadStream` per audio stream::

    vad = SileroVAD()
    stream = VadStream(vad)
    for chunk in chunks:
        for event in stream.feed(chunk):
            ...
    events = stream.finish()
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulinterp.asr.base import VadModel
from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.packaged import file_sha256, package_dir

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
_MAX_FRAMES_PER_RUN = 10000  # 320 s of audio per session.run, to bound memory on huge feeds

#: sha256 of the ONNX files known to work, and where each comes from.
KNOWN_MODELS: dict[str, str] = {
    "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2": (
        "faster-whisper 1.2.1 wheel: faster_whisper/assets/silero_vad_v6.onnx"
    ),
    "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3": (
        "silero-vad 6.2.3 wheel: silero_vad/data/silero_vad.onnx"
    ),
    "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49": (
        "silero-vad 6.2.3 wheel: silero_vad/data/silero_vad_16k_op15.onnx"
    ),
}


class VadModelError(ValueError):
    """The VAD model file is not one this module knows (damaged, or a different version)."""


@dataclass(frozen=True)
class VadConfig:
    """Hysteresis and timing of speech regions.

    Attributes:
        threshold: a frame whose speech probability is at least this starts speech, and ends a
            pause inside speech.
        neg_threshold: a frame below this starts a pause inside speech; between the two
            thresholds the current state holds (hysteresis).
        min_speech_s: a region with less speech than this is dropped (clicks, coughs); a
            :class:`SpeechStart` is emitted only once this much speech is confirmed, seconds.
        min_silence_s: pause needed to end speech (the endpoint delay), seconds.
        speech_pad_s: widens each region by this much at both ends, seconds.
        max_speech_s: a region reaching this length is cut at its lowest-probability point
            (or at the pause under way), so downstream buffers stay bounded, seconds.
    """

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_s: float = 0.25
    min_silence_s: float = 0.5
    speech_pad_s: float = 0.1
    max_speech_s: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.neg_threshold <= self.threshold < 1.0:
            raise ValueError(f"need 0 < neg_threshold <= threshold < 1 in {self}")
        if self.min_speech_s < 0 or self.speech_pad_s < 0 or self.min_silence_s <= 0:
            raise ValueError(f"need min_speech_s, speech_pad_s >= 0, min_silence_s > 0: {self}")
        if self.max_speech_s <= self.min_speech_s:
            raise ValueError(f"need max_speech_s > min_speech_s in {self}")


@dataclass(frozen=True)
class SpeechStart:
    """Speech was confirmed; it began at ``start_s`` (padded), seconds from stream start."""

    start_s: float


@dataclass(frozen=True)
class SpeechEnd:
    """A speech region ended; it spans ``start_s`` to ``end_s`` (padded), seconds."""

    start_s: float
    end_s: float


VadEvent = SpeechStart | SpeechEnd


def _frames(seconds: float, frame_s: float) -> int:
    """Whole frames needed to cover ``seconds`` (robust to float noise: 0.5 / 0.032 -> 16)."""
    return math.ceil(round(seconds / frame_s, 6))


class SpeechSegmenter:
    """The hysteresis state machine over frame probabilities; pure, no model.

    Feed probabilities in any grouping with :meth:`push`; the events do not depend on it.

    Args:
        config: thresholds and timing.
        frame_s: duration of one probability's frame, seconds.
    """

    def __init__(self, config: VadConfig | None = None, frame_s: float = FRAME_S):
        if frame_s <= 0:
            raise ValueError(f"frame_s must be positive, got {frame_s}")
        self.config, self.frame_s = config or VadConfig(), frame_s
        self._min_speech = _frames(self.config.min_speech_s, frame_s)
        self._min_silence = _frames(self.config.min_silence_s, frame_s)
        self._max_speech = max(2, _frames(self.config.max_speech_s, frame_s))
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next probability is frame 0."""
        self.frames = 0
        self._start: int | None = None  # first frame of the open region
        self._pause: int | None = None  # first frame of the pause under way in it
        self._confirmed = False
        self._start_s = 0.0  # padded start of the open region
        self._last_end_s = 0.0  # padded end of the last region: the next cannot start earlier
        self._probs: list[float] = []  # of the open region, for a forced split

    @property
    def in_speech(self) -> bool:
        """Whether a confirmed region is open."""
        return self._confirmed

    def push(self, probs: Sequence[float] | np.ndarray) -> list[VadEvent]:
        """Take the next frames' speech probabilities; return the events they complete."""
        events: list[VadEvent] = []
        for prob in np.asarray(probs, dtype=np.float64).reshape(-1).tolist():
            self._step(prob, events)
        return events

    def finish(self, end_s: float | None = None) -> list[VadEvent]:
        """The audio has ended (at ``end_s``, default the last frame's end): close the region.

        A region still speaking ends with the audio; one in a pause ends where the pause began.
        """
        events: list[VadEvent] = []
        if self._start is not None:
            audio_end_s = self.frames * self.frame_s if end_s is None else end_s
            if self._pause is not None:
                audio_end_s = self._pause_end_s(audio_end_s)
            self._close(audio_end_s, events)
        return events

    def _step(self, prob: float, events: list[VadEvent]) -> None:
        cfg, index = self.config, self.frames
        self.frames += 1
        if self._start is None:
            if prob < cfg.threshold:
                return
            self._start, self._pause, self._confirmed, self._probs = index, None, False, []
        self._probs.append(prob)
        if prob >= cfg.threshold:
            self._pause = None
        elif prob < cfg.neg_threshold and self._pause is None:
            self._pause = index
        speech_end = self.frames if self._pause is None else self._pause
        if not self._confirmed and speech_end - self._start >= self._min_speech:
            self._confirmed = True
            start_s = self._start * self.frame_s - cfg.speech_pad_s
            self._start_s = max(start_s, self._last_end_s, 0.0)
            events.append(SpeechStart(self._start_s))
        if self._pause is not None and self.frames - self._pause >= self._min_silence:
            self._close(self._pause_end_s(), events)
        elif self.frames - self._start >= self._max_speech:
            self._split(events)

    def _pause_end_s(self, limit_s: float | None = None) -> float:
        """End of a region at its pause: where the pause began, padded, within the audio seen."""
        pause = self._pause or 0
        end_s = pause * self.frame_s + self.config.speech_pad_s
        return min(end_s, self.frames * self.frame_s if limit_s is None else limit_s)

    def _close(self, end_s: float, events: list[VadEvent]) -> None:
        """End the open region at ``end_s``; emit it if it was confirmed."""
        if self._confirmed:
            self._last_end_s = max(end_s, self._start_s)
            events.append(SpeechEnd(self._start_s, self._last_end_s))
        self._start, self._pause, self._confirmed, self._probs = None, None, False, []

    def _split(self, events: list[VadEvent]) -> None:
        """The region reached max_speech_s: end it at a pause, else at its quietest frame."""
        if self._pause is not None:  # a pause shorter than min_silence_s is under way
            self._close(self._pause_end_s(), events)
            return
        # No pause, so the region is confirmed (its speech >= max_speech_s > min_speech_s). Cut
        # at the quietest frame of its later half (the latest of equals), so no piece is tiny.
        start = self._start or 0
        later = self._probs[len(self._probs) // 2 :][::-1]
        cut = self.frames - 1 - int(np.argmin(later))
        cut_s = cut * self.frame_s
        events += [SpeechEnd(self._start_s, cut_s), SpeechStart(cut_s)]
        logger.debug("speech longer than %.1f s: split at %.2f s", self.config.max_speech_s, cut_s)
        self._probs = self._probs[cut - start :]
        self._start, self._start_s, self._last_end_s = cut, cut_s, cut_s


def speech_regions(
    probs: Sequence[float] | np.ndarray,
    frame_s: float = FRAME_S,
    config: VadConfig | None = None,
) -> list[tuple[float, float]]:
    """Speech regions of a whole probability sequence, as :class:`VadStream` would find them.

    Args:
        probs: speech probability of each frame, in order.
        frame_s: duration of one frame, seconds.
        config: thresholds and timing.

    Returns:
        ``(start_s, end_s)`` of each region, padded, in order.
    """
    segmenter = SpeechSegmenter(config, frame_s)
    events = segmenter.push(probs) + segmenter.finish()
    return [(e.start_s, e.end_s) for e in events if isinstance(e, SpeechEnd)]


def packaged_model_path() -> Path:
    """The silero v6 ONNX file shipped in the faster-whisper wheel.

    It is located with ``importlib.util.find_spec``, which, unlike importing the package, does not
    load faster-whisper (and CTranslate2) just to find a file.

    Raises:
        FileNotFoundError: faster-whisper is not installed or lacks the file.
    """
    assets = package_dir("faster_whisper", "assets")
    if assets is not None and (path := assets / "silero_vad_v6.onnx").is_file():
        return path
    raise FileNotFoundError(
        "the VAD model ships with faster-whisper, which is missing or too old: "
        "pip install 'faster-whisper>=1.2' (or pass model_path=)"
    )


class SileroVAD:
    """The loaded silero model; stateless, so one instance serves every :class:`VadStream`.

    Args:
        model_path: an ONNX file; the one packaged in faster-whisper by default. Either
            interface works: v6 as in faster-whisper (``input`` [n, 576] frames in sequence,
            ``h``, ``c``) or as in the silero-vad wheel (``input`` [1, 576], ``state``, ``sr``).
        sha256: the file's expected digest; by default it must be one of :data:`KNOWN_MODELS`.

    Raises:
        FileNotFoundError: the file does not exist.
        VadModelError: its sha256 is not the expected one.
        ImportError: onnxruntime is not installed.
    """

    def __init__(self, model_path: str | Path | None = None, *, sha256: str | None = None):
        path = Path(model_path) if model_path is not None else packaged_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"VAD model not found: {path}")
        digest = file_sha256(path)
        if sha256 is not None and digest != sha256.lower():
            raise VadModelError(
                f"VAD model {path} has sha256 {digest}, expected {sha256}: the file is damaged "
                "or a different version"
            )
        if sha256 is None and digest not in KNOWN_MODELS:
            raise VadModelError(
                f"VAD model {path} has unknown sha256 {digest}: the file is damaged or not a "
                "known silero version (reinstall faster-whisper, or pass sha256= to trust it)"
            )
        try:
            import onnxruntime
        except ImportError as err:
            raise ImportError("the VAD needs onnxruntime: pip install onnxruntime") from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in self._session.get_inputs()}
        if inputs == {"input", "h", "c"}:
            self._sequence = True
        elif inputs == {"input", "state", "sr"}:
            self._sequence = False
        else:
            raise VadModelError(f"VAD model {path} has unexpected inputs {sorted(inputs)}")
        self.path, self.sha256 = path, digest
        logger.debug("VAD model %s (%s)", path, KNOWN_MODELS.get(digest, "trusted by sha256"))

    @staticmethod
    def initial_state() -> np.ndarray:
        """The recurrent state before the first frame: LSTM (h, c) stacked, [2, 1, 128]."""
        return np.zeros((2, 1, 128), dtype=np.float32)

    def score(self, frames: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Speech probabilities of consecutive frames, and the state after them.

        Args:
            frames: float32 [n, 576]: each frame's 64 context samples, then its 512 samples.
            state: from :meth:`initial_state` or the previous call.

        Returns:
            The n probabilities in [0, 1], and the next state.
        """
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32), state
        if self._sequence:
            probs, h, c = self._session.run(
                None, {"input": frames, "h": state[0:1], "c": state[1:2]}
            )
            return np.asarray(probs, dtype=np.float32).reshape(-1), np.concatenate([h, c])
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        out = np.empty(len(frames), dtype=np.float32)
        for i, frame in enumerate(frames):  # this interface batches streams, not time
            prob, state = self._session.run(None, {"input": frame[None], "state": state, "sr": sr})
            out[i] = float(np.asarray(prob).reshape(-1)[0])
        return out, state

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each whole 32 ms frame of a recording (the batch reference)."""
        stream = VadStream(self)
        stream.feed(samples)
        return stream.last_probs


class VadStream:
    """One audio stream's VAD: feed float32 mono 16 kHz audio in any chunk sizes, get events.

    The probabilities, hence the events, do not depend on how the audio is chunked: samples
    short of a whole frame wait for the next :meth:`feed`.

    Args:
        model: the shared VAD model (a :class:`SileroVAD`, or any :class:`VadModel`).
        config: thresholds and timing.

    Attributes:
        last_prob: speech probability of the last whole frame (0.0 before any).
        last_probs: speech probabilities of the frames the last :meth:`feed` completed.
    """

    def __init__(self, model: VadModel, config: VadConfig | None = None):
        self.model, self.config = model, config or VadConfig()
        self._segmenter = SpeechSegmenter(self.config, FRAME_S)
        self.reset()

    def reset(self) -> None:
        """Forget the stream; the next audio starts at time zero."""
        self._segmenter.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._state = self.model.initial_state()
        self._samples = 0
        self.last_probs = np.zeros(0, dtype=np.float32)
        self.last_prob = 0.0

    @property
    def in_speech(self) -> bool:
        """Whether confirmed speech is under way."""
        return self._segmenter.in_speech

    @property
    def position_s(self) -> float:
        """Audio fed so far, seconds (the last < 32 ms are scored once their frame is whole)."""
        return self._samples / SAMPLE_RATE

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        """Score float32 mono 16 kHz samples in [-1, 1]; return the events they complete.

        Raises:
            ValueError: the samples are not 1-D, not floating point, or not finite.
        """
        samples = _checked(samples)
        self._samples += len(samples)
        audio = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n = len(audio) // FRAME_SAMPLES
        self._pending = audio[n * FRAME_SAMPLES :].copy()
        if n == 0:
            self.last_probs = np.zeros(0, dtype=np.float32)
            return []
        events: list[VadEvent] = []
        scored: list[np.ndarray] = []
        for first in range(0, n, _MAX_FRAMES_PER_RUN):
            last = min(n, first + _MAX_FRAMES_PER_RUN)
            block = audio[first * FRAME_SAMPLES : last * FRAME_SAMPLES]
            with_context = np.concatenate([self._context, block])
            frames = np.lib.stride_tricks.sliding_window_view(
                with_context, CONTEXT_SAMPLES + FRAME_SAMPLES
            )[::FRAME_SAMPLES]
            self._context = block[-CONTEXT_SAMPLES:].copy()
            probs, self._state = self.model.score(np.ascontiguousarray(frames), self._state)
            scored.append(probs)
            events += self._segmenter.push(probs)
        self.last_probs = np.concatenate(scored) if len(scored) > 1 else scored[0]
        self.last_prob = float(self.last_probs[-1])
        return events

    def finish(self) -> list[VadEvent]:
        """The audio has ended: close an open speech region (its end is clipped to the audio)."""
        return self._segmenter.finish(self.position_s)


def _checked(samples: np.ndarray) -> np.ndarray:
    """The samples as float32 1-D, or a ValueError saying what is wrong with them."""
    try:
        array = np.asarray(samples)
    except (TypeError, ValueError) as err:
        raise ValueError(f"VAD input must be a 1-D float array, got {type(samples)}") from err
    if array.ndim != 1:
        raise ValueError(
            f"VAD input must be mono 1-D samples, got shape {array.shape} "
            "(mix channels down first, e.g. samples.mean(axis=1))"
        )
    if array.dtype.kind != "f":
        hint = " (scale integer PCM: int16 / 32768)" if array.dtype.kind in "iu" else ""
        raise ValueError(f"VAD input must be float samples in [-1, 1], got {array.dtype}{hint}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError("VAD input contains NaN or infinite samples")
    return array
