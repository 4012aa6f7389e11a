"""Scoring speech output: when each target unit is heard, lag drift, the CLI keys."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from simulinterp.cli import main
from simulinterp.eval.speech_output import (
    SpokenRecording,
    lag_drift_s,
    output_unit_times,
    score_speech_output,
    speech_output_latency,
)
from simulinterp.events import SpokenSegment
from simulinterp.tts.scheduler import SchedulerConfig
from unit.test_cli_speech import eval_args, fake_models, tone_voice, tones  # noqa: F401


def seg(text, clause, start, end, *, ready=None, source_end=0.0, audio=0.0, segment=0):
    return SpokenSegment(
        text,
        text,
        clause,
        segment,
        start,
        end,
        ready if ready is not None else start,
        source_end,
        1.0,
        0.1,
        audio,
    )


def test_units_are_heard_in_proportion_to_their_characters():
    spoken = [seg("你好，", 0, 2.0, 3.0), seg("ask not what", 1, 4.0, 5.0)]
    assert output_unit_times(spoken[:1], "zh") == pytest.approx(
        [2000.0, 2000 + 1000 / 3, 2000 + 2000 / 3]
    )
    # "ask" (3 chars) "not" (3) "what" (4): onsets at 0, 3/10 and 6/10 of the clause
    assert output_unit_times(spoken[1:], "en") == pytest.approx([4000.0, 4300.0, 4600.0])


def test_a_clause_split_by_the_synthesizer_spreads_over_its_parts():
    parts = [seg("一二三四", 0, 1.0, 2.0), seg("一二三四", 0, 3.0, 4.0)]
    assert output_unit_times(parts, "zh") == pytest.approx([1000.0, 1500.0, 3000.0, 3500.0])


def test_without_computation_clauses_start_when_their_source_was_heard():
    spoken = [
        seg("你好。", 0, 3.0, 4.0, ready=3.0, source_end=1.0, audio=1.5),
        seg("再见。", 1, 4.1, 5.0, ready=4.0, source_end=2.0, audio=2.5),
    ]
    plain = output_unit_times(spoken, "zh", computation_aware=False, config=SchedulerConfig())
    assert plain[0] == pytest.approx(1500.0)
    assert plain[3] == pytest.approx(max(2500.0, 2500.0 + 80.0))  # after the first + the gap
    aware = output_unit_times(spoken, "zh")
    assert all(p <= a for p, a in zip(plain, aware, strict=True))


def test_lag_drift_compares_the_last_minute_with_the_first():
    spoken = [
        seg("好。", i, t + 2.0 + t / 100, t + 3.0, source_end=t)
        for i, t in enumerate(range(0, 300, 10))
    ]
    drift = lag_drift_s(spoken, 300.0)
    first = [2.0 + t / 100 for t in range(0, 70, 10)]
    last = [2.0 + t / 100 for t in range(240, 300, 10)]
    assert drift == pytest.approx(sum(last) / len(last) - sum(first) / len(first))
    assert lag_drift_s(spoken, 90.0) is None  # too short to say
    # committed_s is 0 in these clauses: the speech side's lag is the start itself
    speech_first = [t + 2.0 + t / 100 for t in range(0, 70, 10)]
    speech_last = [t + 2.0 + t / 100 for t in range(240, 300, 10)]
    expected = sum(speech_last) / len(speech_last) - sum(speech_first) / len(speech_first)
    assert lag_drift_s(spoken, 300.0, speech_only=True) == pytest.approx(expected)


def test_recording_figures_and_asr_bleu():
    rec = SpokenRecording(
        0, (seg("你好。", 0, 2.0, 3.0, source_end=1.0, audio=1.2),), 2000.0, "你好。", "你好。"
    )
    fig = speech_output_latency(rec, "zh")
    assert fig["StartOffset_CA"] == pytest.approx(2000.0) and fig["EndOffset_CA"] == 1000.0
    assert fig["StartOffset"] == pytest.approx(1200.0)
    scores = score_speech_output([rec], "zh", ["你好。"])
    assert scores["ASR_BLEU"] == pytest.approx(scores["S2T_BLEU_recordings"])
    assert scores["lag_drift_s"] is None and scores["spoken_clauses"] == 1


def test_eval_with_speech_output_writes_the_keys(fake_models, tone_voice, tmp_path):  # noqa: F811
    tones(tmp_path / "a.wav")
    (tmp_path / "list.txt").write_text("a.wav\n")
    (tmp_path / "ref.txt").write_text("们去今公园，他喜欢\n")
    assert main([*eval_args(tmp_path), "--target-type", "speech"]) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    for key in (
        "BLEU",
        "StartOffset",
        "EndOffset",
        "StartOffset_CA",
        "EndOffset_CA",
        "ATD",
        "AL",
        "LAAL",
        "ASR_BLEU",
        "lag_drift_s",
        "text_StartOffset_CA",
    ):
        assert key in scores, key
    assert scores["BLEU"] == pytest.approx(100.0)
    assert scores["StartOffset_CA"] >= scores["text_StartOffset_CA"]  # heard after written
    assert scores["asr_bleu_model"] == "base"  # the run's own recognizer hears the output
    assert scores["StartOffset"] <= scores["StartOffset_CA"]
    wavs = sorted((tmp_path / "out" / "speech").glob("*.interp.wav"))
    assert len(wavs) == 1 and sf.info(str(wavs[0])).duration > 1.0


def test_speech_output_needs_speech_input(tmp_path, capsys):
    (tmp_path / "src.txt").write_text("hello\n")
    args = [
        "eval",
        "--source",
        str(tmp_path / "src.txt"),
        "--reference",
        str(tmp_path / "src.txt"),
        "--output",
        str(tmp_path / "o"),
        "--target-type",
        "speech",
    ]
    assert main(args) == 2
    assert "--source-type speech" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("lang", "text", "heard"),
    [
        ("en", "So, my fellow Americans: ask not what your country can do for you.",
         "so my fellow americans ask not what your country can do for you"),
        ("zh", "所以，我的美国同胞们：不要问国家能为你们做什么。",
         "所以我的美国同胞们不要问国家能为你们做什么"),
    ],
)  # fmt: skip
def test_asr_bleu_scores_what_is_heard_not_the_recognizers_punctuation(lang, text, heard):
    from simulinterp.eval.quality import bleu, heard_text

    assert heard_text(text).replace(" ", "") == heard.replace(" ", "")
    rec = SpokenRecording(0, (seg(text, 0, 2.0, 3.0, source_end=1.0),), 4000.0, text, text)
    scores = score_speech_output([rec], lang, [heard])  # no punctuation, lower case
    assert scores["ASR_BLEU"] == pytest.approx(100.0)
    assert scores["S2T_BLEU_recordings"] == pytest.approx(100.0)
    assert bleu([heard], [text], lang) < 90  # the raw text would count commas as missed


def test_eval_hears_the_output_with_the_asr_bleu_model(fake_models, tone_voice, tmp_path):  # noqa: F811
    tones(tmp_path / "a.wav")
    (tmp_path / "list.txt").write_text("a.wav\n")
    (tmp_path / "ref.txt").write_text("们去今公园，他喜欢\n")
    args = [*eval_args(tmp_path), "--target-type", "speech", "--asr-bleu-model", "tiny.en"]
    assert main(args) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["asr_bleu_model"] == "tiny.en" and "ASR_BLEU" in scores


def test_a_missing_asr_bleu_model_stops_eval_before_the_run(
    fake_models,  # noqa: F811
    tone_voice,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,  # noqa: F811
):
    from simulinterp.asr import models
    from simulinterp.llm.models import ModelNotFoundError

    installed = models.load_speech_model

    def missing(name, **kwargs):
        if name != "small":
            return installed(name, **kwargs)
        raise ModelNotFoundError(f"{name} is not installed: simulinterp install whisper-{name}")

    monkeypatch.setattr(models, "load_speech_model", missing)
    tones(tmp_path / "a.wav")
    (tmp_path / "list.txt").write_text("a.wav\n")
    (tmp_path / "ref.txt").write_text("们去今公园，他喜欢\n")
    args = [*eval_args(tmp_path), "--target-type", "speech", "--asr-bleu-model", "small"]
    assert main(args) == 2
    assert "--asr-bleu-model: small is not installed" in capsys.readouterr().err
    assert not (tmp_path / "out" / "instances.log").exists()  # nothing was run for nothing
