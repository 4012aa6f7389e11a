"""The speech sink: committed translation in, interpretation speech out, in its own thread.

Commits are gathered into clauses (up to a clause mark, the end of a sentence, or a length
cap) and each clause is synthesized as soon as it is complete, while recognition and
translation go on in their threads: speaking sentence n overlaps hearing sentence n + 1. The
:class:`~simulinterp.tts.scheduler.OutputScheduler` places each clause on one timeline and sets
the speaking rate; the audio goes to ``NAME.interp.wav`` (appended as it is produced), to the
speakers if a :class:`~simulinterp.audio.output.Player` is given, and at the end to the stereo
``NAME.review.wav``.

Clocks: in a real-time run a clause is ready when its audio is (wall clock). In a simulated
run (a file as fast as possible) the synthesizer is a machine of its own on the
computation-aware clock: a clause is ready at ``max(its commit's elapsed time, the moment the
synthesizer is free) + the time synthesis really took``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulinterp.audio import AudioChunk
from simulinterp.events import SessionStep, SpeechCommit, SpokenSegment
from simulinterp.lang import is_clause_end, split_units
from simulinterp.sinks import RunEnd, RunInfo, Sink
from simulinterp.tts.base import OUTPUT_RATE, SynthesisError, Synthesizer, to_output_rate
from simulinterp.tts.scheduler import OutputScheduler, SchedulerConfig

if TYPE_CHECKING:
    from simulinterp.speakers.voices import SpeakerVoices

logger = logging.getLogger(__name__)

MIN_CHUNK_UNITS = {"en": 4, "zh": 6}  # a commit this long is spoken without waiting for a comma
SPEECH_UNITS_PER_S = {"en": 2.7, "zh": 4.5}  # a voice's pace at speed 1 (estimates backlog)
WARM_UP = {"en": "Hello.", "zh": "你好。"}
_MAX_FAILURES = 3  # consecutive synthesizer failures before speech output stops


@dataclass(frozen=True)
class SpeechRequest:
    """A clause to say.

    Attributes:
        text: the clause.
        segment: its sentence segment.
        elapsed_s: computation-aware time of its last commit, seconds.
        audio_s: source audio consumed at its last commit, seconds.
        source_end_s: end of the latest source word read, seconds.
        speaker: 0-based id of who said its source (None: untracked).
    """

    text: str
    segment: int
    elapsed_s: float
    audio_s: float
    source_end_s: float
    speaker: int | None = None


class ClauseGatherer:
    """Joins commits into speakable pieces (pure): a piece ends at a clause mark, at the end of
    a sentence, or once it holds ``MIN_CHUNK_UNITS`` (a clause policy's capped commit is
    spoken at once; word-by-word commits are gathered into short phrases). A piece never
    spans two speakers: a commit by another speaker first sends what was gathered."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._text = ""
        self._last: SpeechCommit | None = None

    def add(self, commit: SpeechCommit) -> list[SpeechRequest]:
        """Take a commit; the pieces it completes (none, one, or two on a change of speaker)."""
        out = []
        last = self._last
        if last is not None and commit.speaker != last.speaker and self._text.strip():
            out.append(self._request(self._text.strip(), last))
            self._text = ""
        self._last = commit
        self._text += commit.text
        text = self._text.strip()
        if not text:
            return out
        long = len(split_units(text, self.lang)) >= MIN_CHUNK_UNITS[self.lang]
        if commit.final or is_clause_end(text[-1]) or long:
            self._text = ""
            out.append(self._request(text, commit))
        return out

    @staticmethod
    def _request(text: str, commit: SpeechCommit) -> SpeechRequest:
        return SpeechRequest(
            text,
            commit.segment,
            commit.elapsed_s,
            commit.audio_s,
            commit.source_end_s,
            commit.speaker,
        )


