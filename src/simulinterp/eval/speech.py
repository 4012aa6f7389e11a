"""Scoring speech input: quality, latency in milliseconds of source audio, and ASR error.

For speech, SimulEval measures a target unit's delay as the source audio (ms) read when it was
written, and its computation-aware delay as the time (ms) it was emitted, computation included.
AL, LAAL and StartOffset then follow their text definitions with |X| the source duration in
ms. ATD uses the same delays with target units of zero duration (the text convention of
:mod:`simulinterp.eval.latency`): the mean of each unit's delay minus the audio read by then.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

from simulinterp.eval.latency import latency_scores
from simulinterp.eval.quality import bleu, chrf
from simulinterp.events import SpeechCommit
from simulinterp.lang import split_units


@dataclass(frozen=True)
class SpeechInstance:
    """One evaluated recording (or one reference sentence of a long recording).

    Attributes:
        index: 0-based position in the list.
        source: the recording's path.
        transcript: the recognized source text (committed words).
        reference: the reference translation.
        prediction: the committed translation.
        delays: per target unit, source audio read when it was committed, ms.
        elapsed: per target unit, computation-aware emission time, ms.
        source_length: the recording's duration, ms.
        reference_length: reference units.
        prediction_length: target units.
        source_transcript: the gold transcript, when known.
    """

    index: int
    source: str
    transcript: str
    reference: str
    prediction: str
    delays: list[float]
    elapsed: list[float]
    source_length: float
    reference_length: int
    prediction_length: int
    source_transcript: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def unit_times(commits: Sequence[SpeechCommit], target_lang: str) -> tuple[str, list, list]:
    """The committed text and, per target unit, the delay and elapsed time (ms) of the commit
    in which the unit's last character arrived."""
    text = ""
    ends: list[tuple[int, float, float]] = []  # character end offset, audio ms, elapsed ms
    for c in commits:
        text += c.text
        ends.append((len(text), c.audio_s * 1000, c.elapsed_s * 1000))
    units = split_units(text, target_lang)
    delays, elapsed = [], []
    position, k = 0, 0
    for unit in units:
        position = text.index(unit, position) + len(unit)
        while k < len(ends) - 1 and ends[k][0] < position:
            k += 1
        delays.append(ends[k][1])
        elapsed.append(ends[k][2])
    return text.strip(), delays, elapsed


def speech_instance(
    index: int,
    source: str,
    commits: Sequence[SpeechCommit],
    transcript: str,
    reference: str,
    source_length_ms: float,
    target_lang: str,
    source_transcript: str | None = None,
) -> SpeechInstance:
    """An instance from a session's commits."""
    prediction, delays, elapsed = unit_times(commits, target_lang)
    return SpeechInstance(
        index=index,
        source=source,
        transcript=transcript,
        reference=reference,
        prediction=prediction,
        delays=delays,
        elapsed=elapsed,
        source_length=source_length_ms,
        reference_length=len(split_units(reference, target_lang)),
        prediction_length=len(delays),
        source_transcript=source_transcript,
    )


def score_speech(
    instances: Sequence[SpeechInstance], target_lang: str, source_lang: str
) -> dict[str, Any]:
    """Corpus BLEU/chrF, sentence-averaged latency (ms) and, with transcripts, WER or CER."""
    if not instances:
        return {"BLEU": 0.0, "chrF": 0.0, "instances": 0}
    hyps = [i.prediction for i in instances]
    refs = [i.reference for i in instances]
    scores: dict[str, Any] = {
        "BLEU": bleu(hyps, refs, target_lang),
        "chrF": chrf(hyps, refs, target_lang),
    }
    read = [latency_scores(i.delays, i.source_length, i.reference_length) for i in instances]
    for key in ("StartOffset", "AL", "LAAL", "ATD"):
        scores[key] = fmean(r[key] for r in read)
    timed = [latency_scores(i.elapsed, i.source_length, i.reference_length) for i in instances]
    for key in ("StartOffset", "AL", "LAAL"):
        scores[f"{key}_CA"] = fmean(t[key] for t in timed)
    gold = [i.source_transcript for i in instances]
    if all(g is not None and g.strip() for g in gold):
        key = "WER" if source_lang == "en" else "CER"
        scores[key] = asr_error([i.transcript for i in instances], gold, source_lang)  # type: ignore[arg-type]
    scores["instances"] = len(instances)
    return scores


def _normalize_en(text: str) -> str:
    kept = "".join(" " if unicodedata.category(c).startswith("P") and c != "'" else c for c in text)
    return " ".join(kept.lower().replace("'", "").split())


def _normalize_zh(text: str) -> str:
    from simulinterp.asr.text import to_simplified

    text = to_simplified(text)
    kept = [
        c for c in text if not unicodedata.category(c).startswith(("P", "Z")) and not c.isspace()
    ]
    return re.sub(r"\s+", "", "".join(kept)).lower()


def asr_error(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    """Corpus WER (en: words, lower case, no punctuation) or CER (zh: simplified characters,
    no punctuation or spaces), computed with jiwer."""
    import jiwer

    if lang == "en":
        pairs = [(_normalize_en(h), _normalize_en(r)) for h, r in zip(hyps, refs, strict=True)]
        pairs = [(h, r) for h, r in pairs if r]
        return float(jiwer.wer([r for _, r in pairs], [h for h, _ in pairs])) if pairs else 0.0
    pairs = [(_normalize_zh(h), _normalize_zh(r)) for h, r in zip(hyps, refs, strict=True)]
    pairs = [(h, r) for h, r in pairs if r]
    return float(jiwer.cer([r for _, r in pairs], [h for h, _ in pairs])) if pairs else 0.0
