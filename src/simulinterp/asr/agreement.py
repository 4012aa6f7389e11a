"""LocalAgreement over consecutive ASR hypotheses (Liu et al. 2020; Macháček et al. 2023).

A pure buffer: each hypothesis is the list of units (English words, Chinese characters)
recognized after the committed prefix. Units that the last ``n`` hypotheses agree on, from the
start, are committed; they never change afterwards. Agreement ignores case and punctuation, so
"you," and "you." agree; the newest spelling is the one committed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulinterp.lang import is_sentence_end


def comparable(unit: str) -> str:
    """A unit with case and punctuation removed, for agreement checks."""
    kept = [c for c in unit.lower() if not unicodedata.category(c).startswith("P")]
    return "".join(kept)


def agreed_prefix(hypotheses: Sequence[Sequence[str]]) -> int:
    """How many leading units every hypothesis shares (compared with :func:`comparable`)."""
    if not hypotheses:
        return 0
    shortest = min(len(h) for h in hypotheses)
    for i in range(shortest):
        first = comparable(hypotheses[0][i])
        if any(comparable(h[i]) != first for h in hypotheses[1:]):
            return i
    return shortest


@dataclass
class LocalAgreement:
    """Commit what ``n`` consecutive hypotheses agree on.

    Attributes:
        n: how many consecutive hypotheses must agree (2 is the usual choice).
    """

    n: int = 2
    _recent: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("LocalAgreement needs n >= 1")

    def insert(self, hypothesis: Sequence[str]) -> list[str]:
        """Add the newest uncommitted hypothesis; return the units committed now.

        The returned units are removed from the front of every remembered hypothesis, so the
        next call's hypothesis must start after them.
        """
        self._recent.append(list(hypothesis))
        self._recent = self._recent[-self.n :]
        if len(self._recent) < self.n:
            return []
        count = agreed_prefix(self._recent)
        committed = self._recent[-1][:count]
        self._recent = [h[count:] for h in self._recent]
        return committed

    def tentative(self) -> list[str]:
        """The newest hypothesis's uncommitted units."""
        return list(self._recent[-1]) if self._recent else []

    def reset(self) -> None:
        self._recent.clear()


def strip_repeat(tail: Sequence[str], reference: Sequence[str], min_units: int = 3) -> list[str]:
    """``tail`` without a leading copy of ``reference``'s start or end.

    Whisper sometimes restarts an utterance after the forced prefix, or copies its prompt (the
    previous utterance) into a short new window. Such a copy is at least ``min_units`` long (or
    all of a shorter ``reference`` of two units or more) and is dropped.
    """
    ref = [comparable(u) for u in reference]
    got = [comparable(u) for u in tail]
    need = min(min_units, len(ref))
    if need < 2:
        return list(tail)
    best = 0
    for k in range(need, min(len(ref), len(got)) + 1):
        if got[:k] == ref[:k] or got[:k] == ref[-k:]:
            best = k
    return list(tail[best:])


def cut_restart(units: Sequence[str], min_units: int = 3, after_stop: int | None = None) -> int:
    """Length of ``units`` before the decoder starts over.

    A hypothesis that, from some point on, repeats its own opening (``min_units`` words or
    more), or repeats its first two or more words at once ("Is not. Is not."), is a loop of the
    decoder, not speech; everything from that point is cut. With ``after_stop``, a shorter
    repeat of the opening (that many units) also counts when it comes right after a full stop
    and ends the hypothesis: whisper filling the silence after a sentence with the window's own
    first words ("what your country can do for you. What your country"). Punctuation-only
    units are ignored when comparing.

    Returns:
        How many leading units to keep (``len(units)`` when there is no restart).
    """
    keyed = [(i, comparable(u)) for i, u in enumerate(units)]
    positions = [i for i, key in keyed if key]
    got = [key for _, key in keyed if key]
    for p in range(2, len(got)):
        k = 0
        while p + k < len(got) and got[p + k] == got[k]:
            k += 1
        if k >= min_units or (k >= p and got[:p] == got[p : 2 * p]):
            return positions[p]
        if after_stop is not None and k >= after_stop and p + k == len(got):
            if positions[p] and is_sentence_end(units[positions[p] - 1]):
                return positions[p]
    return len(units)


def continuation(committed: Sequence[str], hypothesis: Sequence[str]) -> list[str]:
    """The part of a free (unprefixed) ``hypothesis`` of a whole window that comes after the
    ``committed`` units: the hypothesis prefix closest to them in edit distance (ties go to the
    prefix as long as the committed units) is dropped."""
    from rapidfuzz.distance import Levenshtein

    vocab: dict[str, int] = {}
    a = [vocab.setdefault(comparable(u), len(vocab)) for u in committed]
    b = [vocab.setdefault(comparable(u), len(vocab)) for u in hypothesis]
    best = min(range(len(b) + 1), key=lambda j: (Levenshtein.distance(a, b[:j]), abs(j - len(a))))
    return list(hypothesis[best:])
