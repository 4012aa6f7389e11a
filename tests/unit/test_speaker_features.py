"""Voice features (``simulinterp.speakers.features``) on signals whose answer is known: harmonic
tones for F0, a glottal source through formant resonators for F1-F3, amplitude bursts for the
syllable rate; silence, noise, whisper and damaged input; the accumulator; the distances."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from simulinterp.speakers.features import (
    ProfileAccumulator,
    VoiceProfile,
    f0_distance_st,
    f0_track,
    formant_distance,
    formant_track,
    profile_distance,
    profile_of,
    syllable_rate,
)

SR = 16_000


def harmonic(f0_hz: float, seconds: float = 1.0, *, sr: int = SR, level: float = 0.3):
    """A tone with all harmonics of ``f0_hz`` below 0.45 * ``sr``, amplitudes 1/k."""
    t = np.arange(int(seconds * sr)) / sr
    k = np.arange(1, int(0.45 * sr / f0_hz) + 1)[:, None]
    x = (np.sin(2 * np.pi * f0_hz * k * t) / k).sum(axis=0)
    return level * x / np.abs(x).max()


def vowel(f0_hz: float, formants_hz, seconds: float = 1.0, *, level: float = 0.3) -> np.ndarray:
    """A glottal pulse train at ``f0_hz`` through second-order resonators at ``formants_hz``.

    Built as its steady state, harmonic by harmonic: each harmonic ``k f0`` gets the complex gain
    of the glottal source (two poles at z = 0.98, -12 dB/octave), the lip radiation (1 - z^-1)
    and the resonators (bandwidths 80, 100, 140 Hz; unit gain at DC).
    """
    t = np.arange(int(seconds * SR)) / SR
    f = f0_hz * np.arange(1, int(0.45 * SR / f0_hz) + 1)
    z1 = np.exp(-2j * np.pi * f / SR)  # z^-1 on the unit circle
    gain = (1 - z1) / (1 - 0.98 * z1) ** 2
    for fc, bw in zip(formants_hz, (80.0, 100.0, 140.0), strict=True):
        r, theta = math.exp(-math.pi * bw / SR), 2 * math.pi * fc / SR
        gain *= (1 - 2 * r * math.cos(theta) + r * r) / (
            1 - 2 * r * math.cos(theta) * z1 + r * r * z1**2
        )
    x = (np.abs(gain)[:, None] * np.cos(2 * np.pi * f[:, None] * t + np.angle(gain)[:, None])).sum(
        0
    )
    return level * x / np.abs(x).max()


def bursts(per_s: float, seconds: float = 3.0, f0_hz: float = 150.0) -> np.ndarray:
    """A harmonic tone whose amplitude swells ``per_s`` times a second (sin^2 envelope)."""
    t = np.arange(int(seconds * SR)) / SR
    return harmonic(f0_hz, seconds) * np.sin(np.pi * per_s * t) ** 2


def noise(seconds: float = 1.0, level: float = 0.3, seed: int = 0) -> np.ndarray:
    return level * np.random.default_rng(seed).standard_normal(int(seconds * SR))


def whisper(seconds: float = 1.0) -> np.ndarray:
    """White noise shaped by the resonances of /a/: formants without voicing."""
    spectrum = np.fft.rfft(noise(seconds))
    f = np.fft.rfftfreq(int(seconds * SR), 1 / SR)
    shape = sum(1 / (1 + ((f - fc) / 80.0) ** 2) for fc in (700.0, 1220.0, 2600.0))
    x = np.fft.irfft(spectrum * shape, int(seconds * SR))
    return 0.3 * x / np.abs(x).max()


def profile(f0=150.0, formants=(500.0, 1500.0, 2500.0), rate=5.0) -> VoiceProfile:
    return VoiceProfile(f0, f0 * 0.8, f0 * 1.25, formants, rate, 10.0)


@pytest.mark.parametrize("f0_hz", [100.0, 150.0, 220.0, 300.0])
def test_the_f0_of_a_harmonic_tone_is_its_fundamental(f0_hz):
    track = f0_track(harmonic(f0_hz), SR)
    voiced = track[track > 0]
    assert len(voiced) >= 0.9 * len(track)
    assert np.median(voiced) == pytest.approx(f0_hz, rel=0.02)
    assert profile_of(harmonic(f0_hz), SR).f0_hz == pytest.approx(f0_hz, rel=0.02)


@pytest.mark.parametrize("sample_rate", [8000, 22_050, 44_100, 48_000])
def test_f0_at_other_sample_rates(sample_rate):
    track = f0_track(harmonic(180.0, sr=sample_rate), sample_rate)
    assert np.median(track[track > 0]) == pytest.approx(180.0, rel=0.02)


def test_a_gliding_pitch_gives_its_range():
    t = np.arange(2 * SR) / SR
    f0 = 100.0 * 2.0**t  # one octave up in 2 s
    x = 0.3 * sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 15))
    p = profile_of(x, SR)
    assert p.f0_low_hz == pytest.approx(100 * 2**0.2, rel=0.05)  # the 10th percentile of time
    assert p.f0_hz == pytest.approx(100 * 2**1.0, rel=0.05)
    assert p.f0_high_hz == pytest.approx(100 * 2**1.8, rel=0.05)


@pytest.mark.parametrize(
    "formants_hz",
    [(700.0, 1220.0, 2600.0), (300.0, 2300.0, 3000.0)],
    ids=["a", "i"],
)
def test_the_formants_of_a_synthetic_vowel(formants_hz):
    audio = vowel(120.0, formants_hz)
    p = profile_of(audio, SR)
    assert p.f0_hz == pytest.approx(120.0, rel=0.02)
    assert p.formants_hz[0] == pytest.approx(formants_hz[0], rel=0.12)
    assert p.formants_hz[1] == pytest.approx(formants_hz[1], rel=0.12)
    track = formant_track(audio, SR)
    assert np.nanmedian(track[:, 1]) == pytest.approx(formants_hz[1], rel=0.12)


@pytest.mark.parametrize("per_s", [3.0, 4.0, 5.0])
def test_the_syllable_rate_of_amplitude_bursts(per_s):
    assert syllable_rate(bursts(per_s), SR) == pytest.approx(per_s, rel=0.2)
    assert profile_of(bursts(per_s), SR).rate_per_s == pytest.approx(per_s, rel=0.2)


@pytest.mark.parametrize(
    "audio",
    [np.zeros(SR), noise(), noise(level=0.001), noise(level=1.0), whisper()],
    ids=["silence", "noise", "quiet noise", "loud noise", "whisper"],
)
def test_silence_noise_and_whisper_have_no_voice(audio):
    assert not (f0_track(audio, SR) > 0).any()
    assert np.isnan(formant_track(audio, SR)).all()
    assert syllable_rate(audio, SR) == 0.0
    assert profile_of(audio, SR) is None


@pytest.mark.parametrize(
    "audio",
    [np.zeros(0), np.zeros(1), harmonic(150.0)[:700], np.full(400, np.nan)],
    ids=["empty", "one sample", "under a frame", "nan"],
)
def test_less_than_a_frame_gives_empty_tracks(audio):
    assert f0_track(audio, SR).shape == (0,)
    assert formant_track(audio, SR).shape == (0, 3)
    assert syllable_rate(audio, SR) == 0.0
    assert profile_of(audio, SR) is None


@pytest.mark.parametrize(
    "audio",
    [
        harmonic(150.0) + 0.5,  # DC offset
        np.clip(40 * harmonic(150.0), -1, 1),  # shouting into a clipping input
        30 * harmonic(150.0),  # far beyond full scale
        (harmonic(150.0) * 32767).astype(np.int16),
        harmonic(150.0).astype(np.float32),
        np.where(np.arange(SR) % 4000 == 0, np.nan, harmonic(150.0)),
    ],
    ids=["dc", "clipped", "huge", "int16", "float32", "some nan"],
)
def test_damaged_or_unusual_input_still_gives_the_pitch(audio):
    assert profile_of(audio, SR).f0_hz == pytest.approx(150.0, rel=0.02)


@pytest.mark.parametrize(
    ("audio", "sample_rate"),
    [
        (np.zeros(SR), 0),
        (np.zeros(SR), -16_000),
        (np.zeros(SR), 16_000.5),
        (np.zeros(SR), 4000),
        (np.zeros(SR), True),
        (np.zeros((2, SR)), SR),
        (np.zeros((SR, 1)), SR),
        (np.array(["a"] * SR), SR),
    ],
    ids=["zero", "negative", "fraction", "too low", "bool", "stereo", "column", "text"],
)
def test_a_bad_sample_rate_or_shape_is_an_error(audio, sample_rate):
    for call in (f0_track, formant_track, syllable_rate, profile_of):
        with pytest.raises(ValueError):
            call(audio, sample_rate)
    with pytest.raises(ValueError):
        ProfileAccumulator().add(audio, sample_rate)


def test_bad_settings_are_errors():
    with pytest.raises(ValueError):
        f0_track(np.zeros(SR), SR, fmin_hz=300.0, fmax_hz=200.0)
    with pytest.raises(ValueError):
        f0_track(np.zeros(SR), SR, hop_s=0.0)
    with pytest.raises(ValueError):
        f0_track(np.zeros(SR), SR, threshold=1.5)
    with pytest.raises(ValueError):
        formant_track(np.zeros(SR), SR, np.zeros(3))
    acc = ProfileAccumulator()
    acc.add(np.zeros(100), SR)
    with pytest.raises(ValueError):
        acc.add(np.zeros(100), 48_000)


def speech_like() -> np.ndarray:
    """Three vowels at three pitches in syllable bursts, with pauses and a noisy stretch."""
    t = np.arange(SR) / SR
    envelope = np.sin(np.pi * 4 * t) ** 2
    return np.concatenate(
        [
            vowel(110.0, (700.0, 1220.0, 2600.0)) * envelope,
            np.zeros(SR // 2),
            vowel(140.0, (300.0, 2300.0, 3000.0)) * envelope,
            noise(0.4, level=0.05),
            vowel(180.0, (500.0, 1500.0, 2500.0)) * envelope,
        ]
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_the_accumulator_over_chunks_equals_the_profile_of_the_whole(seed):
    audio = speech_like()
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, len(audio), 40))  # chunks of every size, some empty
    acc = ProfileAccumulator()
    for chunk in np.split(audio, cuts):
        acc.add(chunk, SR)
    whole = profile_of(audio, SR)
    chunked = acc.profile()
    assert chunked.voiced_s == whole.voiced_s
    assert chunked.f0_hz == pytest.approx(whole.f0_hz, rel=1e-9)
    assert chunked.f0_low_hz == pytest.approx(whole.f0_low_hz, rel=1e-9)
    assert chunked.f0_high_hz == pytest.approx(whole.f0_high_hz, rel=1e-9)
    assert chunked.formants_hz == pytest.approx(whole.formants_hz, rel=1e-9)
    assert chunked.rate_per_s == pytest.approx(whole.rate_per_s, rel=1e-9)
    assert 110 < whole.f0_low_hz < whole.f0_hz < whole.f0_high_hz < 185


def test_the_accumulator_needs_some_voice_before_it_has_a_profile():
    acc = ProfileAccumulator()
    acc.add(np.zeros(SR), SR)
    acc.add(harmonic(150.0, 0.2), SR)
    assert acc.profile() is None
    assert 0 < acc.voiced_s < 0.3
    acc.add(harmonic(150.0, 0.4), SR)
    assert acc.profile().f0_hz == pytest.approx(150.0, rel=0.02)
    assert acc.profile().voiced_s == acc.voiced_s >= 0.3


def test_the_accumulator_memory_does_not_grow_with_the_talk():
    acc = ProfileAccumulator()
    chunk = speech_like()[: int(1.6 * SR)]
    sizes = []
    for i in range(60):  # 96 s in 1.6 s windows
        acc.add(chunk, SR)
        if i in (5, 59):
            sizes.append(len(pickle.dumps(acc)))
    assert sizes[1] - sizes[0] < 1_000
    assert sizes[1] < 20_000
    assert acc.voiced_s > 30


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (profile(), profile(f0=220.0)),
        (profile(), profile(formants=(600.0, 1900.0, 2900.0))),
        (profile(f0=110.0, rate=4.0), profile(f0=210.0, formants=(550.0, 1800.0, 2900.0))),
    ],
)
def test_distances_are_symmetric_and_zero_on_identity(a, b):
    for distance in (f0_distance_st, formant_distance, profile_distance):
        assert distance(a, a) == 0.0
        assert distance(a, b) == pytest.approx(distance(b, a))
        assert distance(a, b) >= 0.0
    assert profile_distance(a, b) > 0.0


@pytest.mark.parametrize(
    ("f0_a", "f0_b", "semitones"),
    [
        (100.0, 200.0, 12.0),
        (220.0, 110.0, 12.0),
        (100.0, 400.0, 24.0),
        (200.0, 200.0 * 2 ** (1 / 12), 1.0),
    ],
)
def test_f0_distance_is_in_semitones(f0_a, f0_b, semitones):
    assert f0_distance_st(profile(f0=f0_a), profile(f0=f0_b)) == pytest.approx(semitones)


def test_formant_distance_is_the_mean_log_ratio():
    a = profile(formants=(500.0, 1500.0, 2500.0))
    assert formant_distance(a, profile(formants=(550.0, 1650.0, 2750.0))) == pytest.approx(
        math.log(1.1)
    )
    assert formant_distance(a, profile(formants=(550.0, 1500.0, 2500.0))) == pytest.approx(
        math.log(1.1) / 3
    )
    # a formant one side never found counts not at all
    assert formant_distance(a, profile(formants=(550.0, math.nan, math.nan))) == pytest.approx(
        math.log(1.1)
    )
    assert math.isnan(formant_distance(a, profile(formants=(math.nan,) * 3)))


def test_profile_distance_weighs_pitch_and_formants():
    a, b = profile(f0=100.0), profile(f0=200.0, formants=(550.0, 1650.0, 2750.0))
    pitch, formants = math.log(2.0), math.log(1.1)
    assert profile_distance(a, b) == pytest.approx((pitch + formants) / 2)
    assert profile_distance(a, b, formant_weight=0.0) == pytest.approx(pitch)
    assert profile_distance(a, b, f0_weight=0.0) == pytest.approx(formants)
    assert profile_distance(a, b, f0_weight=3.0) == pytest.approx((3 * pitch + formants) / 4)
    assert profile_distance(a, profile(f0=200.0, formants=(math.nan,) * 3)) == pytest.approx(pitch)
    for weights in ({"f0_weight": -1.0}, {"f0_weight": 0.0, "formant_weight": 0.0}):
        with pytest.raises(ValueError):
            profile_distance(a, b, **weights)
