"""Speech scoring (ms latency, WER/CER) and long-form re-segmentation, checked by hand."""

from __future__ import annotations

import random
import time

import pytest

from simulinterp.eval.resegment import resegment, resegment_instance
from simulinterp.eval.speech import (
    SpeechInstance,
    asr_error,
    atd_source_times,
    score_speech,
    speech_instance,
    speech_latency,
    unit_times,
)
from simulinterp.events import SpeechCommit
from simulinterp.lang import split_units


def commit(text: str, audio_s: float, elapsed_s: float, segment: int = 0) -> SpeechCommit:
    return SpeechCommit(text, audio_s, elapsed_s, elapsed_s, segment, False, 0.0, audio_s)


def instance(
    prediction: str,
    delays: list[float],
    *,
    elapsed: list[float] | None = None,
    reference: str = "",
    reference_length: int | None = None,
    source_length: float = 3000.0,
    transcript: str = "",
    source_transcript: str | None = None,
    lang: str = "en",
) -> SpeechInstance:
    return SpeechInstance(
        index=0,
        source="a.wav",
        transcript=transcript,
        reference=reference or prediction,
        prediction=prediction,
        delays=delays,
        elapsed=delays if elapsed is None else elapsed,
        source_length=source_length,
        reference_length=(
            len(split_units(reference or prediction, lang))
            if reference_length is None
            else reference_length
        ),
        prediction_length=len(delays),
        source_transcript=source_transcript,
    )


# -- unit expansion -------------------------------------------------------------------------

UNIT_CASES = {
    # "pa" + "rk." is one word, completed by the last commit; an empty commit changes nothing
    "en_word_split_across_commits": (
        [
            commit("We", 1.0, 1.5),
            commit(" go to", 2.0, 2.6),
            commit("", 2.5, 2.7),
            commit(" the pa", 3.0, 3.2),
            commit("rk.", 4.0, 4.1),
        ],
        "en",
        "We go to the park.",
        [1000.0, 2000.0, 2000.0, 3000.0, 4000.0],
        [1500.0, 2600.0, 2600.0, 3200.0, 4100.0],
    ),
    "en_word_split_mid_word": (
        [commit("Hel", 1.0, 1.5), commit("lo world", 2.0, 2.5), commit(" again.", 3.0, 3.2)],
        "en",
        "Hello world again.",
        [2000.0, 2000.0, 3000.0],
        [2500.0, 2500.0, 3200.0],
    ),
    # a space at a commit's end: "go" is complete in the first commit
    "en_trailing_space": (
        [commit("We go ", 1.0, 1.1), commit("home", 2.0, 2.2)],
        "en",
        "We go home",
        [1000.0, 1000.0, 2000.0],
        [1100.0, 1100.0, 2200.0],
    ),
    # Chinese characters are units; the Latin run "NASA" is one unit finished in commit 2
    "zh_characters_and_latin_run": (
        [commit("我们NA", 0.5, 0.6), commit("SA很", 1.25, 1.5), commit("好。", 2.0, 2.5)],
        "zh",
        "我们NASA很好。",
        [500.0, 500.0, 1250.0, 1250.0, 2000.0, 2000.0],
        [600.0, 600.0, 1500.0, 1500.0, 2500.0, 2500.0],
    ),
    "no_commits": ([], "zh", "", [], []),
}


@pytest.mark.parametrize(
    ("commits", "lang", "text", "delays", "elapsed"), UNIT_CASES.values(), ids=UNIT_CASES
)
def test_unit_times(commits, lang, text, delays, elapsed) -> None:
    assert unit_times(commits, lang) == (text, delays, elapsed)


def test_speech_instance_fields() -> None:
    commits = [commit("我们", 1.0, 1.2), commit("去公园。", 2.0, 2.4)]
    inst = speech_instance(3, "x.wav", commits, "we go", "我们去了公园。", 2500.0, "zh", "We go.")
    assert inst.prediction == "我们去公园。"
    assert inst.delays == [1000.0, 1000.0, 2000.0, 2000.0, 2000.0, 2000.0]
    assert inst.elapsed == [1200.0, 1200.0, 2400.0, 2400.0, 2400.0, 2400.0]
    assert (inst.source_length, inst.reference_length, inst.prediction_length) == (2500.0, 7, 6)
    assert inst.to_json()["source_transcript"] == "We go."
    assert inst.to_json()["sentence"] is None


