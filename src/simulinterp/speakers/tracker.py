"""Online speaker tracking: who is talking, decided as the audio arrives.

The tracker hears the same audio as the recognizer. A VAD stream of its own (the shared silero
model) marks speech; every ``hop_s`` the voiced audio of the last ``window_s`` is embedded
(GE2E, :mod:`simulinterp.speakers.encoder`) and compared, by cosine, with the centroid of each
speaker heard so far:

- **Returning speaker:** the most similar centroid, unless it beats the current speaker by
  less than ``switch_margin`` (hysteresis: one ambiguous window, overlap say, does not flip the
  label).
- **New speaker:** every centroid is less similar than ``new_speaker_similarity``. A new
  speaker is created only once ``confirm_windows`` such windows in a row agree with each other,
  so a cough, a one-word interjection or two voices at once do not found a speaker; until then
  the windows keep the current label, and are relabelled when the speaker is confirmed.
- **The cap:** past ``max_speakers``, a new voice goes to the most similar speaker already
  known (its output voice is then shared; stated in the docs).

Each window labels the ``hop_s`` of audio centred in it, so a label is decided about
``window_s / 2 + hop_s / 2`` seconds after the audio it covers (reported as each change's
``decided_s - start_s``). Centroids only learn from windows similar to them by
``update_similarity`` or more. Cost: one embedding per hop (batched when audio arrives in
large pieces), one VAD pass, and the voice features of confidently labelled audio.

This is the clustering of online diarization systems in a simple form (cf. diart: Coria et
al., "Overlap-aware low-latency online speaker diarization based on end-to-end local
segmentation", ASRU 2021), without their overlap-aware segmentation model, which does not ship.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulinterp.asr.base import VadModel
from simulinterp.asr.vad import FRAME_S, SpeechEnd, SpeechStart, VadConfig, VadStream
from simulinterp.speakers.rttm import SpeakerTurn
from simulinterp.speakers.turns import LabelSpan, speaker_label, turns_from_labels

SAMPLE_RATE = 16_000


class SpeakerEncoder(Protocol):
    """What the tracker needs of an encoder (:class:`~simulinterp.speakers.encoder.GE2EEncoder`)."""

    dim: int

    def embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of the online tracker.

    Attributes:
        max_speakers: the cap on distinct speakers.
        window_s: audio embedded per decision, seconds (GE2E's partial utterance is 1.6 s).
        hop_s: one decision per this much audio, seconds.
        min_voiced_s: voiced audio a window needs to be embedded, seconds.
        new_speaker_similarity: a window less similar than this (cosine) to every known speaker
            may be a new one.
        switch_margin: another speaker must beat the current one by this much cosine.
        confirm_windows: windows in a row that confirm a new speaker.
        update_similarity: a window this similar to its speaker updates the centroid.
        centroid_memory: the centroid is a running mean over at most this many windows (an
            exponential average beyond), so it follows a voice that drifts.
        vad_threshold: speech probability that starts speech for the tracker (lower than the
            recognizer's: quiet far-field voices count as speech here).
        region_windows: a window does not reach back across a pause into the speech region
            before (a turn that starts after a pause is not blurred by the previous one).
        turn_gap_s: a speaker's turns less than this apart are one turn (a breath, a short
            pause; reference turns of meetings span them).
    """

    max_speakers: int = 8
    window_s: float = 1.6
    hop_s: float = 0.5
    min_voiced_s: float = 0.6
    new_speaker_similarity: float = 0.7
    switch_margin: float = 0.04
    confirm_windows: int = 2
    update_similarity: float = 0.75
    centroid_memory: int = 60
    vad_threshold: float = 0.25
    region_windows: bool = True
    turn_gap_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_speakers < 1:
            raise ValueError(f"max_speakers must be >= 1, got {self.max_speakers}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"need 0 < hop_s <= window_s, got {self.hop_s}, {self.window_s}")
        if not 0 < self.min_voiced_s <= self.window_s:
            raise ValueError(f"need 0 < min_voiced_s <= window_s, got {self.min_voiced_s}")
        if not -1 <= self.new_speaker_similarity <= 1 or not -1 <= self.update_similarity <= 1:
            raise ValueError("similarities are cosines, within [-1, 1]")
        if self.confirm_windows < 1 or self.centroid_memory < 1:
            raise ValueError("confirm_windows and centroid_memory must be >= 1")


@dataclass(frozen=True)
class SpeakerChange:
    """The current speaker changed (or the first one was heard).

    Attributes:
        speaker: 0-based id of the new current speaker.
        start_s: where their turn starts in the audio, seconds.
        decided_s: audio heard when the tracker decided, seconds (the decision's latency is
            ``decided_s - start_s``).
        new: the speaker was heard for the first time.
    """

    speaker: int
    start_s: float
    decided_s: float
    new: bool

    @property
    def label(self) -> str:
        return speaker_label(self.speaker)


@dataclass
class _Speaker:
    centroid: np.ndarray  # L2-normalized
    windows: int
    profile: object  # a ProfileAccumulator


class SpeakerTracker:
    """One stream's speakers; feed audio with :meth:`insert_audio`, decide with :meth:`process`.

    Args:
        encoder: the speaker encoder (shared).
        vad: the VAD model (shared; the tracker keeps its own stream state).
        config: thresholds and timing.
    """

    def __init__(
        self, encoder: SpeakerEncoder, vad: VadModel, config: TrackerConfig | None = None
    ) -> None:
        self.encoder, self.config = encoder, config or TrackerConfig()
        threshold = self.config.vad_threshold
        self._vad = VadStream(
            vad,
            VadConfig(
                threshold=threshold,
                neg_threshold=max(0.05, threshold - 0.15),
                min_silence_s=0.3,
                speech_pad_s=0.05,
            ),
        )
        self.reset()

    def reset(self) -> None:
        """Forget the stream and its speakers."""
        self._vad.reset()
        self._pending: list[np.ndarray] = []
        self._buffer = np.zeros(0, np.float32)  # the last few seconds of audio
        self._buffer_start = 0  # sample index of _buffer[0]
        self._samples = 0
        self._probs: list[np.ndarray] = []
        self._voiced = np.zeros(0, bool)  # per VAD frame, over the whole stream
        self._regions: list[tuple[float, float]] = []
        self._open_start: float | None = None
        self._next_end_s = self.config.window_s
        self.speakers: list[_Speaker] = []
        self._spans: list[LabelSpan] = []
        self._candidates: list[tuple[np.ndarray, int]] = []  # (embedding, span index)
        self.current: int | None = None
        self.changes: list[SpeakerChange] = []
        self.windows = 0
        self._finished = False

    @property
    def audio_s(self) -> float:
        return self._samples / SAMPLE_RATE

    def insert_audio(self, samples: np.ndarray) -> None:
        """Queue float32 mono 16 kHz samples (cheap; the work is done by :meth:`process`)."""
        self._pending.append(np.asarray(samples, dtype=np.float32))

    def process(self) -> list[SpeakerChange]:
        """Decide the speakers of the audio inserted so far; the changes this decided."""
        if not self._pending:
            return []
        audio = np.concatenate(self._pending)
        self._pending = []
        self._take(audio)
        return self._decide(final=False)

    def finish(self) -> list[SpeakerChange]:
        """The audio has ended: decide the rest and close the last speech region."""
        changes = self.process()
        for event in self._vad.finish():
            self._on_vad(event)
        if not self._finished:
            self._finished = True
            changes += self._decide(final=True)
        return changes

    def speaker_at(self, start_s: float, end_s: float) -> int:
        """The speaker of audio ``[start_s, end_s]``: the label that covers most of it, else the
        nearest label before it, else the current speaker (0 before any)."""
        best, best_overlap = None, 0.0
        before = None
        for span in reversed(self._spans):
            overlap = min(end_s, span.end_s) - max(start_s, span.start_s)
            if overlap > best_overlap:
                best, best_overlap = span.speaker, overlap
            if before is None and span.end_s <= start_s:
                before = span.speaker
            if span.end_s < start_s - self.config.window_s:
                break
        if best is not None:
            return best
        if before is not None:
            return before
        return self.current if self.current is not None else 0

    def turns(self) -> list[SpeakerTurn]:
        """Speaker turns so far (:func:`~simulinterp.speakers.turns.turns_from_labels`)."""
        regions = list(self._regions)
        if self._open_start is not None:
            regions.append((self._open_start, self.audio_s))
        tail = self.current if self.current is not None else 0
        return turns_from_labels(regions, self._spans, tail, gap_s=self.config.turn_gap_s)

    def profile(self, speaker: int):
        """The voice profile of ``speaker`` so far (a
        :class:`~simulinterp.speakers.features.VoiceProfile`), or None."""
        if not 0 <= speaker < len(self.speakers):
            return None
        return self.speakers[speaker].profile.profile()

    # -- internals -------------------------------------------------------------------------

    def _take(self, audio: np.ndarray) -> None:
        """Append audio to the buffer and score it with the VAD."""
        for event in self._vad.feed(audio):
            self._on_vad(event)
        self._probs.append(self._vad.last_probs)
        self._samples += len(audio)
        self._buffer = np.concatenate([self._buffer, audio])
        # keep what the next undecided window needs (the final window may reach further back)
        first_needed = int((self._next_end_s - 2 * self.config.window_s) * SAMPLE_RATE)
        drop = first_needed - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop

    def _flush_probs(self) -> None:
        if self._probs:
            probs = np.concatenate([*self._probs])
            self._voiced = np.concatenate([self._voiced, probs >= self._vad.config.threshold])
            self._probs = []

    def _on_vad(self, event) -> None:
        if isinstance(event, SpeechStart):
            self._open_start = event.start_s
        elif isinstance(event, SpeechEnd):
            self._regions.append((event.start_s, event.end_s))
            self._open_start = None

    def _region_start(self, end_s: float) -> float:
        """Where the speech region holding ``end_s`` began (0 when none is known)."""
        if self._open_start is not None and self._open_start <= end_s:
            return self._open_start
        for start, end in reversed(self._regions):
            if start <= end_s:
                return start if end_s <= end + 0.3 else end_s
        return 0.0

    def _window(self, end_s: float) -> np.ndarray:
        """The voiced samples of the window ending at ``end_s`` (within its speech region when
        ``region_windows``: a window does not reach back across a pause)."""
        self._flush_probs()
        start_s = max(0.0, end_s - self.config.window_s)
        if self.config.region_windows:
            start_s = max(start_s, self._region_start(end_s))
        first, last = int(start_s / FRAME_S), int(end_s / FRAME_S)
        voiced = self._voiced[first:last]
        per = int(FRAME_S * SAMPLE_RATE)
        pieces = []
        for i in np.flatnonzero(voiced):
            a = (first + i) * per - self._buffer_start
            if a >= 0:
                pieces.append(self._buffer[a : a + per])
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def _decide(self, *, final: bool) -> list[SpeakerChange]:
        cfg = self.config
        ends = []
        while self._next_end_s <= self.audio_s + 1e-9:
            ends.append(self._next_end_s)
            self._next_end_s += cfg.hop_s
        if final and (not ends or ends[-1] < self.audio_s):
            ends.append(self.audio_s)
        windows = [(end, self._window(end)) for end in ends]
        voiced = [(end, w) for end, w in windows if len(w) >= cfg.min_voiced_s * SAMPLE_RATE]
        embeddings = self.encoder.embed_windows([w for _, w in voiced]) if voiced else []
        by_end = {end: (w, e) for (end, w), e in zip(voiced, embeddings, strict=True)}
        changes: list[SpeakerChange] = []
        lag = (cfg.window_s - cfg.hop_s) / 2
        for i, end in enumerate(ends):
            span_end = self.audio_s if final and i == len(ends) - 1 else end - lag
            # labels run on from the last one; the first starts where its speech does
            span_start = self._spans[-1].end_s if self._spans else self._region_start(end)
            if span_end <= span_start:
                continue
            if end not in by_end:
                continue  # silence: no label, the current speaker stays
            samples, embedding = by_end[end]
            if cfg.region_windows and self._spans:
                # the audio before this window's speech region keeps the label it had
                region = min(self._region_start(end), span_end)
                if region > span_start:
                    self._spans.append(LabelSpan(span_start, region, self._spans[-1].speaker))
                    span_start = region
            self.windows += 1
            change = self._assign(embedding, span_start, span_end, end, samples)
            if change is not None:
                changes.append(change)
        self.changes += changes
        return changes

    def _assign(
        self, e: np.ndarray, start_s: float, end_s: float, heard_s: float, samples: np.ndarray
    ) -> SpeakerChange | None:
        cfg = self.config
        e = np.asarray(e, dtype=np.float32)
        if not self.speakers:
            return self._found([(e, len(self._spans))], start_s, end_s, heard_s, samples)
        sims = np.array([float(s.centroid @ e) for s in self.speakers])
        best = int(np.argmax(sims))
        if sims[best] < cfg.new_speaker_similarity and len(self.speakers) < cfg.max_speakers:
            self._candidates.append((e, len(self._spans)))
            if self._confirmed():
                return self._found(self._candidates, start_s, end_s, heard_s, samples)
            self._spans.append(LabelSpan(start_s, end_s, self._current_or(best)))
            return None
        self._candidates = []
        label = best
        cur = self.current
        if cur is not None and cur != best and sims[best] < sims[cur] + cfg.switch_margin:
            label = cur
        self._spans.append(LabelSpan(start_s, end_s, label))
        if sims[label] >= cfg.update_similarity:
            self._learn(label, e)
        if label == best:  # the voice profile learns from every window that is clearly theirs
            self._hear(label, samples)
        if label != cur:
            self.current = label
            return SpeakerChange(label, start_s, heard_s, new=False)
        return None

    def _current_or(self, fallback: int) -> int:
        return self.current if self.current is not None else fallback

    def _confirmed(self) -> bool:
        cfg = self.config
        if len(self._candidates) < cfg.confirm_windows:
            return False
        recent = np.stack([c for c, _ in self._candidates[-cfg.confirm_windows :]])
        mean = recent.mean(axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        if float((recent @ mean).min()) >= cfg.new_speaker_similarity:
            self._candidates = self._candidates[-cfg.confirm_windows :]
            return True
        self._candidates = self._candidates[-(cfg.confirm_windows - 1) :]
        return False

    def _found(
        self,
        candidates: list[tuple[np.ndarray, int]],
        start_s: float,
        end_s: float,
        heard_s: float,
        samples: np.ndarray,
    ) -> SpeakerChange:
        """Create a speaker from the candidate windows; relabel their spans."""
        from simulinterp.speakers.features import ProfileAccumulator

        speaker = len(self.speakers)
        centroid = np.stack([c for c, _ in candidates]).mean(axis=0)
        centroid /= np.linalg.norm(centroid) or 1.0
        self.speakers.append(
            _Speaker(centroid.astype(np.float32), len(candidates), ProfileAccumulator())
        )
        first = candidates[0][1]
        for index in range(first, len(self._spans)):
            old = self._spans[index]
            self._spans[index] = LabelSpan(old.start_s, old.end_s, speaker)
        turn_start = self._spans[first].start_s if first < len(self._spans) else start_s
        self._spans.append(LabelSpan(start_s, end_s, speaker))
        self._candidates = []
        self.speakers[speaker].profile.add(samples, SAMPLE_RATE)
        self.current = speaker
        return SpeakerChange(speaker, turn_start, heard_s, new=True)

    def _learn(self, speaker: int, e: np.ndarray) -> None:
        s = self.speakers[speaker]
        s.windows += 1
        weight = 1.0 / min(s.windows, self.config.centroid_memory)
        centroid = (1 - weight) * s.centroid + weight * e
        s.centroid = (centroid / (np.linalg.norm(centroid) or 1.0)).astype(np.float32)

    def _hear(self, speaker: int, samples: np.ndarray) -> None:
        """The newest hop of a window's voiced audio goes into the speaker's voice profile."""
        hop = int(self.config.hop_s * SAMPLE_RATE)
        self.speakers[speaker].profile.add(samples[-hop:], SAMPLE_RATE)
