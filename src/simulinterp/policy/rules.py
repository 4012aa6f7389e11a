"""The built-in READ/WRITE policies, each a pure function of a :class:`PolicyView`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulinterp.lang import is_clause_end, is_sentence_end
from simulinterp.policy.base import Action, PolicyView, Read, candidate_texts, write_or_read


@dataclass(frozen=True)
class WaitK:
    """wait-k (Ma et al., 2019, STACL): read k units, then write at the pace of the source.

    With ``ratio`` r target units per source unit (STACL's catch-up for unequal lengths), after
    reading t >= k source units the first ``floor((t - k + 1) * r)`` target units may be
    written. r = 1 is the classic one-for-one schedule.
    """

    k: int = 3
    ratio: float = 1.0
    name: str = "wait-k"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"wait-k needs k >= 1, got {self.k}")
        if self.ratio <= 0:
            raise ValueError(f"wait-k needs ratio > 0, got {self.ratio}")

    def _allowed(self, view: PolicyView) -> int:
        read = len(view.source) - self.k + 1
        return math.floor(max(0, read) * self.ratio + 1e-9) - len(view.committed)

    def wants_candidate(self, view: PolicyView) -> bool:
        return self._allowed(view) >= 1

    def max_units(self, view: PolicyView) -> int | None:
        return max(1, self._allowed(view))

    def decide(self, view: PolicyView) -> Action:
        if view.candidate is None:
            return Read()
        return write_or_read(min(len(view.candidate), self._allowed(view)))


@dataclass(frozen=True)
class LocalAgreement:
    """LocalAgreement-n (Polák et al., 2022; Macháček et al., 2023, whisper_streaming).

    Commit the longest common prefix of the full hypotheses made on the last ``n`` source
    prefixes (the current one included).
    """

    n: int = 2
    name: str = "local-agreement"

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"LocalAgreement needs n >= 2, got {self.n}")

    def wants_candidate(self, view: PolicyView) -> bool:
        return True

    def max_units(self, view: PolicyView) -> int | None:
        return None

    def decide(self, view: PolicyView) -> Action:
        if view.candidate is None or len(view.hypotheses) < self.n - 1:
            return Read()
        current = view.committed + candidate_texts(view)
        agreed = _common_prefix_length([current, *view.hypotheses[-(self.n - 1) :]])
        return write_or_read(agreed - len(view.committed))


@dataclass(frozen=True)
class Confidence:
    """Commit candidate units while each unit's lowest token log-probability stays at or above
    ``threshold`` (a confidence-thresholded policy, as in Liu et al., 2023, and SimulStreaming's
    AlignAtt-free variant)."""

    threshold: float = -1.0
    name: str = "confidence"

    def __post_init__(self) -> None:
        if self.threshold > 0:
            raise ValueError(f"a log-probability threshold is <= 0, got {self.threshold}")

    def wants_candidate(self, view: PolicyView) -> bool:
        return True

    def max_units(self, view: PolicyView) -> int | None:
        return None

    def decide(self, view: PolicyView) -> Action:
        count = 0
        for unit in view.candidate or ():
            if unit.logprob < self.threshold:
                break
            count += 1
        return write_or_read(count)


@dataclass(frozen=True)
class Clause:
    """Commit the whole translation of each clause when the source reaches a clause end
    (，、；：。 , ; : . ! ?), the fallback that keeps an untrained model's offline quality
    (FINDINGS: BLEU at offline level at about 10 characters of lag).

    ``max_wait`` bounds the lag: after that many source units without a clause end, commit the
    candidate except its last ``holdback`` units. With ``agree``, such an overdue
    commit also needs the hypothesis of the decision before to agree (LocalAgreement-2 inside
    the clause): an untrained model's guess at the rest of a clause ("ask not what your
    country" taken for a question) changes when the next words come, and is not committed. The
    first hypothesis is made one unit before the cap, so that agreement can commit at the cap.
    It is more faithful and later, and it costs more decisions (bench/quality's
    ``clause:N:agree`` rows in the README), so the default commits the guess.

    With ``min_clause``, the end of a clause (not of a sentence) shorter than that many units,
    counted from the clause end before it, is read past: a clause of one or two words ("And
    so,", "ask not,", where the recognizer put a comma at a pause) is translated with the next
    one, not alone.
    """

    max_wait: int = 0
    holdback: int = 2
    agree: bool = False
    min_clause: int = 0
    name: str = "clause"

    def __post_init__(self) -> None:
        if self.max_wait < 0 or self.holdback < 0 or self.min_clause < 0:
            raise ValueError(
                "clause needs max_wait >= 0 (0: no limit), holdback >= 0 and min_clause >= 0"
            )

    def _at_clause_end(self, view: PolicyView) -> bool:
        if not view.source or not is_clause_end(view.source[-1]):
            return False
        if self.min_clause <= 1 or is_sentence_end(view.source[-1]):
            return True
        earlier = view.source[-self.min_clause : -1]
        # the clause is the units after the clause end before it (or the segment's start)
        return len(earlier) == self.min_clause - 1 and not any(map(is_clause_end, earlier))

    def _overdue(self, view: PolicyView) -> bool:
        return self.max_wait > 0 and view.units_since_write >= self.max_wait

    def _probing(self, view: PolicyView) -> bool:
        """One unit before the cap: a hypothesis to agree with when the cap is reached."""
        return self.agree and self.max_wait > 1 and view.units_since_write >= self.max_wait - 1

    def wants_candidate(self, view: PolicyView) -> bool:
        return self._at_clause_end(view) or self._overdue(view) or self._probing(view)

    def max_units(self, view: PolicyView) -> int | None:
        return None

    def decide(self, view: PolicyView) -> Action:
        if view.candidate is None:
            return Read()
        if self._at_clause_end(view):
            return write_or_read(len(view.candidate))
        if self._overdue(view):
            units = len(view.candidate) - self.holdback
            if self.agree:
                if not view.hypotheses:
                    return Read()
                current = view.committed + candidate_texts(view)
                agreed = _common_prefix_length([current, view.hypotheses[-1]])
                units = min(units, agreed - len(view.committed))
            return write_or_read(units)
        return Read()


@dataclass(frozen=True)
class Learned:
    """For models trained to decide themselves (SimulMask SFT, SeqPO RL): the model writes
    target text and stops at an explicit wait marker when it wants more source. Everything it
    wrote before stopping is committed; an empty candidate is a READ."""

    marker: str = "<wait>"
    name: str = "learned"

    def __post_init__(self) -> None:
        if not self.marker.strip():
            raise ValueError("the wait marker must be a non-empty text")

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """The marker ends generation: the model asks for more source by writing it."""
        return (self.marker,)

    def wants_candidate(self, view: PolicyView) -> bool:
        return True

    def max_units(self, view: PolicyView) -> int | None:
        return None

    def decide(self, view: PolicyView) -> Action:
        return write_or_read(len(view.candidate or ()))


@dataclass(frozen=True)
class Offline:
    """Never write before the end of the sentence: full-sentence translation, the quality
    reference (``offline_BLEU``)."""

    name: str = "offline"

    def wants_candidate(self, view: PolicyView) -> bool:
        return False

    def max_units(self, view: PolicyView) -> int | None:
        return 0

    def decide(self, view: PolicyView) -> Action:
        return Read()


def _common_prefix_length(sequences: list[tuple[str, ...]]) -> int:
    length = min(len(s) for s in sequences)
    for i in range(length):
        if any(s[i] != sequences[0][i] for s in sequences[1:]):
            return i
    return length
