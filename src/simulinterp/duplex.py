"""Full duplex: audio intake, recognition and translation each in their own thread.

The intake thread (the caller's) only queues audio chunks, so a slow stage never makes it wait
(a microphone never overflows). The recognition thread takes every chunk queued since its last
step, inserts them and decodes; the translation thread reads each transcript and hands the
step to the sinks (a recognition step that changed nothing is not translated; it only tells
the sinks how far the session has got). Speech output runs in the speech sink's own thread
(:mod:`simulinterp.tts.output`), so speaking sentence n overlaps hearing sentence n + 1.

Queues stay short by construction: the recognizer takes all pending audio at once, and the
transcripts queue holds at most ``max_steps`` (the recognizer waits for the translator beyond
that, while the audio keeps queueing in one list that the next step drains).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from simulinterp.audio import AudioChunk
from simulinterp.events import SessionStep, Transcript

if TYPE_CHECKING:
    from simulinterp.sinks import Fanout

logger = logging.getLogger(__name__)


class Session(Protocol):
    """What the loop needs of a :class:`~simulinterp.pipeline.SpeechSession` (its two halves
    of a step, its audio intake and its clock)."""

    def insert_audio(self, samples: np.ndarray) -> None: ...

    @property
    def turns_pending(self) -> bool: ...

    @property
    def clock_s(self) -> float: ...

    def recognize(self, at: float, *, final: bool = False) -> Transcript: ...

    def translate(self, transcript: Transcript, *, final: bool = False) -> SessionStep: ...


class DuplexLoop:
    """Runs a real-time session with recognition and translation in parallel threads.

    Args:
        session: a session with ``realtime=True`` (stamped with the wall clock).
        fan: the sinks.
        poll_s: how long the recognizer sleeps when no new audio has come, seconds.
        max_steps: bound of the transcripts queue between recognition and translation.
    """

    def __init__(
        self, session: Session, fan: Fanout, *, poll_s: float = 0.02, max_steps: int = 64
    ) -> None:
        self.session, self.fan, self.poll_s = session, fan, poll_s
        self._audio: deque[AudioChunk] = deque()
        self._lock = threading.Lock()
        # (transcript, final, unchanged: only progress to report)
        self._steps: queue.Queue[tuple[Transcript, bool, bool] | None]
        self._steps = queue.Queue(maxsize=max_steps)
        self._intake_done = threading.Event()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []

    def run(self, chunks: Iterable[AudioChunk]) -> None:
        """Take ``chunks`` until they end (or Ctrl-C); then the stream is finished."""
        threads = [
            threading.Thread(target=self._guard, args=(self._recognize,), name="recognition"),
            threading.Thread(target=self._guard, args=(self._translate,), name="translation"),
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        try:
            for chunk in chunks:
                with self._lock:
                    self._audio.append(chunk)
                self.fan.call("audio", chunk)
                if self._stop.is_set():
                    break
        finally:
            self._intake_done.set()
            for thread in threads:
                thread.join()
        if self._errors:
            raise self._errors[0]

    def _guard(self, work) -> None:
        try:
            work()
        except BaseException as err:  # surfaced by run() in the caller's thread
            self._errors.append(err)
            self._stop.set()
            try:
                self._steps.put_nowait(None)  # wakes the translator if it waits
            except queue.Full:
                pass  # it is busy and will see the stop flag

    def _recognize(self) -> None:
        session, last_tentative = self.session, ""
        while not self._stop.is_set():
            with self._lock:
                pending = list(self._audio)
                self._audio.clear()
                done = self._intake_done.is_set() and not pending
            for chunk in pending:
                session.insert_audio(chunk.samples)
            transcript = session.recognize(session.clock_s, final=done)
            if done:
                self._put((transcript, True, False))
                return
            changed = (
                transcript.committed
                or transcript.boundary
                or transcript.tentative != last_tentative
                or session.turns_pending
            )
            if changed or pending:  # unchanged but newer audio: the translator reports progress
                last_tentative = transcript.tentative
                self._put((transcript, False, not changed))
            if not pending:
                time.sleep(self.poll_s)

    def _put(self, item: tuple[Transcript, bool, bool]) -> None:
        while not self._stop.is_set():
            try:
                self._steps.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _translate(self) -> None:
        while True:
            item = self._steps.get()
            if item is None or self._stop.is_set():
                return
            transcript, final, empty = item
            if not empty:
                self.fan.call("step", self.session.translate(transcript, final=final))
            self.fan.call("progress", transcript.audio_s)
            if final:
                return
