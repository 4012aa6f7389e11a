"""GE2E speaker encoder (Resemblyzer 0.1.4, Apache-2.0) in numpy: no torch, librosa or webrtcvad.

The model is the voice encoder of Resemblyzer (Jemine's Real-Time-Voice-Cloning), trained with
the GE2E loss of Wan et al., "Generalized End-to-End Loss for Speaker Verification" (ICASSP
2018): a 40-channel mel power spectrogram (25 ms window, 10 ms hop at 16 kHz), a 3-layer LSTM
40 -> 256, the last hidden state through Linear 256 -> 256 and ReLU, L2-normalized. An
utterance embedding is the normalized mean over 1.6 s partial windows (:meth:`GE2EEncoder.embed`).

The weights are the ``pretrained.pt`` of the PyPI package, installed without its dependencies
(``pip install --no-deps resemblyzer==0.1.4``); the package is never imported (its import needs
torch). The file is a legacy (non-zip) torch pickle, read by
:func:`~simulinterp.legacy_torch.load_legacy_torch` with :mod:`pickle` alone and checked
against :data:`PRETRAINED_SHA256`. Resemblyzer's silence trimming (webrtcvad) is not done here:
pass voiced audio.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from simulinterp.legacy_torch import load_legacy_torch
from simulinterp.packaged import ModelNotFoundError, file_sha256, package_dir

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
WINDOW_S = 1.6
"""One partial utterance (:data:`PARTIAL_FRAMES` mel frames), seconds."""
PARTIAL_FRAMES = 160
HOP_SAMPLES = 160
"""Mel hop: 10 ms."""
N_FFT = 400
"""Mel window: 25 ms (a periodic Hann window of this length)."""
N_MELS = 40
MIN_S = 0.2
"""The shortest audio embedded, seconds."""
TARGET_DBFS = -30.0
"""Volume normalization target (increase only), dB relative to full scale."""
PRETRAINED_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
ENV_VAR = "SIMULINTERP_SPEAKER_ENCODER"
PIP_HINT = "pip install --no-deps resemblyzer==0.1.4"


class EncoderNotInstalledError(ModelNotFoundError):
    """The speaker encoder weights are not installed (or the configured path is missing)."""


def weights_path() -> Path:
    """``$SIMULINTERP_SPEAKER_ENCODER`` when set, else ``resemblyzer/pretrained.pt`` of the
    installed package (found without importing it).

    Raises:
        EncoderNotInstalledError: the file is not there.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise EncoderNotInstalledError(
                f"{ENV_VAR}={env} is not a file (unset it and {PIP_HINT})"
            )
        return path
    path = package_dir("resemblyzer", "pretrained.pt")
    if path is None or not path.is_file():
        raise EncoderNotInstalledError(f"the speaker encoder weights are not installed: {PIP_HINT}")
    return path


def load_weights(
    path: Path | None = None, *, sha256: str | None = PRETRAINED_SHA256
) -> dict[str, np.ndarray]:
    """The state dict of a GE2E checkpoint, checked and cached in memory (read-only arrays).

    Args:
        path: a legacy torch ``.pt`` file; ``None`` for :func:`weights_path`.
        sha256: the expected hex digest; ``None`` skips the check (weights trained elsewhere).

    Raises:
        EncoderNotInstalledError: the file is not there.
        ValueError: the checksum differs, or the file is not a legacy torch checkpoint.
    """
    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise EncoderNotInstalledError(f"no speaker encoder weights at {path}: {PIP_HINT}")
    stat = path.stat()
    return dict(_load_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha256))


@functools.lru_cache(maxsize=4)
def _load_cached(
    path: str, size: int, mtime_ns: int, sha256: str | None
) -> Mapping[str, np.ndarray]:
    start = time.perf_counter()
    if sha256 is not None and (actual := file_sha256(Path(path))) != sha256:
        raise ValueError(
            f"{path} has sha256 {actual}, expected {sha256}: reinstall with {PIP_HINT}"
        )
    arrays = load_legacy_torch(Path(path))
    for array in arrays.values():
        array.flags.writeable = False
    logger.info("loaded %s (%d tensors) in %.3f s", path, len(arrays), time.perf_counter() - start)
    return MappingProxyType(arrays)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(
        mel >= 15.0, 1000.0 * np.exp((math.log(6.4) / 27.0) * (mel - 15.0)), mel * 200 / 3
    )


