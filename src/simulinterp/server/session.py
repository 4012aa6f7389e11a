"""One client's session on the server: the audio it sends becomes the source of
:func:`simulinterp.pipeline.run`, which runs in threads of its own (never on the event loop);
the pipeline's events come back as messages for the client.

Threads: the pipeline's intake thread iterates :class:`LiveAudio` (fed by the event loop), its
recognition and translation threads do the work (:mod:`simulinterp.duplex`), and speech
synthesis has its own. :class:`ClientSink` hands each event to ``post``, which the connection
makes thread-safe onto its event loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from simulinterp.audio import AudioChunk
from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.events import SessionStep, SpokenSegment, spoken_event, step_events
from simulinterp.pipeline import SpeechSession
from simulinterp.server.backpressure import Backpressure, BackpressureConfig
from simulinterp.server.protocol import ClientConfig, pcm16_bytes
from simulinterp.sinks import Collector, Sink

logger = logging.getLogger(__name__)

_ARRIVALS_KEPT = 600  # frames whose arrival time is kept (a minute of 100 ms frames)

Post = Callable[[dict[str, Any] | bytes, bool], None]
"""Send one message to the client: (JSON object or audio bytes, essential). A message that is
not essential (``partial``, ``lag``) may be dropped for a slow client."""


class LiveAudio:
    """The audio a client sends, as an iterable of chunks for :func:`~simulinterp.pipeline.run`.

    Frames at the client's rate are resampled to 16 kHz (soxr, streaming). Dropped audio (the
    backpressure rule) becomes silence of the same length, so times stay the client's; it holds
    no memory (a zero-stride view).

    Args:
        sample_rate: Hz of the frames.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._queue: queue.Queue[AudioChunk | None] = queue.Queue()
        self._resampler = None
        if sample_rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32")
        self.received_s = 0.0
        self.dropped_s = 0.0
        self._ended = False
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=_ARRIVALS_KEPT)
        self._lock = threading.Lock()  # frames arrive on the event loop, lookups come from
        # the translation thread

    def arrived_at(self, audio_s: float) -> float | None:
        """When (``time.monotonic()``) the audio up to ``audio_s`` had arrived; None if that
        is older than what is kept."""
        with self._lock:
            for end_s, wall in self._arrivals:
                if end_s >= audio_s:
                    return wall
        return None

    def push(self, samples: np.ndarray, *, drop: bool = False) -> None:
        """Take float32 samples at the client's rate; ``drop``: hear silence instead."""
        if self._ended:
            return
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=False)
        self._add(samples, drop)

    def end(self) -> None:
        """No more audio: the pipeline finishes the stream."""
        if self._ended:
            return
        if self._resampler is not None:
            self._add(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True), False)
        self._ended = True
        self._queue.put(None)

    def _add(self, samples: np.ndarray, drop: bool) -> None:
        if not len(samples):
            return
        seconds = len(samples) / SAMPLE_RATE
        if drop:
            samples = np.broadcast_to(np.float32(0.0), (len(samples),))
            self.dropped_s += seconds
        self._queue.put(AudioChunk(samples, self.received_s))
        self.received_s += seconds
        with self._lock:
            self._arrivals.append((self.received_s, time.monotonic()))

    def __iter__(self):
        while (chunk := self._queue.get()) is not None:
            yield chunk


