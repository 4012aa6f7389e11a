"""Speech in, translation out: the one session object behind ``interpret``, eval and servers.

A session chains a :class:`StreamingRecognizer` (VAD + whisper + LocalAgreement) and a
:class:`SimultaneousTranslator`. Audio chunks go in with :meth:`SpeechSession.feed`; each call
returns the source words committed and the translation committed because of them.

Two clocks:
- ``realtime=False`` (files as fast as possible) simulates a live run on a computation-aware
  clock: a chunk of audio is available at its end time, computing takes the time it really
  took, and while the simulated machine is busy, audio waits (it is decoded with the next
  step). This is SimulEval's computation-aware setting, and it gives the same latencies a live
  run on this machine would.
- ``realtime=True`` (microphone, paced files) stamps everything with the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulinterp.asr.base import SpeechModel, VadModel
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.audio import AudioChunk
from simulinterp.events import (
    SessionStep,
    SourceUnit,
    SourceWord,
    SpeechCommit,
    TargetCommit,
    Transcript,
)
from simulinterp.llm.base import LLMBackend
from simulinterp.policy.base import Policy
from simulinterp.translate.glossary import Glossary
from simulinterp.translate.translator import SimultaneousTranslator, TranslatorConfig

if TYPE_CHECKING:
    from simulinterp.sinks import Fanout, Sink


class SpeechSession:
    """One speaker's stream: audio chunks in, committed source and translation out.

    Args:
        recognizer: the streaming recognizer (per session).
        translator: the simultaneous translator (per session).
        realtime: stamp with the wall clock instead of the simulated computation-aware clock.
        clock: seconds (injectable for tests).
    """

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        translator: SimultaneousTranslator,
        *,
        realtime: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ):
        if recognizer.config.lang != translator.config.source_lang:
            raise ValueError(
                f"the recognizer hears {recognizer.config.lang!r} but the translator reads "
                f"{translator.config.source_lang!r}"
            )
        self.recognizer, self.translator = recognizer, translator
        self.realtime, self._clock = realtime, clock
        self.reset()

    def reset(self) -> None:
        """Start a new stream at time zero."""
        self.recognizer.reset()
        self.translator.reset()
        self._started = self._clock()
        self.ca_s = 0.0
        self.words: list[SourceWord] = []
        self.commits: list[SpeechCommit] = []
        self._warned = 0
        self.busy_s = {"recognition": 0.0, "translation": 0.0}  # wall seconds computing

    @property
    def clock_s(self) -> float:
        """Wall-clock seconds since the stream started."""
        return self._clock() - self._started

    @property
    def warnings(self) -> list[str]:
        return self.recognizer.warnings

    @property
    def translation(self) -> str:
        return "".join(c.text for c in self.commits)

    def feed(self, chunk: AudioChunk) -> SessionStep:
        """Take one chunk of audio; decode and translate if the simulated machine is free."""
        self.recognizer.insert_audio(chunk.samples)
        if self.realtime:
            return self._step(self._clock() - self._started, final=False)
        if chunk.end_s < self.ca_s:  # still busy with earlier audio: this chunk waits
            return SessionStep(Transcript((), self.recognizer.tentative, chunk.end_s), ())
        return self._step(max(self.ca_s, chunk.end_s), final=False)

    def finish(self) -> SessionStep:
        """The audio has ended: commit every word and translate the rest."""
        if self.realtime:
            at = self._clock() - self._started
        else:
            at = max(self.ca_s, self.recognizer.audio_s)
        return self._step(at, final=True)

    def _step(self, at: float, *, final: bool) -> SessionStep:
        return self.translate(self.recognize(at, final=final), final=final)

    def recognize(self, at: float, *, final: bool = False) -> Transcript:
        """The recognizer's half of a step: decode the audio inserted so far at time ``at``."""
        started = self._clock()
        rec = self.recognizer
        transcript = rec.finish(at) if final else rec.process(at)
        self.ca_s = at + (self._clock() - started)
        self.busy_s["recognition"] += self._clock() - started
        return transcript

    def translate(self, transcript: Transcript, *, final: bool = False) -> SessionStep:
        """The translator's half of a step: read the words ``transcript`` committed."""
        started = self._clock()
        units = []
        for word in transcript.committed:
            self.words.append(word)
            units.append(
                SourceUnit(
                    word.text,
                    len(self.words) - 1,
                    arrival_s=word.committed_s,
                    sentence_end=word.sentence_end,
                )
            )
        commits: list[TargetCommit] = self.translator.feed_batch(units)
        if transcript.boundary:
            commits += self.translator.end_sentence()
        if final:
            commits += self.translator.finish()
        if commits or transcript.committed or transcript.boundary:
            self.ca_s = max(self.ca_s, self.translator.ca_s)
        out = tuple(self._on_audio(c) for c in commits)
        self.commits.extend(out)
        self.busy_s["translation"] += self._clock() - started
        warnings = tuple(self.recognizer.warnings[self._warned :])
        self._warned = len(self.recognizer.warnings)
        return SessionStep(transcript, out, warnings)

    def _on_audio(self, commit: TargetCommit) -> SpeechCommit:
        """A translator commit placed on the source-audio timeline."""
        first = self.translator.segment_starts[commit.segment]
        read = self.words[max(commit.source_consumed - 1, 0)]
        start = self.words[min(first, len(self.words) - 1)].start_s
        elapsed = commit.elapsed_s if not self.realtime else self._clock() - self._started
        return SpeechCommit(
            text=commit.text,
            audio_s=read.audio_s,
            elapsed_s=max(elapsed, read.audio_s),
            wall_s=self._clock() - self._started,
            segment=commit.segment,
            final=commit.final,
            source_start_s=start,
            source_end_s=read.end_s,
        )


