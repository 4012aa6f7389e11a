"""A speaker's voice from live audio: pitch, formants and speaking rate, and how far apart two are.

Used to pick and adapt a synthetic voice toward a speaker (pitch range, vowel formants,
speaking rate) and to measure how close a synthetic voice is to them, beside the cosine of
speaker embeddings. Pure numpy, a few milliseconds of CPU per second of audio, on windows of
any length as audio arrives (the frame-level work is in :mod:`simulinterp.speakers.acoustics`):

- **F0** by YIN (de Cheveigné & Kawahara 2002), vectorised with the FFT; frames quieter than
  -60 dBFS are unvoiced.
- **Formants** F1-F3 by LPC (autocorrelation method, Levinson-Durbin), the lowest roots of the
  predictor above 90 Hz with a bandwidth under 400 Hz, on voiced frames.
- **Rate**: syllable nuclei after de Jong & Wempe (2009), intensity peaks in voiced stretches
  at least 2 dB above the dips around them, per second of speech (voiced time plus the gaps
  under 0.3 s between voiced stretches).

Silence, noise, clipping, a DC offset or a chunk shorter than a frame never raise: the tracks
come back empty or unvoiced and the profile ``None``. Whispered speech has no voicing, so it
gives no F0 and no profile either: a profile always has a pitch, and whispered formants sit
higher than voiced ones and would not compare.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.speakers.acoustics import (
    ANALYSIS_RATE_HZ,
    YIN_THRESHOLD,
    Decimator,
    Grid,
    NucleusCounter,
    frames_of,
    intensity_db,
    lpc_formants,
    make_grid,
    prepare,
    yin,
)

logger = logging.getLogger(__name__)

MIN_VOICED_S = 0.3  # a profile needs this much voiced audio, seconds
PROFILE_FMIN_HZ = 65.0  # lowest F0 of a profile, Hz: mains hum (50/60 Hz) and vocal fry sit below
PROFILE_FMAX_HZ = 500.0
FORMANT_STRIDE = 2  # the accumulator averages the formants of every 2nd voiced frame
_BIN_CENTS = 10.0  # F0 histogram resolution of the accumulator
_BLOCK_FRAMES = 1000  # frames analysed at once (bounds working memory on long chunks)


@dataclass(frozen=True)
class VoiceProfile:
    """What a speaker's voice sounds like, in a few numbers.

    Attributes:
        f0_hz: median fundamental frequency over voiced frames, Hz.
        f0_low_hz: 10th percentile of F0, Hz.
        f0_high_hz: 90th percentile of F0, Hz.
        formants_hz: mean F1, F2, F3 over voiced frames (every ``FORMANT_STRIDE``-th), Hz;
            ``nan`` for a formant never found.
        rate_per_s: syllable nuclei per second of speech.
        voiced_s: seconds of voiced audio the profile rests on.
    """

    f0_hz: float
    f0_low_hz: float
    f0_high_hz: float
    formants_hz: tuple[float, float, float]
    rate_per_s: float
    voiced_s: float

    def __post_init__(self) -> None:
        if not (self.f0_hz > 0 and self.f0_low_hz > 0 and self.f0_high_hz > 0):
            raise ValueError(f"F0 values must be positive, got {self}")
        if len(self.formants_hz) != 3:
            raise ValueError(f"formants_hz needs F1, F2, F3, got {self.formants_hz}")


def _analysis(
    samples: np.ndarray,
    sample_rate: int,
    hop_s: float,
    fmin_hz: float = PROFILE_FMIN_HZ,
    fmax_hz: float = PROFILE_FMAX_HZ,
) -> tuple[np.ndarray, Grid]:
    """The frames of ``samples`` at the analysis rate, and their grid."""
    x, q = prepare(samples, sample_rate)
    grid = make_grid(int(sample_rate) / q, hop_s, fmin_hz, fmax_hz)
    return frames_of(Decimator(q)(x), grid), grid


def _voicing(
    frames: np.ndarray,
    grid: Grid,
    fmin_hz: float = PROFILE_FMIN_HZ,
    fmax_hz: float = PROFILE_FMAX_HZ,
    threshold: float = YIN_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, 0.0 unvoiced) and intensity (dB) per frame, a block of frames at a time."""
    f0, level = np.zeros(frames.shape[0]), np.zeros(frames.shape[0])
    for start in range(0, frames.shape[0], _BLOCK_FRAMES):
        block = slice(start, start + _BLOCK_FRAMES)
        level[block] = intensity_db(frames[block])
        f0[block] = yin(frames[block], grid, level[block], fmin_hz, fmax_hz, threshold)
    return f0, level


