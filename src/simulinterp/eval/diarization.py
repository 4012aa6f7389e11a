"""Diarization error rate (DER) and Jaccard error rate (JER), through ``pyannote.metrics``.

Collar convention: ``collar_s`` is the forgiveness on each side of every reference boundary,
as in NIST's md-eval (``-c 0.25``) and the AMI/DIHARD literature, so ``collar_s=0.25`` removes
0.5 s around each boundary; ``pyannote.metrics`` takes the whole width (``collar=2*collar_s``).
Overlapping speech is scored (``skip_overlap=False``). Each file is scored over
``[0, duration]`` (its UEM), so reference turns past the end of an excerpt do not count.

DER = (missed speech + false alarm + speaker confusion) / reference speech (NIST RT-09);
JER is the mean over reference speakers of 1 - Jaccard index of their optimally mapped
hypothesis speaker (Ryant et al., DIHARD II, 2019).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulinterp.speakers.rttm import SpeakerTurn


@dataclass(frozen=True)
class DiarizationScores:
    """Scores over a set of recordings.

    Attributes:
        der: total DER over all files (a fraction; may exceed 1).
        jer: JER over all files (a fraction).
        collar_s: forgiveness each side of a reference boundary, seconds.
        missed_s, false_alarm_s, confusion_s, speech_s: DER's parts over all files, seconds.
        per_file: file id -> ``{"DER": ..., "JER": ...}``.
    """

    der: float
    jer: float
    collar_s: float
    missed_s: float
    false_alarm_s: float
    confusion_s: float
    speech_s: float
    per_file: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        """The ``scores.json`` form: ``DER``, ``JER``, ``collar_s`` and the parts."""
        return {
            "DER": self.der,
            "JER": self.jer,
            "collar_s": self.collar_s,
            "DER_missed_s": self.missed_s,
            "DER_false_alarm_s": self.false_alarm_s,
            "DER_confusion_s": self.confusion_s,
            "DER_speech_s": self.speech_s,
            "DER_per_file": self.per_file,
        }


def _annotation(turns: Sequence[SpeakerTurn], uri: str):
    from pyannote.core import Annotation, Segment

    ann = Annotation(uri=uri)
    for i, turn in enumerate(turns):
        if turn.duration_s > 0:
            ann[Segment(turn.start_s, turn.end_s), i] = turn.speaker
    return ann


def diarization_scores(
    references: Mapping[str, Sequence[SpeakerTurn]],
    hypotheses: Mapping[str, Sequence[SpeakerTurn]],
    durations_s: Mapping[str, float],
    *,
    collar_s: float = 0.25,
) -> DiarizationScores:
    """DER and JER of ``hypotheses`` against ``references``, file by file and in total.

    Args:
        references: file id -> reference turns.
        hypotheses: file id -> hypothesis turns (a missing file counts as all missed).
        durations_s: file id -> audio length, seconds (the scored region is ``[0, length]``).
        collar_s: forgiveness each side of a reference boundary, seconds.

    Raises:
        ImportError: ``pyannote.metrics`` is not installed (with the pip line).
        ValueError: a reference without a duration, or a negative collar.
    """
    try:
        from pyannote.core import Segment, Timeline
        from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate
    except ImportError as err:
        raise ImportError("DER needs pyannote.metrics: pip install pyannote.metrics") from err
    if collar_s < 0:
        raise ValueError(f"collar_s must be >= 0, got {collar_s}")
    der = DiarizationErrorRate(collar=2 * collar_s, skip_overlap=False)
    jer = JaccardErrorRate(collar=2 * collar_s, skip_overlap=False)
    per_file: dict[str, dict[str, float]] = {}
    for uri, ref_turns in references.items():
        if uri not in durations_s:
            raise ValueError(f"no duration for {uri!r}")
        uem = Timeline([Segment(0.0, float(durations_s[uri]))], uri=uri)
        ref = _annotation(ref_turns, uri)
        hyp = _annotation(hypotheses.get(uri, ()), uri)
        per_file[uri] = {"DER": der(ref, hyp, uem=uem), "JER": jer(ref, hyp, uem=uem)}
    parts = der.accumulated_
    return DiarizationScores(
        der=abs(der),
        jer=abs(jer),
        collar_s=collar_s,
        missed_s=float(parts["missed detection"]),
        false_alarm_s=float(parts["false alarm"]),
        confusion_s=float(parts["confusion"]),
        speech_s=float(parts["total"]),
        per_file=per_file,
    )
