"""From the tracker's labels to speaker turns (pure): what ``diarize`` writes as RTTM.

The tracker labels audio on a grid of ``hop_s`` (:class:`LabelSpan`, contiguous from the first
speech on); the VAD gives speech regions. A turn is a speech region's stretch under one label:
a piece shorter than ``MIN_PIECE_S`` joins its longer neighbour in the region (pauses fall
anywhere on the grid), speech before the first label takes its speaker and speech past the
last one the current speaker, and one speaker's turns less than ``gap_s`` apart are joined.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from simulinterp.speakers.rttm import SpeakerTurn, merge_turns

MIN_PIECE_S = 0.4
"""A labelled piece of a speech region shorter than this joins its neighbour in the region."""


@dataclass(frozen=True)
class LabelSpan:
    """Audio ``[start_s, end_s)`` the tracker gave to ``speaker`` (0-based)."""

    start_s: float
    end_s: float
    speaker: int


def speaker_label(speaker: int) -> str:
    """The display label of speaker ``speaker`` (0-based): ``S1``, ``S2``..."""
    return f"S{speaker + 1}"


def turns_from_labels(
    regions: Sequence[tuple[float, float]],
    spans: Sequence[LabelSpan],
    tail_speaker: int,
    *,
    gap_s: float = 1.0,
) -> list[SpeakerTurn]:
    """Speaker turns of speech ``regions`` (start, end seconds) under the label ``spans``.

    Args:
        regions: speech regions, in order.
        spans: the labels, in order and contiguous.
        tail_speaker: the speaker of speech past the last label (the current one).
        gap_s: one speaker's turns less than this apart are one turn.
    """
    ends = [span.end_s for span in spans]
    out: list[SpeakerTurn] = []
    for start, end in regions:
        pieces = []
        for span in spans[bisect.bisect_right(ends, start) :]:
            if span.start_s >= end:
                break
            a, b = max(start, span.start_s), min(end, span.end_s)
            if b > a:
                pieces.append(SpeakerTurn(a, b, speaker_label(span.speaker)))
        if spans and start < spans[0].start_s:  # speech before the first label
            label = speaker_label(spans[0].speaker)
            pieces.insert(0, SpeakerTurn(start, min(end, spans[0].start_s), label))
        covered = ends[-1] if ends else 0.0
        if end > covered:
            pieces.append(SpeakerTurn(max(start, covered), end, speaker_label(tail_speaker)))
        out += _absorb_slivers(merge_turns(pieces), MIN_PIECE_S)
    return merge_turns(out, gap_s=gap_s)


def _absorb_slivers(pieces: list[SpeakerTurn], min_s: float) -> list[SpeakerTurn]:
    """Consecutive pieces of one speech region, with each piece shorter than ``min_s`` given
    to the longer of its neighbours."""
    pieces = list(pieces)
    while len(pieces) > 1:
        short = [i for i, p in enumerate(pieces) if p.duration_s < min_s]
        if not short:
            break
        i = min(short, key=lambda k: pieces[k].duration_s)
        left = pieces[i - 1] if i > 0 else None
        right = pieces[i + 1] if i + 1 < len(pieces) else None
        if right is None or (left is not None and left.duration_s >= right.duration_s):
            assert left is not None
            pieces[i - 1 : i + 1] = [SpeakerTurn(left.start_s, pieces[i].end_s, left.speaker)]
        else:
            pieces[i : i + 2] = [SpeakerTurn(pieces[i].start_s, right.end_s, right.speaker)]
        pieces = merge_turns(pieces)
    return pieces