# -- latency in ms ---------------------------------------------------------------------------

# delays 1000, 2000, 2000, 3000 ms; |X| = 3000 ms; tau = 4 (d_4 = |X|).
# AL: gamma = 4/3000, 1/gamma = 750: [1000 + (2000-750) + (2000-1500) + (3000-2250)] / 4 = 875.
# LAAL with |Y_ref| = 6: 1/gamma = 500: [1000 + 1500 + 1000 + 1500] / 4 = 1250.
# ATD: pseudo words end at 300 600 900 1000 | 1300 1600 1900 2000 | 2300 2600 2900 3000;
#   a = 1, 2, 3, 4 -> ends 300, 600, 900, 1000: [700 + 1400 + 1100 + 2000] / 4 = 1300.
# CA on elapsed 1500, 2600, 2600, 3500 (tau = 4):
#   AL_CA = [1500 + 1850 + 1100 + 1250] / 4 = 1425; LAAL_CA = [1500 + 2100 + 1600 + 2000] / 4.
LATENCY_CASE = {
    "StartOffset": 1000.0,
    "AL": 875.0,
    "LAAL": 1250.0,
    "ATD": 1300.0,
    "StartOffset_CA": 1500.0,
    "AL_CA": 1425.0,
    "LAAL_CA": 1800.0,
}


def tiny() -> SpeechInstance:
    return instance(
        "a b c d",
        [1000.0, 2000.0, 2000.0, 3000.0],
        elapsed=[1500.0, 2600.0, 2600.0, 3500.0],
        reference_length=6,
    )


def test_speech_latency_by_hand() -> None:
    assert speech_latency(tiny()) == pytest.approx(LATENCY_CASE)


@pytest.mark.parametrize(
    ("delays", "times"),
    [
        ([1000.0, 2000.0], [300.0, 600.0, 900.0, 1000.0, 1300.0, 1600.0, 1900.0, 2000.0]),
        ([0.0, 600.0, 600.0], [300.0, 600.0]),
        ([250.0], [250.0]),
        ([], []),
    ],
)
def test_atd_source_times(delays: list[float], times: list[float]) -> None:
    assert atd_source_times(delays) == times


def test_score_speech_averages_instances_with_output() -> None:
    # the second instance: delays 500 ms on |X| = 1000, one unit, reference 1 unit:
    # every figure is 500 (ATD: pseudo words end at 300, 500 -> a = 1 -> 500 - 300 = 200)
    second = instance("e", [500.0], source_length=1000.0)
    empty = instance("", [], reference="f g")
    scores = score_speech([tiny(), second, empty], "en", "en")
    expected = {k: (v + (200.0 if k == "ATD" else 500.0)) / 2 for k, v in LATENCY_CASE.items()}
    assert {k: scores[k] for k in expected} == pytest.approx(expected)
    assert scores["instances"] == 3
    assert 0 < scores["BLEU"] < 100 and 0 < scores["chrF"] < 100
    assert "WER" not in scores and "CER" not in scores


def test_score_speech_perfect_quality_and_no_instances() -> None:
    scores = score_speech([instance("We go to the park.", [1000.0] * 5)], "en", "zh")
    assert scores["BLEU"] == pytest.approx(100.0) and scores["chrF"] == pytest.approx(100.0)
    empty = score_speech([], "zh", "en")
    assert empty["instances"] == 0 and empty["LAAL"] == 0.0 and empty["BLEU"] == 0.0


@pytest.mark.parametrize(
    ("source_lang", "transcripts", "golds", "key", "value"),
    [
        (
            "en",
            ["We go, to the PARK!", "hello"],
            ["we go to the park", "hello world"],
            "WER",
            1 / 7,
        ),
        ("zh", ["我們去公園。", "他很喜欢"], ["我们去公园", "他很喜欢。"], "CER", 0.0),
    ],
)
def test_score_speech_asr_error(source_lang, transcripts, golds, key, value) -> None:
    instances = [
        instance("x", [100.0], transcript=t, source_transcript=g)
        for t, g in zip(transcripts, golds, strict=True)
    ]
    scores = score_speech(instances, "zh" if source_lang == "en" else "en", source_lang)
    assert scores[key] == pytest.approx(value)
    partial = [*instances, instance("x", [100.0], transcript="y")]  # one without gold
    assert key not in score_speech(partial, "zh", source_lang)


