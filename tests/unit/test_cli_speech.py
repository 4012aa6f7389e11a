"""``simulinterp interpret`` and ``eval --source-type speech`` on tone speech and fake models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fakes import EN_ZH, DictionaryLLM
from simulinterp.audio import AudioError
from simulinterp.cli import main
from speaker_fakes import OneVoiceEncoder
from speech_fakes import EnergyVAD, ToneWhisper, speak

SCRIPT = [["we", "go", "to", "the", "park"], ["he", "likes", "it"]]
TRANSLATION = "们去今公园，他喜欢"  # the pause between the two utterances is a comma


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    monkeypatch.setattr(
        "simulinterp.cli.common.build_backend",
        lambda config: DictionaryLLM(EN_ZH, target_lang="zh"),
    )
    monkeypatch.setattr("simulinterp.asr.whisper.WhisperEngine", lambda *a, **k: ToneWhisper())
    monkeypatch.setattr("simulinterp.asr.vad.SileroVAD", lambda *a, **k: EnergyVAD())
    # one speaker, tracked (the default --speakers auto) by a stand-in for GE2E
    monkeypatch.setattr(
        "simulinterp.speakers.encoder.GE2EEncoder", lambda *a, **k: OneVoiceEncoder()
    )


def tones(path: Path, rate: int = 16000, channels: int = 1) -> str:
    audio = speak(SCRIPT)
    if rate != 16000:
        import soxr

        audio = soxr.resample(audio, 16000, rate)
    if channels == 2:
        audio = np.stack([audio, audio], axis=1)
    sf.write(path, audio, rate)
    return str(path)


def test_interpret_writes_subtitles_beside_the_input(fake_models, tmp_path, capsys):
    wav = tones(tmp_path / "talk.wav")
    assert main(["interpret", wav, "--from", "en", "--to", "zh", "--policy", "wait-k"]) == 0
    out = capsys.readouterr()
    assert TRANSLATION in out.out
    doc = json.loads((tmp_path / "talk.zh.json").read_text(encoding="utf-8"))
    assert doc["translation"] == TRANSLATION and doc["interrupted"] is False
    assert doc["transcript"] == "we go to the park, he likes it"
    srt = (tmp_path / "talk.zh.srt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:00,") and "他喜欢" in srt
    assert (tmp_path / "talk.zh.vtt").read_text(encoding="utf-8").startswith("WEBVTT")


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (48000, 2)])
def test_other_rates_and_stereo_are_converted(fake_models, tmp_path, rate, channels):
    wav = tones(tmp_path / "talk.flac", rate, channels)
    out = tmp_path / "subs"
    assert main(["interpret", wav, "--from", "en", "--to", "zh", "--output", str(out)]) == 0
    doc = json.loads((out / "talk.zh.json").read_text(encoding="utf-8"))
    assert doc["transcript"] == "we go to the park, he likes it"


def test_ctrl_c_keeps_everything_committed(fake_models, tmp_path, monkeypatch, capsys):
    import simulinterp.audio as audio

    real = audio.FileSource

    class StopsHalfway(real):  # type: ignore[misc, valid-type]
        def __iter__(self):
            for chunk in super().__iter__():
                if chunk.start_s > 4.3:  # the first sentence is done, the second is not
                    raise KeyboardInterrupt
                yield chunk

    monkeypatch.setattr(audio, "FileSource", StopsHalfway)
    wav = tones(tmp_path / "talk.wav")
    assert main(["interpret", wav, "--from", "en", "--to", "zh"]) == 130
    doc = json.loads((tmp_path / "talk.zh.json").read_text(encoding="utf-8"))
    assert doc["interrupted"] is True
    assert doc["translation"].startswith("们去今公园")
    assert "们去今公园" in capsys.readouterr().out


def test_a_failure_midway_keeps_what_was_interpreted(fake_models, tmp_path, monkeypatch, capsys):
    import simulinterp.audio as audio

    real = audio.FileSource

    class Breaks(real):  # type: ignore[misc, valid-type]
        def __iter__(self):
            for chunk in super().__iter__():
                if chunk.start_s > 4.3:
                    raise AudioError("talk.wav: damaged or truncated")
                yield chunk

    monkeypatch.setattr(audio, "FileSource", Breaks)
    wav = tones(tmp_path / "talk.wav")
    assert main(["interpret", wav, "--from", "en", "--to", "zh"]) == 2
    assert "damaged" in capsys.readouterr().err
    doc = json.loads((tmp_path / "talk.zh.json").read_text(encoding="utf-8"))
    assert doc["translation"].startswith("们去今公园") and doc["interrupted"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "0 bytes"), (b"RIFF\x00garbage" * 20, "corrupt"), (b"hello world\n" * 50, "")],
)
def test_bad_files_fail_before_any_model_loads(tmp_path, monkeypatch, capsys, content, message):
    monkeypatch.setattr("simulinterp.cli.common.build_backend", pytest.fail)
    path = tmp_path / "talk.wav"
    path.write_bytes(content)
    assert main(["interpret", str(path), "--from", "en", "--to", "zh"]) == 2
    err = capsys.readouterr().err
    assert "talk.wav" in err and message in err


def test_interpret_needs_exactly_one_source(capsys):
    assert main(["interpret", "--from", "en", "--to", "zh"]) == 2
    assert "--mic" in capsys.readouterr().err
    assert main(["interpret", "missing.wav", "--from", "en", "--to", "zh"]) == 2
    assert "missing.wav" in capsys.readouterr().err


def test_a_missing_microphone_is_a_clear_error(monkeypatch, capsys):
    import simulinterp.audio as audio

    def no_mic(*args, **kwargs):
        raise AudioError("no microphone found; available devices: HDMI Out (output only)")

    monkeypatch.setattr(audio, "MicrophoneSource", no_mic)
    assert main(["interpret", "--mic", "--from", "en", "--to", "zh"]) == 2
    assert "no microphone found" in capsys.readouterr().err


def eval_args(folder: Path) -> list[str]:
    """``eval --source-type speech`` on the list and references in ``folder``."""
    return [
        "eval", "--source-type", "speech", "--source", str(folder / "list.txt"),
        "--reference", str(folder / "ref.txt"), "--from", "en", "--to", "zh",
        "--output", str(folder / "out"),
    ]  # fmt: skip


def test_eval_on_speech_writes_millisecond_scores(fake_models, tmp_path):
    tones(tmp_path / "a.wav")
    sf.write(tmp_path / "b.wav", speak([["he", "likes", "it"]]), 16000)
    (tmp_path / "list.txt").write_text("a.wav\nb.wav\n")
    (tmp_path / "ref.txt").write_text("们去今公园，他喜欢\n他喜欢\n")
    (tmp_path / "gold.txt").write_text("we go to the park, he likes it\nhe likes it\n")
    code = main([*eval_args(tmp_path), "--transcripts", str(tmp_path / "gold.txt")])
    assert code == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    for key in (
        "BLEU",
        "chrF",
        "offline_BLEU",
        "StartOffset",
        "AL",
        "LAAL",
        "ATD",
        "StartOffset_CA",
        "AL_CA",
        "LAAL_CA",
        "WER",
    ):
        assert key in scores, key
    assert scores["BLEU"] == pytest.approx(100.0) and scores["WER"] == 0.0
    # the offline cascade transcribes the whole recording at once: no pause, no comma
    assert 0 < scores["offline_BLEU"] < 100
    assert 500 < scores["StartOffset"] < 4000  # milliseconds, not seconds
    lines = (tmp_path / "out" / "instances.log").read_text().splitlines()
    assert [json.loads(x)["prediction"] for x in lines] == ["们去今公园，他喜欢", "他喜欢"]


def test_eval_on_speech_checks_its_lists(fake_models, tmp_path, capsys):
    (tmp_path / "list.txt").write_text("a.wav\n")
    (tmp_path / "ref.txt").write_text("x\ny\n")
    args = eval_args(tmp_path)
    assert main(args) == 2
    assert "line-aligned" in capsys.readouterr().err
    (tmp_path / "ref.txt").write_text("x\n")
    assert main(args) == 2
    assert "not found" in capsys.readouterr().err


def test_listing_devices_without_portaudio_is_a_clear_error(monkeypatch, capsys):
    import simulinterp.audio as audio

    def missing():
        raise AudioError("the microphone needs PortAudio: sudo apt install libportaudio2")

    monkeypatch.setattr(audio, "list_input_devices", missing)
    assert main(["interpret", "--list-devices"]) == 2
    assert "libportaudio2" in capsys.readouterr().err


def test_speech_in_another_language_is_warned_about(fake_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        "simulinterp.asr.whisper.WhisperEngine", lambda *a, **k: ToneWhisper(language="zh")
    )
    wav = tones(tmp_path / "talk.wav")
    assert main(["interpret", wav, "--from", "en", "--to", "zh"]) == 0
    assert "sounds like 'zh'" in capsys.readouterr().err


def test_speech_commands_use_the_direction_defaults(fake_models, tmp_path, monkeypatch):
    from simulinterp import defaults

    seen = {}

    def record(args, *, realtime):
        seen.update(model=args.model, policy=args.policy, k=args.k, layout=args.layout)
        raise SystemExit(0)

    monkeypatch.setattr("simulinterp.cli.interpret.build_session", record)
    monkeypatch.setitem(
        defaults.SPEECH, ("en", "zh"), defaults.Defaults("quality", "wait-k", 4, "exchanges")
    )
    wav = tones(tmp_path / "talk.wav")
    with pytest.raises(SystemExit):
        main(["interpret", wav, "--from", "en", "--to", "zh"])
    assert seen == {"model": "quality", "policy": "wait-k", "k": 4, "layout": "exchanges"}
    with pytest.raises(SystemExit):
        main(["interpret", wav, "--from", "en", "--to", "zh", "--model", "fast", "--k", "2"])
    assert seen == {"model": "fast", "policy": "wait-k", "k": 2, "layout": "exchanges"}


def test_interpret_with_a_glossary(fake_models, tmp_path, capsys):
    wav = tones(tmp_path / "talk.wav")
    glossary = tmp_path / "g.tsv"
    glossary.write_text("park\t花园\n", encoding="utf-8")
    argv = ["interpret", wav, "--from", "en", "--to", "zh", "--glossary", str(glossary)]
    assert main(argv) == 0
    assert "们去今公花园，他喜欢" in capsys.readouterr().out  # "park" replaced, then copied


def test_interpret_refuses_a_bad_glossary(fake_models, tmp_path, capsys):
    wav = tones(tmp_path / "talk.wav")
    argv = ["interpret", wav, "--from", "en", "--to", "zh", "--glossary", "nope.tsv"]
    assert main(argv) == 2
    assert "glossary file not found: nope.tsv" in capsys.readouterr().err


def test_eval_on_speech_with_terms_and_a_glossary(fake_models, tmp_path):
    tones(tmp_path / "a.wav")
    sf.write(tmp_path / "b.wav", speak([["he", "likes", "it"]]), 16000)
    (tmp_path / "list.txt").write_text("a.wav\nb.wav\n")
    (tmp_path / "ref.txt").write_text("们去今花园他喜欢\n他喜欢\n")
    terms = tmp_path / "terms.jsonl"
    terms.write_text('[{"en": "park", "zh": "花园"}]\n[]\n', encoding="utf-8")
    args = [*eval_args(tmp_path), "--terms", str(terms), "--no-offline"]
    assert main(args) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["term_accuracy"] == 0.0 and scores["leak_rate"] == 0.0
    assert main([*args, "--glossary", str(terms)]) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["term_accuracy"] == 1.0
    (tmp_path / "short.jsonl").write_text("[]\n")
    assert main([*args, "--glossary", str(tmp_path / "short.jsonl")]) == 2


@pytest.fixture
def tone_voice(monkeypatch: pytest.MonkeyPatch):
    from speech_fakes import ToneSynth

    synth = ToneSynth()
    monkeypatch.setattr("simulinterp.cli.speak.load_voice", lambda *a, **k: (synth, "tone"))
    return synth


def test_speak_without_an_output_device_writes_the_files(
    fake_models, tone_voice, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(
        "simulinterp.audio.output.output_device_problem",
        lambda device=None: "no audio output device (test)",
    )
    wav = tones(tmp_path / "talk.wav")
    args = ["interpret", wav, "--from", "en", "--to", "zh", "--policy", "wait-k", "--speak"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "no audio output device (test)" in err and "instead of playing it" in err
    interp = sf.info(str(tmp_path / "talk.interp.wav"))
    review = sf.info(str(tmp_path / "talk.review.wav"))
    assert interp.samplerate == 24000 and review.channels == 2
    assert interp.duration >= sf.info(wav).duration - 0.01
    events = [json.loads(x) for x in (tmp_path / "talk.zh.jsonl").read_text().splitlines()]
    spoken = [e for e in events if e["type"] == "speech"]
    clauses = {e["clause"]: e["text"] for e in spoken}
    assert spoken and "".join(clauses[k] for k in sorted(clauses)) == TRANSLATION
    assert tone_voice.calls


class FakePlayer:
    played: list[tuple[float, int]] = []

    def __init__(self, rate, clock, device=None):
        self.rate = rate

    def play_at(self, start_s, samples):
        FakePlayer.played.append((start_s, len(samples)))

    def drain(self, timeout_s=60.0):
        pass


def test_speak_plays_live_at_the_speakers_pace(fake_models, tone_voice, tmp_path, monkeypatch):
    monkeypatch.setattr("simulinterp.audio.output.output_device_problem", lambda device=None: None)
    monkeypatch.setattr("simulinterp.audio.output.Player", FakePlayer)
    FakePlayer.played = []
    wav = tones(tmp_path / "talk.wav")
    started = __import__("time").monotonic()
    args = ["interpret", wav, "--from", "en", "--to", "zh", "--policy", "wait-k", "--speak"]
    assert main(args) == 0
    assert __import__("time").monotonic() - started >= sf.info(wav).duration - 0.2  # paced
    assert len(FakePlayer.played) >= 2
    starts = [s for s, _ in FakePlayer.played]
    assert starts == sorted(starts)
    assert (tmp_path / "talk.interp.wav").exists() and (tmp_path / "talk.zh.srt").exists()


def test_an_unknown_voice_is_a_clear_error(fake_models, tmp_path, capsys):
    wav = tones(tmp_path / "talk.wav")
    args = ["interpret", wav, "--from", "en", "--to", "zh", "--speak", "--tts", "nonesuch"]
    assert main(args) == 2
    assert "nonesuch" in capsys.readouterr().err


class ToneMic:
    """A microphone stand-in: the tone script, chunk by chunk, at the speaker's pace."""

    def __init__(self, device=None):
        self.audio = speak(SCRIPT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        import time

        from simulinterp.audio import AudioChunk

        for i in range(0, len(self.audio), 1600):
            time.sleep(0.1)
            yield AudioChunk(self.audio[i : i + 1600], i / 16000)


def test_mic_speak_interprets_through_the_speakers(
    fake_models, tone_voice, tmp_path, monkeypatch, capsys
):
    import simulinterp.audio as audio

    monkeypatch.setattr(audio, "MicrophoneSource", ToneMic)
    monkeypatch.setattr("simulinterp.audio.output.output_device_problem", lambda device=None: None)
    monkeypatch.setattr("simulinterp.audio.output.Player", FakePlayer)
    FakePlayer.played = []
    args = ["interpret", "--mic", "--from", "en", "--to", "zh", "--policy", "wait-k", "--speak"]
    assert main([*args, "--output", str(tmp_path)]) == 0
    assert "他喜欢" in capsys.readouterr().out
    assert FakePlayer.played  # spoken through the (fake) speakers
    wavs = list(tmp_path.glob("mic-*.interp.wav"))
    assert len(wavs) == 1 and len(list(tmp_path.glob("mic-*.review.wav"))) == 1


def test_noise_does_not_break_the_speech(fake_models, tone_voice, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "simulinterp.audio.output.output_device_problem", lambda device=None: "none (test)"
    )
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal(16000 * 5)).astype(np.float32)
    sf.write(tmp_path / "noise.wav", noise, 16000)
    args = ["interpret", str(tmp_path / "noise.wav"), "--from", "en", "--to", "zh", "--speak"]
    assert main(args) == 0
    assert sf.info(str(tmp_path / "noise.interp.wav")).duration >= 4.9
    assert (tmp_path / "noise.zh.json").exists()