def f0_track(
    samples: np.ndarray,
    sample_rate: int,
    *,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    hop_s: float = 0.01,
    threshold: float = YIN_THRESHOLD,
) -> np.ndarray:
    """F0 per frame by YIN (de Cheveigné & Kawahara 2002), vectorised with the FFT.

    Args:
        samples: mono audio, float in [-1, 1] or integer PCM.
        sample_rate: Hz, at least 8000.
        fmin_hz: lowest F0 searched, Hz (at least 45).
        fmax_hz: highest F0 searched, Hz.
        hop_s: frame step, seconds; frame ``i`` covers ``[i * hop_s, i * hop_s + 0.05)`` s
            (and 1.5 ms of filter delay).
        threshold: YIN absolute threshold in (0, 1); lower is stricter about voicing.

    Returns:
        F0 in Hz per frame, 0.0 where unvoiced; empty when the audio is shorter than a frame.

    Raises:
        ValueError: a bad sample rate, non-1-D samples, a bad pitch range or threshold.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    frames, grid = _analysis(samples, sample_rate, hop_s, fmin_hz, fmax_hz)
    return _voicing(frames, grid, fmin_hz, fmax_hz, threshold)[0]


def formant_track(
    samples: np.ndarray, sample_rate: int, f0: np.ndarray | None = None, *, hop_s: float = 0.01
) -> np.ndarray:
    """F1, F2, F3 per frame by LPC (autocorrelation method, roots of the predictor).

    Args:
        samples: mono audio, float in [-1, 1] or integer PCM.
        sample_rate: Hz, at least 8000.
        f0: the voicing, from :func:`f0_track` with the same ``hop_s``; if ``None``, YIN over
            ``PROFILE_FMIN_HZ``-``PROFILE_FMAX_HZ``.
        hop_s: frame step, seconds.

    Returns:
        ``(frames, 3)`` Hz, ``nan`` where unvoiced or where fewer formants were found.

    Raises:
        ValueError: bad input, or ``f0`` of another length than the frames.
    """
    frames, grid = _analysis(samples, sample_rate, hop_s)
    voiced = (_voicing(frames, grid)[0] if f0 is None else np.asarray(f0)) > 0
    if voiced.shape != (frames.shape[0],):
        raise ValueError(f"f0 has {voiced.shape} values for {frames.shape[0]} frames")
    out = np.full((frames.shape[0], 3), np.nan)
    for start in range(0, frames.shape[0], _BLOCK_FRAMES):
        block = slice(start, start + _BLOCK_FRAMES)
        out[block][voiced[block]] = lpc_formants(frames[block][voiced[block]], grid)
    return out


def syllable_rate(samples: np.ndarray, sample_rate: int, f0: np.ndarray | None = None) -> float:
    """Syllable nuclei per second of speech (de Jong & Wempe 2009), 0.0 without speech.

    Args:
        samples: mono audio, float in [-1, 1] or integer PCM.
        sample_rate: Hz, at least 8000.
        f0: the voicing, from :func:`f0_track` with the default hop; if ``None``, YIN over
            ``PROFILE_FMIN_HZ``-``PROFILE_FMAX_HZ``.
    """
    frames, grid = _analysis(samples, sample_rate, 0.01)
    own_f0, level = _voicing(frames, grid)
    voiced = (own_f0 if f0 is None else np.asarray(f0)) > 0
    if voiced.shape != (frames.shape[0],):
        raise ValueError(f"f0 has {voiced.shape} values for {frames.shape[0]} frames")
    counter = NucleusCounter(grid.hop_s)
    counter.feed(level, voiced)
    return counter.rate_per_s()


class ProfileAccumulator:
    """A speaker's :class:`VoiceProfile`, built from chunks of their audio as it arrives.

    Memory stays bounded however long they talk: a histogram of log F0 (10 cent bins), sums
    of formants, the nucleus counter, and under one frame of audio carried between chunks, so
    that chunked audio gives the same frames as the whole.

    Args:
        fmin_hz: lowest F0 searched, Hz (65 by default, above mains hum).
        fmax_hz: highest F0 searched, Hz.
        hop_s: frame step, seconds.
        min_voiced_s: voiced seconds needed before :meth:`profile` returns one.
    """

    def __init__(
        self,
        *,
        fmin_hz: float = PROFILE_FMIN_HZ,
        fmax_hz: float = PROFILE_FMAX_HZ,
        hop_s: float = 0.01,
        min_voiced_s: float = MIN_VOICED_S,
    ) -> None:
        make_grid(ANALYSIS_RATE_HZ, hop_s, fmin_hz, fmax_hz)  # validates
        if not min_voiced_s >= 0:
            raise ValueError(f"min_voiced_s must be >= 0, got {min_voiced_s}")
        self._fmin_hz, self._fmax_hz, self._hop_s = fmin_hz, fmax_hz, hop_s
        self._min_voiced_s = min_voiced_s
        n_bins = math.ceil(1200 * math.log2(fmax_hz / fmin_hz) / _BIN_CENTS)
        self._hist = np.zeros(n_bins, np.int64)
        self._formant_sum = np.zeros(3)
        self._formant_count = np.zeros(3, np.int64)
        self._sample_rate: int | None = None
        self._grid: Grid | None = None
        self._decimate: Decimator | None = None
        self._buffer = np.zeros(0)
        self._counter = NucleusCounter(hop_s)
        self._voiced_frames = 0
        self._frame_index = 0

    @property
    def voiced_s(self) -> float:
        """Seconds of voiced audio seen so far."""
        return self._voiced_frames * (self._grid.hop_s if self._grid else self._hop_s)

    def add(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        """Take one chunk of the speaker's audio (any length, even under one frame).

        Raises:
            ValueError: bad input, or a sample rate other than that of the first chunk.
        """
        x, q = prepare(samples, sample_rate)
        if self._sample_rate is None:
            self._sample_rate = int(sample_rate)
            self._grid = make_grid(int(sample_rate) / q, self._hop_s, self._fmin_hz, self._fmax_hz)
            self._decimate = Decimator(q)
            self._counter = NucleusCounter(self._grid.hop_s)
            logger.debug(
                "voice profile of %d Hz audio, analysed at %g Hz", sample_rate, self._grid.rate_hz
            )
        elif int(sample_rate) != self._sample_rate:
            raise ValueError(f"this accumulator takes {self._sample_rate} Hz, got {sample_rate}")
        assert self._grid is not None and self._decimate is not None
        buf = np.concatenate([self._buffer, self._decimate(x)])
        frames = frames_of(buf, self._grid)
        for start in range(0, frames.shape[0], _BLOCK_FRAMES):
            self._take(frames[start : start + _BLOCK_FRAMES])
        self._buffer = buf[frames.shape[0] * self._grid.hop :].copy()  # under one frame

    def _take(self, frames: np.ndarray) -> None:
        """Fold the next whole frames into the statistics."""
        assert self._grid is not None
        intensity = intensity_db(frames)
        f0 = yin(frames, self._grid, intensity, self._fmin_hz, self._fmax_hz)
        voiced = f0 > 0
        self._counter.feed(intensity, voiced)
        index = self._frame_index + np.arange(frames.shape[0])
        self._frame_index += frames.shape[0]
        if not voiced.any():
            return
        self._voiced_frames += int(voiced.sum())
        cents = 1200 * np.log2(f0[voiced] / self._fmin_hz) / _BIN_CENTS
        bins = np.clip(cents.astype(np.int64), 0, self._hist.size - 1)
        self._hist += np.bincount(bins, minlength=self._hist.size)
        formants = lpc_formants(frames[voiced & (index % FORMANT_STRIDE == 0)], self._grid)
        found = np.isfinite(formants)
        self._formant_sum += np.where(found, formants, 0.0).sum(axis=0)
        self._formant_count += found.sum(axis=0)

    def _f0_quantile(self, q: float) -> float:
        """The ``q`` quantile of F0 from the histogram (linear within a bin), Hz."""
        cum = np.cumsum(self._hist)
        target = q * cum[-1]
        b = int(np.searchsorted(cum, target))
        before = cum[b - 1] if b > 0 else 0
        frac = (target - before) / self._hist[b] if self._hist[b] else 0.5
        return float(self._fmin_hz * 2.0 ** ((b + frac) * _BIN_CENTS / 1200))

    def profile(self) -> VoiceProfile | None:
        """The profile so far, or ``None`` before ``min_voiced_s`` of voiced audio."""
        if self._voiced_frames == 0 or self.voiced_s < self._min_voiced_s:
            return None
        means = np.where(self._formant_count > 0, self._formant_sum, np.nan) / np.maximum(
            self._formant_count, 1
        )
        f1, f2, f3 = (float(v) for v in means)
        return VoiceProfile(
            f0_hz=self._f0_quantile(0.5),
            f0_low_hz=self._f0_quantile(0.1),
            f0_high_hz=self._f0_quantile(0.9),
            formants_hz=(f1, f2, f3),
            rate_per_s=self._counter.rate_per_s(),
            voiced_s=self.voiced_s,
        )


def profile_of(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> VoiceProfile | None:
    """The :class:`VoiceProfile` of one recording, or ``None`` with under 0.3 s voiced."""
    acc = ProfileAccumulator()
    acc.add(samples, sample_rate)
    return acc.profile()


def f0_distance_st(a: VoiceProfile, b: VoiceProfile) -> float:
    """Distance of median pitches in semitones, ``|12 log2(a.f0 / b.f0)|`` (an octave is 12)."""
    return abs(12.0 * math.log2(a.f0_hz / b.f0_hz))


def formant_distance(a: VoiceProfile, b: VoiceProfile) -> float:
    """Mean ``|ln(Fi_a / Fi_b)|`` over the formants both have, F1-F3; ``nan`` if none.

    A ratio measure, independent of the formants' scale: 0.1 means about 10 % apart on
    average; women's vowel formants sit roughly 15-20 % (0.14-0.18) above men's.
    """
    gaps = [
        abs(math.log(fa / fb))
        for fa, fb in zip(a.formants_hz, b.formants_hz, strict=True)
        if fa > 0 and fb > 0  # False for nan
    ]
    return sum(gaps) / len(gaps) if gaps else math.nan


def profile_distance(
    a: VoiceProfile, b: VoiceProfile, *, f0_weight: float = 1.0, formant_weight: float = 1.0
) -> float:
    """Weighted mean of the pitch and formant distances, both as ``|ln ratio|``.

    ``(f0_weight * |ln(f0_a / f0_b)| + formant_weight * formant_distance) / (sum of weights)``;
    the pitch term is ``f0_distance_st * ln 2 / 12``, so an octave counts ln 2 = 0.69 and a
    semitone 0.058. Where no formant pair exists only the pitch term counts (``nan`` if its
    weight is 0). 0.0 for identical profiles, symmetric, in the units of a log ratio.

    Raises:
        ValueError: negative weights, or both zero.
    """
    if f0_weight < 0 or formant_weight < 0 or f0_weight + formant_weight <= 0:
        raise ValueError(f"weights must be >= 0 and not both 0, got {f0_weight}, {formant_weight}")
    pitch = abs(math.log(a.f0_hz / b.f0_hz))
    formants = formant_distance(a, b)
    if math.isnan(formants) or formant_weight == 0:
        return pitch if f0_weight > 0 else math.nan
    return (f0_weight * pitch + formant_weight * formants) / (f0_weight + formant_weight)
