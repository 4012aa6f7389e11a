"""Events that flow through a session: frozen dataclasses with explicit units.

Every emitted target piece records how much source had been consumed (in source units) and when
it was emitted, both as wall-clock seconds since the stream started and, for simulated runs, on
the computation-aware clock. All latency figures are computed from these fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SourceUnit:
    """One source unit (an English word or a Chinese character) as it arrives.

    Attributes:
        text: the unit, without surrounding spaces.
        index: 0-based position in the stream.
        arrival_s: when the unit became available, seconds from stream start.
        sentence_end: the unit closes a sentence (a flush point).
    """

    text: str
    index: int
    arrival_s: float = 0.0
    sentence_end: bool = False


@dataclass(frozen=True)
class TargetCommit:
    """A committed piece of translation. Committed text is never retracted.

    Attributes:
        text: the new text appended to the committed translation (may begin with a space).
        source_consumed: source units read when it was decided (SimulEval's delay).
        elapsed_s: computation-aware emission time: seconds from stream start on a clock where
            unit ``j`` arrives at its ``arrival_s`` and computing takes the time it really took.
        wall_s: wall-clock seconds since the session started.
        segment: index of the sentence segment this commit belongs to.
        final: the segment is complete after this commit.
    """

    text: str
    source_consumed: int
    elapsed_s: float
    wall_s: float
    segment: int = 0
    final: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EndOfStream:
    """The source has ended and every commit has been emitted."""

    source_units: int
    elapsed_s: float


@dataclass(frozen=True)
class SourceWord:
    """A recognized source word (English) or character (Chinese) committed by the ASR.

    Attributes:
        text: the word as recognized, with its punctuation (e.g. ``"country."``).
        start_s: where it starts in the source audio, seconds (approximate).
        end_s: where it ends in the source audio, seconds (approximate).
        audio_s: source audio consumed when it was committed, seconds (its SimulEval delay).
        committed_s: computation-aware time of the commit, seconds from stream start.
        sentence_end: it closes a sentence (ASR punctuation or a pause found by the VAD).
        speaker: 0-based id of who said it (``S1`` is 0), None where speakers are not tracked.
    """

    text: str
    start_s: float
    end_s: float
    audio_s: float
    committed_s: float
    sentence_end: bool = False
    speaker: int | None = None


@dataclass(frozen=True)
class Transcript:
    """What the recognizer holds after one step: new committed words and the tentative rest.

    Attributes:
        committed: words committed in this step (never retracted later).
        tentative: the unstable tail of the current hypothesis, for display only.
        audio_s: source audio consumed so far, seconds.
        boundary: a pause ended the sentence after the committed words, though the last of
            them carries no sentence-end mark (its ``sentence_end`` was already sent as False).
    """

    committed: tuple[SourceWord, ...]
    tentative: str
    audio_s: float
    boundary: bool = False


@dataclass(frozen=True)
class SpeechCommit:
    """A committed piece of translation of speech, on the source-audio timeline.

    Attributes:
        text: the new text appended to the committed translation.
        audio_s: source audio consumed when it was decided, seconds (SimulEval's delay).
        elapsed_s: computation-aware emission time, seconds from stream start.
        wall_s: wall-clock seconds since the session started.
        segment: index of the sentence segment it belongs to.
        final: the segment is complete after this commit.
        source_start_s: start of the segment's first source word in the audio, seconds.
        source_end_s: end of the latest source word read, seconds.
        speaker: 0-based id of the speaker of the latest source word read (None: untracked).
    """

    text: str
    audio_s: float
    elapsed_s: float
    wall_s: float
    segment: int
    final: bool
    source_start_s: float
    source_end_s: float
    speaker: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SpeakerTurnStart:
    """The current speaker changed, as the online tracker decided.

    Attributes:
        speaker: 0-based id (``label`` is ``S1`` for 0).
        label: the display label.
        start_s: where their turn starts in the source audio, seconds.
        decided_s: source audio heard when it was decided, seconds.
        new: the first time this speaker is heard.
    """

    speaker: int
    label: str
    start_s: float
    decided_s: float
    new: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SessionStep:
    """What one step of a speech session produced: the unit every sink receives.

    Attributes:
        transcript: newly committed source words and the tentative rest.
        commits: newly committed translation.
        warnings: warnings raised during this step (e.g. the recognizer fell behind).
        speakers: speaker changes the tracker decided in this step.
    """

    transcript: Transcript
    commits: tuple[SpeechCommit, ...]
    warnings: tuple[str, ...] = ()
    speakers: tuple[SpeakerTurnStart, ...] = ()


@dataclass(frozen=True)
class SpokenSegment:
    """A clause of interpretation speech, placed on the output timeline.

    The output timeline is the input's: second 10 of the interpretation plays while second 10
    of the source is heard.

    Attributes:
        text: the committed clause it speaks (all of it, or a part when the synthesizer split
            the clause: then the parts share ``clause``).
        spoken_text: what the synthesizer said (numbers as words, symbols dropped...).
        clause: 0-based index of the committed clause.
        segment: the sentence segment it belongs to.
        start_s: when its audio starts playing, seconds from stream start.
        end_s: when its audio ends, seconds from stream start.
        ready_s: when its audio was ready to play (commit time plus synthesis time).
        source_end_s: end of the latest source word read when it was committed, seconds.
        speed: the speaking rate it was synthesized at (1.0 normal).
        compute_s: seconds the synthesis took.
        commit_audio_s: source audio consumed when its text was committed (its delay if
            computing took no time), seconds.
        committed_s: when its text was committed, on the run's clock, seconds.
        speaker: 0-based id of who said its source (None: untracked).
        voice: the synthesizer voice that spoke it.
    """

    text: str
    spoken_text: str
    clause: int
    segment: int
    start_s: float
    end_s: float
    ready_s: float
    source_end_s: float
    speed: float = 1.0
    compute_s: float = 0.0
    commit_audio_s: float = 0.0
    committed_s: float = 0.0
    speaker: int | None = None
    voice: str = ""

    @property
    def lag_s(self) -> float:
        """How far the interpretation of this clause trails its source, seconds."""
        return self.start_s - self.source_end_s

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def step_events(step: SessionStep) -> list[dict[str, Any]]:
    """The JSON wire form of one step: one object per event, each with its ``type``.

    Types: ``source`` (a committed source word), ``translation`` (a commit), ``warning``,
    ``speaker`` (a change of speaker). The tentative tail is sent as ``partial`` when it is not
    empty.
    """
    out: list[dict[str, Any]] = [{"type": "warning", "message": w} for w in step.warnings]
    out += [{"type": "speaker", **turn.to_json()} for turn in step.speakers]
    out += [{"type": "source", **asdict(word)} for word in step.transcript.committed]
    out += [{"type": "translation", **commit.to_json()} for commit in step.commits]
    if step.transcript.tentative:
        out.append(
            {
                "type": "partial",
                "text": step.transcript.tentative,
                "audio_s": step.transcript.audio_s,
            }
        )
    return out


def spoken_event(spoken: SpokenSegment) -> dict[str, Any]:
    """The JSON wire form of a spoken clause (type ``speech``)."""
    return {"type": "speech", **spoken.to_json()}
