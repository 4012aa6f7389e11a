"""A voice for each speaker: the nearest packaged voice, moved toward the speaker.

No voice-cloning model ships, so adaptation works with what the synthesizer has. Kokoro's
voices are style vectors, and mixing two of them slides pitch and timbre smoothly (a 75/50/25%
mix of ``jf_alpha`` and ``jm_kumo`` moved F0 from 222 to 128 Hz at 4-9% CER), while scaling a
vector or pushing it outside the packaged ones breaks it (../shared/FINDINGS.md). So:

1. Each packaged voice is measured once: its F0, formants and syllable rate on a fixed
   sentence (:class:`VoiceBank`).
2. A speaker's :class:`~simulinterp.speakers.features.VoiceProfile` (from the tracker) picks the
   **base**: the packaged voice nearest in F0 and formants.
3. The base is mixed with the packaged voice on the other side of the speaker's F0, by the
   weight that puts the mix's F0 at the speaker's (log-linear between the two; never beyond the
   packaged range): the pitch moves toward the speaker, the timbre stays mostly the base's.
4. The speaking rate follows the speaker's (their syllable rate over the base's, within
   0.85-1.2).
5. **Distinct:** a speaker's voice must differ from every other speaker's, by base or by 2
   semitones of F0 at least. Otherwise the next-nearest base is tried, then the F0 is moved
   away; up to the tracker's cap two speakers never share a voice.
6. The voice is re-fitted as the speaker's audio grows (after 1, 3, 8, 20... seconds voiced),
   so adaptation starts in the first seconds and improves.

Without adaptation (``--no-adapt``), or on a backend without style vectors, speaker ``k`` gets
the ``k``-th packaged voice of the language (cycling past the last one: then voices are shared,
and the cycle is the stated reuse).

What the adaptation optimizes is F0, formants and rate; speaker similarity is scored with the
GE2E embedding, which the fit never sees.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from simulinterp.speakers.features import (
    VoiceProfile,
    f0_distance_st,
    profile_distance,
    profile_of,
)

logger = logging.getLogger(__name__)

MEASURE_TEXT = {
    "en": "The quick brown fox jumps over the lazy dog, and then it runs away into the woods.",
    "zh": "今天天气很好，我们一起去公园散步，然后在湖边喝茶聊天。",
}
MIN_DISTINCT_ST = 2.0
"""Two speakers' voices with the same base must be at least this far apart in F0 (semitones)."""
REFIT_VOICED_S = (1.0, 3.0, 8.0, 20.0, 45.0)
"""A speaker's voice is fitted again once their voiced audio passes each of these, seconds."""
SPEED_RANGE = (0.85, 1.2)


@dataclass(frozen=True)
class VoiceFit:
    """The output voice of one speaker.

    Attributes:
        name: the voice name the synthesizer knows it by.
        base: the packaged voice it starts from.
        weights: packaged voice -> weight of the mix (one entry: the plain voice).
        f0_hz: the F0 the mix is expected to have (log-linear estimate), Hz.
        speed: speaking-rate factor for this speaker (1.0: the voice's own).
        adapted: fitted to the speaker (False: a plain packaged voice).
        voiced_s: seconds of the speaker's voiced audio the fit rests on.
    """

    name: str
    base: str
    weights: dict[str, float]
    f0_hz: float
    speed: float = 1.0
    adapted: bool = False
    voiced_s: float = 0.0


def _resample_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == 16_000:
        return samples
    import soxr

    return soxr.resample(samples, rate, 16_000).astype(np.float32)