# -- WER / CER -------------------------------------------------------------------------------

ASR_CASES = {
    "en_case_and_punctuation": (["Hello, World!"], ["hello world"], "en", 0.0),
    "en_apostrophes": (["Don't stop…"], ["dont stop"], "en", 0.0),
    "en_whitespace": (["  the\tcat \n sat "], ["the cat sat"], "en", 0.0),
    "en_hyphen_is_a_space": (["well-known"], ["well known"], "en", 0.0),
    "en_half_missing": (["hello"], ["hello world"], "en", 0.5),
    "en_one_deletion": (["the cat sat"], ["the cat sat on"], "en", 0.25),
    # corpus level: (2 deletions + 1 substitution) / (4 + 1) reference words
    "en_corpus": (["a b", "x"], ["a b c d", "y"], "en", 0.6),
    # an empty reference adds its hypothesis words as insertions
    "en_empty_reference": (["a b", "c"], ["", "c"], "en", 2.0),
    "zh_traditional_equals_simplified": (["這是中國。"], ["这是中国"], "zh", 0.0),
    "zh_punctuation_and_spaces": (["我们， 去 公园！"], ["我们去公园。"], "zh", 0.0),
    "zh_traditional_with_full_stop": (["這是測試"], ["这是测试。"], "zh", 0.0),
    "zh_half_missing": (["这是"], ["这是测试"], "zh", 0.5),
    "zh_one_deletion": (["我们去公园"], ["我们去了公园"], "zh", 1 / 6),
    "zh_latin_lower_cased": (["用GPU"], ["用gpu"], "zh", 0.0),
    "zh_empty_hypothesis": ([""], ["你好"], "zh", 1.0),
}


@pytest.mark.parametrize(("hyps", "refs", "lang", "expected"), ASR_CASES.values(), ids=ASR_CASES)
def test_asr_error(hyps: list[str], refs: list[str], lang: str, expected: float) -> None:
    assert asr_error(hyps, refs, lang) == pytest.approx(expected)


def test_asr_error_undefined_or_misaligned() -> None:
    assert asr_error([""], ["…"], "en") == 0.0
    with pytest.raises(ValueError, match="no words"):
        asr_error(["a"], ["!"], "en")
    with pytest.raises(ValueError):
        asr_error(["a", "b"], ["a"], "en")


# -- re-segmentation -------------------------------------------------------------------------

RESEGMENT_CASES = {
    "perfect_en": ("a b c d e f", ["a b c", "d e f"], "en", [[0, 1, 2], [3, 4, 5]]),
    "case_and_punctuation_ignored": (
        "A, b c. D e f!",
        ["a b c", "d e f"],
        "en",
        [[0, 1, 2], [3, 4, 5]],
    ),
    "perfect_zh_with_punctuation_units": (
        "我们去公园。他很喜欢。",
        ["我们去公园。", "他很喜欢。"],
        "zh",
        [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]],
    ),
    # insertions at the boundary go left, unless the hypothesis ends a sentence first
    "inserted_at_boundary_no_sentence_end": (
        "a b c x y d e f",
        ["a b c.", "d e f"],
        "en",
        [[0, 1, 2, 3, 4], [5, 6, 7]],
    ),
    "inserted_at_boundary_split_at_sentence_end": (
        "a b c x. y d e f",
        ["a b c.", "d e f"],
        "en",
        [[0, 1, 2, 3], [4, 5, 6, 7]],
    ),
    "inserted_after_sentence_end_go_right": (
        "a b c. x y d e f",
        ["a b c.", "d e f"],
        "en",
        [[0, 1, 2], [3, 4, 5, 6, 7]],
    ),
    "zh_inserted_after_full_stop_go_right": (
        "我们去公园。那么他很喜欢。",
        ["我们去公园。", "他很喜欢。"],
        "zh",
        [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12]],
    ),
    "inserted_at_both_ends": (
        "x a b c d e f z",
        ["a b c", "d e f"],
        "en",
        [[0, 1, 2, 3], [4, 5, 6, 7]],
    ),
    "deleted_before_boundary": ("a b d e f", ["a b c", "d e f"], "en", [[0, 1], [2, 3, 4]]),
    "deleted_after_boundary": ("a b c e f", ["a b c", "d e f"], "en", [[0, 1, 2], [3, 4]]),
    "substituted_at_boundary": ("a b q r e f", ["a b c", "d e f"], "en", [[0, 1, 2], [3, 4, 5]]),
    "empty_middle_reference": ("a b c d", ["a b", "", "c d"], "en", [[0, 1], [], [2, 3]]),
    "missing_last_sentence": ("a b c", ["a b c", "d e f"], "en", [[0, 1, 2], []]),
    "three_sentences": (
        "the cat sat. a dog ran far. end.",
        ["the cat sat.", "a dog ran far.", "end."],
        "en",
        [[0, 1, 2], [3, 4, 5, 6], [7]],
    ),
    "extra_word_ends_the_first_sentence": (
        "the cat sat down. a dog ran",
        ["the cat sat.", "a dog ran far."],
        "en",
        [[0, 1, 2, 3], [4, 5, 6]],
    ),
    "empty_hypothesis": ("", ["a b c", "d e f"], "en", [[], []]),
    "punctuation_only_hypothesis": ("。", ["我们", "他"], "zh", [[0], []]),
}


