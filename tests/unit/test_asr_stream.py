"""The streaming recognizer on tone "speech": commits, endpoints, trimming, pacing, warnings."""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.asr.agreement import (
    LocalAgreement,
    agreed_prefix,
    continuation,
    cut_restart,
    strip_repeat,
)
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.asr.text import normalize, units_of
from speech_fakes import EnergyVAD, FakeClock, ToneWhisper, speak

CHUNK = 1600  # 0.1 s


def run(audio: np.ndarray, rec: StreamingRecognizer, chunk: int = CHUNK) -> list:
    steps = []
    for i in range(0, len(audio), chunk):
        rec.insert_audio(audio[i : i + chunk])
        steps.append(rec.process())
    steps.append(rec.finish())
    return steps


def recognizer(**kwargs) -> tuple[StreamingRecognizer, ToneWhisper]:
    engine = ToneWhisper()
    kwargs.setdefault("pause_comma", False)  # words only, unless a test asks for commas
    config = RecognizerConfig(lang="en", max_duty=1.0, **kwargs)
    return StreamingRecognizer(engine, EnergyVAD(), config), engine  # type: ignore[arg-type]


def test_every_word_is_committed_once_in_order():
    script = [["we", "go", "to", "the", "park"], ["he", "likes", "it"]]
    rec, _ = recognizer()
    steps = run(speak(script), rec)
    committed = [w.text for s in steps for w in s.committed]
    assert committed == [w for u in script for w in u]
    assert [w.text for w in rec.words] == committed
    assert not any(w.startswith("uh") for w in committed)  # cut-off bursts are never committed


def _boundaries(steps: list) -> list[str]:
    """The last committed word before each sentence boundary the recognizer reported."""
    out, last = [], None
    for step in steps:
        if step.committed:
            last = step.committed[-1].text
        if step.boundary:
            out.append(last)
    return out


def test_a_long_silence_ends_the_sentence_and_frees_the_buffer():
    script = [["we", "go", "to"], ["he", "likes", "it"]]  # a 1 s pause after each
    rec, _ = recognizer(sentence_pause_s=0.8, release_s=0.9)
    steps = run(speak(script), rec)
    assert _boundaries(steps) == ["to", "it"]
    assert not any(w.sentence_end for w in rec.words)  # no punctuation: the pauses decide
    assert rec.buffered_s <= rec.config.preroll_s + 0.2


def test_an_ended_sentence_stays_in_the_window_as_context():
    script = [["we", "go", "to"], ["he", "likes", "it"]]
    rec, engine = recognizer(sentence_pause_s=0.8, release_s=6.0)
    steps = run(speak(script), rec)
    assert _boundaries(steps) == ["to", "it"]
    assert max(engine.decodes) > 3 * 0.45 + 1.0 + 0.5  # the first words, the pause, the next


class CommaWhisper(ToneWhisper):
    """Writes a comma after "to" (the word before the pause of the test script) when words
    follow it, as whisper does after a pause it hears as a clause break."""

    def decode(self, encoded, lang, *, prompt="", prefix="", max_new_tokens=64, beam_size=1):
        result = super().decode(
            encoded, lang, prompt=prompt, prefix=prefix, max_new_tokens=max_new_tokens
        )
        if prefix.endswith(" to") and result.text:
            return type(result)(" ," + result.text, result.finished, result.avg_logprob)
        return result


@pytest.mark.parametrize(("pause_s", "comma"), [(2.0, True), (0.8, False)])
def test_punctuation_after_an_ended_sentence_is_dropped(pause_s: float, comma: bool):
    script = [["we", "go", "to"], ["he", "likes", "it"]]
    config = RecognizerConfig(lang="en", max_duty=1.0, sentence_pause_s=pause_s)
    rec = StreamingRecognizer(CommaWhisper(), EnergyVAD(), config)  # type: ignore[arg-type]
    run(speak(script), rec)
    texts = [w.text for w in rec.words]
    assert ("," in texts) is comma
    assert [t for t in texts if t != ","] == ["we", "go", "to", "he", "likes", "it"]


