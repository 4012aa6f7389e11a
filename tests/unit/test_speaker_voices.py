"""A voice per speaker: fitted toward the speaker's pitch, kept distinct, refitted as audio
grows, plain when not adapting. A fake style-vector synthesizer whose style sets the pitch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulinterp.speakers.features import VoiceProfile, profile_of
from simulinterp.speakers.voices import MIN_DISTINCT_ST, SpeakerVoices, VoiceBank
from simulinterp.tts.base import SpokenClause

RATE = 16000
PACKAGED = {"low": 100.0, "mid": 160.0, "high": 240.0}  # voice -> F0 of its style


def vowel(f0_hz: float, seconds: float = 1.5) -> np.ndarray:
    """A sung vowel: harmonics of ``f0_hz`` shaped by formants at 700 / 1200 / 2600 Hz."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for k in range(1, int(3500 / f0_hz)):
        f = k * f0_hz
        gain = sum(1 / (1 + ((f - fc) / 120) ** 2) for fc in (700, 1200, 2600))
        out += gain * np.sin(2 * np.pi * f * t)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.3 * envelope * out / np.abs(out).max()).astype(np.float32)


class StyleSynth:
    """Kokoro's shape: style tables (here 1 x 2: F0, unused), blends, add/remove voice."""

    name = "styles"
    sample_rate = RATE
    license = "test"

    def __init__(self) -> None:
        self._styles = {v: np.array([[f0, 0.0]]) for v, f0 in PACKAGED.items()}
        self.packaged = tuple(PACKAGED)
        self.spoken: list[str] = []

    def voices(self, lang: str) -> list[str]:
        return list(self._styles)

    def blend(self, weights: dict[str, float]) -> np.ndarray:
        total = sum(weights.values())
        logs = sum(math.log(self._styles[v][0, 0]) * w / total for v, w in weights.items())
        return np.array([[math.exp(logs), 0.0]])

    def add_voice(self, name: str, style: np.ndarray) -> None:
        self._styles[name] = style

    def remove_voice(self, name: str) -> None:
        self._styles.pop(name, None)

    def synthesize(self, text: str, voice: str, lang: str, *, speed: float = 1.0):
        self.spoken.append(voice)
        yield SpokenClause(text, vowel(float(self._styles[voice][0, 0])), RATE)


def speaker(f0_hz: float, voiced_s: float = 10.0, rate: float = 4.0) -> VoiceProfile:
    reference = profile_of(vowel(f0_hz), RATE)
    assert reference is not None
    return VoiceProfile(f0_hz, f0_hz * 0.9, f0_hz * 1.1, reference.formants_hz, rate, voiced_s)


@pytest.fixture
def bank():
    return VoiceBank(StyleSynth(), "en")


def test_the_bank_measures_each_packaged_voice_once(bank):
    first = bank.measured()
    assert set(first) == set(PACKAGED)
    for voice, f0 in PACKAGED.items():
        assert first[voice].f0_hz == pytest.approx(f0, rel=0.05)
    spoken = len(bank.synth.spoken)
    bank.measured()
    assert len(bank.synth.spoken) == spoken


@pytest.mark.parametrize("target", [120.0, 200.0])
def test_a_fitted_voice_is_nearer_the_speaker_than_the_plain_one(bank, target):
    voices = SpeakerVoices(bank)
    fit = voices.voice_for(0, speaker(target))
    assert fit.adapted and fit.name in bank.synth.voices("en")
    heard = profile_of(
        np.concatenate([c.samples for c in bank.synth.synthesize("x", fit.name, "en")]), RATE
    )
    plain = bank.profile(bank.voices[0])
    assert abs(math.log(heard.f0_hz / target)) < abs(math.log(plain.f0_hz / target))
    assert heard.f0_hz == pytest.approx(target, rel=0.06)
    assert len(fit.weights) == 2  # a mix of the voices either side of the speaker's pitch


def test_the_pitch_never_goes_beyond_the_packaged_voices(bank):
    fit = SpeakerVoices(bank).voice_for(0, speaker(70.0))
    assert fit.weights == {"low": 1.0} and fit.f0_hz == pytest.approx(100, rel=0.05)


