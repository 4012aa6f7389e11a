"""Speech scoring in milliseconds, ASR error, and StreamLAAL-style re-segmentation."""

from __future__ import annotations

import time

import pytest

from simulinterp.eval.resegment import resegment, resegment_instance
from simulinterp.eval.speech import asr_error, score_speech, speech_instance, unit_times
from simulinterp.events import SpeechCommit


def commit(text: str, audio_s: float, elapsed_s: float, segment: int = 0) -> SpeechCommit:
    return SpeechCommit(text, audio_s, elapsed_s, elapsed_s, segment, False, 0.0, audio_s)


def test_units_take_the_time_of_the_commit_that_completed_them():
    commits = [commit("Hel", 1.0, 1.5), commit("lo world", 2.0, 2.5), commit(" again.", 3.0, 3.2)]
    text, delays, elapsed = unit_times(commits, "en")
    assert text == "Hello world again."
    assert delays == [2000.0, 2000.0, 3000.0]
    assert elapsed == [2500.0, 2500.0, 3200.0]


def test_chinese_units_are_characters():
    _, delays, _ = unit_times([commit("你好", 1.0, 1.0), commit("世界。", 2.0, 2.0)], "zh")
    assert delays == [1000.0, 1000.0, 2000.0, 2000.0, 2000.0]


def test_latency_is_in_milliseconds_of_source_audio():
    # 4 target units for a 4 s recording and a 4-unit reference: the ideal delays are
    # 0, 1000, 2000, 3000 ms (tau = 4000 / 4 per unit).
    commits = [commit("a b", 2.0, 2.5), commit(" c d", 4.0, 4.5)]
    inst = speech_instance(0, "x.wav", commits, "w x y z", "a b c d", 4000.0, "en")
    scores = score_speech([inst], "en", "en")
    assert inst.delays == [2000.0, 2000.0, 4000.0, 4000.0]
    assert scores["StartOffset"] == 2000.0
    # AL: tau = index of the first delay reaching 4000 ms -> 3 units;
    # (2000 - 0) + (2000 - 1000) + (4000 - 2000) = 5000 / 3
    assert scores["AL"] == pytest.approx(5000 / 3)
    assert scores["AL_CA"] == pytest.approx((2500 + 1500 + 2500) / 3)
    assert scores["BLEU"] == pytest.approx(100.0)
    assert "WER" not in scores


def test_transcripts_add_wer_or_cer():
    en = speech_instance(
        0,
        "a.wav",
        [commit("x", 1, 1)],
        "And so, my fellow",
        "x",
        1000,
        "zh",
        source_transcript="and so my fellow Americans",
    )
    assert score_speech([en], "zh", "en")["WER"] == pytest.approx(0.2)
    zh = speech_instance(
        0, "b.wav", [commit("x", 1, 1)], "數據，很好", "x", 1000, "en", source_transcript="数据很好"
    )
    assert score_speech([zh], "en", "zh")["CER"] == 0.0


@pytest.mark.parametrize(
    ("hyp", "ref", "lang", "error"),
    [
        ("Hello, World!", "hello world", "en", 0.0),
        ("hello", "hello world", "en", 0.5),
        ("這是測試", "这是测试。", "zh", 0.0),
        ("这是", "这是测试", "zh", 0.5),
    ],
)
def test_asr_error(hyp, ref, lang, error):
    assert asr_error([hyp], [ref], lang) == pytest.approx(error)


def test_a_perfect_hypothesis_splits_at_the_reference_boundaries():
    refs = ["the cat sat.", "a dog ran far.", "end."]
    units = "the cat sat. a dog ran far. end.".split()
    assert resegment(units, refs, "en") == [[0, 1, 2], [3, 4, 5, 6], [7]]


def test_errors_near_a_boundary_still_split_sensibly():
    refs = ["the cat sat.", "a dog ran far."]
    units = "the cat sat down. a dog ran".split()
    groups = resegment(units, refs, "en")
    assert groups[0] == [0, 1, 2, 3] and groups[1] == [4, 5, 6]


def test_an_empty_hypothesis_gives_empty_groups():
    assert resegment([], ["a.", "b."], "en") == [[], []]


def test_resegmenting_is_fast():
    refs = [" ".join(f"w{i}_{j}" for j in range(10)) for i in range(500)]
    units = " ".join(refs).split()
    started = time.perf_counter()
    groups = resegment(units, refs, "en")
    assert time.perf_counter() - started < 1.0
    assert [len(g) for g in groups] == [10] * 500


def test_long_form_pieces_count_from_their_sentence_start():
    commits = [commit("the cat sat.", 3.0, 3.5), commit(" a dog ran far.", 8.0, 9.0)]
    whole = speech_instance(0, "x.wav", commits, "", "", 10_000.0, "en")
    refs = ["the cat sat.", "a dog ran far."]
    pieces = resegment_instance(whole, refs, [0.0, 5000.0], "en")
    assert [p.prediction for p in pieces] == refs
    assert pieces[1].delays == [3000.0] * 4
    assert pieces[1].elapsed == [4000.0] * 4
    assert pieces[1].source_length == 5000.0
    plain = resegment_instance(whole, refs, None, "en")
    assert plain[1].delays == [8000.0] * 4 and plain[1].source_length == 10_000.0
