"""The speech session: ASR commits feed the translator; everything lands on the audio timeline."""

from __future__ import annotations

import pytest

from fakes import EN_ZH, DictionaryLLM
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.audio import AudioChunk
from simulinterp.pipeline import SpeechSession
from simulinterp.policy import make_policy
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from speech_fakes import EnergyVAD, FakeClock, ToneWhisper, speak

SCRIPT = [["we", "go", "to", "the", "park"], ["he", "likes", "it"]]


def session(policy: str = "wait-k", *, cost_s: float = 0.0, realtime: bool = False):
    clock = FakeClock()
    engine = ToneWhisper(cost_s=cost_s, advance=clock.advance)
    rec = StreamingRecognizer(
        engine,  # type: ignore[arg-type]
        EnergyVAD(),  # type: ignore[arg-type]
        RecognizerConfig(lang="en", max_duty=1.0, sentence_pause_s=0.8),
        clock=clock,
    )
    translator = SimultaneousTranslator(
        DictionaryLLM(EN_ZH, target_lang="zh"),
        make_policy(policy, 2 if policy == "wait-k" else None, "en", "zh"),
        TranslatorConfig(source_lang="en", target_lang="zh"),
        clock=clock,
    )
    return SpeechSession(rec, translator, realtime=realtime, clock=clock), clock


def feed_all(s: SpeechSession, audio, clock: FakeClock | None = None, realtime: bool = False):
    for i in range(0, len(audio), 1600):
        if realtime and clock is not None:
            clock.now = max(clock.now, (i + 1600) / 16000)
        s.feed(AudioChunk(audio[i : i + 1600], i / 16000))
    s.finish()


def test_speech_is_translated_sentence_by_sentence():
    s, _ = session()
    feed_all(s, speak(SCRIPT))
    assert [w.text for w in s.words] == [w for u in SCRIPT for w in u]
    assert s.translation == "们去今公园" + "他喜欢"
    assert {c.segment for c in s.commits} == {0, 1}
    assert [c.final for c in s.commits].count(True) == 2


def test_commits_sit_on_the_audio_timeline():
    s, _ = session()
    audio = speak(SCRIPT)
    feed_all(s, audio)
    second_start = 0.5 + 5 * 0.45 + 1.0
    for c in s.commits:
        assert 0 < c.audio_s <= len(audio) / 16000
        assert c.elapsed_s >= c.audio_s
        assert c.source_end_s <= c.audio_s + 1e-6
    first = [c for c in s.commits if c.segment == 0]
    second = [c for c in s.commits if c.segment == 1]
    assert first[0].source_start_s < 0.6
    assert second[0].source_start_s == pytest.approx(second_start, abs=0.2)
    assert first[0].audio_s < second_start  # translated before the next sentence began


def test_a_slow_machine_shows_in_the_computation_aware_times():
    fast, _ = session()
    slow, _ = session(cost_s=0.8)
    audio = speak(SCRIPT)
    feed_all(fast, audio)
    feed_all(slow, audio)
    assert slow.translation == fast.translation  # same words, later
    lag_fast = max(c.elapsed_s - c.audio_s for c in fast.commits)
    lag_slow = max(c.elapsed_s - c.audio_s for c in slow.commits)
    assert lag_fast < 0.05
    assert lag_slow >= 0.8
    assert slow.ca_s >= len(audio) / 16000


def test_realtime_sessions_use_the_wall_clock():
    s, clock = session(realtime=True)
    feed_all(s, speak(SCRIPT), clock, realtime=True)
    for c in s.commits:
        assert c.elapsed_s == pytest.approx(c.wall_s)
        assert c.elapsed_s >= c.audio_s - 0.11


def test_the_languages_must_match():
    clock = FakeClock()
    rec = StreamingRecognizer(
        ToneWhisper(),
        EnergyVAD(),
        RecognizerConfig(lang="zh"),  # type: ignore[arg-type]
    )
    translator = SimultaneousTranslator(
        DictionaryLLM(EN_ZH, target_lang="zh"),
        make_policy("offline"),
        TranslatorConfig(source_lang="en", target_lang="zh"),
    )
    with pytest.raises(ValueError, match="hears 'zh'"):
        SpeechSession(rec, translator, clock=clock)


def test_a_pause_flushes_the_sentence_even_when_its_words_were_already_sent():
    clock = FakeClock()
    rec = StreamingRecognizer(
        ToneWhisper(),
        EnergyVAD(),  # type: ignore[arg-type]
        RecognizerConfig(lang="en", max_duty=1.0, step_s=0.1, sentence_pause_s=0.8),
        clock=clock,
    )
    translator = SimultaneousTranslator(
        DictionaryLLM(EN_ZH, target_lang="zh"),
        make_policy("clause"),
        TranslatorConfig(source_lang="en", target_lang="zh"),
        clock=clock,
    )
    s = SpeechSession(rec, translator, clock=clock)
    audio = speak(SCRIPT)
    first_end = 0.5 + 5 * 0.45 + 0.6
    for i in range(0, len(audio), 1600):
        s.feed(AudioChunk(audio[i : i + 1600], i / 16000))
        if (i + 1600) / 16000 >= first_end + 0.5:
            break
    done = [c for c in s.commits if c.segment == 0 and c.final]
    assert done and "".join(c.text for c in s.commits) == "们去今公园"  # before the audio ends
