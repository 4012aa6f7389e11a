"""The audio-in layer: decoding, resampling, chunking, bad files, pacing and the microphone.

All audio is generated in ``tmp_path`` (soundfile for wav/flac/ogg, PyAV for mp3/m4a); the
microphone is a fake ``sounddevice`` module, so no sound hardware or PortAudio is needed.
"""

from __future__ import annotations

import logging
import struct
import sys
import threading
import time
import tracemalloc
import types
import zlib
from pathlib import Path

import numpy as np
import pytest

from simulinterp.audio import (
    SAMPLE_RATE,
    AudioChunk,
    AudioError,
    FileSource,
    MicrophoneSource,
    load_file,
    probe,
    stream_file,
)

sf = pytest.importorskip("soundfile")
av = pytest.importorskip("av")
soxr = pytest.importorskip("soxr")


def sine(rate: int, seconds: float, freq_hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq_hz * np.arange(round(rate * seconds)) / rate)).astype(
        np.float32
    )


def peak_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def write_av(path: Path, samples: np.ndarray, rate: int, codec: str) -> Path:
    """Encode mono float samples with PyAV (mp3: libmp3lame, m4a: aac)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        for start in range(0, len(samples), 1000):
            block = np.ascontiguousarray(samples[None, start : start + 1000])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
        + chunk(b"IEND", b"")
    )


# --- decoding and resampling ---------------------------------------------------------------


def test_16k_mono_wav_round_trips(tmp_path: Path) -> None:
    ints = np.random.default_rng(0).integers(-20000, 20000, 8000, dtype=np.int16)
    path = tmp_path / "a.wav"
    sf.write(path, ints, SAMPLE_RATE, subtype="PCM_16")
    info = probe(path)
    assert (info.sample_rate, info.channels, info.codec) == (16000, 1, "pcm_16")
    assert info.duration_s == pytest.approx(0.5)
    out = load_file(path)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ints.astype(np.float32) / 32768)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_length_and_frequency(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"sine{rate}.wav"
    sf.write(path, sine(rate, 2.0), rate, subtype="FLOAT")
    out = load_file(path)
    assert abs(len(out) - 2 * SAMPLE_RATE) <= 4
    assert peak_hz(out) == pytest.approx(440, abs=1)
    middle = out[4000:-4000]  # away from the filter's edges
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_stereo_downmix_is_channel_mean(tmp_path: Path, caplog) -> None:
    rng = np.random.default_rng(1)
    stereo = np.stack([sine(16000, 0.5), rng.uniform(-0.5, 0.5, 8000)], axis=1).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 16000, subtype="FLOAT")
    with caplog.at_level(logging.INFO, logger="simulinterp.audio"):
        out = load_file(path)
    np.testing.assert_allclose(out, stereo.mean(axis=1), atol=1e-7)
    assert probe(path).channels == 2
    assert "16000 Hz stereo -> 16000 Hz mono" in caplog.text


def test_resampling_is_logged_once(tmp_path: Path, caplog) -> None:
    path = tmp_path / "s48.wav"
    sf.write(path, np.stack([sine(48000, 1.0)] * 2, axis=1), 48000)
    with caplog.at_level(logging.INFO, logger="simulinterp.audio"):
        chunks = list(stream_file(path, chunk_s=0.1))
    assert len(chunks) == 10
    assert caplog.text.count("48000 Hz stereo -> 16000 Hz mono") == 1


@pytest.mark.parametrize(
    ("name", "subtype", "rate", "exact"),
    [
        ("a.flac", "PCM_16", 16000, True),
        ("a.flac", "PCM_24", 44100, False),
        ("a.ogg", "VORBIS", 44100, False),
        ("a.ogg", "OPUS", 48000, False),
    ],
)
def test_soundfile_formats(tmp_path: Path, name: str, subtype: str, rate: int, exact: bool) -> None:
    path = tmp_path / name
    signal = sine(rate, 1.5)
    sf.write(path, signal, rate, subtype=subtype)
    out = load_file(path)
    assert abs(len(out) - 1.5 * SAMPLE_RATE) <= 4
    assert peak_hz(out) == pytest.approx(440, abs=1)
    if exact:  # lossless at the internal rate: sample for sample (16-bit quantisation)
        np.testing.assert_allclose(out, signal, atol=1 / 32768)


@pytest.mark.parametrize(
    ("name", "codec", "rate"),
    [("a.mp3", "libmp3lame", 44100), ("a.m4a", "aac", 44100), ("b.m4a", "aac", 22050)],
)
def test_pyav_formats(tmp_path: Path, name: str, codec: str, rate: int) -> None:
    path = write_av(tmp_path / name, sine(rate, 2.0), rate, codec)
    info = probe(path)
    assert info.sample_rate == rate and info.channels == 1
    assert info.codec == ("mp3" if codec == "libmp3lame" else "aac")
    out = load_file(path)
    assert abs(len(out) / SAMPLE_RATE - 2.0) < 0.05  # encoder padding
    assert peak_hz(out) == pytest.approx(440, abs=1)
    middle = out[4000:-4000]  # the abrupt start and end ring in a lossy codec
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_silence_gives_zeros(tmp_path: Path) -> None:
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(44100, dtype=np.int16), 44100)
    out = load_file(path)
    assert abs(len(out) - SAMPLE_RATE) <= 4
    assert not np.any(out)


# --- chunking and streaming ----------------------------------------------------------------


@pytest.mark.parametrize("chunk_s", [0.1, 0.25, 0.033])
def test_chunks_are_even_and_seamless(tmp_path: Path, chunk_s: float) -> None:
    path = tmp_path / "a.wav"
    signal = sine(44100, 3.0) + sine(44100, 3.0, freq_hz=3000, amp=0.2)
    sf.write(path, signal, 44100, subtype="FLOAT")
    chunks = list(stream_file(path, chunk_s=chunk_s))
    size = round(chunk_s * SAMPLE_RATE)
    assert all(len(c) == size for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= size
    joined = np.concatenate(chunks)
    np.testing.assert_array_equal(joined, load_file(path))
    # the same as resampling the whole signal at once: the chunk cuts leave no seams
    whole = soxr.resample(signal, 44100, SAMPLE_RATE)
    n = min(len(whole), len(joined))
    assert abs(len(whole) - len(joined)) <= 2
    np.testing.assert_allclose(joined[:n], whole[:n], atol=1e-4)


def test_chunk_s_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, sine(16000, 0.1), 16000)
    with pytest.raises(ValueError, match="chunk_s"):
        stream_file(path, chunk_s=0)


def test_hour_long_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    rate, minutes = 8000, 60
    path = tmp_path / "hour.wav"
    minute = (np.sin(np.arange(rate * 60) * 0.3) * 8000).astype(np.int16)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write(minute)
    assert path.stat().st_size > 57_000_000
    started = time.monotonic()
    tracemalloc.start()
    try:
        total = 0
        for chunk in stream_file(path, chunk_s=0.5):
            total += len(chunk)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(total - minutes * 60 * SAMPLE_RATE) <= 4
    assert peak_bytes < 20_000_000  # the decoded file would be 230 MB of float32
    assert time.monotonic() - started < 10


def test_load_file_refuses_long_files(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    sf.write(path, sine(16000, 3.0), 16000)
    with pytest.raises(AudioError, match="stream"):
        load_file(path, max_s=2.0)
    assert len(load_file(path, max_s=3.5)) == 3 * SAMPLE_RATE


# --- bad files ----------------------------------------------------------------------------


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere" / "talk.wav"


def _empty(tmp: Path) -> Path:
    (tmp / "empty.wav").write_bytes(b"")
    return tmp / "empty.wav"


def _random(tmp: Path) -> Path:
    (tmp / "noise.wav").write_bytes(np.random.default_rng(0).bytes(20000))
    return tmp / "noise.wav"


def _header_only(tmp: Path) -> Path:
    sf.write(tmp / "header.wav", np.zeros(0, dtype=np.int16), 16000)
    return tmp / "header.wav"


def _text(suffix: str):
    def make(tmp: Path) -> Path:
        (tmp / f"notes{suffix}").write_text("this is not audio\n" * 100)
        return tmp / f"notes{suffix}"

    return make


def _png(suffix: str):
    def make(tmp: Path) -> Path:
        (tmp / f"picture{suffix}").write_bytes(png_bytes())
        return tmp / f"picture{suffix}"

    return make


def _folder(tmp: Path) -> Path:
    (tmp / "dir.wav").mkdir()
    return tmp / "dir.wav"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_missing, ["no such file"]),
        (_empty, ["empty", "0 bytes"]),
        (_random, ["not a supported audio file", "corrupt", "mp3", "m4a"]),
        (_header_only, ["contains no audio", "0 samples"]),
        (_text(".wav"), ["not a supported audio file", "flac", "ogg", "mp3", "m4a"]),
        (_text(".mp3"), ["not a supported audio file", "wav", "m4a"]),
        (_png(".wav"), ["not a supported audio file", "png", "no audio", "mp3"]),
        (_png(".mp3"), ["not a supported audio file", "png", "no audio", "wav"]),
        (_folder, ["folder"]),
    ],
    ids=["missing", "empty", "random", "header", "txt-wav", "txt-mp3", "png-wav", "png-mp3", "dir"],
)
def test_bad_files_raise_helpful_errors(tmp_path: Path, make, words: list[str]) -> None:
    path = make(tmp_path)
    for fail in (probe, stream_file, load_file, FileSource):  # all fail at once, not midway
        with pytest.raises(AudioError) as caught:
            fail(path)
        message = str(caught.value)
        assert path.name in message
        for word in words:
            assert word in message


def test_truncated_flac_yields_audio_before_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "talk.flac"
    signal = sine(16000, 4.0)
    sf.write(path, signal, 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    chunks = []
    with pytest.raises(AudioError, match="damaged or truncated") as caught:
        for chunk in stream_file(path, chunk_s=0.1):
            chunks.append(chunk)
    assert "talk.flac" in str(caught.value)
    got = np.concatenate(chunks)
    assert len(got) >= SAMPLE_RATE  # libsndfile decodes ~1.7 s of the 4 s before losing sync
    np.testing.assert_allclose(got, signal[: len(got)], atol=1 / 32768)


def test_truncated_wav_and_mp3_end_cleanly_with_the_first_half(tmp_path: Path) -> None:
    """libsndfile trims a wav's frame count to the bytes present; FFmpeg stops at the cut."""
    wav, mp3 = tmp_path / "talk.wav", tmp_path / "talk.mp3"
    signal = sine(16000, 4.0)
    sf.write(wav, signal, 16000, subtype="PCM_16")
    write_av(mp3, sine(44100, 4.0), 44100, "libmp3lame")
    for path in (wav, mp3):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        out = load_file(path)
        assert abs(len(out) / SAMPLE_RATE - 2.0) < 0.1
        assert peak_hz(out) == pytest.approx(440, abs=1)
    np.testing.assert_allclose(load_file(wav), signal[: len(load_file(wav))], atol=1 / 32768)


