"""Speakers with the real models on real multi-speaker recordings: diarize, an interpretation
with a labelled, adapted voice per speaker, and eval's DER and speaker similarity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulinterp.cli import main

pytestmark = pytest.mark.integration

MULTI = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "speech_multispeaker"
FALCON = MULTI / "audio" / "picovoice_falcon_test.flac"  # 3 speakers, 18.6 s, reference turns
LEOPARD = MULTI / "audio" / "picovoice_leopard_diarization_test.flac"  # 3 speakers, 19.8 s


@pytest.fixture(autouse=True)
def needs_data_and_encoder():
    from simulinterp.speakers.encoder import EncoderNotInstalledError, weights_path

    if not MULTI.is_dir():
        pytest.skip(f"the multi-speaker recordings are not at {MULTI}")
    try:
        weights_path()
    except EncoderNotInstalledError as err:
        pytest.skip(str(err))


def test_diarize_finds_the_three_speakers_of_a_recording(tmp_path):
    from simulinterp.eval.diarization import diarization_scores
    from simulinterp.speakers.rttm import read_rttm

    assert main(["diarize", str(FALCON), "--output", str(tmp_path)]) == 0
    hyp = read_rttm(tmp_path / "picovoice_falcon_test.rttm")["picovoice_falcon_test"]
    ref = read_rttm(MULTI / "rttm" / "picovoice_falcon_test.rttm")["picovoice_falcon_test"]
    assert len({t.speaker for t in hyp}) == 3
    scores = diarization_scores({"f": ref}, {"f": hyp}, {"f": 18.58}, collar_s=0.25)
    assert scores.der <= 0.15, scores


def test_a_meeting_is_interpreted_with_a_labelled_adapted_voice_per_speaker(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    args = ["interpret", str(LEOPARD), "--from", "en", "--to", "zh", "--speak", "--no-play"]
    assert main([*args, "--output", str(tmp_path)]) == 0
    stem = tmp_path / "picovoice_leopard_diarization_test"
    doc = json.loads(Path(f"{stem}.zh.json").read_text(encoding="utf-8"))
    assert len({w["speaker"] for w in doc["words"]}) == 3  # the crocodile, the pilot, ...
    assert len({s["speaker"] for s in doc["segments"]}) >= 2
    srt = Path(f"{stem}.zh.srt").read_text(encoding="utf-8")
    assert "[S1]" in srt and "[S2]" in srt
    assert "<v S2>" in Path(f"{stem}.zh.vtt").read_text(encoding="utf-8")
    events = [json.loads(line) for line in Path(f"{stem}.zh.jsonl").read_text().splitlines()]
    spoken = [e for e in events if e["type"] == "speech"]
    voices = {e["speaker"]: e["voice"] for e in spoken}
    assert len(voices) >= 2 and len(set(voices.values())) == len(voices)  # never shared
    assert all(v.startswith("speaker-") for v in voices.values())  # fitted, not plain
    turns = [e for e in events if e["type"] == "speaker"]
    assert [t["label"] for t in turns if t["new"]] == ["S1", "S2", "S3"]
    assert Path(f"{stem}.interp.wav").stat().st_size > 100_000


def test_eval_scores_der_and_speaker_similarity(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    listing, reference = tmp_path / "list.txt", tmp_path / "ref.txt"
    listing.write_text(f"{FALCON}\n")
    reference.write_text("我们的会议现在开始。\n")  # no human translation exists: BLEU is moot
    out = tmp_path / "eval"
    args = ["eval", "--source-type", "speech", "--target-type", "speech", "--speakers", "auto"]
    args += ["--source", str(listing), "--reference", str(reference), "--from", "en"]
    args += ["--to", "zh", "--rttm", str(MULTI / "rttm"), "--output", str(out), "--no-offline"]
    assert main(args) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["collar_s"] == 0.25 and scores["DER_files"] == 1
    assert 0 <= scores["DER"] <= 0.3 and 0 <= scores["JER"] <= 1
    assert scores["speaker_similarity_speakers"] >= 2
    for key in ("speaker_similarity", "speaker_similarity_unadapted"):
        assert -1 <= scores[key] <= 1
    assert scores["speaker_f0_distance_st"] >= 0
    assert scores["speaker_f0_distance_st_unadapted"] >= 0
