"""Frame-level acoustics under :mod:`simulinterp.speakers.features`: framing, YIN, LPC, nuclei.

Pure numpy. The input is decimated by ``sample_rate // 8000`` (16 kHz -> 8 kHz, a windowed-sinc
low-pass, polyphase; no resampler) and cut into 50 ms frames every ``hop_s``; every track
shares that grid, and a streaming :class:`Decimator` makes chunked audio give the same frames
as the whole.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ANALYSIS_RATE_HZ = 8000  # the input is decimated by sample_rate // ANALYSIS_RATE_HZ
FRAME_S = 0.05  # one analysis frame, seconds
YIN_WINDOW_S = 0.025  # YIN integration window, seconds
YIN_THRESHOLD = 0.25  # absolute threshold on the cumulative mean normalised difference
YIN_MARGIN = 0.1  # the dip taken is the first within this of the deepest one
LPC_WINDOW_S = 0.03  # formant analysis window (Hamming), seconds
SILENCE_DBFS = -60.0  # frames quieter than this are unvoiced
MIN_FORMANT_HZ = 90.0
MAX_BANDWIDTH_HZ = 400.0
MIN_DIP_DB = 2.0  # a syllable nucleus stands this far above the dips around it
MAX_GAP_S = 0.3  # unvoiced gaps shorter than this inside speech count as speech
MIN_RUN_S = 0.03  # a voiced stretch shorter than this holds no nucleus of its own
TAPS_PER_FACTOR = 24  # decimation filter: 24 * q + 1 taps


@dataclass(frozen=True)
class Grid:
    """Frame geometry at the analysis rate ``rate_hz`` (all lengths in samples)."""

    rate_hz: float
    hop: int
    frame: int
    yin_window: int
    tau_min: int
    tau_max: int
    nfft: int
    lpc_window: int
    order: int

    @property
    def hop_s(self) -> float:
        return self.hop / self.rate_hz


def smooth_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (a fast FFT length)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def make_grid(rate_hz: float, hop_s: float, fmin_hz: float, fmax_hz: float) -> Grid:
    """The frame grid at analysis rate ``rate_hz``, Hz, for a hop and an F0 range (Hz).

    Raises:
        ValueError: a hop outside (0, 0.05] s or a pitch range outside [45, rate_hz / 4] Hz.
    """
    if not 0 < hop_s <= FRAME_S:
        raise ValueError(f"hop_s must be in (0, {FRAME_S}], got {hop_s}")
    if not 45.0 <= fmin_hz < fmax_hz <= rate_hz / 4:
        limit = f"{rate_hz / 4:g}"
        raise ValueError(f"need 45 <= fmin_hz < fmax_hz <= {limit}, got {fmin_hz}, {fmax_hz}")
    window = round(YIN_WINDOW_S * rate_hz)
    tau_max = math.ceil(rate_hz / fmin_hz)
    frame = round(FRAME_S * rate_hz)
    return Grid(
        rate_hz=rate_hz,
        hop=max(1, round(hop_s * rate_hz)),
        frame=frame,
        yin_window=window,
        tau_min=max(2, math.floor(rate_hz / fmax_hz)),
        tau_max=min(tau_max, frame - window - 2),
        nfft=smooth_size(window + min(tau_max, frame - window - 2) + 1),
        lpc_window=round(LPC_WINDOW_S * rate_hz),
        order=2 + round(rate_hz / 1000),
    )


def prepare(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Validated float64 samples and the decimation factor ``q`` for ``sample_rate``, Hz.

    Integer PCM is scaled to [-1, 1]; non-finite samples become 0.

    Raises:
        ValueError: a sample rate that is not whole Hz in [8000, 384000], or non-1-D samples.
    """
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, numbers.Real)
        or sample_rate != int(sample_rate)
        or not 8000 <= sample_rate <= 384_000
    ):
        raise ValueError(f"sample_rate must be whole Hz in [8000, 384000], got {sample_rate!r}")
    arr = np.asarray(samples)
    if arr.ndim != 1:
        raise ValueError(f"samples must be 1-D (mono), got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        scale = float(2 ** (8 * arr.dtype.itemsize - 1))
        x = arr.astype(np.float64) / scale - (1.0 if arr.dtype.kind == "u" else 0.0)
    elif arr.dtype.kind in "fb":
        x = arr.astype(np.float64)
    else:
        raise ValueError(f"samples must be real numbers, got dtype {arr.dtype}")
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x, int(sample_rate) // ANALYSIS_RATE_HZ


class Decimator:
    """Low-pass (windowed sinc, cut at 0.45 of the output rate) and keep every q-th sample.

    Streaming: it keeps the last taps of input, so chunked calls return what one call on the
    whole would (the first call starts from zeros). ``q == 1`` passes audio through.
    """

    def __init__(self, q: int) -> None:
        self.q = q
        taps = TAPS_PER_FACTOR * q + 1 if q > 1 else 1
        n = np.arange(taps) - (taps - 1) / 2
        h = np.sinc(0.9 * n / q) * np.hamming(taps) if q > 1 else np.ones(1)
        self._kernel = (h / h.sum())[::-1]
        self._history = np.zeros(taps - 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.q == 1:
            return x
        q, taps = self.q, self._kernel.size
        buf = np.concatenate([self._history, x])
        n_out = max(0, (buf.size - taps) // q + 1)
        out = np.zeros(n_out)
        if n_out:  # polyphase: out[m] = sum_k kernel[k] buf[q m + k], one phase of k at a time
            for p in range(q):
                out += np.correlate(buf[p::q], self._kernel[p::q], "valid")[:n_out]
        self._history = buf[n_out * q :]
        return out


def frame_count(n_samples: int, grid: Grid) -> int:
    """How many whole frames ``n_samples`` at the analysis rate hold."""
    return 0 if n_samples < grid.frame else 1 + (n_samples - grid.frame) // grid.hop


def frames_of(y: np.ndarray, grid: Grid) -> np.ndarray:
    """The ``(frames, grid.frame)`` frames of ``y`` (a view, no copy)."""
    n = frame_count(y.size, grid)
    if n == 0:
        return np.zeros((0, grid.frame))
    return sliding_window_view(y, grid.frame)[: n * grid.hop : grid.hop]


def intensity_db(frames: np.ndarray) -> np.ndarray:
    """Frame power (DC removed) in dB re full scale."""
    n = frames.shape[1]
    power = np.einsum("ij,ij->i", frames, frames) / n - (frames.sum(axis=1) / n) ** 2
    return 10.0 * np.log10(np.maximum(power, 0.0) + 1e-20)


def yin(
    frames: np.ndarray,
    grid: Grid,
    level_db: np.ndarray,
    fmin_hz: float,
    fmax_hz: float,
    threshold: float = YIN_THRESHOLD,
) -> np.ndarray:
    """F0 per frame in Hz, 0.0 where unvoiced or quieter than ``SILENCE_DBFS`` (``level_db``).

    YIN (de Cheveigné & Kawahara 2002, "YIN, a fundamental frequency estimator for speech and
    music", JASA 111(4)): difference function, cumulative mean normalisation, the first lag
    under the absolute ``threshold`` (and within ``YIN_MARGIN`` of the deepest dip, against
    octave-up errors) walked down to its local minimum, parabolic interpolation. A dip that
    runs past ``tau_max`` (mains hum under ``fmin_hz``) is unvoiced.

    The difference function ``d(tau) = e(0) + e(tau) - 2 r(tau)`` comes from running energies
    ``e`` and the FFT cross-correlation ``r`` of the first window with the frame; it is
    insensitive to a DC offset. Column ``j`` of the arrays below is lag ``tau = j + 1``.
    """
    w, top = grid.yin_window, grid.tau_max + 1  # lags 1..top (top for the parabola)
    start = (grid.frame - (w + top)) // 2
    seg = frames[:, start : start + w + top]
    spectrum = np.conj(np.fft.rfft(seg[:, :w], grid.nfft)) * np.fft.rfft(seg, grid.nfft)
    corr = np.fft.irfft(spectrum, grid.nfft)[:, 1 : top + 1]
    power = np.cumsum(seg * seg, axis=1)
    diff = power[:, w - 1 : w] + (power[:, w : w + top] - power[:, :top]) - 2.0 * corr
    np.maximum(diff, 0.0, out=diff)
    cmnd = diff * np.arange(1, top + 1) / np.maximum(np.cumsum(diff, axis=1), 1e-30)
    band = cmnd[:, grid.tau_min - 1 : grid.tau_max]
    below = band < np.minimum(threshold, band.min(axis=1) + YIN_MARGIN)[:, None]
    first = below.argmax(axis=1)
    stop = (cmnd[:, grid.tau_min : grid.tau_max + 1] >= band) & (
        np.arange(band.shape[1]) >= first[:, None]
    )
    inside = stop.any(axis=1)  # else the dip runs past tau_max: a period longer than 1 / fmin
    col = np.where(inside, stop.argmax(axis=1), band.shape[1] - 1) + grid.tau_min - 1
    rows = np.arange(cmnd.shape[0])
    a, b, c = cmnd[rows, col - 1], cmnd[rows, col], cmnd[rows, col + 1]
    den = a - 2.0 * b + c
    safe = np.abs(den) > 1e-12
    shift = np.clip(np.where(safe, 0.5 * (a - c) / np.where(safe, den, 1.0), 0.0), -1.0, 1.0)
    f0 = grid.rate_hz / (col + 1 + shift)
    voiced = below.any(axis=1) & inside & (level_db > SILENCE_DBFS)
    voiced &= (f0 >= fmin_hz) & (f0 <= fmax_hz)
    return np.where(voiced, f0, 0.0)


def levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Predictor polynomials ``[1, a1..ap]`` per row of autocorrelations ``r`` (Levinson-Durbin)."""
    a = np.zeros((r.shape[0], order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)
        k = -acc / np.maximum(err, 1e-30)
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * np.maximum(1.0 - k**2, 1e-12)
    return a


def lpc_formants(frames: np.ndarray, grid: Grid) -> np.ndarray:
    """F1-F3 per frame, Hz, ``(frames, 3)``; ``nan`` where fewer are found.

    LPC by the autocorrelation method (Markel & Gray 1976, "Linear Prediction of Speech") on a
    30 ms Hamming window after pre-emphasis from 50 Hz, order ``2 + rate_kHz``; the formants
    are the lowest roots of the predictor above ``MIN_FORMANT_HZ`` with a bandwidth under
    ``MAX_BANDWIDTH_HZ`` (roots as eigenvalues of the companion matrices, all frames at once).
    """
    out = np.full((frames.shape[0], 3), np.nan)
    if frames.shape[0] == 0:
        return out
    n, p, fs = grid.lpc_window, grid.order, grid.rate_hz
    start = (grid.frame - n - 1) // 2
    seg = frames[:, start : start + n + 1]
    seg = seg - seg.mean(axis=1, keepdims=True)
    x = (seg[:, 1:] - math.exp(-2 * math.pi * 50.0 / fs) * seg[:, :-1]) * np.hamming(n)
    r = np.stack([np.sum(x[:, : n - k] * x[:, k:], axis=1) for k in range(p + 1)], axis=1)
    r[:, 0] *= 1.0 + 1e-6  # white-noise correction keeps the recursion stable
    live = r[:, 0] > 1e-20
    if not live.any():
        return out
    a = levinson(r[live], p)
    companion = np.zeros((a.shape[0], p, p))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, p), np.arange(p - 1)] = 1.0
    roots = np.linalg.eigvals(companion)
    freq = np.angle(roots) * fs / (2 * math.pi)
    bandwidth = -np.log(np.maximum(np.abs(roots), 1e-12)) * fs / math.pi
    keep = (roots.imag > 0) & (freq > MIN_FORMANT_HZ) & (bandwidth < MAX_BANDWIDTH_HZ)
    lowest = np.sort(np.where(keep, freq, np.inf), axis=1)[:, :3]
    out[live] = np.where(np.isfinite(lowest), lowest, np.nan)
    return out


class NucleusCounter:
    """Syllable nuclei and frames of speech from a frame contour, fed in chunks of any size.

    After de Jong & Wempe (2009, "Praat script to detect syllable nuclei and measure speech
    rate automatically", Behav. Res. Methods 41(2)), as a hysteresis peak picker over voiced
    frames: a peak counts once the intensity falls ``MIN_DIP_DB`` below it, or when voicing
    ends after at least ``MIN_RUN_S``; the next peak is sought once the intensity rises
    ``MIN_DIP_DB`` above the dip. Speech is the voiced frames plus the unvoiced gaps under
    ``MAX_GAP_S`` between them. The state is a few numbers, so chunking changes nothing.

    Args:
        hop_s: the frame step, seconds.
    """

    def __init__(self, hop_s: float) -> None:
        self.hop_s = hop_s
        self.nuclei = 0
        self.speech_frames = 0
        self._mode = "out"  # out (unvoiced) | peak (rising to a peak) | dip (falling to a dip)
        self._level = 0.0  # the running maximum (peak) or minimum (dip), dB
        self._run = 0  # voiced frames in the current stretch
        self._gap = -1  # unvoiced frames since the last voiced one; -1 before any voicing
        self._max_gap = round(MAX_GAP_S / hop_s)
        self._min_run = max(1, round(MIN_RUN_S / hop_s))

    def feed(self, level_db: np.ndarray, voiced: np.ndarray) -> None:
        """Take the intensity (dB) and voicing (bool) of the next frames."""
        for level, on in zip(level_db.tolist(), voiced.tolist(), strict=True):
            if not on:
                self.nuclei += self._pending()
                self._mode, self._run = "out", 0
                self._gap += self._gap >= 0
                continue
            self.speech_frames += 1 + (self._gap if 0 < self._gap < self._max_gap else 0)
            self._gap, self._run = 0, self._run + 1
            if self._mode == "out" or (self._mode == "dip" and level >= self._level + MIN_DIP_DB):
                self._mode, self._level = "peak", level
            elif self._mode == "peak" and level <= self._level - MIN_DIP_DB:
                self.nuclei += 1
                self._mode, self._level = "dip", level
            elif (self._mode == "peak") == (level > self._level):
                self._level = level

    def _pending(self) -> int:
        """1 if the peak being climbed would count were voicing to end now."""
        return int(self._mode == "peak" and self._run >= self._min_run)

    def rate_per_s(self) -> float:
        """Nuclei per second of speech so far (the peak being climbed counted), 0.0 if none."""
        speech_s = self.speech_frames * self.hop_s
        return (self.nuclei + self._pending()) / speech_s if speech_s > 0 else 0.0