# --- sources ------------------------------------------------------------------------------


class FakeClock:
    """A clock that only moves when slept (or when the test moves it)."""

    def __init__(self) -> None:
        self.now_s = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


def test_audio_chunk_end_s() -> None:
    chunk = AudioChunk(np.zeros(800, dtype=np.float32), start_s=1.5)
    assert chunk.end_s == pytest.approx(1.55)


def test_file_source_fast_is_consecutive_and_never_sleeps(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, sine(48000, 1.05), 48000)
    clock = FakeClock()
    source = FileSource(path, chunk_s=0.1, clock=clock, sleep=clock.sleep)
    assert source.info.sample_rate == 48000
    chunks = list(source)
    assert clock.sleeps == []
    assert len(chunks) == 11 and chunks[0].start_s == 0.0
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start_s == pytest.approx(before.end_s, abs=1e-9)
    assert chunks[-1].end_s == pytest.approx(1.05, abs=1e-3)


def test_file_source_realtime_paces_like_a_speaker(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, sine(16000, 1.0), 16000)
    clock = FakeClock()
    source = FileSource(path, chunk_s=0.1, realtime=True, clock=clock, sleep=clock.sleep)
    began = clock.now_s
    for k, chunk in enumerate(source):
        assert clock.now_s - began >= chunk.end_s - 1e-9  # not yielded before its end
        if k == 2:
            clock.now_s += 0.35  # a slow consumer: the next chunks are already due
    assert clock.sleeps[:3] == pytest.approx([0.1, 0.1, 0.1])
    assert clock.sleeps[3:] == pytest.approx([0.05, 0.1, 0.1, 0.1])
    assert clock.now_s - began == pytest.approx(1.0)


