"""Speech out with the real packaged models: the demo speaks, and eval scores speech as heard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from simulinterp.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def whisper():
    from simulinterp.asr.models import load_speech_model

    return load_speech_model("base", threads=2)


def heard(whisper, path: Path, lang: str) -> str:
    from simulinterp.asr.text import normalize
    from simulinterp.audio import load_file

    return normalize(whisper.transcribe(load_file(path), lang), lang)


def test_demo_speak_speaks_the_interpretation(tmp_path, monkeypatch, whisper, capsys):
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    monkeypatch.setattr(
        "simulinterp.audio.output.output_device_problem", lambda device=None: "none here (test)"
    )
    assert main(["demo", "--speak", "--output", str(tmp_path)]) == 0
    assert "instead of playing it" in capsys.readouterr().err
    interp, review = (
        tmp_path / "jfk_inaugural_en.interp.wav",
        tmp_path / "jfk_inaugural_en.review.wav",
    )
    assert sf.info(str(review)).channels == 2
    assert sf.info(str(interp)).duration >= 10.9  # the input's timeline, at least
    text = heard(whisper, interp, "zh")
    assert "国家" in text, text  # the country, as heard in the spoken Chinese
    events = [
        json.loads(x) for x in (tmp_path / "jfk_inaugural_en.zh.jsonl").read_text().splitlines()
    ]
    spoken = [e for e in events if e["type"] == "speech"]
    translation = "".join(e["text"] for e in events if e["type"] == "translation")
    # each committed clause once (the parts of a clause the synthesizer split share it); a
    # final stop committed on its own after its clause was spoken has nothing to say
    clauses = {e["clause"]: e["text"] for e in spoken}
    said = "".join(clauses[k] for k in sorted(clauses))
    assert said.rstrip("。") == translation.strip().rstrip("。")
    for a, b in zip(spoken, spoken[1:], strict=False):
        assert b["start_s"] >= a["end_s"]


def test_eval_scores_chinese_speech_into_english_speech(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    folder = shared_data / "speech" / "speech_zh_misc"
    rows = [r.split("\t") for r in (folder / "transcripts.tsv").read_text().splitlines()]
    audio, _, reference = next(r for r in rows if len(r) >= 3 and r[2].strip())
    (tmp_path / "list.txt").write_text(str(folder / audio) + "\n")
    (tmp_path / "ref.txt").write_text(reference.strip() + "\n")
    args = [
        "eval", "--source-type", "speech", "--target-type", "speech", "--from", "zh", "--to",
        "en", "--source", str(tmp_path / "list.txt"), "--reference", str(tmp_path / "ref.txt"),
        "--output", str(tmp_path / "out"), "--no-offline",
    ]  # fmt: skip
    assert main(args) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["BLEU"] > 5 and scores["ASR_BLEU"] > 0.5 * scores["S2T_BLEU_recordings"]
    assert 0 < scores["StartOffset"] <= scores["StartOffset_CA"]
    assert scores["EndOffset_CA"] > 0
    assert scores["asr_transcripts"][0].count(" ") > 5  # English words were heard
