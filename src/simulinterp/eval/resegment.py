"""Re-segmenting a long-form output to reference sentences (StreamLAAL-style).

A long recording with many sentences yields one unsegmented translation. Following Papi et al.
(2024, "StreamAtt: Direct Streaming Speech-to-Text Translation with Attention-based Audio
History Selection", which defines StreamLAAL), the hypothesis is split into as many pieces as
there are reference sentences by a minimum edit-distance alignment to the concatenated
references, as mwerSegmenter does: each hypothesis unit goes to the reference sentence of the
reference unit it aligns with (an inserted unit goes with the unit before it). Each piece is then
scored as an instance with its own delays.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace

from rapidfuzz.distance import Levenshtein

from simulinterp.eval.speech import SpeechInstance
from simulinterp.lang import join_units, split_units


def _key(unit: str) -> str:
    return "".join(c for c in unit.lower() if not unicodedata.category(c).startswith("P"))


def resegment(
    hyp_units: Sequence[str], references: Sequence[str], target_lang: str
) -> list[list[int]]:
    """Hypothesis unit indices per reference sentence (consecutive groups, maybe empty)."""
    owner: list[int] = []  # reference sentence of each reference unit
    ref_units: list[str] = []
    for s, ref in enumerate(references):
        units = split_units(ref, target_lang)
        ref_units += units
        owner += [s] * len(units)
    groups: list[list[int]] = [[] for _ in references]
    if not hyp_units or not references:
        return groups
    if not ref_units:
        groups[-1] = list(range(len(hyp_units)))
        return groups
    vocab: dict[str, int] = {}
    hyp = [vocab.setdefault(_key(u), len(vocab)) for u in hyp_units]
    ref = [vocab.setdefault(_key(u), len(vocab)) for u in ref_units]
    assigned = [0] * len(hyp_units)
    for op in Levenshtein.opcodes(hyp, ref):
        for k, i in enumerate(range(op.src_start, op.src_end)):
            if op.tag in ("equal", "replace"):
                j = min(op.dest_start + k, op.dest_end - 1) if op.dest_end > op.dest_start else -1
            else:  # inserted in the hypothesis: stays with the reference unit before it
                j = op.dest_start - 1
            assigned[i] = owner[max(j, 0)] if j >= 0 else 0
    for i in range(1, len(assigned)):  # groups are consecutive
        assigned[i] = max(assigned[i], assigned[i - 1])
    for i, s in enumerate(assigned):
        groups[s].append(i)
    return groups


def resegment_instance(
    instance: SpeechInstance,
    references: Sequence[str],
    sentence_starts_ms: Sequence[float] | None,
    target_lang: str,
) -> list[SpeechInstance]:
    """One instance per reference sentence.

    With ``sentence_starts_ms`` (where each sentence starts in the audio), a piece's delays and
    elapsed times count from its sentence's start (clipped at 0) and its source length is the
    sentence's duration, as StreamLAAL does. Without them, delays stay relative to the start of
    the recording and every piece has the whole duration.
    """
    units = split_units(instance.prediction, target_lang)
    groups = resegment(units, references, target_lang)
    pieces = []
    for s, (ref, group) in enumerate(zip(references, groups, strict=True)):
        offset, length = 0.0, instance.source_length
        if sentence_starts_ms is not None:
            offset = sentence_starts_ms[s]
            end = sentence_starts_ms[s + 1] if s + 1 < len(references) else instance.source_length
            length = max(end - offset, 1.0)
        pieces.append(
            replace(
                instance,
                index=instance.index * 10_000 + s,
                reference=ref,
                prediction=join_units([units[i] for i in group], target_lang),
                delays=[max(instance.delays[i] - offset, 0.0) for i in group],
                elapsed=[max(instance.elapsed[i] - offset, 0.0) for i in group],
                source_length=length,
                reference_length=len(split_units(ref, target_lang)),
                prediction_length=len(group),
            )
        )
    return pieces