@functools.lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """Slaney-normalized triangular filters, 0 to 8 kHz, as a (N_FFT // 2 + 1, N_MELS) matrix."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return np.ascontiguousarray(filters.T)


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)


def mel_frames(samples: np.ndarray, *, pad_mode: str = "reflect") -> np.ndarray:
    """Resemblyzer's features: ``librosa.feature.melspectrogram`` with n_fft 400, hop 160,
    40 Slaney mels, power 2, ``center=True`` (not a log spectrogram).

    Args:
        samples: 16 kHz mono audio, more than ``N_FFT // 2`` samples.
        pad_mode: how the signal is extended by ``N_FFT // 2`` at each end: ``"reflect"``
            (librosa before 0.10, what the model was trained with) or ``"constant"`` (zeros,
            librosa's default since 0.10).

    Returns:
        Float32 (1 + len(samples) // 160, 40): one row per 10 ms.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1 or len(samples) <= N_FFT // 2:
        raise ValueError(f"mel_frames needs 1-D audio of over {N_FFT // 2} samples")
    if pad_mode not in ("reflect", "constant"):
        raise ValueError(f"pad_mode is 'reflect' or 'constant', not {pad_mode!r}")
    padded = np.pad(samples.astype(np.float64), N_FFT // 2, mode=pad_mode)  # type: ignore[call-overload]
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_SAMPLES]
    spectrum = np.fft.rfft(frames * _hann(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return (power @ _mel_filters()).astype(np.float32)


def normalize_volume(samples: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """``samples`` raised to ``target_dbfs`` RMS if quieter (never lowered; silence kept)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    gain_db = target_dbfs - 20.0 * math.log10(rms) if rms > 0 else 0.0
    return samples * np.float32(10.0 ** (gain_db / 20.0)) if gain_db > 0 else samples


def partial_starts(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> list[int]:
    """First mel frame of each partial window of an utterance, as Resemblyzer cuts it.

    Args:
        n_samples: utterance length, samples.
        rate: partial windows per second (at least 0.625, so that they cover the utterance).
        min_coverage: the last window is kept if at least this fraction of it is audio
            (the rest is zero padding); the first is always kept.
    """
    if not 0 < min_coverage <= 1:
        raise ValueError(f"min_coverage is in (0, 1], not {min_coverage}")
    step = round(SAMPLE_RATE / rate / HOP_SAMPLES)
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"rate {rate} is outside [0.625, 100] windows per second")
    n_frames = math.ceil((n_samples + 1) / HOP_SAMPLES)
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * HOP_SAMPLES) / (PARTIAL_FRAMES * HOP_SAMPLES)
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return starts


def _checked_audio(samples: np.ndarray, what: str) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"{what} must be mono 1-D audio, got shape {samples.shape}")
    if len(samples) < MIN_S * SAMPLE_RATE:
        raise ValueError(
            f"{what} is {len(samples) / SAMPLE_RATE:.3f} s long; the speaker encoder needs at "
            f"least {MIN_S} s ({int(MIN_S * SAMPLE_RATE)} samples at {SAMPLE_RATE} Hz)"
        )
    if not np.isfinite(samples).all():
        raise ValueError(f"{what} holds NaN or infinite samples")
    return samples


def _l2_normalize(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


_GATE_KEY = re.compile(r"lstm\.weight_ih_l(\d+)$")
_BLOCKED_BATCH = 4
"""From this batch size on, the recurrent matmul is done gate by gate (faster there)."""


class GE2EEncoder:
    """The GE2E LSTM in numpy (float32), for 16 kHz mono float32 audio.

    Weights are prepared once: the biases summed, the gates reordered to (input, forget,
    output, cell) and the sigmoid gates scaled by 1/2, so that one ``tanh`` per step gives all
    four (``sigmoid(x) = (1 + tanh(x / 2)) / 2``).

    Args:
        weights: a state dict (``lstm.weight_ih_l0`` ... ``linear.bias``), the path of a legacy
            ``.pt`` file (checked against :data:`PRETRAINED_SHA256`), or ``None`` for the
            packaged weights (:func:`weights_path`).
        hidden: the expected LSTM width; ``None`` accepts what the weights have.

    Attributes:
        dim: embedding size (256 for the pretrained weights).
        hidden: LSTM width.
        layers: LSTM depth.
    """

    def __init__(
        self,
        weights: Mapping[str, np.ndarray] | str | Path | None = None,
        *,
        hidden: int | None = None,
    ) -> None:
        if weights is None or isinstance(weights, str | Path):
            weights = load_weights(None if weights is None else Path(weights))
        depths = sorted(int(m.group(1)) for k in weights if (m := _GATE_KEY.match(k)))
        missing = [
            k for k in ("lstm.weight_hh_l0", "linear.weight", "linear.bias") if k not in weights
        ]
        if not depths or depths != list(range(len(depths))) or missing:
            raise ValueError(f"not GE2E weights: LSTM layers {depths}, missing {missing}")
        self.hidden = int(weights["lstm.weight_hh_l0"].shape[1])
        if hidden is not None and hidden != self.hidden:
            raise ValueError(f"the weights have hidden size {self.hidden}, not {hidden}")
        if weights["lstm.weight_ih_l0"].shape[1] != N_MELS:
            raise ValueError(f"the first LSTM layer takes {N_MELS} mel channels")
        self.layers = len(depths)
        self._lstm = [self._prepare_layer(weights, k) for k in depths]
        self._w_out = np.ascontiguousarray(np.asarray(weights["linear.weight"], np.float32).T)
        self._b_out = np.asarray(weights["linear.bias"], np.float32)
        self.dim = int(self._w_out.shape[1])

    def _prepare_layer(self, weights: Mapping[str, np.ndarray], k: int) -> tuple[np.ndarray, ...]:
        h = self.hidden
        # torch's gate order (i, f, g, o) -> (i, f, o, g)
        order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
        scale = np.r_[np.full(3 * h, 0.5), np.ones(h)].astype(np.float32)
        w_ih = np.asarray(weights[f"lstm.weight_ih_l{k}"], np.float32)[order] * scale[:, None]
        w_hh = np.asarray(weights[f"lstm.weight_hh_l{k}"], np.float32)[order] * scale[:, None]
        bias = np.asarray(weights[f"lstm.bias_ih_l{k}"], np.float32)
        bias = (bias + np.asarray(weights[f"lstm.bias_hh_l{k}"], np.float32))[order] * scale
        if w_hh.shape != (4 * h, h) or w_ih.shape[0] != 4 * h:
            raise ValueError(f"LSTM layer {k} has shapes {w_ih.shape}, {w_hh.shape}")
        return np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias

    @classmethod
    def random(cls, seed: int = 0, hidden: int = 16) -> GE2EEncoder:
        """A tiny random 3-layer model (``dim == hidden``) for tests; no files needed."""
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(hidden)

        def uniform(*shape: int) -> np.ndarray:
            return rng.uniform(-bound, bound, shape).astype(np.float32)

        weights = {"linear.weight": uniform(hidden, hidden)}
        weights["linear.bias"] = np.abs(uniform(hidden)) + np.float32(bound)  # rarely all ReLU'd
        for k in range(3):
            weights[f"lstm.weight_ih_l{k}"] = uniform(4 * hidden, N_MELS if k == 0 else hidden)
            weights[f"lstm.weight_hh_l{k}"] = uniform(4 * hidden, hidden)
            weights[f"lstm.bias_ih_l{k}"] = uniform(4 * hidden)
            weights[f"lstm.bias_hh_l{k}"] = uniform(4 * hidden)
        return cls(weights, hidden=hidden)

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of mel spectrograms of equal length.

        Args:
            mels: float32 (batch, frames, 40), as :func:`mel_frames` gives.

        Returns:
            Float32 (batch, dim), L2-normalized rows (a row whose ReLU output is all zero
            stays zero).
        """
        x = np.ascontiguousarray(np.asarray(mels, np.float32).transpose(1, 0, 2))  # time major
        for k, (w_ih, w_hh, bias) in enumerate(self._lstm):
            x = _lstm_layer(x, w_ih, w_hh, bias, keep_sequence=k < self.layers - 1)
        return _l2_normalize(np.maximum(x @ self._w_out + self._b_out, 0.0))

    def embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """One embedding per window, each window volume-normalized on its own.

        Args:
            windows: 16 kHz mono float32 audio, each at least :data:`MIN_S` seconds (1.6 s,
                :data:`WINDOW_S`, is what the model was trained on); windows with the same
                number of frames go through the LSTM as one batch.

        Returns:
            Float32 (len(windows), dim), L2-normalized rows.
        """
        mels = [
            mel_frames(normalize_volume(_checked_audio(w, f"window {i}")))
            for i, w in enumerate(windows)
        ]
        out = np.zeros((len(mels), self.dim), np.float32)
        groups: dict[int, list[int]] = {}
        for i, mel in enumerate(mels):
            groups.setdefault(len(mel), []).append(i)
        for rows in groups.values():
            out[rows] = self.embed_mels(np.stack([mels[i] for i in rows]))
        return out

    def embed(
        self, samples: np.ndarray, *, rate: float = 1.3, min_coverage: float = 0.75
    ) -> np.ndarray:
        """The utterance embedding: the normalized mean over partial windows of 1.6 s, cut as
        Resemblyzer's ``embed_utterance`` cuts them (:func:`partial_starts`), after the whole
        utterance is volume-normalized.

        Args:
            samples: 16 kHz mono float32 audio, at least :data:`MIN_S` seconds.
            rate: partial windows per second.
            min_coverage: how much of the last window must be audio for it to count.

        Returns:
            Float32 (dim,), L2-normalized.
        """
        wav = normalize_volume(_checked_audio(samples, "the utterance"))
        starts = partial_starts(len(wav), rate, min_coverage)
        end = (starts[-1] + PARTIAL_FRAMES) * HOP_SAMPLES
        mel = mel_frames(np.pad(wav, (0, max(0, end - len(wav)))))
        partials = self.embed_mels(np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts]))
        return _l2_normalize(partials.mean(axis=0))


def _lstm_layer(
    x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray, *, keep_sequence: bool
) -> np.ndarray:
    """One LSTM layer over time-major ``x`` (steps, batch, in): every hidden state
    (steps, batch, hidden) when ``keep_sequence``, else the last one (batch, hidden).

    The input projections of all steps are one matmul; each step then costs one recurrent
    matmul (per gate when the batch is large enough for OpenBLAS's small-matrix kernels to
    beat one wide product) and a few in-place ufuncs."""
    steps, batch, _ = x.shape
    h = w_hh.shape[0]
    inputs = (x.reshape(steps * batch, -1) @ w_ih + bias).reshape(steps, batch, -1)
    hidden, cell, spare = (np.zeros((batch, h), np.float32) for _ in range(3))
    out = np.empty((steps, batch, h), np.float32) if keep_sequence else None
    gates = np.empty((batch, 4 * h), np.float32)
    views = [gates[:, k * h : (k + 1) * h] for k in range(4)]
    blocks = [np.ascontiguousarray(w_hh[:, k * h : (k + 1) * h]) for k in range(4)]
    i, f, o, g = views
    sigmoid = gates[:, : 3 * h]
    for t in range(steps):
        if batch < _BLOCKED_BATCH:
            np.matmul(hidden, w_hh, out=gates)
        else:
            for block, view in zip(blocks, views, strict=True):
                np.matmul(hidden, block, out=view)
        gates += inputs[t]
        np.tanh(gates, out=gates)
        sigmoid *= 0.5
        sigmoid += 0.5
        cell *= f
        cell += np.multiply(i, g, out=spare)
        hidden = np.tanh(cell, out=spare if out is None else out[t])
        hidden *= o
    return out if out is not None else hidden.copy()
