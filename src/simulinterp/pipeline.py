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
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from simulinterp.asr.base import SpeechModel, VadModel
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.audio import AudioChunk
from simulinterp.events import (
    SessionStep,
    SourceUnit,
    SourceWord,
    SpeakerTurnStart,
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
    from simulinterp.speakers.tracker import SpeakerTracker, TrackerConfig


class SpeechSession:
    """One speaker's stream: audio chunks in, committed source and translation out.

    Args:
        recognizer: the streaming recognizer (per session).
        translator: the simultaneous translator (per session).
        realtime: stamp with the wall clock instead of the simulated computation-aware clock.
        clock: seconds (injectable for tests).
        tracker: the online speaker tracker (per session); None: one speaker, untracked.
    """

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        translator: SimultaneousTranslator,
        *,
        realtime: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        tracker: SpeakerTracker | None = None,
    ):
        if recognizer.config.lang != translator.config.source_lang:
            raise ValueError(
                f"the recognizer hears {recognizer.config.lang!r} but the translator reads "
                f"{translator.config.source_lang!r}"
            )
        self.recognizer, self.translator = recognizer, translator
        self.realtime, self._clock = realtime, clock
        self.tracker = tracker
        self.reset()

    def reset(self) -> None:
        """Start a new stream at time zero."""
        self.recognizer.reset()
        self.translator.reset()
        if self.tracker is not None:
            self.tracker.reset()
        self._turns: deque[SpeakerTurnStart] = deque()  # decided, not yet in a step
        self._started = self._clock()
        self.ca_s = 0.0
        self.words: list[SourceWord] = []
        self.commits: list[SpeechCommit] = []
        self._warned = 0
        # wall seconds computing
        self.busy_s = {"recognition": 0.0, "translation": 0.0, "speakers": 0.0}

    @property
    def clock_s(self) -> float:
        """Wall-clock seconds since the stream started."""
        return self._clock() - self._started

    @property
    def turns_pending(self) -> bool:
        """Speaker changes are decided that no step has carried yet."""
        return bool(self._turns)

    @property
    def warnings(self) -> list[str]:
        return self.recognizer.warnings

    @property
    def translation(self) -> str:
        return "".join(c.text for c in self.commits)

    def insert_audio(self, samples) -> None:
        """Queue audio for the recognizer and the speaker tracker (cheap: no decoding)."""
        self.recognizer.insert_audio(samples)
        if self.tracker is not None:
            self.tracker.insert_audio(samples)

    def feed(self, chunk: AudioChunk) -> SessionStep:
        """Take one chunk of audio; decode and translate if the simulated machine is free."""
        self.insert_audio(chunk.samples)
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
        self._track(final=final)
        tracked = self._clock()
        rec = self.recognizer
        transcript = rec.finish(at) if final else rec.process(at)
        if self.tracker is not None and transcript.committed:
            transcript = self._label(transcript)
        self.ca_s = at + (self._clock() - started)
        self.busy_s["speakers"] += tracked - started
        self.busy_s["recognition"] += self._clock() - tracked
        return transcript

    def _track(self, *, final: bool) -> None:
        """Let the speaker tracker decide on the audio inserted so far."""
        if self.tracker is None:
            return
        from simulinterp.speakers.tracker import speaker_label

        changes = self.tracker.finish() if final else self.tracker.process()
        for c in changes:
            self._turns.append(
                SpeakerTurnStart(c.speaker, speaker_label(c.speaker), c.start_s, c.decided_s, c.new)
            )

    def _label(self, transcript: Transcript) -> Transcript:
        """The transcript with each committed word's speaker."""
        assert self.tracker is not None
        words = tuple(
            replace(w, speaker=self.tracker.speaker_at(w.start_s, w.end_s))
            for w in transcript.committed
        )
        return replace(transcript, committed=words)

    def translate(self, transcript: Transcript, *, final: bool = False) -> SessionStep:
        """The translator's half of a step: read the words ``transcript`` committed."""
        started = self._clock()
        commits: list[TargetCommit] = []
        for run_ in self._speaker_runs(transcript.committed):
            if self.words and run_[0].speaker != self.words[-1].speaker:
                commits += self.translator.end_sentence()  # a new speaker, a new sentence
            units = []
            for word in run_:
                self.words.append(word)
                units.append(
                    SourceUnit(
                        word.text,
                        len(self.words) - 1,
                        arrival_s=word.committed_s,
                        sentence_end=word.sentence_end,
                    )
                )
            commits += self.translator.feed_batch(units)
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
        turns = []
        while self._turns:
            turns.append(self._turns.popleft())
        return SessionStep(transcript, out, warnings, tuple(turns))

    @staticmethod
    def _speaker_runs(words: Sequence[SourceWord]) -> list[list[SourceWord]]:
        """``words`` cut where the speaker changes."""
        runs: list[list[SourceWord]] = []
        for word in words:
            if runs and runs[-1][-1].speaker == word.speaker:
                runs[-1].append(word)
            else:
                runs.append([word])
        return runs

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
            speaker=read.speaker,
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
        speaker_encoder: a loaded speaker encoder; None loads the packaged GE2E encoder when a
            session first tracks speakers.
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
        speaker_encoder: object | None = None,
    ):
        from simulinterp.asr.models import load_speech_model
        from simulinterp.asr.vad import SileroVAD

        self.llm = llm
        self.whisper = whisper or load_speech_model(asr_model, threads=threads, workers=asr_workers)
        self.vad = vad or SileroVAD()
        self._speaker_encoder = speaker_encoder

    @property
    def speaker_encoder(self):
        """The speaker encoder, loaded on first use.

        Raises:
            EncoderNotInstalledError: its weights are not installed (the message says how).
        """
        if self._speaker_encoder is None:
            from simulinterp.speakers.encoder import GE2EEncoder

            self._speaker_encoder = GE2EEncoder()
        return self._speaker_encoder

    def session(
        self,
        policy: Policy,
        config: TranslatorConfig,
        recognizer: RecognizerConfig | None = None,
        *,
        realtime: bool = False,
        glossary: Glossary | None = None,
        speakers: TrackerConfig | None = None,
    ) -> SpeechSession:
        """A new session in the direction of ``config`` (with ``glossary``); with
        ``speakers``, an online speaker tracker labels who speaks (else one speaker)."""
        rec_config = recognizer or RecognizerConfig(lang=config.source_lang)
        tracker = None
        if speakers is not None:
            from simulinterp.speakers.tracker import SpeakerTracker

            tracker = SpeakerTracker(self.speaker_encoder, self.vad, speakers)
        return SpeechSession(
            StreamingRecognizer(self.whisper, self.vad, rec_config),
            SimultaneousTranslator(self.llm, policy, config, glossary=glossary),
            realtime=realtime,
            tracker=tracker,
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