def test_a_short_pause_keeps_the_sentence_open_with_the_words_before_it_in_the_window():
    script = [["we", "go", "to"], ["he", "likes", "it"]]
    rec, engine = recognizer(sentence_pause_s=2.0)
    steps = run(speak(script), rec)
    assert [w.text for w in rec.words] == ["we", "go", "to", "he", "likes", "it"]
    assert _boundaries(steps) == ["it"]  # only the end of the audio ends the sentence
    # the second utterance is decoded in one window with the first (1.35 s of words, a 1 s
    # pause): whisper hears what came before the pause
    first_alone = 3 * 0.45
    assert max(engine.decodes) > first_alone + 1.0 + 0.5


def test_a_full_stop_at_a_pause_is_dropped_but_kept_inside_an_utterance():
    script = [["we", "good.", "go", "good."], ["he", "likes", "it"]]
    rec, _ = recognizer(sentence_pause_s=0.8)
    run(speak(script), rec)
    texts = [w.text for w in rec.words]
    assert texts == ["we", "good.", "go", "good", "he", "likes", "it"]
    assert [w.sentence_end for w in rec.words][:4] == [False, True, False, False]


def test_words_are_committed_while_the_speaker_is_still_talking():
    script = [["we", "go", "to", "the", "park", "he", "likes", "it", "very", "good"]]
    audio = speak(script, lead_s=0.5)
    rec, _ = recognizer()
    run(audio, rec)
    utterance_end = 0.5 + 10 * 0.45
    early = [w for w in rec.words if w.audio_s < utterance_end]
    assert len(early) >= 6
    for w in rec.words:
        assert w.audio_s >= w.end_s - 0.05  # never before it was heard
        assert w.committed_s >= w.audio_s


def test_silence_is_never_decoded():
    rec, engine = recognizer()
    steps = run(np.zeros(5 * 16000, np.float32), rec)
    assert engine.decodes == []
    assert all(not s.committed for s in steps)
    assert rec.buffered_s <= rec.config.preroll_s + 0.2


def test_long_speech_is_trimmed_at_committed_sentence_ends():
    words = (
        "we go to the park good. he likes it very good. "
        "the park likes we good. very good he go to it good."
    ).split()
    rec, engine = recognizer(trim_s=2.0)
    run(speak([words]), rec)
    # the full stop before the final pause is no evidence of a sentence end: dropped
    assert [w.text for w in rec.words] == [*words[:-1], "good"]
    assert max(engine.decodes) < 6.0  # without trimming the window would reach 11 s


def test_decoding_slows_down_instead_of_falling_behind():
    clock = FakeClock()
    engine = ToneWhisper(cost_s=0.3, advance=clock.advance)
    config = RecognizerConfig(lang="en", step_s=0.1, max_duty=0.3)
    rec = StreamingRecognizer(engine, EnergyVAD(), config, clock=clock)  # type: ignore[arg-type]
    audio = speak([["we", "go", "to", "the", "park", "he", "likes", "it"]])
    run(audio, rec)
    decoded_s = 0.3 * len(engine.decodes)
    assert decoded_s / (len(audio) / 16000) <= 0.45
    assert rec.compute_s == pytest.approx(decoded_s)


def test_the_wrong_language_is_reported():
    rec, engine = recognizer()
    engine.language = "zh"
    run(speak([["we", "go", "to", "the", "park"]]), rec)
    assert len(rec.warnings) == 1 and "'zh'" in rec.warnings[0]


def test_reset_starts_a_new_stream():
    rec, _ = recognizer()
    run(speak([["we", "go"]]), rec)
    rec.reset()
    run(speak([["he", "likes", "it"]]), rec)
    assert [w.text for w in rec.words] == ["he", "likes", "it"]
    assert rec.words[0].start_s < 1.0