class ClientSink(Sink):
    """The pipeline's events as protocol messages (``source``, ``partial``, ``translation``,
    ``warning``, ``speaker``, and ``speech`` followed by its audio)."""

    name = "client"

    def __init__(
        self,
        post: Post,
        *,
        partials: bool = True,
        arrived_at: Callable[[float], float | None] = lambda audio_s: None,
        tracked: bool = False,
    ) -> None:
        self.post = post
        self.tracked = tracked  # the session's tracker sends the speaker turns
        self._arrived_at = arrived_at
        self.partials_wanted = partials
        self.partials_allowed = True  # the backpressure rule's switch
        self.processed_s = 0.0
        self.last_commit_lag_s: float | None = None
        self._speaking = False
        self._audio: list[np.ndarray] = []

    def progress(self, audio_s: float) -> None:
        self.processed_s = max(self.processed_s, audio_s)

    def step(self, step: SessionStep) -> None:
        for commit in step.commits:  # from the source words' arrival to their translation
            arrived = self._arrived_at(commit.source_end_s)
            if arrived is not None:
                self.last_commit_lag_s = time.monotonic() - arrived
        for event in step_events(step):
            if event["type"] == "partial":
                if self.partials_wanted and self.partials_allowed:
                    self.post(event, False)
                continue
            if event["type"] == "source" and not self._speaking and not self.tracked:
                self._speaking = True  # untracked: one speaker
                self.post(
                    {"type": "speaker", "speaker": 0, "label": "S1", "start_s": event["start_s"]},
                    True,
                )
            if event["type"] == "warning":
                event = {**event, "code": "warning"}
            self.post(event, True)

    # speech: the player is handed the audio first, then the clause is announced
    def play_at(self, start_s: float, samples: np.ndarray) -> None:
        self._audio.append(samples)

    def drain(self) -> None:
        """Nothing is left to play here: the client plays what it received."""

    def spoken(self, segment: SpokenSegment) -> None:
        samples = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
        self._audio = []
        self.post({**spoken_event(segment), "samples": len(samples)}, True)
        self.post(pcm16_bytes(samples), True)