# --- microphone ---------------------------------------------------------------------------


class FakeFlags:
    def __init__(self, overflow: bool) -> None:
        self.input_overflow = overflow

    def __bool__(self) -> bool:
        return self.input_overflow


def fake_sounddevice(
    monkeypatch, *, devices, blocks=(), rate_ok=True, finish=True, overflow_at=-1
) -> types.ModuleType:
    """Install a fake ``sounddevice`` whose stream plays ``blocks`` through the callback."""
    sd = types.ModuleType("sounddevice")
    sd.opened = []
    sd.default = types.SimpleNamespace(device=[0, 0])
    sd.query_devices = lambda device=None: devices if device is None else devices[device]

    def check_input_settings(device=None, channels=None, samplerate=None, dtype=None):
        if not rate_ok and samplerate != devices[device]["default_samplerate"]:
            raise RuntimeError("Invalid sample rate")

    class InputStream:
        def __init__(self, **kwargs) -> None:
            self.kwargs, self.closed = kwargs, False
            sd.opened.append(self)

        def start(self) -> None:
            for i, block in enumerate(blocks):
                flags = FakeFlags(i == overflow_at)
                self.kwargs["callback"](block[:, None].copy(), len(block), None, flags)
            if finish:
                self.kwargs["finished_callback"]()

        def stop(self) -> None:
            pass

        def close(self) -> None:
            self.closed = True

    sd.check_input_settings, sd.InputStream = check_input_settings, InputStream
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    return sd


