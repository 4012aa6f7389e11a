"""Labels to turns (pure): regions split by labels, slivers absorbed, one speaker's turns joined."""

from __future__ import annotations

import pytest

from simulinterp.speakers.rttm import SpeakerTurn as T
from simulinterp.speakers.turns import LabelSpan as L
from simulinterp.speakers.turns import turns_from_labels


@pytest.mark.parametrize(
    ("regions", "spans", "tail", "expected"),
    [
        # one region, two labels
        ([(0, 4)], [L(0, 2, 0), L(2, 4, 1)], 0, [T(0, 2, "S1"), T(2, 4, "S2")]),
        # a 0.2 s sliver at a region's edge joins its neighbour
        ([(1.8, 5)], [L(0, 2, 0), L(2, 5, 1)], 0, [T(1.8, 5, "S2")]),
        # speech before the first label takes its speaker, after the last the current one
        ([(0.5, 3), (4, 6)], [L(1, 3, 1)], 0, [T(0.5, 3, "S2"), T(4, 6, "S1")]),
        # one speaker's turns 0.5 s apart are one turn; other speakers' are not joined
        ([(0, 2), (2.5, 4)], [L(0, 2.2, 0), L(2.2, 4, 0)], 0, [T(0, 4, "S1")]),
        # no speech: no turn
        ([], [L(0, 2, 0)], 0, []),
        # no label yet: the current speaker
        ([(0, 1)], [], 2, [T(0, 1, "S3")]),
    ],
)
def test_turns_from_labels(regions, spans, tail, expected):
    assert turns_from_labels(regions, spans, tail, gap_s=1.0) == expected