class VoiceBank:
    """The packaged voices of one language and their measured profiles.

    Args:
        synth: the synthesizer (a style-vector one, Kokoro, for adaptation).
        lang: the target language.
        profiles: known profiles per voice (measured on first use otherwise).
    """

    def __init__(
        self,
        synth,
        lang: str,
        profiles: dict[str, VoiceProfile] | None = None,
        *,
        cache: Path | None = None,
    ):
        self.synth, self.lang = synth, lang
        self.cache = cache
        self.voices = [
            v for v in synth.voices(lang) if v in getattr(synth, "packaged", synth.voices(lang))
        ]
        self._profiles = dict(profiles or {})
        self._lock = threading.Lock()  # sessions of a server share one bank

    @property
    def blendable(self) -> bool:
        """The synthesizer mixes style vectors (``blend`` and ``add_voice``)."""
        return callable(getattr(self.synth, "blend", None)) and callable(
            getattr(self.synth, "add_voice", None)
        )

    def profile(self, voice: str) -> VoiceProfile | None:
        """The measured profile of a packaged voice (synthesized once)."""
        with self._lock:
            return self._measure(voice)

    def _measure(self, voice: str) -> VoiceProfile | None:
        if voice not in self._profiles:
            chunks = [
                _resample_16k(np.asarray(c.samples, np.float32), c.sample_rate)
                for c in self.synth.synthesize(MEASURE_TEXT[self.lang], voice, self.lang)
            ]
            audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            self._profiles[voice] = profile_of(audio, 16_000)
        return self._profiles[voice]

    def measured(self) -> dict[str, VoiceProfile]:
        """Every voice with a usable profile (read from ``cache`` when it holds them all,
        written there once measured)."""
        if self.cache is not None and not all(v in self._profiles for v in self.voices):
            self._profiles.update(_read_profiles(self.cache, self.voices))
        known = set(self._profiles)
        out = {}
        for voice in self.voices:
            p = self.profile(voice)
            if p is not None and p.f0_hz > 0:
                out[voice] = p
        if self.cache is not None and set(self._profiles) != known:
            _write_profiles(self.cache, self._profiles)
        return out


def profile_cache(synth, lang: str) -> Path:
    """Where the measured profiles of ``synth``'s ``lang`` voices are kept."""
    from simulinterp.packaged import cache_dir

    return cache_dir() / f"voice-profiles-{synth.name}-{lang}-v1.json"


def _read_profiles(path: Path, voices: list[str]) -> dict[str, VoiceProfile]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return {
            v: VoiceProfile(**{**rows[v], "formants_hz": tuple(rows[v]["formants_hz"])})
            for v in voices
            if v in rows
        }
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _write_profiles(path: Path, profiles: dict[str, VoiceProfile | None]) -> None:
    rows = {v: asdict(p) for v, p in profiles.items() if p is not None}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError as err:  # a read-only cache only costs a measurement next time
        logger.debug("could not keep the voice profiles: %s", err)


@dataclass
class _Speaker:
    fit: VoiceFit
    refits: int = 0


