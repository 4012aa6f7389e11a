"""Audio in: probe, decode and resample any recording to float32 mono 16 kHz, streaming.

Two decoders share one conversion path. soundfile (libsndfile) reads wav, flac, ogg
(vorbis, opus), aiff and the like in fixed blocks; PyAV (FFmpeg) reads mp3, m4a/aac, webm and
whatever else libsndfile refuses, frame by frame. Each block is downmixed (channel mean) and
fed to a streaming soxr resampler, then cut into chunks of a fixed length. Only a block or two
is ever in memory, so an hour-long file streams in bounded memory, and because the resampler
keeps its state across blocks, chunk boundaries leave no seams.

Every bad input (missing, empty, corrupt, not audio, damaged midway) raises :class:`AudioError`
with a message that names the file, says what is wrong and what to do.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""The one internal sample rate, Hz. Audio inside the package is float32 mono at this rate."""

SUPPORTED_FORMATS = (
    "wav, flac, ogg (vorbis, opus), mp3, m4a/aac, aiff, webm, mp4 "
    "and most other formats FFmpeg (PyAV) can decode"
)

# Extensions decoded by PyAV directly: libsndfile either lacks them or (mp3) we prefer FFmpeg.
_AV_SUFFIXES = frozenset({".mp3", ".m4a", ".m4b", ".aac", ".mp4", ".webm", ".mkv", ".mov", ".wma"})
_BLOCK_FRAMES = 8192  # frames read per soundfile block, independent of the chunk length


class AudioError(Exception):
    """A recording or audio device cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class AudioInfo:
    """What a recording holds, before any conversion.

    Attributes:
        path: the file, as given.
        sample_rate: its native sample rate, Hz.
        channels: its channel count.
        duration_s: its length in seconds, or ``None`` when the container does not say.
        codec: the codec or sample encoding (``pcm_16``, ``flac``, ``vorbis``, ``mp3``, ``aac``).
    """

    path: str
    sample_rate: int
    channels: int
    duration_s: float | None
    codec: str


def require(module: str, hint: str) -> ModuleType:
    """Import an optional heavy dependency, or fail with an install hint.

    Args:
        module: the module to import.
        hint: what to run to install it.

    Returns:
        The imported module.

    Raises:
        AudioError: the module (or a system library it needs) is missing.
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as err:
        raise AudioError(f"{module} is not available ({err}); install it with `{hint}`") from err


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read a recording's format without decoding it (beyond its first frame).

    Args:
        path: the recording.

    Returns:
        Its native rate, channels, duration and codec.

    Raises:
        AudioError: the file is missing, empty, not audio, corrupt, or holds no audio.
    """
    return _probe(path)[0]


def stream_file(path: str | os.PathLike[str], chunk_s: float = 0.1) -> Iterator[np.ndarray]:
    """Decode a recording as float32 mono 16 kHz chunks, in bounded memory.

    The file is probed at once, so a bad file fails here rather than at the first chunk.

    Args:
        path: the recording (any format :func:`probe` accepts).
        chunk_s: length of each chunk, seconds; the last one may be shorter.

    Returns:
        An iterator of 1-D float32 arrays of ``round(chunk_s * SAMPLE_RATE)`` samples.

    Raises:
        AudioError: the file cannot be opened (at call time), or it turns out damaged midway
            (during iteration, after every chunk decoded before the damage has been yielded).
        ValueError: ``chunk_s`` is not positive.
    """
    chunk_samples = _chunk_samples(chunk_s)
    info, backend = _probe(path)
    blocks = _sf_blocks(info.path) if backend == "soundfile" else _av_blocks(info.path)
    return _convert(blocks, chunk_samples, info.path)


def load_file(path: str | os.PathLike[str], *, max_s: float = 600.0) -> np.ndarray:
    """Decode a short recording whole, as float32 mono 16 kHz.

    Args:
        path: the recording.
        max_s: longest recording accepted, seconds; longer ones should be streamed.

    Returns:
        All samples, 1-D float32 (empty only if the file is shorter than a sample at 16 kHz).

    Raises:
        AudioError: the file is bad, or longer than ``max_s``.
    """
    info = probe(path)
    too_long = AudioError(
        f"{info.path}: the recording is longer than {max_s:g} s, too long to load whole; "
        "stream it with stream_file() or FileSource instead (or raise max_s)"
    )
    if info.duration_s is not None and info.duration_s > max_s:
        raise too_long
    parts, total = [], 0
    for chunk in stream_file(path, chunk_s=1.0):
        parts.append(chunk)
        total += len(chunk)
        if total > (max_s + 1.0) * SAMPLE_RATE:  # the container did not know its duration
            raise too_long
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class MonoResampler:
    """Streaming downmix (channel mean) and resampling to :data:`SAMPLE_RATE`.

    Args:
        rate: input sample rate, Hz.
        channels: input channel count (for the log line only; any count is averaged).
        name: what to call the input in the log line.
    """

    def __init__(self, rate: int, channels: int, *, name: str = "audio") -> None:
        self.rate = int(rate)
        self._stream = None
        if self.rate != SAMPLE_RATE:
            soxr = require("soxr", "pip install soxr")
            self._stream = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
        if self.rate != SAMPLE_RATE or channels != 1:
            layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}-channel")
            logger.info("%s: %d Hz %s -> %d Hz mono", name, self.rate, layout, SAMPLE_RATE)

    def push(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Convert one block.

        Args:
            block: samples, shape ``(frames,)`` or ``(frames, channels)``.
            last: this is the final block; the resampler's tail is flushed.

        Returns:
            1-D float32 samples at :data:`SAMPLE_RATE` (may be empty while the filter fills).
        """
        mono = block if block.ndim == 1 else block.mean(axis=1, dtype=np.float32)
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)

    def flush(self) -> np.ndarray:
        """The samples still held by the resampler's filter, at the end of the stream."""
        return self.push(np.zeros(0, dtype=np.float32), last=True)


