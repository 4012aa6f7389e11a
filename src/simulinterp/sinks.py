"""Sinks: everything that consumes a session's stream (display, files, speech, server).

:func:`simulinterp.pipeline.run` hands every sink the same events, in order: the run's
:class:`RunInfo` once, each audio chunk heard, each :class:`~simulinterp.events.SessionStep`
and how far the session has got (``progress``), and a :class:`RunEnd`. A sink never reaches
into the session. A sink that raises is dropped with a warning, and the others go on (a
failing synthesizer does not stop the subtitles).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from simulinterp.audio import AudioChunk
from simulinterp.events import SessionStep, SourceWord, SpeakerTurnStart, SpeechCommit, step_events

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """What a sink knows about the run before it starts.

    Attributes:
        source_lang: the spoken language.
        target_lang: the language of the interpretation.
        audio_name: the recording's path, or ``mic``.
        realtime: times are wall-clock (a live source); otherwise computation-aware simulated.
        clock_s: seconds since the stream started (the session's clock).
    """

    source_lang: str
    target_lang: str
    audio_name: str
    realtime: bool = False
    clock_s: Callable[[], float] = field(default=lambda: 0.0, compare=False)


@dataclass(frozen=True)
class RunEnd:
    """How the run ended.

    Attributes:
        interrupted: stopped early (Ctrl-C, or the source failed midway).
        error: the source's error message, if it failed.
        audio_s: seconds of source audio heard.
    """

    interrupted: bool = False
    error: str | None = None
    audio_s: float = 0.0


class Sink:
    """Base sink: override what you need; every method is called from the pipeline's thread
    that produced the event, so keep them quick (hand heavy work to your own thread)."""

    name = "sink"

    def open(self, info: RunInfo) -> None:
        """The run starts."""

    def audio(self, chunk: AudioChunk) -> None:
        """A chunk of source audio was heard."""

    def step(self, step: SessionStep) -> None:
        """The session produced a step."""

    def progress(self, audio_s: float) -> None:
        """The session has recognized and translated the source up to ``audio_s`` seconds
        (also when that produced nothing: silence), so lag is what was heard beyond it."""

    def close(self, end: RunEnd) -> None:
        """The run ended (always called, also after Ctrl-C or a failed source)."""


class Collector(Sink):
    """Keeps every committed source word and translation commit (the run's record)."""

    name = "record"

    def __init__(self) -> None:
        self.words: list[SourceWord] = []
        self.commits: list[SpeechCommit] = []
        self.warnings: list[str] = []
        self.speakers: list[SpeakerTurnStart] = []

    def step(self, step: SessionStep) -> None:
        self.words.extend(step.transcript.committed)
        self.commits.extend(step.commits)
        self.warnings.extend(step.warnings)
        self.speakers.extend(step.speakers)

    @property
    def translation(self) -> str:
        return "".join(c.text for c in self.commits)


class SubtitleFiles(Collector):
    """Writes ``BASE.srt``, ``BASE.vtt`` and ``BASE.json`` as the run goes, and appends every
    event to ``BASE.jsonl`` as it happens, so a crash or ``kill -9`` keeps what was produced.

    The subtitle files are rewritten (atomically) whenever a sentence is complete, and once
    more at the end.

    Args:
        base: e.g. ``talk.zh`` (the suffixes are appended).
    """

    name = "subtitles"

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self._info: RunInfo | None = None
        self._log: IO[str] | None = None
        self._lock = threading.Lock()  # steps and spoken clauses come from different threads

    def path(self, ext: str) -> Path:
        return self.base.with_suffix(self.base.suffix + ext)

    @property
    def paths(self) -> list[Path]:
        return [self.path(ext) for ext in (".srt", ".vtt", ".json", ".jsonl")]

    def open(self, info: RunInfo) -> None:
        self._info = info
        self._log = self.path(".jsonl").open("w", encoding="utf-8")

    def step(self, step: SessionStep) -> None:
        super().step(step)
        for event in step_events(step):
            if event["type"] != "partial":
                self.log_event(event)
        if any(c.final for c in step.commits):
            self._write(interrupted=False)

    def log_event(self, event: dict) -> None:
        """Append one event (e.g. a spoken clause, from another thread) to ``BASE.jsonl``."""
        with self._lock:
            if self._log is not None:
                self._log.write(json.dumps(event, ensure_ascii=False) + "\n")
                self._log.flush()

    def close(self, end: RunEnd) -> None:
        self._write(interrupted=end.interrupted)
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _write(self, *, interrupted: bool) -> None:
        from simulinterp.subtitles import (
            cues_from_commits,
            transcript_document,
            write_srt,
            write_transcript_json,
            write_vtt,
        )

        info = self._info
        assert info is not None, "open() first"
        cues = cues_from_commits(self.commits, self.words, info.target_lang)
        write_srt(self.path(".srt"), cues)
        write_vtt(self.path(".vtt"), cues)
        document = transcript_document(
            source_lang=info.source_lang,
            target_lang=info.target_lang,
            audio=info.audio_name,
            commits=self.commits,
            source_words=self.words,
            cues=cues,
            interrupted=interrupted,
        )
        write_transcript_json(self.path(".json"), document)


class JsonLines(Sink):
    """Prints every event as one JSON line on a stream (``interpret --jsonl``)."""

    name = "jsonl"

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def step(self, step: SessionStep) -> None:
        for event in step_events(step):
            if event["type"] != "partial":
                print(json.dumps(event, ensure_ascii=False), file=self.stream)
        self.stream.flush()


class Fanout:
    """Hands each event to every sink. A sink that raises gets no more events but is still
    closed (so it can save what it has), with a warning; the others go on."""

    def __init__(self, sinks: list[Sink], warn: Callable[[str], None] | None = None) -> None:
        self.sinks = list(sinks)
        self.failed: list[str] = []
        self._warn = warn or (lambda message: logger.warning("%s", message))

    def call(self, method: str, *args: object) -> None:
        # sinks close in reverse order: one added later (speech) may still feed one before it
        # (the event log) while it finishes
        for sink in reversed(self.sinks) if method == "close" else self.sinks:
            if sink.name in self.failed and method != "close":
                continue
            try:
                getattr(sink, method)(*args)
            except Exception as err:  # a broken sink must not stop the others
                logger.debug("sink %s failed", sink.name, exc_info=True)
                if method == "close":
                    self._warn(f"{sink.name} failed while closing: {err}")
                else:
                    self.failed.append(sink.name)
                    self._warn(f"{sink.name} stopped: {err}; the other outputs go on")