def test_speakers_with_the_same_voice_still_get_distinct_voices(bank):
    voices = SpeakerVoices(bank)
    fits = [voices.voice_for(k, speaker(150.0)) for k in range(8)]
    assert len({f.name for f in fits}) == 8
    for i, a in enumerate(fits):
        for b in fits[i + 1 :]:
            if a.base == b.base:
                assert abs(12 * math.log2(a.f0_hz / b.f0_hz)) >= MIN_DISTINCT_ST - 1e-6


def test_the_voice_is_refitted_as_the_speakers_audio_grows(bank):
    voices = SpeakerVoices(bank)
    early = voices.voice_for(0, speaker(130.0, voiced_s=0.5))
    assert not early.adapted  # not enough audio yet: the plain first voice
    first = voices.voice_for(0, speaker(130.0, voiced_s=1.2))
    same = voices.voice_for(0, speaker(200.0, voiced_s=1.5))
    assert first.adapted and same == first  # no refit between thresholds
    later = voices.voice_for(0, speaker(200.0, voiced_s=3.5))
    assert later.f0_hz > first.f0_hz


def test_without_adaptation_speakers_get_the_packaged_voices_in_turn(bank):
    voices = SpeakerVoices(bank, adapt=False, default="mid")
    names = [voices.voice_for(k, speaker(120.0)).name for k in range(4)]
    assert names == ["mid", "low", "high", "mid"]  # the default first; reused past the last
    assert not any(voices.voice_for(k).adapted for k in range(4))


def test_a_backend_without_style_vectors_gets_plain_voices():
    class OneVoice(StyleSynth):
        blend = None  # type: ignore[assignment]

    bank = VoiceBank(OneVoice(), "en")
    assert not bank.blendable
    fit = SpeakerVoices(bank).voice_for(1, speaker(120.0))
    assert not fit.adapted and fit.name in PACKAGED


def test_the_speaking_rate_follows_the_speaker_within_bounds(bank):
    voices = SpeakerVoices(bank)
    base_rate = bank.profile("low").rate_per_s
    fast = voices.voice_for(0, speaker(100.0, rate=base_rate * 3))
    slow = voices.voice_for(1, speaker(240.0, rate=base_rate * 0.95))
    assert fast.speed == pytest.approx(1.2)
    assert slow.speed == pytest.approx(0.95, abs=0.03) or slow.speed < 1.0


def test_closing_forgets_the_fitted_voices(bank):
    voices = SpeakerVoices(bank, prefix="session-1")
    fit = voices.voice_for(0, speaker(130.0))
    assert fit.name.startswith("session-1-") and fit.name in bank.synth.voices("en")
    voices.close()
    assert fit.name not in bank.synth.voices("en")
    assert set(PACKAGED) <= set(bank.synth.voices("en"))


def test_measured_profiles_are_kept_for_the_next_run(tmp_path):
    cache = tmp_path / "profiles.json"
    first = VoiceBank(StyleSynth(), "en", cache=cache)
    measured = first.measured()
    assert cache.is_file() and first.synth.spoken
    again = VoiceBank(StyleSynth(), "en", cache=cache)
    assert again.measured() == measured and again.synth.spoken == []  # nothing synthesized
    cache.write_text("{not json")
    broken = VoiceBank(StyleSynth(), "en", cache=cache)
    assert set(broken.measured()) == set(PACKAGED)  # a damaged cache is measured again


def test_a_whispering_speaker_without_pitch_keeps_a_plain_distinct_voice(bank):
    from simulinterp.speakers.features import profile_of

    rng = np.random.default_rng(0)
    whisper = (0.05 * rng.standard_normal(3 * RATE)).astype(np.float32)  # noise: no voicing
    assert profile_of(whisper, RATE) is None
    voices = SpeakerVoices(bank)
    first = voices.voice_for(0, speaker(130.0))
    quiet = voices.voice_for(1, None)
    assert not quiet.adapted and quiet.name in PACKAGED and quiet.name != first.name