@pytest.mark.parametrize(
    ("hyp", "refs", "lang", "groups"), RESEGMENT_CASES.values(), ids=RESEGMENT_CASES
)
def test_resegment(hyp: str, refs: list[str], lang: str, groups: list[list[int]]) -> None:
    assert resegment(split_units(hyp, lang), refs, lang) == groups


def test_resegment_needs_references() -> None:
    with pytest.raises(ValueError):
        resegment(["a"], [], "en")


def test_resegment_5000_units_is_fast_and_monotone() -> None:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(400)]
    refs = [[rng.choice(vocab) for _ in range(50)] for _ in range(100)]
    perfect = [u for ref in refs for u in ref]
    noisy = []
    for unit in perfect:  # about 10 % substitutions, deletions and insertions
        roll = rng.random()
        if roll < 0.033:
            noisy.append(rng.choice(vocab))
        elif roll < 0.066:
            continue
        elif roll < 0.1:
            noisy += [unit, rng.choice(vocab)]
        else:
            noisy.append(unit)
    texts = [" ".join(ref) for ref in refs]
    started = time.perf_counter()
    exact = resegment(perfect, texts, "en")
    groups = resegment(noisy, texts, "en")
    assert time.perf_counter() - started < 1.0
    assert exact == [list(range(50 * s, 50 * (s + 1))) for s in range(100)]
    assert [i for g in groups for i in g] == list(range(len(noisy)))
    assert sum(abs(len(g) - 50) for g in groups) < 0.1 * len(perfect)


def long_instance(**changes) -> SpeechInstance:
    base = instance(
        "a b c d e f",
        [500.0, 900.0, 3900.0, 3950.0, 4800.0, 6000.0],
        elapsed=[600.0, 1000.0, 4000.0, 4100.0, 5000.0, 6500.0],
        reference="a b c d e f",
        source_length=6000.0,
        transcript="A B C D E F",
        source_transcript="a b c d e f",
    )
    return SpeechInstance(**{**base.to_json(), "index": 4, **changes})


def test_resegment_instance_relative_to_sentence_starts() -> None:
    first, second = resegment_instance(long_instance(), ["a b c", "d e f"], [0.0, 4000.0], "en")
    assert (first.prediction, first.delays, first.elapsed) == (
        "a b c",
        [500.0, 900.0, 3900.0],
        [600.0, 1000.0, 4000.0],
    )
    assert (second.prediction, second.delays, second.elapsed) == (
        "d e f",
        [0.0, 800.0, 2000.0],  # 3950 ms is before the sentence starts: clipped to 0
        [100.0, 1000.0, 2500.0],
    )
    assert (first.source_length, second.source_length) == (4000.0, 2000.0)
    assert (first.sentence, second.sentence, first.index, second.index) == (0, 1, 4, 4)
    assert (first.reference_length, second.prediction_length) == (3, 3)
    assert (first.transcript, second.transcript) == ("A B C D E F", "")
    assert (first.source_transcript, second.source_transcript) == ("a b c d e f", "")
    # LAAL of the second sentence: gamma = 3/2000, 1/gamma = 666.7; tau = 3:
    # [0 + (800 - 666.7) + (2000 - 1333.3)] / 3 = 800/3
    assert speech_latency(second)["LAAL"] == pytest.approx(800 / 3)


