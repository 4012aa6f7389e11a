"""Long-form scoring: re-segmenting one unsegmented output to the reference sentences.

A long recording yields one stream of translation, but BLEU and LAAL are defined per sentence.
StreamLAAL (Papi, Gaido, Negri and Bentivogli, 2024, "StreamAtt: Direct Streaming
Speech-to-Text Translation with Attention-based Audio History Selection", ACL 2024,
arXiv:2406.06097) scores such output in two steps, which this module implements:

1. Re-segmentation, as mwerSegmenter (Matusov et al., 2005, "Evaluating Machine Translation
   Output with Automatic Sentence Segmentation") does: the hypothesis is aligned to the
   concatenation of the reference sentences by a minimum edit distance (Levenshtein over
   units: English words, Chinese characters; case- and punctuation-insensitive), and cut
   where the alignment crosses a reference sentence boundary. Each hypothesis unit goes to
   the sentence of the reference unit it is matched or substituted with. Units inserted in a
   gap between two reference units stay with the sentence on the left, except where the gap
   is a sentence boundary and the hypothesis ends a sentence there (``.``, ``。``, ``?`` ...):
   the units after that sentence end go to the right. Punctuation-only units (a Chinese
   ``，``) take no part in the alignment and follow the unit before them.
2. Latency per sentence: each piece keeps its units' delays. StreamLAAL measures them from the
   start of the sentence's audio, with the sentence's duration as |X|; that needs where each
   sentence starts (``sentence_starts_ms``). Without it, delays stay relative to the start of
   the recording and |X| is the recording's duration (see :func:`resegment_instance`).

The alignment runs in rapidfuzz's bit-parallel Levenshtein (units hashed to integers), so
thousands of units take milliseconds.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace

from rapidfuzz.distance import Levenshtein

from simulinterp.eval.speech import SpeechInstance
from simulinterp.lang import is_sentence_end, split_units, unit_spans


def _key(unit: str) -> str:
    """A unit as compared: lower case, punctuation removed (may leave nothing)."""
    return "".join(c for c in unit.lower() if not unicodedata.category(c).startswith("P"))


def _matches(hyp: list[int], ref: list[int]) -> list[tuple[int, int]]:
    """Per hypothesis position: (ref position, 1) when matched or substituted with ref unit j,
    or (gap j, 0) when inserted in the gap before ref unit j (j = len(ref) at the end)."""
    out: list[tuple[int, int]] = []
    i = j = 0
    for op in Levenshtein.editops(hyp, ref):
        while i < op.src_pos:  # an unchanged run before the operation
            out.append((j, 1))
            i, j = i + 1, j + 1
        if op.tag == "replace":
            out.append((j, 1))
            i, j = i + 1, j + 1
        elif op.tag == "delete":  # a hypothesis unit with no reference unit
            out.append((j, 0))
            i += 1
        else:  # "insert": a reference unit missing from the hypothesis
            j += 1
    while i < len(hyp):
        out.append((j, 1))
        i, j = i + 1, j + 1
    return out


def _sentences(matches: list[tuple[int, int]], owner: list[int], ends: list[bool]) -> list[int]:
    """Reference sentence of each aligned hypothesis unit (see the module docstring)."""
    result = [0] * len(matches)
    k = 0
    while k < len(matches):
        j, matched = matches[k]
        if matched:
            result[k] = owner[j]
            k += 1
            continue
        stop = k  # the run of units inserted in gap j is k .. stop - 1
        while stop < len(matches) and matches[stop] == (j, 0):
            stop += 1
        left = owner[j - 1] if j > 0 else owner[0]
        right = owner[j] if j < len(owner) else owner[-1]
        cut = stop  # units before ``cut`` go left
        if j == 0:
            cut = k
        elif left != right:  # a sentence boundary: cut after the last sentence end
            closing = [m for m in range(max(k - 1, 0), stop) if ends[m]]
            cut = closing[-1] + 1 if closing else stop
        for m in range(k, stop):
            result[m] = left if m < cut else right
        k = stop
    return result


def resegment(
    hyp_units: Sequence[str], references: Sequence[str], target_lang: str
) -> list[list[int]]:
    """Split a hypothesis into one consecutive group of units per reference sentence.

    Args:
        hyp_units: the hypothesis as units (``split_units(prediction, target_lang)``).
        references: the reference sentences, in order.
        target_lang: ``"en"`` or ``"zh"``, the language of both.

    Returns:
        ``len(references)`` lists of hypothesis unit indices; concatenated they give
        ``range(len(hyp_units))``. A group may be empty.

    Raises:
        ValueError: when there are no references.
    """
    if not references:
        raise ValueError("resegmenting needs at least one reference sentence")
    groups: list[list[int]] = [[] for _ in references]
    owner: list[int] = []  # reference sentence of each (non-punctuation) reference unit
    vocab: dict[str, int] = {}
    ref: list[int] = []
    for s, sentence in enumerate(references):
        for unit in split_units(sentence, target_lang):
            key = _key(unit)
            if key:
                ref.append(vocab.setdefault(key, len(vocab)))
                owner.append(s)
    keys = [_key(u) for u in hyp_units]
    slot = []  # per hypothesis unit, the last content (non-punctuation) unit at or before it
    n = -1
    for key in keys:
        n += bool(key)
        slot.append(n)
    hyp = [vocab.setdefault(key, len(vocab)) for key in keys if key]
    if not hyp or not ref:  # nothing to align: everything to the first sentence
        groups[0] = list(range(len(hyp_units)))
        return groups
    ends = [False] * len(hyp)  # the content unit, or punctuation after it, closes a sentence
    for unit, n in zip(hyp_units, slot, strict=True):
        if n >= 0 and is_sentence_end(unit):
            ends[n] = True
    sentence_of = _sentences(_matches(hyp, ref), owner, ends)
    for i, n in enumerate(slot):  # leading punctuation goes with the first content unit
        groups[sentence_of[max(n, 0)]].append(i)
    return groups


def resegment_instance(
    inst: SpeechInstance,
    references: Sequence[str],
    sentence_starts_ms: Sequence[float] | None,
    target_lang: str,
) -> list[SpeechInstance]:
    """One instance per reference sentence of a long recording (StreamLAAL-style).

    Each piece holds the prediction units that :func:`resegment` gave to its sentence, with
    their delays and elapsed times, and ``sentence`` set to the sentence's position.

    * With ``sentence_starts_ms`` (where each reference sentence starts in the audio, e.g. the
      offsets of the recordings concatenated into a long one), delays and elapsed times count
      from the sentence's start, clipped at 0, and ``source_length`` is the sentence's
      duration (to the next start, the last one to the end of the recording). This is
      StreamLAAL.
    * Without them, delays and elapsed times stay relative to the start of the recording and
      every piece has the whole recording as ``source_length``. A later sentence's lag then
      includes all the audio before it, so these figures only compare systems on the same
      recording; give the starts wherever they are known.

    The recording's ``transcript`` and ``source_transcript`` stay on the first piece (the
    others get ``""``, or None when there is no gold transcript), so the corpus WER / CER of
    the pieces equals that of the recording.

    Args:
        inst: the instance of the whole recording.
        references: its reference sentences, in order.
        sentence_starts_ms: start of each sentence in the audio, ms, increasing, or None.
        target_lang: ``"en"`` or ``"zh"``.

    Raises:
        ValueError: when the starts do not match the references, are not increasing, or the
            last one is not before the end of the recording.
    """
    length = inst.source_length
    if sentence_starts_ms is not None:
        starts = [float(s) for s in sentence_starts_ms]
        if len(starts) != len(references):
            raise ValueError(f"{len(starts)} sentence starts for {len(references)} references")
        bounds = [*starts, length]
        if starts[0] < 0 or any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
            raise ValueError(
                f"sentence starts must increase from >= 0 and end before the recording's "
                f"end ({length} ms): {starts}"
            )
    spans = unit_spans(inst.prediction, target_lang)
    units = [inst.prediction[s.start : s.end].strip() for s in spans]
    if len(units) != len(inst.delays):
        raise ValueError(f"{len(units)} prediction units but {len(inst.delays)} delays")
    pieces = []
    for s, (reference, group) in enumerate(
        zip(references, resegment(units, references, target_lang), strict=True)
    ):
        offset, duration = 0.0, length
        if sentence_starts_ms is not None:
            offset, duration = bounds[s], bounds[s + 1] - bounds[s]
        text = inst.prediction[spans[group[0]].start : spans[group[-1]].end] if group else ""
        first = s == 0
        pieces.append(
            replace(
                inst,
                sentence=s,
                transcript=inst.transcript if first else "",
                source_transcript=(
                    inst.source_transcript if first or inst.source_transcript is None else ""
                ),
                reference=reference,
                prediction=text.strip(),
                delays=[max(inst.delays[i] - offset, 0.0) for i in group],
                elapsed=[max(inst.elapsed[i] - offset, 0.0) for i in group],
                source_length=duration,
                reference_length=len(split_units(reference, target_lang)),
                prediction_length=len(group),
            )
        )
    return pieces
