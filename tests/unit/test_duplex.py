"""Full duplex: intake, recognition and translation in their own threads."""

from __future__ import annotations

import threading
import time

import numpy as np

from simulinterp.audio import AudioChunk
from simulinterp.events import step_events
from simulinterp.pipeline import run
from simulinterp.sinks import Collector, Sink
from speech_fakes import speak
from unit.test_pipeline import SCRIPT, session


def chunks(audio: np.ndarray, step: int = 1600):
    return [AudioChunk(audio[i : i + step], i / 16000) for i in range(0, len(audio), step)]


def test_duplex_translates_like_the_single_loop():
    serial, _ = session("wait-k")
    one = Collector()
    run(chunks(speak(SCRIPT)), serial, [one], duplex=False)
    live, _ = session("wait-k", realtime=True)
    two = Collector()
    run(chunks(speak(SCRIPT)), live, [two], duplex=True)
    # the same words; where the recognizer got the audio in one piece, the pause is a comma
    assert two.translation.replace("，", "") == one.translation == "们去今公园他喜欢"
    assert [w.text for w in two.words if w.text != ","] == [w for u in SCRIPT for w in u]


class Intake(Sink):
    name = "intake"

    def __init__(self) -> None:
        self.times: list[float] = []
        self.threads: set[str] = set()

    def audio(self, chunk):
        self.times.append(time.perf_counter())

    def step(self, step):
        self.threads.add(threading.current_thread().name)


def test_a_slow_recognizer_never_holds_up_the_audio():
    s, _ = session("wait-k", realtime=True)
    calls: list[float] = []
    recognize = s.recognize

    def slow(at, *, final=False):
        time.sleep(0.02)
        calls.append(time.perf_counter())
        return recognize(at, final=final)

    s.recognize = slow  # type: ignore[method-assign]
    intake = Intake()
    pieces = chunks(speak(SCRIPT))
    run(pieces, s, [intake], duplex=True)
    assert len(intake.times) == len(pieces)
    assert intake.times[-1] < calls[-1]  # all audio was taken while recognition went on
    assert len(calls) < len(pieces)  # the recognizer took many chunks per step
    assert intake.threads == {"translation"}  # steps come from the translation thread


def test_steps_have_a_json_wire_form():
    s, _ = session("wait-k")
    events = []

    class Wire(Sink):
        def step(self, step):
            events.extend(step_events(step))

    run(chunks(speak(SCRIPT)), s, [Wire()])
    types = {e["type"] for e in events}
    assert {"source", "translation"} <= types
    source = next(e for e in events if e["type"] == "source")
    assert set(source) >= {"text", "start_s", "end_s", "audio_s", "committed_s"}
    translation = next(e for e in events if e["type"] == "translation")
    assert set(translation) >= {"text", "audio_s", "elapsed_s", "segment", "final"}
