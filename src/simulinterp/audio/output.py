"""Audio out: a WAV written on the input's timeline as it grows, and live playback.

:class:`TimelineWriter` appends each clause at its start time, filling the gap before it with
silence and flushing the header each time, so a crash or ``kill -9`` leaves a playable file up
to the last clause. :class:`Player` plays clauses through sounddevice at their start times.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from simulinterp.audio.io import AudioError

logger = logging.getLogger(__name__)


class TimelineWriter:
    """A mono 16-bit WAV whose second ``t`` is second ``t`` of the stream.

    Args:
        path: the file (overwritten).
        sample_rate: Hz.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int) -> None:
        import soundfile as sf

        self.path, self.sample_rate = path, sample_rate
        self._file = sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16")
        self.written_samples = 0

    @property
    def written_s(self) -> float:
        return self.written_samples / self.sample_rate

    def write_at(self, start_s: float, samples: np.ndarray) -> None:
        """Write ``samples`` from ``start_s`` (or right after what is written, if later)."""
        start = max(int(round(start_s * self.sample_rate)), self.written_samples)
        if start > self.written_samples:
            self._file.write(np.zeros(start - self.written_samples, dtype=np.float32))
        self._file.write(np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False))
        self._file.flush()  # libsndfile rewrites the header: the file is whole after each clause
        self.written_samples = start + len(samples)

    def close(self, until_s: float = 0.0) -> None:
        """Pad with silence to ``until_s`` (the end of the input) and close."""
        end = int(round(until_s * self.sample_rate))
        if end > self.written_samples:
            self._file.write(np.zeros(end - self.written_samples, dtype=np.float32))
            self.written_samples = end
        self._file.close()


def write_review(
    path: str | os.PathLike[str], source_16k: np.ndarray, interp_path: str | os.PathLike[str]
) -> None:
    """A stereo WAV: the source on the left, the interpretation on the right.

    Args:
        path: the review file.
        source_16k: the source audio, float32 mono 16 kHz.
        interp_path: the interpretation WAV (its rate is the review's).
    """
    import soundfile as sf
    import soxr

    from simulinterp.audio.io import SAMPLE_RATE

    interp, rate = sf.read(interp_path, dtype="float32")
    left = soxr.resample(source_16k, SAMPLE_RATE, rate) if len(source_16k) else source_16k
    n = max(len(left), len(interp))
    stereo = np.zeros((n, 2), dtype=np.float32)
    stereo[: len(left), 0] = left
    stereo[: len(interp), 1] = interp
    sf.write(path, stereo, rate, subtype="PCM_16")


class Player:
    """Plays clauses at their start times on an output device (sounddevice).

    Args:
        sample_rate: Hz of the clauses.
        clock_s: the stream's clock, seconds (start times are on it).
        device: output device name or index (default: the system's).

    Raises:
        AudioError: sounddevice/PortAudio is missing or there is no output device.
    """

    def __init__(
        self, sample_rate: int, clock_s: Callable[[], float], device: int | str | None = None
    ) -> None:
        from simulinterp.audio.sources import import_sounddevice

        sd = import_sounddevice("play audio")
        try:
            info = sd.query_devices(device, "output")
        except Exception as err:  # PortAudioError, ValueError: no such (or no) output device
            raise AudioError(f"no audio output device ({err})") from err
        self.sample_rate, self._clock = sample_rate, clock_s
        self._lock = threading.Lock()
        self._pieces: list[tuple[int, np.ndarray]] = []
        self._origin_s = clock_s()
        self._frames = 0
        try:
            self._stream = sd.OutputStream(
                samplerate=sample_rate,
                channels=1,
                dtype="float32",
                device=device,
                callback=self._fill,
            )
            self._stream.start()
        except Exception as err:
            raise AudioError(f"cannot open the output device {info.get('name')!r}: {err}") from err

    def play_at(self, start_s: float, samples: np.ndarray) -> None:
        """Queue ``samples`` to start at ``start_s`` on the stream's clock (now, if past)."""
        at = int(round((start_s - self._origin_s) * self.sample_rate))
        with self._lock:
            self._pieces.append((max(at, self._frames), samples.astype(np.float32)))

    def _fill(self, out: np.ndarray, frames: int, _time: object, _status: object) -> None:
        out.fill(0)
        begin = self._frames
        with self._lock:
            keep = []
            for at, samples in self._pieces:
                lo, hi = max(at, begin), min(at + len(samples), begin + frames)
                if hi > lo:
                    out[lo - begin : hi - begin, 0] = samples[lo - at : hi - at]
                if at + len(samples) > begin + frames:
                    keep.append((at, samples))
            self._pieces = keep
        self._frames = begin + frames

    def drain(self, timeout_s: float = 60.0) -> None:
        """Wait until everything queued has played (at most ``timeout_s``), then close."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pieces:
                    break
            time.sleep(0.05)
        self._stream.stop()
        self._stream.close()


def output_device_problem(device: int | str | None = None) -> str | None:
    """Why nothing can be played (no sounddevice/PortAudio, no output device), or None."""
    from simulinterp.audio.sources import import_sounddevice

    try:
        sd = import_sounddevice("play audio")
        sd.query_devices(device, "output")
    except AudioError as err:
        return str(err)
    except Exception as err:  # PortAudioError / ValueError: no (such) output device
        return f"no audio output device ({err})"
    return None
