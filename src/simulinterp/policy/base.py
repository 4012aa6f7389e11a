"""The policy contract (after SimulEval's ReadAction / WriteAction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Read:
    """Wait for more source."""


@dataclass(frozen=True)
class Write:
    """Commit the first ``units`` units of the candidate (``units >= 1``)."""

    units: int

    def __post_init__(self) -> None:
        if self.units < 1:
            raise ValueError("Write needs at least one unit; return Read() instead")


Action = Read | Write


@dataclass(frozen=True)
class CandidateUnit:
    """One target unit (word or character) of the model's candidate continuation.

    Attributes:
        text: the unit as generated, with the space before it.
        logprob: the lowest token log-probability inside the unit.
    """

    text: str
    logprob: float


@dataclass(frozen=True)
class PolicyView:
    """Everything a policy may look at, for the current sentence segment.

    Attributes:
        source: source units read so far in this segment.
        committed: target units committed so far in this segment.
        candidate: the model's continuation after the committed prefix, as complete units
            (``None`` until the translator computes it).
        candidate_finished: the model ended the candidate itself (it considers the prefix
            translated), rather than hitting the token limit.
        hypotheses: earlier full hypotheses of this segment (committed units plus candidate
            units, as texts), oldest first, one per earlier source prefix that had one.
        units_since_write: source units read since the last commit (or segment start).
    """

    source: tuple[str, ...]
    committed: tuple[str, ...]
    candidate: tuple[CandidateUnit, ...] | None = None
    candidate_finished: bool = False
    hypotheses: tuple[tuple[str, ...], ...] = ()
    units_since_write: int = 0


class Policy(Protocol):
    """A READ/WRITE policy. Implementations are small frozen dataclasses.

    A policy may also have ``stop_strings``: texts that end the model's generation, such as a
    learned policy's wait marker (see :func:`policy_stop_strings`).
    """

    name: str

    def wants_candidate(self, view: PolicyView) -> bool:
        """Whether the decision at this point needs the model's candidate (cheap, no model)."""
        ...

    def max_units(self, view: PolicyView) -> int | None:
        """How many candidate units the decision can use at most (bounds generation)."""
        ...

    def decide(self, view: PolicyView) -> Action:
        """READ or WRITE(k) given the view with its candidate."""
        ...


def policy_stop_strings(policy: Policy) -> tuple[str, ...]:
    """The texts at which ``policy`` wants generation to stop (none for the rule policies).

    The translator adds them to its own stop strings, so what the model wrote before one of
    them is the candidate and the text after it is never generated: a model that writes its
    wait marker first produces an empty candidate, which is a READ.
    """
    return tuple(getattr(policy, "stop_strings", ()))


def candidate_texts(view: PolicyView) -> tuple[str, ...]:
    """The candidate's unit texts without surrounding spaces (empty when there is none)."""
    return tuple(unit.text.strip() for unit in view.candidate or ())


def write_or_read(units: int) -> Action:
    """``Write(units)`` when ``units >= 1``, else ``Read()``."""
    return Write(units) if units >= 1 else Read()
