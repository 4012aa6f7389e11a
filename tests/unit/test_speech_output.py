"""Speech out: clauses spoken as they are committed, on one timeline, beside the listening."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from simulinterp.audio import AudioChunk
from simulinterp.events import SpeechCommit
from simulinterp.pipeline import run
from simulinterp.sinks import Collector, Sink, SubtitleFiles
from simulinterp.tts.output import ClauseGatherer, SpeechOutput
from speech_fakes import ToneSynth, speak
from unit.test_pipeline import SCRIPT, session


def commit(text: str, *, final: bool = False, segment: int = 0, at: float = 1.0) -> SpeechCommit:
    return SpeechCommit(text, at, at + 0.5, at + 0.5, segment, final, 0.0, at)


def chunks(audio: np.ndarray, step: int = 1600):
    return [AudioChunk(audio[i : i + step], i / 16000) for i in range(0, len(audio), step)]


def test_commits_are_spoken_clause_by_clause():
    g = ClauseGatherer("en")
    assert g.add(commit(" ask")) == []
    assert g.add(commit(" not")) == []
    assert [r.text for r in g.add(commit(" what,"))] == ["ask not what,"]
    assert [r.text for r in g.add(commit(" you can", final=True))] == ["you can"]
    words = [g.add(commit(f" w{i}")) for i in range(4)]
    assert words[:3] == [[]] * 3  # word-by-word commits are gathered into a phrase
    assert [r.text for r in words[3]] == ["w0 w1 w2 w3"]


def test_a_piece_never_spans_two_speakers():
    from dataclasses import replace

    g = ClauseGatherer("en")
    assert g.add(replace(commit(" so"), speaker=0)) == []
    out = g.add(replace(commit(" yes.", final=True), speaker=1))
    assert [(r.text, r.speaker) for r in out] == [("so", 0), ("yes.", 1)]


def _speak_run(tmp_path: Path, synth: ToneSynth, warnings: list[str] | None = None):
    s, _ = session("wait-k")
    speech = SpeechOutput(
        synth,
        "tone",
        "zh",
        wav_path=tmp_path / "talk.interp.wav",
        review_path=tmp_path / "talk.review.wav",
        warn=(warnings.append if warnings is not None else None),
    )
    record = Collector()
    audio = speak(SCRIPT)
    result = run(chunks(audio), s, [record, speech], audio_name="talk.wav")
    return result, speech, record, audio


def test_the_interpretation_is_written_on_the_input_timeline(tmp_path):
    result, speech, record, audio = _speak_run(tmp_path, ToneSynth())
    assert not result.interrupted and result.failure is None
    spoken = speech.spoken
    clauses = {x.clause: x.text for x in spoken}
    assert "".join(clauses[k] for k in sorted(clauses)) == record.translation.replace(" ", "")
    for a, b in zip(spoken, spoken[1:], strict=False):
        assert b.start_s >= a.end_s  # never two utterances at once
    for x in spoken:
        assert x.start_s >= x.ready_s >= x.commit_audio_s
    # the first clause is heard while later text is still being translated
    assert spoken[0].start_s < record.commits[-1].elapsed_s
    wav, rate = sf.read(tmp_path / "talk.interp.wav", dtype="float32")
    assert rate == 24000 and len(wav) / rate >= spoken[-1].end_s - 0.01
    first = int(spoken[0].start_s * rate)
    assert np.abs(wav[: max(first - 10, 0)]).max(initial=0) < 1e-3  # silence before it
    assert np.abs(wav[first : first + 2400]).max() > 0.1
    review, rate = sf.read(tmp_path / "talk.review.wav", dtype="float32")
    assert review.shape[1] == 2 and rate == 24000
    assert len(review) >= len(audio) / 16000 * rate - 1
    assert np.abs(review[:, 0]).max() > 0.1 and np.abs(review[:, 1]).max() > 0.1


class Timed(Sink):
    """Records when the pipeline handed out audio (the listening side)."""

    name = "timed"

    def __init__(self) -> None:
        self.times: list[float] = []

    def audio(self, chunk: AudioChunk) -> None:
        time.sleep(0.01)  # listening takes a little while per chunk
        self.times.append(time.perf_counter())


def test_speaking_overlaps_listening(tmp_path):
    s, _ = session("wait-k")
    synth = ToneSynth(sleep_s=0.15)
    speech = SpeechOutput(synth, "tone", "zh", wav_path=tmp_path / "x.wav")
    timed = Timed()
    run(chunks(speak(SCRIPT)), s, [speech, timed])
    assert synth.spans and timed.times
    overlapping = [t for t in timed.times for a, b in synth.spans if a < t < b]
    assert overlapping, "no audio was taken in while a clause was being synthesized"


def test_a_synthesizer_failing_midway_leaves_the_text_output(tmp_path):
    warnings: list[str] = []
    result, speech, record, _ = _speak_run(
        tmp_path, ToneSynth(fail_after=2), warnings
    )  # warm-up + 1
    assert result.failure is None
    assert record.translation.replace(" ", "") == "们去今公园他喜欢"
    assert len(speech.spoken) == 1
    assert any("synthesis failed" in w and "crashed" in w for w in warnings)
    assert sf.info(str(tmp_path / "talk.interp.wav")).duration > speech.spoken[0].end_s - 0.01


def test_speech_stops_after_repeated_failures():
    warnings: list[str] = []
    synth = ToneSynth(fail_after=0)
    speech = SpeechOutput(synth, "tone", "zh", warn=warnings.append)
    speech.open(_info())
    speech.step(_step(*[commit(f"第{i}句。", final=True, segment=i) for i in range(6)]))
    speech.close(_end())
    assert speech.failed and speech.spoken == []
    assert sum("synthesis failed" in w for w in warnings) == 3
    assert warnings[-1] == "speech output stopped after repeated failures; subtitles go on"


def test_text_the_voice_cannot_say_is_skipped(tmp_path):
    warnings: list[str] = []
    synth = ToneSynth()
    speech = SpeechOutput(synth, "tone", "zh", wav_path=tmp_path / "x.wav", warn=warnings.append)
    speech.open(_info())
    speech.step(_step(commit("不能说#，", segment=0), commit("可以说。", final=True, segment=0)))
    speech.close(_end())
    assert [x.text for x in speech.spoken] == ["可以说。"]
    assert any("could not say" in w for w in warnings) and not speech.failed


def _info():
    from simulinterp.sinks import RunInfo

    return RunInfo("en", "zh", "x.wav")


def _end():
    from simulinterp.sinks import RunEnd

    return RunEnd(audio_s=3.0)


def _step(*commits):
    from simulinterp.events import SessionStep, Transcript

    return SessionStep(Transcript((), "", 1.0), tuple(commits))


def test_the_speech_queue_is_bounded(tmp_path):
    warnings: list[str] = []
    synth = ToneSynth(sleep_s=0.05)
    speech = SpeechOutput(synth, "tone", "zh", max_queue=2, warn=warnings.append)
    speech.open(_info())
    speech.step(_step(*[commit(f"第{i}句。", final=True, segment=i) for i in range(10)]))
    speech.close(_end())
    assert len(speech.spoken) < 10 and any("behind" in w for w in warnings)


KILLED = """
import os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from simulinterp.audio.output import TimelineWriter
from simulinterp.events import SessionStep, SpeechCommit, Transcript
from simulinterp.sinks import RunInfo, SubtitleFiles
files = SubtitleFiles(__import__("pathlib").Path({base!r}))
files.open(RunInfo("en", "zh", "talk.wav"))
c = SpeechCommit("你好。", 1.0, 1.2, 1.2, 0, True, 0.2, 1.0)
files.step(SessionStep(Transcript((), "", 1.0), (c,)))
w = TimelineWriter({wav!r}, 24000)
w.write_at(1.0, np.full(24000, 0.3, dtype=np.float32))
os.kill(os.getpid(), 9)
"""


def test_kill_9_keeps_what_was_produced(tmp_path):
    base, wav = tmp_path / "talk.zh", tmp_path / "talk.interp.wav"
    code = KILLED.format(tests=str(Path(__file__).parents[1]), base=str(base), wav=str(wav))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    audio, rate = sf.read(wav, dtype="float32")
    assert len(audio) == 2 * rate and abs(audio[-1] - 0.3) < 1e-3
    events = [json.loads(line) for line in (tmp_path / "talk.zh.jsonl").read_text().splitlines()]
    assert [e["text"] for e in events if e["type"] == "translation"] == ["你好。"]
    doc = json.loads((tmp_path / "talk.zh.json").read_text(encoding="utf-8"))
    assert doc["translation"] == "你好。"


def test_a_failing_sink_does_not_stop_the_others(tmp_path):
    class Broken(Sink):
        name = "broken"

        def step(self, step):
            raise RuntimeError("disk full")

    warnings: list[str] = []
    s, _ = session("wait-k")
    files = SubtitleFiles(tmp_path / "talk.zh")
    run(chunks(speak(SCRIPT)), s, [Broken(), files], warn=warnings.append)
    assert files.translation.replace(" ", "") == "们去今公园他喜欢"
    assert warnings == ["broken stopped: disk full; the other outputs go on"]
    assert (tmp_path / "talk.zh.srt").read_text(encoding="utf-8").count("-->") >= 2


@pytest.mark.parametrize("silence_s", [0.0, 30.0])
def test_silence_gives_no_speech_and_no_error(tmp_path, silence_s):
    s, _ = session("wait-k")
    speech = SpeechOutput(ToneSynth(), "tone", "zh", wav_path=tmp_path / "x.wav")
    audio = np.zeros(int(max(silence_s, 0.05) * 16000), np.float32)
    result = run(chunks(audio), s, [speech])
    assert result.failure is None and speech.spoken == []
    assert sf.info(str(tmp_path / "x.wav")).duration == pytest.approx(len(audio) / 16000, abs=0.01)


@pytest.mark.parametrize(
    ("lang", "text"), [("zh", "第{i}句话很长很长。"), ("en", "sentence {i} is long.")]
)
def test_catching_up_stays_within_the_languages_speed_cap(lang, text):
    from simulinterp.tts.scheduler import MAX_SPEED

    synth = ToneSynth()
    speech = SpeechOutput(synth, "tone", lang)
    speech.open(_info())
    # ten sentences committed at once: the queue behind the first grows past full speed
    speech.step(_step(*[commit(text.format(i=i), final=True, segment=i) for i in range(10)]))
    speech.close(_end())
    speeds = [speed for _, speed in synth.calls[1:]]  # calls[0] is the warm-up
    assert max(speeds) == pytest.approx(MAX_SPEED[lang])
    assert MAX_SPEED["zh"] < MAX_SPEED["en"]  # accented Mandarin blurs sooner (README)
