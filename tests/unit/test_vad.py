"""The VAD without its model: the hysteresis state machine as tables, the stream's framing and
chunking with a fake model, input checks, and model-file verification (simulinterp.asr.vad).

The real model on real recordings is in ``tests/integration/test_vad_real.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.asr import vad
from simulinterp.asr.vad import (
    CONTEXT_SAMPLES,
    FRAME_SAMPLES,
    KNOWN_MODELS,
    SAMPLE_RATE,
    SileroVAD,
    SpeechEnd,
    SpeechSegmenter,
    SpeechStart,
    VadConfig,
    VadModelError,
    VadStream,
    speech_regions,
)

FRAME = 0.1  # seconds per probability in the tables: min_speech 3 frames, min_silence 5
NO_PAD = VadConfig(speech_pad_s=0.0)
HI, MID, LO = 0.9, 0.4, 0.1  # speech, between the thresholds, silence


def regions(probs: list[float], **config: float) -> list[tuple[float, float]]:
    found = speech_regions(probs, FRAME, VadConfig(**{"speech_pad_s": 0.0, **config}))
    return [(round(start, 6), round(end, 6)) for start, end in found]


# --- the state machine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ([LO] * 20, []),
        ([MID] * 20, []),  # between the thresholds never starts speech
        ([LO] * 5 + [HI] * 10 + [LO] * 10, [(0.5, 1.5)]),
        ([HI] * 5 + [MID] * 10 + [HI] * 5 + [LO] * 10, [(0.0, 2.0)]),  # a dip to 0.4 holds
        ([HI] * 5 + [LO] * 4 + [HI] * 5 + [LO] * 10, [(0.0, 1.4)]),  # pause < min_silence_s
        ([HI] * 5 + [LO] * 5 + [HI] * 5 + [LO] * 10, [(0.0, 0.5), (1.0, 1.5)]),  # = min_silence
        ([HI] * 5 + [LO] + [MID] * 4 + [HI] * 5 + [LO] * 10, [(0.0, 0.5), (1.0, 1.5)]),
        ([HI] * 5 + [LO] * 4 + [0.5] + [LO] * 4 + [HI] * 5, [(0.0, 1.9)]),  # 0.5 ends a pause
        ([LO] * 3 + [HI] * 2 + [LO] * 10, []),  # a blip shorter than min_speech_s
        ([LO] * 3 + [HI] * 3 + [LO] * 10, [(0.3, 0.6)]),  # exactly min_speech_s
        ([HI] * 2 + [LO] * 2 + [HI] * 2 + [LO] * 10, [(0.0, 0.6)]),  # blips joined by a gap
        ([LO] * 5 + [HI] * 5, [(0.5, 1.0)]),  # open at the end: closed by finish
        ([HI] * 5 + [LO] * 3, [(0.0, 0.5)]),  # ends where its pause began
    ],
)
def test_hysteresis_table(probs: list[float], expected: list[tuple[float, float]]) -> None:
    assert regions(probs) == expected


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        # a dip inside long speech: cut at its quietest frame of the later half
        ([HI] * 15 + [0.6] + [HI] * 14, [(0.0, 1.5), (1.5, 3.0)]),
        # constant speech: cut anyway (the latest frame), so no region outgrows max_speech_s
        ([HI] * 50, [(0.0, 1.9), (1.9, 3.8), (3.8, 5.0)]),
        # a pause shorter than min_silence_s under way: the region ends where it began
        ([HI] * 19 + [LO] * 3 + [HI] * 10, [(0.0, 1.9), (2.2, 3.2)]),
    ],
)
def test_max_speech_forces_a_split(probs: list[float], expected: list) -> None:
    assert regions(probs, max_speech_s=2.0) == expected


def test_no_region_outgrows_max_speech() -> None:
    rng = np.random.default_rng(0)
    probs = np.clip(rng.normal(0.8, 0.25, 3000), 0, 1)  # mostly speech, few long pauses
    config = VadConfig(max_speech_s=3.0)
    found = speech_regions(probs, FRAME, config)
    assert len(found) > 10
    assert all(end - start <= 3.0 + 2 * config.speech_pad_s + 1e-9 for start, end in found)
    assert all(found[i][1] <= found[i + 1][0] + 1e-9 for i in range(len(found) - 1))


@pytest.mark.parametrize(
    ("probs", "pad", "expected"),
    [
        ([LO] * 5 + [HI] * 5 + [LO] * 10, 0.2, [(0.3, 1.2)]),
        ([HI] * 5 + [LO] * 10, 0.3, [(0.0, 0.8)]),  # start clipped at 0
        ([LO] * 5 + [HI] * 5, 0.3, [(0.2, 1.0)]),  # end clipped at the end of the audio
        ([HI] * 5 + [LO] * 5 + [HI] * 5, 0.4, [(0.0, 0.9), (0.9, 1.5)]),  # no overlap
    ],
)
def test_padding_and_clipping(probs: list[float], pad: float, expected: list) -> None:
    assert regions(probs, speech_pad_s=pad) == expected


def test_events_come_when_confirmed() -> None:
    """SpeechStart after min_speech_s of speech; SpeechEnd after min_silence_s of silence."""
    segmenter = SpeechSegmenter(VadConfig(), FRAME)
    probs = [LO] * 2 + [HI] * 6 + [LO] * 8
    timeline = [(i, segmenter.push([p])) for i, p in enumerate(probs)]
    emitted = [(i, events) for i, events in timeline if events]
    assert emitted == [
        (4, [SpeechStart(pytest.approx(0.1))]),  # frames 2, 3, 4 = 0.3 s >= 0.25 s
        (12, [SpeechEnd(pytest.approx(0.1), pytest.approx(0.9))]),  # frames 8..12 = 0.5 s
    ]
    assert not segmenter.in_speech and segmenter.finish() == []


def test_in_speech_only_once_confirmed() -> None:
    segmenter = SpeechSegmenter(NO_PAD, FRAME)
    segmenter.push([HI, HI])
    assert not segmenter.in_speech
    segmenter.push([HI])
    assert segmenter.in_speech
    segmenter.finish()
    assert not segmenter.in_speech


def test_grouping_does_not_change_events() -> None:
    rng = np.random.default_rng(1)
    probs = np.repeat(rng.random(300), rng.integers(1, 12, 300))
    whole = SpeechSegmenter(VadConfig(max_speech_s=4.0), FRAME)
    expected = whole.push(probs) + whole.finish()
    pieces = SpeechSegmenter(VadConfig(max_speech_s=4.0), FRAME)
    got, cuts = [], np.cumsum(rng.integers(0, 40, 200))
    for part in np.split(probs, cuts[cuts < len(probs)]):
        got += pieces.push(part)
    assert len(expected) > 10 and got + pieces.finish() == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"threshold": 0.3},  # below neg_threshold
        {"threshold": 1.0},
        {"neg_threshold": 0.0},
        {"min_speech_s": -0.1},
        {"min_silence_s": 0.0},
        {"speech_pad_s": -0.01},
        {"max_speech_s": 0.2},
    ],
)
def test_config_rejects(fields: dict) -> None:
    with pytest.raises(ValueError, match="need"):
        VadConfig(**fields)


# --- the stream, with a fake model ------------------------------------------------------------


class LoudnessModel:
    """Scores a frame by its loudness, context included, and checks the framing it is given:
    each frame's context must be the previous frame's tail, carried in the state."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    @staticmethod
    def initial_state() -> np.ndarray:
        return np.zeros((2, 1, 128), dtype=np.float32)

    def score(self, frames: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert frames.shape[1:] == (CONTEXT_SAMPLES + FRAME_SAMPLES,)
        assert frames.dtype == np.float32 and frames.flags.c_contiguous
        self.calls.append(len(frames))
        state = state.copy()
        probs = []
        for frame in frames:
            assert np.array_equal(frame[:CONTEXT_SAMPLES], state[1, 0, :CONTEXT_SAMPLES])
            state[1, 0, :CONTEXT_SAMPLES] = frame[-CONTEXT_SAMPLES:]
            state[0, 0, 0] += 1
            probs.append(min(1.0, 8 * float(np.abs(frame).mean())) + 1e-4 * state[0, 0, 0])
        return np.asarray(probs, dtype=np.float32), state


def tone(seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


AUDIO = np.concatenate([silence(1.0), tone(1.0), silence(1.0), tone(0.5), silence(0.3)])


def stream_through(stream: VadStream, audio: np.ndarray, chunk: int):
    events, probs = [], []
    for i in range(0, len(audio), chunk):
        events += stream.feed(audio[i : i + chunk])
        probs.append(stream.last_probs)
    return events + stream.finish(), np.concatenate(probs)


def test_stream_finds_the_tones() -> None:
    events, _ = stream_through(VadStream(LoudnessModel()), AUDIO, 1600)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd, SpeechStart, SpeechEnd]
    assert events[1].start_s == pytest.approx(0.9, abs=0.04)
    assert events[1].end_s == pytest.approx(2.1, abs=0.04)
    assert events[3].start_s == pytest.approx(2.9, abs=0.04)
    assert events[3].end_s == pytest.approx(3.6, abs=0.04)  # closed by finish, in a pause


@pytest.mark.parametrize("chunk", [7, 511, 512, 513, 592, 1600, 160_000])
def test_chunking_does_not_change_anything(chunk: int) -> None:
    expected_events, expected_probs = stream_through(VadStream(LoudnessModel()), AUDIO, len(AUDIO))
    events, probs = stream_through(VadStream(LoudnessModel()), AUDIO, chunk)
    assert len(probs) == len(AUDIO) // FRAME_SAMPLES
    np.testing.assert_array_equal(probs, expected_probs)
    assert events == expected_events


def test_one_model_call_per_feed_and_leftover_kept() -> None:
    model = LoudnessModel()
    stream = VadStream(model)
    assert stream.feed(tone(0.03)) == [] and len(stream.last_probs) == 0  # 480 samples
    assert stream.position_s == pytest.approx(0.03) and model.calls == []
    stream.feed(tone(10.0))
    assert model.calls == [(480 + 160_000) // FRAME_SAMPLES]
    assert stream.last_prob == pytest.approx(1.0, abs=0.1) and stream.in_speech


def test_finish_and_reset() -> None:
    stream = VadStream(LoudnessModel(), NO_PAD)
    stream.feed(np.concatenate([silence(0.5), tone(1.0)]))
    assert stream.in_speech
    (end,) = stream.finish()
    assert isinstance(end, SpeechEnd) and end.end_s == pytest.approx(1.5)
    assert not stream.in_speech
    stream.reset()
    assert stream.position_s == 0.0 and stream.last_prob == 0.0
    assert stream.feed(silence(1.0)) == [] and stream.finish() == []


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros((1600, 2), np.float32), "mono 1-D"),
        (np.zeros(1600, np.int16), "int16 / 32768"),
        (np.zeros(1600, bool), "float samples"),
        (np.array(["a", "b"]), "float samples"),
        (np.full(1600, np.nan, np.float32), "NaN"),
        (np.array([0.0, np.inf]), "NaN or infinite"),
        (np.float32(0.5), "mono 1-D"),
    ],
)
def test_bad_input_raises(samples: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VadStream(LoudnessModel()).feed(samples)


def test_float64_and_lists_are_accepted() -> None:
    stream = VadStream(LoudnessModel())
    assert stream.feed(np.zeros(600, np.float64)) == []
    assert stream.feed([0.0] * 600) == [] and stream.position_s == pytest.approx(1200 / 16000)
    assert stream.feed(np.zeros(0, np.float32)) == []


# --- the model file ---------------------------------------------------------------------------


def test_known_hash_of_the_packaged_model() -> None:
    assert "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2" in KNOWN_MODELS


def test_missing_model_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="VAD model not found"):
        SileroVAD(tmp_path / "nope.onnx")


def test_unknown_model_file(tmp_path) -> None:
    path = tmp_path / "silero_vad.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(VadModelError, match="unknown sha256 .* damaged"):
        SileroVAD(path)
    with pytest.raises(VadModelError, match="expected 0000"):
        SileroVAD(path, sha256="0000")


def test_damaged_packaged_model(tmp_path, monkeypatch) -> None:
    path = tmp_path / "silero_vad_v6.onnx"
    path.write_bytes(b"truncated")
    monkeypatch.setattr(vad, "packaged_model_path", lambda: path)
    with pytest.raises(VadModelError, match="reinstall faster-whisper"):
        SileroVAD()
