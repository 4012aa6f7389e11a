"""Audio sources: iterables of timed 16 kHz chunks, from a file (paced or fast) or a microphone.

A source is an iterable of :class:`AudioChunk`; chunk ``k + 1`` starts where chunk ``k`` ends,
so ``start_s`` is the position in the stream in seconds. :class:`FileSource` can pace itself
like a live speaker (a chunk is yielded once its end has been reached on the clock), which is
how a recording is interpreted in real time. :class:`MicrophoneSource` records through
sounddevice (PortAudio) and is a context manager that stops the stream on exit.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from simulinterp.audio.io import (
    SAMPLE_RATE,
    AudioError,
    AudioInfo,
    MonoResampler,
    Rechunker,
    probe,
    stream_file,
)

logger = logging.getLogger(__name__)

_PORTAUDIO_HINT = (
    "sound in and out needs sounddevice and the PortAudio library: `pip install sounddevice`, "
    "then `sudo apt install libportaudio2` (Debian/Ubuntu) or `brew install portaudio` (macOS)"
)


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A piece of the audio stream (compared by identity: it holds an array).

    Attributes:
        samples: float32 mono samples at :data:`SAMPLE_RATE`.
        start_s: where the chunk starts, seconds from stream start.
    """

    samples: np.ndarray
    start_s: float

    @property
    def end_s(self) -> float:
        """Where the chunk ends, seconds from stream start."""
        return self.start_s + len(self.samples) / SAMPLE_RATE


