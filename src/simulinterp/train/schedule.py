"""READ/WRITE schedules for training: how many source units are read before each target unit.

A schedule is a list ``reads`` with one entry per target unit (English word, Chinese
character): ``reads[j]`` source units have been read when target unit ``j`` is written. It is
monotone non-decreasing, at least 1 and at most the source length, and the last target unit is
written after the whole source (the translator flushes at the sentence end).

- ``wait-k:K``: Ma et al. (2019), "STACL": write target unit ``j`` after ``K + j`` source units.
- ``align`` / ``align:SLACK``: each target unit waits for the source units a word alignment
  links it to (the "oracle" delays of :func:`simulinterp.alignment.oracle_delays`, as in
  Zhang & Feng's alignment-derived adaptive policies), plus ``SLACK`` units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simulinterp.alignment import oracle_delays

_SPEC_RE = re.compile(r"^(wait-k|align)(?::(\d+))?$")


@dataclass(frozen=True)
class ScheduleSpec:
    """A parsed ``--schedule`` value.

    Attributes:
        kind: ``wait-k`` or ``align``.
        k: the lag of wait-k, or the extra units an alignment schedule waits.
    """

    kind: str
    k: int

    @classmethod
    def parse(cls, text: str) -> ScheduleSpec:
        """Parse ``wait-k:3``, ``align`` or ``align:1``.

        Raises:
            ValueError: anything else.
        """
        match = _SPEC_RE.match(text.strip())
        if match is None:
            raise ValueError(
                f"unknown schedule {text!r}; use wait-k:K (e.g. wait-k:3) or align[:SLACK]"
            )
        kind, number = match.group(1), match.group(2)
        if kind == "wait-k" and number is None:
            raise ValueError("wait-k needs its lag, e.g. wait-k:3")
        k = int(number or 0)
        if kind == "wait-k" and k < 1:
            raise ValueError("wait-k needs k >= 1")
        return cls(kind, k)

    def __str__(self) -> str:
        return f"{self.kind}:{self.k}"

    @property
    def needs_alignment(self) -> bool:
        return self.kind == "align"


def wait_k_reads(k: int, source_length: int, target_length: int) -> list[int]:
    """Wait-k: target unit ``j`` is written after ``min(k + j, source_length)`` units."""
    reads = [min(k + j, source_length) for j in range(target_length)]
    return _finish(reads, source_length)


def alignment_reads(
    links: list[tuple[int, int]], source_length: int, target_length: int, slack: int = 0
) -> list[int]:
    """Each target unit waits for every source unit it is linked to, plus ``slack`` units.

    Args:
        links: 0-based ``(source_index, target_index)`` alignment links.
        source_length: number of source units.
        target_length: number of target units.
        slack: extra source units read before each write.
    """
    delays = oracle_delays(links, source_length, target_length)
    reads = [min(int(d) + slack, source_length) for d in delays]
    return _finish(reads, source_length)


def schedule_reads(
    spec: ScheduleSpec,
    source_length: int,
    target_length: int,
    links: list[tuple[int, int]] | None = None,
) -> list[int]:
    """The schedule ``spec`` for one sentence pair (``links`` for ``align``)."""
    if spec.kind == "wait-k":
        return wait_k_reads(spec.k, source_length, target_length)
    if links is None:
        raise ValueError("an alignment schedule needs the pair's word alignment")
    return alignment_reads(links, source_length, target_length, spec.k)


def _finish(reads: list[int], source_length: int) -> list[int]:
    """Monotone, at least one unit read, and the last unit written after the whole source."""
    out, previous = [], min(1, source_length)
    for r in reads:
        previous = max(previous, min(r, source_length))
        out.append(previous)
    if out:
        out[-1] = source_length
    return out
