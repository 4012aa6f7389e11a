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