MIC = {"name": "USB Mic", "max_input_channels": 1, "default_samplerate": 48000.0}
SPEAKER = {"name": "HDMI Out", "max_input_channels": 0, "default_samplerate": 48000.0}


def test_microphone_missing_portaudio(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(AudioError, match="libportaudio2"):
        MicrophoneSource()


def test_microphone_none_found(monkeypatch) -> None:
    fake_sounddevice(monkeypatch, devices=[SPEAKER])
    with pytest.raises(AudioError, match="no microphone found") as caught:
        MicrophoneSource()
    assert "HDMI Out" in str(caught.value)


def test_microphone_unknown_device(monkeypatch) -> None:
    fake_sounddevice(monkeypatch, devices=[SPEAKER, MIC])
    assert MicrophoneSource("usb").device == 1
    with pytest.raises(AudioError, match="USB Mic"):
        MicrophoneSource("Studio")


def test_microphone_resamples_device_rate(monkeypatch) -> None:
    signal = sine(48000, 1.0)
    blocks = np.split(signal, 100)
    sd = fake_sounddevice(monkeypatch, devices=[SPEAKER, MIC], blocks=blocks, rate_ok=False)
    with MicrophoneSource(chunk_s=0.1) as mic:
        assert mic.rate == 48000
        chunks = list(mic)
    stream = sd.opened[0]
    assert stream.kwargs["samplerate"] == 48000 and stream.kwargs["device"] == 1
    assert stream.closed
    assert all(len(c.samples) == 1600 for c in chunks[:-1])
    assert [c.start_s for c in chunks[:3]] == pytest.approx([0.0, 0.1, 0.2])
    out = np.concatenate([c.samples for c in chunks])
    assert abs(len(out) - SAMPLE_RATE) <= 4
    assert peak_hz(out) == pytest.approx(440, abs=1)


def test_microphone_at_16k_passes_samples_through(monkeypatch, caplog) -> None:
    signal = sine(16000, 0.5)
    blocks = np.split(signal, 10)
    fake_sounddevice(monkeypatch, devices=[MIC], blocks=blocks, overflow_at=3)
    with caplog.at_level(logging.WARNING, logger="simulinterp.audio"):
        with MicrophoneSource(chunk_s=0.1) as mic:
            out = np.concatenate([c.samples for c in mic])
    np.testing.assert_array_equal(out, signal)  # an overflow is reported, not fatal
    assert "overflow" in caplog.text


def test_microphone_stop_ends_iteration(monkeypatch) -> None:
    blocks = np.split(sine(16000, 0.5), 5)
    fake_sounddevice(monkeypatch, devices=[MIC], blocks=blocks, finish=False)
    mic = MicrophoneSource(chunk_s=0.1)
    got = []
    for chunk in mic:  # the stream never ends by itself
        got.append(chunk)
        if len(got) == 1:
            threading.Timer(0.01, mic.stop).start()
    assert sum(len(c.samples) for c in got) == 8000  # what was captured before stop() is kept
    assert list(mic) == []  # a stopped source stays ended
