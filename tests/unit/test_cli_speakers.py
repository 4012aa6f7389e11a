"""``simulinterp diarize`` and the ``--speakers`` options, with hum voices and fake models."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from simulinterp.cli import main
from simulinterp.cli.common import CliError
from simulinterp.cli.speakers import speaker_cap
from simulinterp.speakers.rttm import read_rttm
from speaker_fakes import HumEncoder, silence, voice
from speech_fakes import EnergyVAD


@pytest.fixture
def fake_models(monkeypatch):
    monkeypatch.setattr("simulinterp.speakers.encoder.GE2EEncoder", lambda *a, **k: HumEncoder())
    monkeypatch.setattr("simulinterp.asr.vad.SileroVAD", lambda *a, **k: EnergyVAD())


def test_diarize_writes_one_rttm_per_recording(tmp_path, fake_models, capsys):
    meeting = np.concatenate([voice(0, 4), silence(0.5), voice(2, 4), silence(0.5), voice(0, 3)])
    sf.write(tmp_path / "meeting one.wav", meeting, 16000)
    sf.write(tmp_path / "quiet.wav", silence(3), 16000)
    out = tmp_path / "out"
    assert (
        main(
            [
                "diarize",
                str(tmp_path / "meeting one.wav"),
                str(tmp_path / "quiet.wav"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    turns = read_rttm(out / "meeting one.rttm")["meeting_one"]
    assert [t.speaker for t in turns] == ["S1", "S2", "S1"]
    assert turns[1].start_s == pytest.approx(4.5, abs=0.6)
    assert read_rttm(out / "quiet.rttm") == {}  # silence: an empty RTTM, no turn
    err = capsys.readouterr().err
    assert "2 speakers, 3 turns" in err and "0 speakers" in err


def test_diarize_keeps_what_it_heard_before_a_damaged_file_ends(
    tmp_path, fake_models, monkeypatch, capsys
):
    from simulinterp.audio import AudioError

    path = tmp_path / "cut.wav"
    sf.write(path, voice(1, 6), 16000)

    def broken(path, chunk_s=0.1):
        audio = voice(1, 6)
        for i in range(0, 4 * 16000, 1600):
            yield audio[i : i + 1600]
        raise AudioError(f"{path}: damaged at 4.0 s")

    monkeypatch.setattr("simulinterp.audio.io.stream_file", broken)
    assert main(["diarize", str(path), "--output", str(tmp_path)]) == 2
    assert "damaged at 4.0 s" in capsys.readouterr().err
    turns = read_rttm(tmp_path / "cut.rttm")["cut"]
    assert turns and turns[-1].end_s == pytest.approx(4.0, abs=0.1)


def test_a_missing_recording_is_a_clear_error(tmp_path, fake_models, capsys):
    assert main(["diarize", str(tmp_path / "nothing.wav")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "1 of 1 recordings could not be read" in err


@pytest.mark.parametrize(("value", "cap"), [("auto", 8), ("1", 1), ("3", 3), ("32", 32)])
def test_speakers_takes_auto_or_a_number(value, cap):
    assert speaker_cap(value) == cap


@pytest.mark.parametrize("value", ["0", "33", "two", "-1", ""])
def test_speakers_refuses_anything_else(value):
    with pytest.raises(CliError, match="--speakers"):
        speaker_cap(value)


def test_auto_goes_on_with_one_speaker_without_the_encoder(capsys):
    import argparse

    from simulinterp.cli.speakers import tracker_config
    from simulinterp.speakers.encoder import EncoderNotInstalledError

    class NoEncoder:
        @property
        def speaker_encoder(self):
            raise EncoderNotInstalledError(
                "not installed: pip install --no-deps resemblyzer==0.1.4"
            )

    assert tracker_config(argparse.Namespace(speakers="auto"), NoEncoder()) is None
    assert "resemblyzer" in capsys.readouterr().err
    with pytest.raises(CliError, match="resemblyzer"):
        tracker_config(argparse.Namespace(speakers="3"), NoEncoder())
