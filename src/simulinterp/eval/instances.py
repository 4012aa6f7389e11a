"""Simulating a text stream through the translator and recording SimulEval-style instances."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from simulinterp.events import SourceUnit, TargetCommit
from simulinterp.lang import is_sentence_end, split_units, unit_spans
from simulinterp.translate.translator import SimultaneousTranslator

DEFAULT_UNITS_PER_S = {"en": 2.5, "zh": 4.0}


@dataclass(frozen=True)
class Instance:
    """One evaluated sentence, as written to ``instances.log``.

    Attributes:
        index: 0-based line number.
        source: the source line.
        reference: the reference translation.
        prediction: the committed translation.
        delays: per target unit, source units read when it was committed.
        elapsed: per target unit, computation-aware emission time in seconds.
        source_length: source units.
        source_length_s: source duration in seconds at the speaking rate.
        reference_length: reference units.
        prediction_length: target units.
    """

    index: int
    source: str
    reference: str
    prediction: str
    delays: list[float]
    elapsed: list[float]
    source_length: int
    source_length_s: float
    reference_length: int
    prediction_length: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def source_units(text: str, lang: str, seconds_per_unit: float) -> list[SourceUnit]:
    """Cut a line into source units arriving at the speaking rate (unit j at (j+1)·spu)."""
    units = split_units(text, lang)
    return [
        SourceUnit(u, i, arrival_s=(i + 1) * seconds_per_unit, sentence_end=is_sentence_end(u))
        for i, u in enumerate(units)
    ]


def unit_delays(
    commits: list[TargetCommit], target_lang: str
) -> tuple[str, list[float], list[float]]:
    """The final text and, per target unit, the delay and elapsed time of the commit holding it.

    A unit belongs to the commit that contains its last character.
    """
    text, ends = "", []
    for commit in commits:
        text += commit.text
        ends.append(len(text))
    delays, elapsed = [], []
    position = 0
    for span in unit_spans(text, target_lang):
        while ends[position] < span.end:
            position += 1
        delays.append(float(commits[position].source_consumed))
        elapsed.append(float(commits[position].elapsed_s))
    return text, delays, elapsed


def run_instance(
    translator: SimultaneousTranslator,
    index: int,
    source: str,
    reference: str,
    seconds_per_unit: float,
    *,
    keep_context: bool = False,
    scheduled: bool = False,
) -> Instance:
    """Stream ``source`` through a freshly reset translator, unit by unit.

    Args:
        keep_context: the line continues the previous one's document: the translator keeps
            the earlier sentence pairs as context.
        scheduled: units that arrive while the translator is still computing are read in one
            batch with a single decision (a live translator's behaviour); otherwise the policy
            is consulted at every unit, however long the computing takes.
    """
    cfg = translator.config
    translator.reset(keep_context=keep_context)
    units = source_units(source, cfg.source_lang, seconds_per_unit)
    if scheduled:
        translator.feed_scheduled(units)
    else:
        for unit in units:
            translator.feed(unit)
    translator.finish()
    prediction, delays, elapsed = unit_delays(translator.commits, cfg.target_lang)
    return Instance(
        index=index,
        source=source,
        reference=reference,
        prediction=prediction.strip(),
        delays=delays,
        elapsed=elapsed,
        source_length=len(units),
        source_length_s=len(units) * seconds_per_unit,
        reference_length=len(split_units(reference, cfg.target_lang)),
        prediction_length=len(delays),
    )