def test_voices_are_listed(capsys):
    assert main(["interpret", "--list-voices"]) == 0
    out = capsys.readouterr().out
    assert "kokoro (default)" in out and "jf_nezumi" in out and "piper" in out


def test_the_text_demo_does_not_speak(capsys):
    assert main(["demo", "--text", "--speak"]) == 2
    assert "--speak" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("speak", "asr", "llm", "expected"),
    [(False, None, 0, (2, 0)), (True, None, 0, (1, 1)), (True, 2, 2, (2, 2))],
)
def test_each_stage_gets_one_thread_beside_the_synthesizer(speak, asr, llm, expected):
    import argparse

    from simulinterp.cli.common import _thread_defaults

    args = argparse.Namespace(speak=speak, asr_threads=asr, threads=llm)
    _thread_defaults(args)
    assert (args.asr_threads, args.threads) == expected


@pytest.mark.parametrize(("speak", "duty"), [(False, 0.5), (True, 1.0)])
def test_spoken_english_into_chinese_is_not_duty_capped(speak, duty):
    import argparse

    from simulinterp.cli.common import apply_speech_defaults

    args = argparse.Namespace(
        source_lang="en", target_lang="zh", model=None, policy=None, layout=None, context=None,
        max_duty=None, speak=speak, asr_threads=None, threads=0, max_wait=None,
    )  # fmt: skip
    apply_speech_defaults(args)
    assert args.max_duty == duty
