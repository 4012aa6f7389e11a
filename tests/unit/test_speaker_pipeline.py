"""A speech session with a speaker tracker: words, commits and steps carry who spoke."""

from __future__ import annotations

from fakes import EN_ZH, DictionaryLLM
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.audio import AudioChunk
from simulinterp.pipeline import SpeechSession, run
from simulinterp.policy import make_policy
from simulinterp.sinks import Collector
from simulinterp.speakers.tracker import SpeakerTracker
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from speaker_fakes import HumEncoder, hummed
from speech_fakes import PAUSE_S, EnergyVAD, FakeClock, ToneWhisper, speak

TWO = [["we", "go", "to", "the", "park"], ["he", "likes", "it", "very", "good"]]


def tracked_session():
    clock = FakeClock()
    rec = StreamingRecognizer(
        ToneWhisper(advance=clock.advance),  # type: ignore[arg-type]
        EnergyVAD(),  # type: ignore[arg-type]
        RecognizerConfig(lang="en", max_duty=1.0, sentence_pause_s=0.8),
        clock=clock,
    )
    translator = SimultaneousTranslator(
        DictionaryLLM(EN_ZH, target_lang="zh"),
        make_policy("wait-k", 2, "en", "zh"),
        TranslatorConfig(source_lang="en", target_lang="zh"),
        clock=clock,
    )
    tracker = SpeakerTracker(HumEncoder(bands=8), EnergyVAD())
    return SpeechSession(rec, translator, clock=clock, tracker=tracker)


def two_speakers():
    audio = speak(TWO)
    middle = 0.5 + 5 * 0.45 + PAUSE_S / 2  # in the pause between the two utterances
    return hummed(audio, [(0.0, middle, 0), (middle, len(audio) / 16000, 5)])


def test_each_word_and_commit_carries_its_speaker():
    session = tracked_session()
    record = Collector()
    audio = two_speakers()
    chunks = [AudioChunk(audio[i : i + 1600], i / 16000) for i in range(0, len(audio), 1600)]
    run(chunks, session, [record])
    assert [w.text for w in record.words] == [w for u in TWO for w in u]
    assert [w.speaker for w in record.words] == [0] * 5 + [1] * 5
    by_segment = {c.segment: c.speaker for c in record.commits}
    assert by_segment == {0: 0, 1: 1}
    turns = record.speakers
    assert [(t.speaker, t.label, t.new) for t in turns] == [(0, "S1", True), (1, "S2", True)]
    assert session.busy_s["speakers"] >= 0


def test_without_a_tracker_nobody_is_labelled():
    from unit.test_pipeline import SCRIPT, feed_all, session

    s, _ = session()
    feed_all(s, speak(SCRIPT))
    assert {w.speaker for w in s.words} == {None} and {c.speaker for c in s.commits} == {None}


def test_a_new_speaker_starts_a_new_sentence_even_without_a_pause():
    from speech_fakes import GAP_S, WORD_S

    one = [["we", "go", "to", "the", "park", "he", "likes", "it", "very", "good"]]
    audio = speak(one)
    switch = 0.5 + 5 * (WORD_S + GAP_S) - GAP_S / 2  # between "park" and "he": no pause
    session = tracked_session()
    record = Collector()
    audio = hummed(audio, [(0.0, switch, 0), (switch, len(audio) / 16000, 5)])
    chunks = [AudioChunk(audio[i : i + 1600], i / 16000) for i in range(0, len(audio), 1600)]
    run(chunks, session, [record])
    speakers = [w.speaker for w in record.words]
    assert speakers[0] == 0 and speakers[-1] != 0
    segments = {}
    for c in record.commits:
        segments.setdefault(c.segment, set()).add(c.speaker)
    assert len(segments) >= 2 and all(len(s) == 1 for s in segments.values())