@pytest.mark.parametrize(
    ("hyps", "agreed"),
    [
        ([["a", "b", "c"], ["a", "b", "d"]], 2),
        ([["You,"], ["you."]], 1),
        ([["a"], []], 0),
        ([], 0),
    ],
)
def test_agreed_prefix(hyps, agreed):
    assert agreed_prefix(hyps) == agreed


def test_local_agreement_commits_only_what_two_hypotheses_share():
    la = LocalAgreement(2)
    assert la.insert(["we", "go", "uh"]) == []
    assert la.insert(["we", "go", "to", "uh"]) == ["we", "go"]
    assert la.tentative() == ["to", "uh"]
    assert la.insert(["to", "the"]) == ["to"]
    with pytest.raises(ValueError):
        LocalAgreement(0)


@pytest.mark.parametrize(
    ("tail", "reference", "kept"),
    [
        ("and so my fellow ask not".split(), "and so my fellow".split(), ["ask", "not"]),
        ("my fellow Americans. ask".split(), "and so my fellow Americans.".split(), ["ask"]),
        (
            "fellow Americans. ask".split(),
            "and so my fellow Americans.".split(),
            ["fellow", "Americans.", "ask"],
        ),
        ("ask not".split(), "and so my".split(), ["ask", "not"]),
        ("so my".split(), "and so my".split(), ["so", "my"]),  # two units may be genuine
    ],
)
def test_strip_repeat(tail, reference, kept):
    assert strip_repeat(tail, reference) == kept


@pytest.mark.parametrize(
    ("units", "keep"),
    [
        ("And so my Americans. And so my Americans.".split(), 4),
        ("Is not. Is not.".split(), 2),
        ("the cat the dog".split(), 4),
        ("I think I think so".split(), 2),
        (["As", "not", ".", "As", "not."], 3),  # punctuation does not hide a repeat
    ],
)
def test_cut_restart(units, keep):
    assert cut_restart(units) == keep


def test_a_long_restart_threshold_keeps_repeated_phrases():
    units = "the invention of movable type was the invention of printing".split()
    assert cut_restart(units, 6) == len(units)
    assert cut_restart(units, 3) == 6


@pytest.mark.parametrize(
    ("text", "keep"),
    [
        # whisper fills the silence after a sentence with the window's opening: cut
        ("what your country can do for you. What your country", 7),
        ("我们今天去公园。我们今天", 8),
        # the same words going on are speech (anaphora), and so is a repeat without a stop
        ("what your country can do for you. What your country needs", 11),
        ("what your country can do for you, what your country", 10),
        # shorter than the threshold
        ("what your country can do for you. What your", 9),
    ],
)
def test_a_short_restart_after_a_full_stop_at_the_end_is_cut(text: str, keep: int):
    units = list(text.replace(" ", "")) if "我" in text else text.split()
    assert cut_restart(units, 6, after_stop=3 if "我" not in text else 4) == keep
    assert cut_restart(units, 6) == len(units)  # without after_stop nothing is cut


def test_chinese_text_is_simplified_with_full_width_punctuation():
    assert normalize("首先,說一下. 好的?", "zh") == "首先，说一下。好的？"
    assert units_of("數據Ｇ或許", "zh") == ["数", "据", "，", "或", "许"]
    assert units_of("好的\ufffd的", "zh") == ["好", "的"]


def test_english_loops_are_cut():
    assert units_of(" and so my fellow and so my fellow and so", "en") == [
        "and",
        "so",
        "my",
        "fellow",
    ]


def test_a_pause_after_committed_words_is_a_boundary_not_a_repeat():
    script = [["we", "go", "to"], ["he", "likes", "it"]]
    # the last word agrees before the pause is long enough to end the sentence
    rec, _ = recognizer(step_s=0.1, sentence_pause_s=0.8)
    steps = run(speak(script), rec)
    assert [w.text for w in rec.words] == [w for u in script for w in u]
    marked = sum(w.sentence_end for w in rec.words)
    boundaries = sum(s.boundary for s in steps)
    assert boundaries >= 1
    assert marked + boundaries == 2