class SpeechEngine:
    """The heavy models, loaded once and shared by every session.

    Args:
        llm: the translation model backend.
        asr_model: a packaged whisper preset (``base``) or a CTranslate2 whisper directory.
        threads: CPU threads for the recognizer (per decode).
        asr_workers: decodes that may run at once (one per concurrent session of a server).
        whisper: an already loaded recognizer model (then ``asr_model`` is not loaded).
        vad: an already loaded VAD model.
    """

    def __init__(
        self,
        llm: LLMBackend,
        *,
        asr_model: str = "base",
        threads: int = 2,
        asr_workers: int = 1,
        whisper: SpeechModel | None = None,
        vad: VadModel | None = None,
    ):
        from simulinterp.asr.models import load_speech_model
        from simulinterp.asr.vad import SileroVAD

        self.llm = llm
        self.whisper = whisper or load_speech_model(asr_model, threads=threads, workers=asr_workers)
        self.vad = vad or SileroVAD()

    def session(
        self,
        policy: Policy,
        config: TranslatorConfig,
        recognizer: RecognizerConfig | None = None,
        *,
        realtime: bool = False,
        glossary: Glossary | None = None,
    ) -> SpeechSession:
        """A new session for one speaker in the direction of ``config`` (with ``glossary``)."""
        rec_config = recognizer or RecognizerConfig(lang=config.source_lang)
        return SpeechSession(
            StreamingRecognizer(self.whisper, self.vad, rec_config),
            SimultaneousTranslator(self.llm, policy, config, glossary=glossary),
            realtime=realtime,
        )


@dataclass(frozen=True)
class RunResult:
    """How :func:`run` ended.

    Attributes:
        interrupted: Ctrl-C stopped it.
        failure: the source failed midway (what came before is kept).
    """

    interrupted: bool = False
    failure: Exception | None = None


def run(
    source: Iterable[AudioChunk],
    session: SpeechSession,
    sinks: Sequence[Sink],
    *,
    audio_name: str = "",
    duplex: bool | None = None,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``source`` through ``session`` and hand every event to ``sinks``.

    Ctrl-C or a source that fails midway end the run early; the session is still finished
    (everything heard is translated) and every sink is closed.

    Args:
        source: audio chunks (a file or microphone source; a context manager is entered).
        session: the speech session.
        sinks: the consumers (display, subtitle files, speech, ...).
        audio_name: the recording's name for the sinks.
        duplex: recognition and translation in their own threads, audio intake never waiting
            for them (default: for a real-time session). Otherwise one loop does each step.
        warn: where a failing sink's warning goes (default: the log).
    """
    from simulinterp.audio import AudioError
    from simulinterp.sinks import Fanout, RunEnd, RunInfo

    cfg = session.translator.config
    fan = Fanout(list(sinks), warn)
    fan.call(
        "open",
        RunInfo(
            cfg.source_lang, cfg.target_lang, audio_name, session.realtime, lambda: session.clock_s
        ),
    )
    interrupted, failure = False, None
    loop = _duplex_loop if (session.realtime if duplex is None else duplex) else _serial_loop
    try:
        opened = source if hasattr(source, "__enter__") else nullcontext(source)
        with opened as chunks:  # the microphone opens its stream on entry
            loop(chunks, session, fan)
    except KeyboardInterrupt:
        interrupted = True
    except AudioError as err:
        failure = err
    try:
        if loop is _serial_loop:  # the duplex loop finishes the stream in its own threads
            step = session.finish()
            fan.call("step", step)
            fan.call("progress", step.transcript.audio_s)
    except KeyboardInterrupt:
        interrupted = True
    end = RunEnd(
        interrupted or failure is not None,
        str(failure) if failure else None,
        session.recognizer.audio_s,
    )
    fan.call("close", end)
    return RunResult(interrupted, failure)


def _serial_loop(chunks: Iterable[AudioChunk], session: SpeechSession, fan: Fanout) -> None:
    for chunk in chunks:
        fan.call("audio", chunk)
        step = session.feed(chunk)
        fan.call("step", step)
        fan.call("progress", step.transcript.audio_s)


def _duplex_loop(chunks: Iterable[AudioChunk], session: SpeechSession, fan: Fanout) -> None:
    from simulinterp.duplex import DuplexLoop

    DuplexLoop(session, fan).run(chunks)