class ServerSession:
    """A client's session: the pipeline in its own thread, the rule applied as audio comes.

    Args:
        session: the speech session (real time).
        config: the client's config.
        post: sends a message to the client (thread-safe).
        voice: the synthesizer and voice, when the client asked for speech.
        save_dir: where the transcript is appended as it goes (None: nowhere).
        backpressure: the rule's thresholds.
    """

    def __init__(
        self,
        session: SpeechSession,
        config: ClientConfig,
        post: Post,
        *,
        voice: tuple[Any, str] | None = None,
        save_dir: Path | None = None,
        backpressure: BackpressureConfig | None = None,
        voice_bank: Any = None,
    ) -> None:
        self.id = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.session, self.config = session, config
        self.audio = LiveAudio(config.sample_rate)
        self.client = ClientSink(
            post,
            partials=config.partials,
            arrived_at=self.audio.arrived_at,
            tracked=session.tracker is not None,
        )
        self.record = Collector()
        self.rule = Backpressure(backpressure)
        self.started = time.monotonic()
        self._base = (session.recognizer.config, session.translator.config)
        self._post = post
        self.files = None
        sinks: list[Sink] = [self.record, self.client]
        if save_dir is not None:
            from simulinterp.sinks import SubtitleFiles

            save_dir.mkdir(parents=True, exist_ok=True)
            self.files = SubtitleFiles(save_dir / f"{self.id}.{config.target_lang}")
            sinks.insert(0, self.files)
        self.speech = None
        if voice is not None:
            self.speech = self._speech_sink(*voice)
            if session.tracker is not None and voice_bank is not None:
                from simulinterp.speakers.voices import SpeakerVoices

                self.speech.voices = SpeakerVoices(voice_bank, default=voice[1], prefix=self.id)
                self.speech.profiles = session.tracker.profile
            sinks.append(self.speech)
        self._sinks = sinks
        self._warned_drop = False
        self.failure: BaseException | None = None
        self.on_done: Callable[[], None] = lambda: None  # called in the pipeline's thread
        self._thread = threading.Thread(target=self._run, name=f"session-{self.id}", daemon=True)

    def _speech_sink(self, synthesizer: Any, voice: str):
        from simulinterp.tts.output import SpeechOutput

        speech = SpeechOutput(
            synthesizer,
            voice,
            self.config.target_lang,
            player_factory=lambda rate, clock: self.client,
            warn=lambda message: self._post(
                {"type": "warning", "code": "speech", "message": message}, True
            ),
        )
        speech.listeners.append(self.client.spoken)
        if self.files is not None:
            files = self.files
            speech.listeners.append(lambda s: files.log_event(spoken_event(s)))
        return speech

    def start(self) -> None:
        self._thread.start()

    @property
    def started_pipeline(self) -> bool:
        return self._thread.ident is not None

    def _run(self) -> None:
        from simulinterp.pipeline import run

        try:
            run(
                self.audio,
                self.session,
                self._sinks,
                audio_name=f"session {self.id}",
                duplex=True,
                warn=lambda m: self._post(
                    {"type": "warning", "code": "output", "message": m}, True
                ),
            )
        except BaseException as err:  # reported to the client as an internal error
            logger.exception("session %s failed", self.id)
            self.failure = err
        if self.speech is not None and self.speech.voices is not None:
            self.speech.voices.close()  # the shared synthesizer forgets this session's voices
        self.on_done()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the pipeline to finish; True when it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def lag_s(self) -> float:
        """Audio received but not yet recognized and translated, seconds."""
        return max(0.0, self.audio.received_s - self.client.processed_s)

    def feed(self, samples: np.ndarray) -> None:
        """Audio from the client (at its rate): the rule decides whether it is heard."""
        self.update_rule()
        dropping = self.rule.dropping
        self.audio.push(samples, drop=dropping)
        if dropping and not self._warned_drop:
            self._post(
                {
                    "type": "warning",
                    "code": "audio_dropped",
                    "message": f"computing is {self.lag_s:.1f} s behind: new audio is not heard "
                    f"until it catches up ({self.audio.dropped_s:.1f} s so far)",
                },
                True,
            )
        self._warned_drop = dropping

    def update_rule(self) -> str:
        """Apply the backpressure rule for the current lag; returns the mode.

        Degraded (and dropping): the recognizer decodes half as often and the translator
        decides half as often. Dropping: the recognizer also lets go of the audio before a
        pause soon (the silence that replaces dropped audio is never decoded at length).
        """
        was = self.rule.mode
        mode = self.rule.update(self.lag_s)
        self.client.partials_allowed = self.rule.partials
        if mode != was:
            rec, tr = self._base
            if self.rule.degraded or self.rule.dropping:
                rec = replace(rec, max_duty=rec.max_duty / 2)
                tr = replace(tr, max_duty=tr.max_duty / 2)
            if self.rule.dropping:
                rec = replace(rec, release_s=min(rec.release_s, max(rec.sentence_pause_s, 1.0)))
            self.session.recognizer.config, self.session.translator.config = rec, tr
        return mode

    def lag_message(self) -> dict[str, Any]:
        """The running latency figures (``lag``)."""
        mode = self.update_rule()
        return {
            "type": "lag",
            "lag_s": round(self.lag_s, 3),
            "received_s": round(self.audio.received_s, 3),
            "processed_s": round(self.client.processed_s, 3),
            "commit_lag_s": None
            if self.client.last_commit_lag_s is None
            else round(self.client.last_commit_lag_s, 3),
            "mode": mode,
            "dropped_s": round(self.audio.dropped_s, 3),
            "wall_s": round(self.session.clock_s, 3),
        }

    def transcript_message(self) -> dict[str, Any]:
        """The whole interpretation as SRT, WebVTT and the JSON transcript (``transcript``)."""
        import json

        from simulinterp.subtitles import cues_from_commits, srt_text, transcript_document, vtt_text

        record, tgt = self.record, self.config.target_lang
        cues = cues_from_commits(record.commits, record.words, tgt)
        document = transcript_document(
            source_lang=self.config.source_lang,
            target_lang=tgt,
            audio=f"session {self.id}",
            commits=record.commits,
            source_words=record.words,
            cues=cues,
        )
        return {
            "type": "transcript",
            "srt": srt_text(cues),
            "vtt": vtt_text(cues),
            "json": json.dumps(document, ensure_ascii=False, indent=2),
        }