class FileSource:
    """A recording as a stream of chunks, fast or paced like a live speaker.

    The file is probed at construction, so a bad file fails before any work starts.

    Args:
        path: the recording (any format :func:`~simulinterp.audio.io.probe` accepts).
        chunk_s: length of each chunk, seconds.
        realtime: pace the chunks: chunk ``k`` is yielded no earlier than its ``end_s`` after
            iteration began, as if it were being spoken.
        clock: monotonic clock in seconds (injectable for tests).
        sleep: sleeps the given seconds (injectable for tests).

    Raises:
        AudioError: the file is missing, empty, corrupt or not audio.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_s: float = 0.1,
        realtime: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not chunk_s > 0:
            raise ValueError(f"chunk_s must be positive, got {chunk_s}")
        self.path = str(path)
        self.chunk_s = chunk_s
        self.realtime = realtime
        self.info: AudioInfo = probe(path)
        self._clock = clock
        self._sleep = sleep

    def __iter__(self) -> Iterator[AudioChunk]:
        """Decode and yield the chunks in order.

        Yields:
            Consecutive chunks of ``chunk_s`` seconds (the last may be shorter).

        Raises:
            AudioError: the file is damaged midway (after the audio before it was yielded).
        """
        began = self._clock()
        done_samples = 0
        for samples in stream_file(self.path, self.chunk_s):
            chunk = AudioChunk(samples, done_samples / SAMPLE_RATE)
            done_samples += len(samples)
            if self.realtime:
                wait_s = chunk.end_s - (self._clock() - began)
                if wait_s > 0:
                    self._sleep(wait_s)
            yield chunk


def import_sounddevice(purpose: str = "use the microphone") -> ModuleType:
    """sounddevice, or an :class:`AudioError` saying how to install it and PortAudio."""
    try:
        import sounddevice
    except (ImportError, OSError) as err:  # OSError: "PortAudio library not found"
        raise AudioError(f"cannot {purpose} ({err}); {_PORTAUDIO_HINT}") from err
    return sounddevice


def list_input_devices() -> str:
    """The audio input devices, one a line, the default marked with ``*``.

    Raises:
        AudioError: sounddevice or PortAudio is missing.
    """
    sd = import_sounddevice()
    devices = list(sd.query_devices())
    inputs = _input_indices(devices)
    if not inputs:
        return "no audio input devices found; " + _describe(devices)
    default = _default_input(sd, inputs)
    lines = []
    for i in inputs:
        d = devices[i]
        mark = "*" if i == default else " "
        rate = int(d.get("default_samplerate", 0))
        lines.append(f"{mark} {i:>3}  {d['name']}  ({d['max_input_channels']} ch, {rate} Hz)")
    return "\n".join(lines)


class MicrophoneSource:
    """Live microphone audio as a stream of 16 kHz chunks.

    Use it as a context manager; iteration opens the stream if needed and ends after
    :meth:`stop` (or when the device's stream ends), once the audio already captured is out::

        with MicrophoneSource() as mic:
            for chunk in mic:
                ...

    The device records at 16 kHz when it can, else at its default rate, resampled on the fly.
    An input overflow (audio dropped because the consumer fell behind) is logged as a warning.

    Args:
        device: device index, a part of its name, or ``None`` for the default input.
        chunk_s: length of each chunk, seconds.

    Raises:
        AudioError: sounddevice/PortAudio is missing, or no such input device exists.
    """

    def __init__(self, device: int | str | None = None, *, chunk_s: float = 0.1) -> None:
        if not chunk_s > 0:
            raise ValueError(f"chunk_s must be positive, got {chunk_s}")
        self._sd = import_sounddevice()
        self.chunk_s = chunk_s
        self.device, self.name = self._find_device(device)
        self.rate = self._pick_rate()
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._stream: Any = None
        self._lock = threading.Lock()
        self._stopped = False

    def __enter__(self) -> MicrophoneSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Open and start the input stream (a no-op when it is already running).

        Raises:
            AudioError: the device cannot be opened.
        """
        with self._lock:
            if self._stream is not None or self._stopped:
                return
            try:
                self._stream = self._sd.InputStream(
                    device=self.device,
                    channels=1,
                    samplerate=self.rate,
                    dtype="float32",
                    blocksize=max(1, round(self.chunk_s * self.rate)),
                    callback=self._callback,
                    finished_callback=self._finished,
                )
                self._stream.start()
            except Exception as err:  # PortAudioError and the driver's own errors
                self._stream = None
                raise AudioError(f"cannot open microphone '{self.name}': {err}") from err
        logger.info("recording from '%s' at %d Hz", self.name, self.rate)

    def stop(self) -> None:
        """Stop recording; iteration ends once the audio already captured has been yielded."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
        self._queue.put(None)

    def __iter__(self) -> Iterator[AudioChunk]:
        """Yield the captured audio as it arrives.

        Yields:
            Consecutive chunks of ``chunk_s`` seconds at 16 kHz (the last may be shorter).
        """
        self.start()
        resampler = MonoResampler(self.rate, 1, name=f"microphone '{self.name}'")
        rechunker = Rechunker(max(1, round(self.chunk_s * SAMPLE_RATE)))
        done_samples = 0
        while (block := self._queue.get()) is not None:
            for samples in rechunker.push(resampler.push(block)):
                yield AudioChunk(samples, done_samples / SAMPLE_RATE)
                done_samples += len(samples)
        self._queue.put(None)  # keep the end marker for any later iteration
        for samples in rechunker.push(resampler.flush()) + rechunker.flush():
            yield AudioChunk(samples, done_samples / SAMPLE_RATE)
            done_samples += len(samples)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's thread: copy the block into the queue (its buffer is reused)."""
        if status:
            if getattr(status, "input_overflow", False):
                logger.warning("microphone input overflow: some audio was dropped")
            else:
                logger.warning("microphone status: %s", status)
        block = np.asarray(indata, dtype=np.float32)
        self._queue.put(block.mean(axis=1) if block.ndim == 2 else block.copy())

    def _finished(self) -> None:
        """The stream ended (stopped, or the device went away): end the iteration."""
        self._queue.put(None)

    def _find_device(self, device: int | str | None) -> tuple[int, str]:
        try:
            devices = list(self._sd.query_devices())
        except Exception as err:  # PortAudioError: the audio system failed to start
            raise AudioError(f"cannot list audio devices ({err}); {_PORTAUDIO_HINT}") from err
        inputs = _input_indices(devices)
        if not inputs:
            raise AudioError(
                f"no microphone found; available devices: {_describe(devices)}. "
                "Plug one in or check the system's sound settings"
            )
        if device is None:
            index = _default_input(self._sd, inputs)
        elif isinstance(device, int):
            index = device if device in inputs else -1
        else:
            matches = [i for i in inputs if device.lower() in str(devices[i]["name"]).lower()]
            index = matches[0] if matches else -1
        if index < 0:
            names = ", ".join(f"{i}: {devices[i]['name']}" for i in inputs)
            raise AudioError(f"no input device {device!r}; input devices: {names}")
        return index, str(devices[index]["name"])

    def _pick_rate(self) -> int:
        """16 kHz if the device takes it, else its default rate."""
        try:
            self._sd.check_input_settings(
                device=self.device, channels=1, samplerate=SAMPLE_RATE, dtype="float32"
            )
            return SAMPLE_RATE
        except Exception:  # PortAudioError: invalid sample rate
            info = self._sd.query_devices(self.device)
            return int(info["default_samplerate"])


def _input_indices(devices: list[dict[str, Any]]) -> list[int]:
    return [i for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]


def _describe(devices: list[dict[str, Any]]) -> str:
    return ", ".join(f"{i}: {d['name']}" for i, d in enumerate(devices)) or "none"


def _default_input(sd: ModuleType, inputs: list[int]) -> int:
    """The system's default input when it is one of ``inputs``, else the first input."""
    try:
        index = int(sd.default.device[0])
    except (AttributeError, TypeError, IndexError, ValueError):
        index = -1
    return index if index in inputs else inputs[0]