class Rechunker:
    """Cuts a stream of arrays of any length into chunks of exactly ``size`` samples.

    Args:
        size: samples per chunk.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._rest = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Add samples; return the chunks now complete."""
        if len(self._rest):
            samples = np.concatenate([self._rest, samples])
        full = len(samples) // self.size * self.size
        self._rest = samples[full:]
        return [samples[i : i + self.size] for i in range(0, full, self.size)]

    def flush(self) -> list[np.ndarray]:
        """The last, shorter chunk, if any samples are left."""
        rest, self._rest = self._rest, np.zeros(0, dtype=np.float32)
        return [rest] if len(rest) else []


def _chunk_samples(chunk_s: float) -> int:
    if not chunk_s > 0:
        raise ValueError(f"chunk_s must be positive, got {chunk_s}")
    return max(1, round(chunk_s * SAMPLE_RATE))


def _convert(
    blocks: Iterable[tuple[np.ndarray, int]], chunk_samples: int, name: str
) -> Iterator[np.ndarray]:
    """Native-rate multichannel blocks -> fixed-size 16 kHz mono chunks; damage raised last."""
    resampler: MonoResampler | None = None
    rechunker = Rechunker(chunk_samples)
    failure: AudioError | None = None
    try:
        for block, rate in blocks:
            if resampler is None or resampler.rate != rate:
                if resampler is not None:  # the stream changed rate midway: restart the filter
                    yield from rechunker.push(resampler.flush())
                resampler = MonoResampler(rate, block.shape[1], name=name)
            yield from rechunker.push(resampler.push(block))
    except AudioError as err:
        failure = err
    finally:
        if hasattr(blocks, "close"):
            blocks.close()
    if resampler is not None:
        yield from rechunker.push(resampler.flush())
    yield from rechunker.flush()
    if failure is not None:
        raise failure


def _probe(path: str | os.PathLike[str]) -> tuple[AudioInfo, str]:
    """The file's info and which decoder reads it (``soundfile`` or ``av``)."""
    file = Path(path)
    _check_file(file)
    if file.suffix.lower() not in _AV_SUFFIXES:
        info = _probe_soundfile(file)
        if info is not None:
            return info, "soundfile"
    return _probe_av(file), "av"


def _check_file(file: Path) -> None:
    if not file.exists():
        raise AudioError(f"{file}: no such file; check the path (working folder: {Path.cwd()})")
    if file.is_dir():
        raise AudioError(f"{file}: is a folder, not an audio file; give the recording's path")
    if not os.access(file, os.R_OK):
        raise AudioError(f"{file}: cannot be read (permission denied); check its permissions")
    if file.stat().st_size == 0:
        raise AudioError(
            f"{file}: the file is empty (0 bytes); the recording or copy may have failed"
        )