@dataclass
class SpeakerVoices:
    """Output voices per speaker, fitted and kept distinct (module docstring).

    Args:
        bank: the packaged voices.
        adapt: fit voices to the speakers (False: plain packaged voices in order).
        default: the voice of the first speaker when not adapting (the run's ``--voice``).
        prefix: starts the names of the voices it registers (unique per session when sessions
            share a synthesizer).
        timbre_from_base: keep the base voice's timbre values and mix only the others (see
            :meth:`_style`).
    """

    bank: VoiceBank
    adapt: bool = True
    default: str | None = None
    prefix: str = "speaker"
    timbre_from_base: bool = True
    fits: dict[int, VoiceFit] = field(default_factory=dict)
    _state: dict[int, _Speaker] = field(default_factory=dict)

    def voice_for(self, speaker: int | None, profile: VoiceProfile | None = None) -> VoiceFit:
        """The voice of ``speaker`` now (fitted again when their profile has grown)."""
        speaker = 0 if speaker is None else speaker
        state = self._state.get(speaker)
        if state is None:
            state = _Speaker(self._plain(speaker))
            self._state[speaker] = state
        if self.adapt and self.bank.blendable and profile is not None and profile.f0_hz > 0:
            due = REFIT_VOICED_S[min(state.refits, len(REFIT_VOICED_S) - 1)]
            if profile.voiced_s >= due and (state.refits < len(REFIT_VOICED_S)):
                state.fit = self._fit(speaker, profile)
                state.refits = sum(profile.voiced_s >= s for s in REFIT_VOICED_S)
        self.fits[speaker] = state.fit
        return state.fit

    def close(self) -> None:
        """Unregister the voices fitted here (a server's sessions come and go)."""
        remove = getattr(self.bank.synth, "remove_voice", None)
        for fit in self.fits.values():
            if fit.adapted and remove is not None:
                remove(fit.name)

    def _plain(self, speaker: int) -> VoiceFit:
        voices = self.bank.voices
        order = voices
        if self.default in voices:
            order = [self.default, *[v for v in voices if v != self.default]]
        voice = order[speaker % len(order)]
        return VoiceFit(voice, voice, {voice: 1.0}, 0.0)

    def _fit(self, speaker: int, target: VoiceProfile) -> VoiceFit:
        """The distinct mix nearest to ``target`` (module docstring, steps 2-5)."""
        measured = self.bank.measured()
        if not measured:
            return self._state[speaker].fit
        others = [f for k, f in self.fits.items() if k != speaker]
        ranked = sorted(measured, key=lambda v: profile_distance(target, measured[v]))
        candidates = [self._mix(base, target.f0_hz, measured) for base in ranked]
        choice = next((c for c in candidates if _distinct(c, others)), None)
        if choice is None:  # every base is taken near this pitch: move the pitch away
            choice = self._moved_away(candidates[0], others, measured)
        base_rate = measured[choice[0]].rate_per_s
        speed = 1.0
        if base_rate > 0 and target.rate_per_s > 0:
            speed = float(np.clip(target.rate_per_s / base_rate, *SPEED_RANGE))
        base, weights, f0 = choice
        name = f"{self.prefix}-{speaker + 1}-{self.bank.lang}"
        style = self._style(base, weights)
        self.bank.synth.add_voice(name, style)
        logger.debug("speaker %d: %s (F0 %.0f Hz, speed %.2f)", speaker, weights, f0, speed)
        return VoiceFit(name, base, weights, f0, speed, True, target.voiced_s)

    def _style(self, base: str, weights: dict[str, float]) -> np.ndarray:
        """The mix of ``weights``; where the synthesizer says which values carry timbre
        (``timbre_dims``: Kokoro's first 128), those stay the base voice's, so the pitch moves
        toward the speaker without the other voice's timbre."""
        synth = self.bank.synth
        mixed = np.array(synth.blend(weights), dtype=np.float32)
        dims = getattr(synth, "timbre_dims", 0) if self.timbre_from_base else 0
        if dims:
            mixed[..., :dims] = np.asarray(synth.blend({base: 1.0}))[..., :dims]
        return mixed

    @staticmethod
    def _mix(
        base: str, f0_hz: float, measured: dict[str, VoiceProfile]
    ) -> tuple[str, dict[str, float], float]:
        """``base`` mixed with the voice across ``f0_hz`` from it, at the log-F0 weight."""
        f_base = measured[base].f0_hz
        side = [v for v in measured if (measured[v].f0_hz - f_base) * (f0_hz - f_base) > 0]
        if not side or abs(math.log(f0_hz / f_base)) < 1e-6:
            return base, {base: 1.0}, f_base
        other = min(side, key=lambda v: abs(math.log(measured[v].f0_hz / f0_hz)))
        f_other = measured[other].f0_hz
        w = math.log(f0_hz / f_base) / math.log(f_other / f_base)
        w = float(np.clip(w, 0.0, 1.0))
        f0 = math.exp((1 - w) * math.log(f_base) + w * math.log(f_other))
        return base, {base: 1.0 - w, other: w}, f0

    def _moved_away(self, choice, others: list[VoiceFit], measured):
        """``choice`` with its F0 moved, a semitone at a time, until no other is near."""
        base, _, f0 = choice
        for step in range(1, 13):
            for sign in (1, -1):
                target = f0 * 2 ** (sign * step / 12)
                moved = self._mix(base, target, measured)
                if _distinct(moved, others):
                    return moved
        return choice


def _distinct(choice: tuple[str, dict[str, float], float], others: list[VoiceFit]) -> bool:
    base, _, f0 = choice
    for other in others:
        if other.base == base:
            if other.f0_hz <= 0 or abs(12 * math.log2(f0 / other.f0_hz)) < MIN_DISTINCT_ST:
                return False
    return True


def describe(fit: VoiceFit) -> str:
    """One line: the mix and its expected pitch (for logs and ``--verbose``)."""
    mix = " + ".join(f"{w:.0%} {v}" for v, w in sorted(fit.weights.items(), key=lambda x: -x[1]))
    return f"{fit.name}: {mix}" + (f", ~{fit.f0_hz:.0f} Hz" if fit.f0_hz else "")


__all__ = ["SpeakerVoices", "VoiceBank", "VoiceFit", "describe", "f0_distance_st"]