class SpeechOutput(Sink):
    """Speaks the interpretation.

    Args:
        synthesizer: the voice backend.
        voice: one of its voices for ``lang``.
        lang: the target language.
        wav_path: ``NAME.interp.wav``; None writes none.
        review_path: ``NAME.review.wav`` (stereo: source left, interpretation right).
        player_factory: opens the live player, given the sample rate and the stream's clock
            (e.g. :class:`~simulinterp.audio.output.Player`); None is silent (files only).
        scheduler: its settings (default: :meth:`SchedulerConfig.for_language` of ``lang``).
        warn: where warnings go (default: the log).
        on_spoken: called with each clause placed on the timeline (in the synthesis thread).
        max_queue: clauses waiting for synthesis at most (beyond, a clause is skipped).
        voices: a voice per speaker (:class:`~simulinterp.speakers.voices.SpeakerVoices`);
            None speaks every clause with ``voice``.
        profiles: speaker id -> their voice profile so far (the session's tracker), for
            ``voices`` to adapt to.
    """

    name = "speech"

    def __init__(
        self,
        synthesizer: Synthesizer,
        voice: str,
        lang: str,
        *,
        wav_path: Path | None = None,
        review_path: Path | None = None,
        player_factory: Callable[[int, Callable[[], float]], object] | None = None,
        scheduler: SchedulerConfig | None = None,
        warn: Callable[[str], None] | None = None,
        on_spoken: Callable[[SpokenSegment], None] | None = None,
        max_queue: int = 64,
        voices: SpeakerVoices | None = None,
        profiles: Callable[[int], object] | None = None,
    ) -> None:
        self.synthesizer, self.voice, self.lang = synthesizer, voice, lang
        self.voices, self.profiles = voices, profiles
        self.wav_path, self.review_path = wav_path, review_path
        self._player_factory = player_factory
        self.scheduler = OutputScheduler(scheduler or SchedulerConfig.for_language(lang))
        self._warn = warn or (lambda message: logger.warning("%s", message))
        self.listeners: list[Callable[[SpokenSegment], None]] = [on_spoken] if on_spoken else []
        self._queue: queue.Queue[SpeechRequest | None] = queue.Queue(maxsize=max_queue)
        self._gatherer = ClauseGatherer(lang)
        self.spoken: list[SpokenSegment] = []
        self.compute_s = 0.0
        self.source_s = 0.0  # seconds of source heard (set when the run ends)
        self.failed = False
        self._source: list[np.ndarray] = []
        self._free_s = 0.0
        self._failures = 0
        self._clauses = 0
        self._thread: threading.Thread | None = None
        self._writer = None
        self._player = None
        self._info: RunInfo | None = None

    def open(self, info: RunInfo) -> None:
        from simulinterp.audio.output import TimelineWriter

        self._info = info
        self._warm_up()
        if self.wav_path is not None:
            self._writer = TimelineWriter(self.wav_path, OUTPUT_RATE)
        if self._player_factory is not None:
            self._player = self._player_factory(OUTPUT_RATE, info.clock_s)
        self._thread = threading.Thread(target=self._work, name="synthesis", daemon=True)
        self._thread.start()

    def _warm_up(self) -> None:
        """Load the voice and say one word before the run, so the first clause does not pay
        for model loading (seconds for Kokoro: joining its parts, its G2P dictionaries)."""
        try:
            for _ in self.synthesizer.synthesize(WARM_UP[self.lang], self.voice, self.lang):
                pass
            if self.voices is not None and self.voices.adapt:
                self.voices.bank.measured()  # the packaged voices' pitch, before the first fit
        except Exception as err:  # the run's own synthesis will report it, clause by clause
            logger.debug("warm-up failed: %s", err)

    def audio(self, chunk: AudioChunk) -> None:
        if self.review_path is not None:
            self._source.append(chunk.samples)

    def step(self, step: SessionStep) -> None:
        for commit in step.commits:
            for request in self._gatherer.add(commit):
                if self.failed:
                    continue
                try:
                    self._queue.put_nowait(request)
                except queue.Full:
                    self.scheduler.skipped += 1
                    self._warn(
                        f"speech is {self._queue.maxsize} clauses behind; skipped: {request.text}"
                    )

    def close(self, end: RunEnd) -> None:
        from simulinterp.audio.output import write_review

        self.source_s = end.audio_s
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._player is not None:
            self._player.drain()
        if self._writer is not None:
            self._writer.close(until_s=end.audio_s)
            if self.review_path is not None and self.wav_path is not None:
                source = np.concatenate(self._source) if self._source else np.zeros(0, np.float32)
                write_review(self.review_path, source, self.wav_path)

    def _work(self) -> None:
        while (request := self._queue.get()) is not None:
            if self.failed:
                continue
            try:
                self._speak(request)
                self._failures = 0
            except SynthesisError as err:
                self._warn(f"could not say {request.text!r}: {err}")
            except Exception as err:  # a broken synthesizer: the text output goes on
                logger.debug("synthesis failed", exc_info=True)
                self._failures += 1
                self._warn(f"synthesis failed on {request.text!r}: {err}")
                if self._failures >= _MAX_FAILURES:
                    self.failed = True
                    self._warn("speech output stopped after repeated failures; subtitles go on")

    def _now(self, request: SpeechRequest) -> float:
        """Now on the run's clock: the wall clock live; simulated, when the synthesizer is
        free for this clause."""
        if self._realtime:
            assert self._info is not None
            return self._info.clock_s()
        return max(self._free_s, request.elapsed_s)

    def _voice(self, request: SpeechRequest) -> tuple[str, float]:
        """The voice of the clause's speaker and their rate factor."""
        if self.voices is None:
            return self.voice, 1.0
        speaker = request.speaker
        profile = None
        if self.profiles is not None and speaker is not None:
            profile = self.profiles(speaker)
        fit = self.voices.voice_for(speaker, profile)
        return fit.name, fit.speed

    def _speak(self, request: SpeechRequest) -> None:
        begin = self._now(request)
        started = time.perf_counter()
        voice, rate = self._voice(request)
        expected_s = len(split_units(request.text, self.lang)) / SPEECH_UNITS_PER_S[self.lang]
        catch_up = self.scheduler.speed(begin, request.elapsed_s, expected_s / rate)
        speed = min(max(catch_up * rate, 0.8), self.scheduler.config.max_speed)
        for clause in self.synthesizer.synthesize(request.text, voice, self.lang, speed=speed):
            samples = to_output_rate(clause)
            spent = time.perf_counter() - started
            ready = self._now(request) if self._realtime else begin + spent
            duration = len(samples) / OUTPUT_RATE
            start = self.scheduler.place(ready, duration, request.source_end_s)
            if start is None:
                self._warn(f"speech fell too far behind; skipped: {clause.text}")
                continue
            if self._writer is not None:
                self._writer.write_at(start, samples)
            if self._player is not None:
                self._player.play_at(start, samples)
            spoken = SpokenSegment(
                text=request.text,
                spoken_text=clause.text,
                clause=self._clauses,
                segment=request.segment,
                start_s=start,
                end_s=start + duration,
                ready_s=ready,
                source_end_s=request.source_end_s,
                speed=speed,
                compute_s=clause.compute_s,
                commit_audio_s=request.audio_s,
                committed_s=request.elapsed_s,
                speaker=request.speaker,
                voice=voice,
            )
            self.spoken.append(spoken)
            for listener in self.listeners:
                listener(spoken)
        self._clauses += 1
        finished = time.perf_counter()
        self.compute_s += finished - started
        if not self._realtime:
            self._free_s = begin + (finished - started)

    @property
    def _realtime(self) -> bool:
        return self._info is not None and self._info.realtime