def _no_audio(file: Path, detail: str) -> AudioError:
    return AudioError(
        f"{file}: contains no audio ({detail}); give a recording with sound in it "
        f"(supported formats: {SUPPORTED_FORMATS})"
    )


def _unsupported(file: Path, detail: str) -> AudioError:
    return AudioError(
        f"{file}: not a supported audio file, or it is corrupt ({detail}). Supported formats: "
        f"{SUPPORTED_FORMATS}. If it is audio, convert it, e.g. "
        f"`ffmpeg -i {file.name} -ac 1 -ar 16000 {file.stem}-16k.wav`"
    )


def _damaged(file: Path, at_s: float, detail: str) -> AudioError:
    return AudioError(
        f"{file}: the file is damaged or truncated at about {at_s:.1f} s and cannot be decoded "
        f"further ({detail}); the audio before that point was delivered. "
        "Re-export or re-download the file"
    )


def _probe_soundfile(file: Path) -> AudioInfo | None:
    """libsndfile's view of the file, or ``None`` when PyAV should read it."""
    sf = require("soundfile", "pip install soundfile")
    try:
        info = sf.info(str(file))
    except (sf.SoundFileError, RuntimeError):
        return None
    if info.format == "MP3":  # an mp3 under another name: FFmpeg handles padding better
        return None
    if info.frames == 0:
        raise _no_audio(file, f"a {info.format} header with 0 samples")
    codec = info.format if info.format == "FLAC" else info.subtype
    return AudioInfo(str(file), info.samplerate, info.channels, info.duration, codec.lower())


def _probe_av(file: Path) -> AudioInfo:
    av = require("av", "pip install av")
    try:
        with av.open(str(file)) as container:
            if not container.streams.audio:
                found = ", ".join(f"{s.type} ({s.codec_context.name})" for s in container.streams)
                detail = f"FFmpeg sees {container.format.name}: {found or 'no streams'}, no audio"
                raise _unsupported(file, detail)
            stream = container.streams.audio[0]
            first = next(container.decode(stream), None)
            if first is None:
                codec = stream.codec_context.codec.canonical_name
                raise _no_audio(file, f"an audio stream ({codec}) with 0 samples")
            if stream.duration is not None:
                duration_s = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration_s = container.duration / av.time_base
            else:
                duration_s = None
            return AudioInfo(
                str(file),
                first.sample_rate,
                first.layout.nb_channels,
                duration_s,
                stream.codec_context.codec.canonical_name,
            )
    except av.FFmpegError as err:
        raise _unsupported(file, f"FFmpeg: {err.strerror or err}") from err


def _sf_blocks(path: str) -> Iterator[tuple[np.ndarray, int]]:
    """``(frames, channels)`` float32 blocks at the native rate, read with libsndfile."""
    sf = require("soundfile", "pip install soundfile")
    file = Path(path)
    with sf.SoundFile(path) as f:
        done = 0
        while True:
            try:
                block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError) as err:
                raise _damaged(file, done / f.samplerate, str(err).strip()) from err
            if len(block):
                done += len(block)
                yield block, f.samplerate
            if len(block) < _BLOCK_FRAMES:
                break
        if done < f.frames:
            raise _damaged(
                file, done / f.samplerate, f"the header promises {f.frames / f.samplerate:.1f} s"
            )


def _av_blocks(path: str) -> Iterator[tuple[np.ndarray, int]]:
    """``(frames, channels)`` float32 blocks at the native rate, decoded with FFmpeg."""
    av = require("av", "pip install av")
    file = Path(path)
    done_s = 0.0
    try:
        with av.open(path) as container:
            for frame in container.decode(container.streams.audio[0]):
                block = _frame_to_float(frame)
                done_s += len(block) / frame.sample_rate
                yield block, frame.sample_rate
    except av.FFmpegError as err:
        raise _damaged(file, done_s, f"FFmpeg: {err.strerror or err}") from err


def _frame_to_float(frame) -> np.ndarray:
    """A PyAV audio frame as a ``(frames, channels)`` float32 array in [-1, 1]."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    data = data.T if frame.format.is_planar else data.reshape(-1, channels)
    if data.dtype.kind == "f":
        return data.astype(np.float32, copy=False)
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