def test_resegment_instance_without_starts_keeps_the_recording_clock() -> None:
    first, second = resegment_instance(
        long_instance(source_transcript=None), ["a b c", "d e f"], None, "en"
    )
    assert second.delays == [3950.0, 4800.0, 6000.0]
    assert (first.source_length, second.source_length) == (6000.0, 6000.0)
    assert (first.source_transcript, second.source_transcript) == (None, None)


def test_resegment_instance_keeps_chinese_spelling() -> None:
    inst = instance(
        "我们去公园。用GPU跑。",
        [100.0 * (i + 1) for i in range(10)],  # 10 units
        reference="我们去公园。用GPU跑。",
        source_length=2000.0,
        lang="zh",
    )
    pieces = resegment_instance(inst, ["我们去公园。", "用GPU跑。"], [0.0, 600.0], "zh")
    assert [p.prediction for p in pieces] == ["我们去公园。", "用GPU跑。"]
    assert pieces[1].delays == [100.0, 200.0, 300.0, 400.0]  # 用 GPU 跑 。


@pytest.mark.parametrize(
    "starts", [[0.0], [0.0, 0.0], [3000.0, 1000.0], [0.0, 6000.0], [-1.0, 100.0]]
)
def test_resegment_instance_rejects_bad_starts(starts: list[float]) -> None:
    with pytest.raises(ValueError):
        resegment_instance(long_instance(), ["a b c", "d e f"], starts, "en")


def test_speech_instance_scores_in_ms_end_to_end() -> None:
    # 4 units on a 4 s recording: tau = 3 (d_3 = 4000 ms), 1/gamma = 1000 ms;
    # AL = [2000 + (2000 - 1000) + (4000 - 2000)] / 3; AL_CA on 2500, 2500, 4500 likewise
    commits = [commit("a b", 2.0, 2.5), commit(" c d", 4.0, 4.5)]
    inst = speech_instance(0, "x.wav", commits, "w x y z", "a b c d", 4000.0, "en")
    scores = score_speech([inst], "en", "en")
    assert inst.delays == [2000.0, 2000.0, 4000.0, 4000.0]
    assert scores["StartOffset"] == 2000.0
    assert scores["AL"] == pytest.approx(5000 / 3)
    assert scores["AL_CA"] == pytest.approx((2500 + 1500 + 2500) / 3)
    assert scores["BLEU"] == pytest.approx(100.0)


def test_long_form_pieces_from_commits() -> None:
    commits = [commit("the cat sat.", 3.0, 3.5), commit(" a dog ran far.", 8.0, 9.0)]
    whole = speech_instance(0, "x.wav", commits, "", "", 10_000.0, "en")
    refs = ["the cat sat.", "a dog ran far."]
    pieces = resegment_instance(whole, refs, [0.0, 5000.0], "en")
    assert [p.prediction for p in pieces] == refs
    assert (pieces[1].delays, pieces[1].elapsed) == ([3000.0] * 4, [4000.0] * 4)
    assert pieces[1].source_length == 5000.0
    plain = resegment_instance(whole, refs, None, "en")
    assert plain[1].delays == [8000.0] * 4 and plain[1].source_length == 10_000.0


def test_score_speech_leaks_and_terms() -> None:
    from dataclasses import replace

    # Recording 0 is one instance; recording 1 a long one in two sentences (re-segmented).
    first = instance(
        "他擦掉了 fence。", [100.0] * 6, transcript="he wiped off the fence", lang="zh"
    )
    second = replace(
        instance("NASA的任务", [100.0] * 4, transcript="NASA's mission", lang="zh"), index=1
    )
    third = replace(
        instance("开普勒。", [200.0] * 4, transcript="Kepler", lang="zh"), index=1, sentence=1
    )
    terms = [["栅栏"], ["任务", "开普勒"]]
    scores = score_speech([first, second, third], "zh", "en", terms)
    assert scores["leak_rate"] == pytest.approx(1 / 3)  # "fence"; NASA is a name
    assert scores["term_accuracy"] == pytest.approx(2 / 3)  # both sentences count for rec. 1
    assert scores["terms"] == 3
    allowed = [["fence"], []]
    assert score_speech([first, second, third], "zh", "en", allowed=allowed)["leak_rate"] == 0.0