@pytest.mark.parametrize(
    ("committed", "hypothesis", "rest"),
    [
        (["the"], "So I have a cold".split(), "I have a cold".split()),
        ("we go to".split(), "We go, to the park".split(), ["the", "park"]),
        ("we go to".split(), "we go".split(), []),
        ([], "a b".split(), ["a", "b"]),
    ],
)
def test_continuation_after_the_committed_words(committed, hypothesis, rest):
    assert continuation(committed, hypothesis) == rest


def test_a_stalled_prefix_falls_back_to_free_decoding():
    class Stubborn(ToneWhisper):
        """Stops at once whenever a prefix is forced (as whisper does when it does not fit)."""

        def decode(self, encoded, lang, *, prompt="", prefix="", max_new_tokens=64, beam_size=1):
            result = super().decode(encoded, lang, prompt=prompt, max_new_tokens=max_new_tokens)
            if prefix:
                return type(result)(text="", finished=True, avg_logprob=-0.1)
            return result

    script = [["we", "go", "to", "the", "park", "he", "likes", "it", "very", "good"]]
    rec = StreamingRecognizer(
        Stubborn(),
        EnergyVAD(),
        RecognizerConfig(lang="en", max_duty=1.0),  # type: ignore[arg-type]
    )
    run(speak(script), rec)
    assert [w.text for w in rec.words] == script[0]


def test_long_speech_without_punctuation_is_trimmed_too():
    words = "we go to the park he likes it very good the park we go to it very good".split()
    rec, engine = recognizer(trim_s=2.0)
    run(speak([words]), rec)
    assert [w.text for w in rec.words] == words
    assert max(engine.decodes) < 5.0  # the utterance lasts 8 s


def test_unit_ends_follow_the_aligned_words():
    from simulinterp.asr.stream import _unit_ends

    words = [(" 数据", 0.0, 0.5), (" ，", 0.5, 0.6), ("很好", 0.6, 1.2)]
    assert _unit_ends(["数", "据", "，", "很", "好"], words) == [0.5, 0.5, 0.6, 1.2, 1.2]
    assert _unit_ends(["go", "home."], [(" go", 0, 0.4), (" home.", 0.4, 0.9)]) == [0.4, 0.9]
    assert _unit_ends(["a"], []) == []


@pytest.mark.parametrize(
    ("text", "lang", "units"),
    [
        ("the ____________ morning", "en", ["the", "morning"]),
        ("♪ ♪ la la ♪", "en", ["la", "la"]),
        ("and then---- we went", "en", ["and", "then", "we", "went"]),
        ("[MUSIC] hello (applause)", "en", ["hello"]),
        ("(he said) hello", "en", ["(he", "said)", "hello"]),
        ("好的______我们", "zh", ["好", "的", "我", "们"]),
        ("well... so", "en", ["well...", "so"]),
    ],
)
def test_symbol_runs_are_not_words(text: str, lang: str, units: list[str]) -> None:
    assert units_of(text, lang) == units


@pytest.mark.parametrize(
    ("pause_s", "units"),
    [
        (2.0, ["we", "go", "to", ",", "he", "likes", "it"]),  # a pause inside the sentence
        (0.8, ["we", "go", "to", "he", "likes", "it"]),  # a pause that ends the sentence
    ],
)
def test_a_silent_pause_inside_a_sentence_becomes_a_comma(pause_s: float, units: list[str]):
    rec, _ = recognizer(sentence_pause_s=pause_s, pause_comma=True)
    run(speak([["we", "go", "to"], ["he", "likes", "it"]]), rec)
    assert [w.text for w in rec.words] == units


def test_no_comma_where_whisper_wrote_punctuation_at_the_pause():
    config = RecognizerConfig(lang="en", max_duty=1.0, sentence_pause_s=2.0, pause_comma=True)
    rec = StreamingRecognizer(CommaWhisper(), EnergyVAD(), config)  # type: ignore[arg-type]
    run(speak([["we", "go", "to"], ["he", "likes", "it"]]), rec)
    assert [w.text for w in rec.words].count(",") == 1
