"""``simulinterp eval``: stream every line through the translator and score it.

Writes ``instances.log`` (one JSON object per line, SimulEval-style) as it goes, so an
interrupted run keeps every finished instance, then ``scores.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from simulinterp.eval.instances import Instance, run_instance
from simulinterp.eval.latency import average_lagging, latency_scores
from simulinterp.eval.quality import bleu, chrf
from simulinterp.eval.terms import leak_rate, term_counts
from simulinterp.lang import split_units
from simulinterp.translate.glossary import Glossary
from simulinterp.translate.translator import SimultaneousTranslator

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class EvalData:
    """Line-aligned sources and references.

    Attributes:
        docs: the document of each line (e.g. a talk id), when known: consecutive lines of one
            document are one stream, so each line sees the earlier ones as context.
        terms: per line, the target terms its translation must hold (``term_accuracy``).
        glossaries: per line, the glossary the translator uses for it.
    """

    sources: list[str]
    references: list[str]
    source_lang: str
    target_lang: str
    docs: list[str] | None = None
    terms: list[list[str]] | None = None
    glossaries: list[Glossary] | None = None

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.references):
            raise ValueError(
                f"{len(self.sources)} source lines but {len(self.references)} references"
            )
        for name, values in (("document ids", self.docs), ("term lists", self.terms)):
            if values is not None and len(values) != len(self.sources):
                raise ValueError(f"{len(values)} {name} for {len(self.sources)} lines")
        if self.glossaries is not None and len(self.glossaries) != len(self.sources):
            raise ValueError(f"{len(self.glossaries)} glossaries for {len(self.sources)} lines")

    def allowed(self, index: int) -> tuple[str, ...]:
        """Strings of line ``index`` that are never leaks: its glossary and required terms."""
        glossary = self.glossaries[index].targets if self.glossaries else ()
        return (*glossary, *(self.terms[index] if self.terms else ()))


def run_instances(
    translator: SimultaneousTranslator,
    data: EvalData,
    seconds_per_unit: float,
    log_path: Path | None = None,
    progress: Progress | None = None,
    *,
    scheduled: bool = False,
) -> Iterator[Instance]:
    """Translate every line, yielding instances and appending them to ``log_path``.

    With ``data.docs``, a line of the same document as the line before keeps the translator's
    context (the earlier sentence pairs); see :func:`run_instance` for ``scheduled``.
    """
    with log_path.open("w", encoding="utf-8") if log_path else nullcontext() as log:
        for index, (source, reference) in enumerate(
            zip(data.sources, data.references, strict=True)
        ):
            if not source.strip():
                logger.warning("line %d of the source is empty; its prediction is empty", index + 1)
            if data.glossaries is not None:
                translator.glossary = data.glossaries[index]
            same_doc = bool(data.docs) and index > 0 and data.docs[index] == data.docs[index - 1]
            instance = run_instance(
                translator,
                index,
                source,
                reference,
                seconds_per_unit,
                keep_context=same_doc,
                scheduled=scheduled,
            )
            if log is not None:
                log.write(json.dumps(instance.to_json(), ensure_ascii=False) + "\n")
                log.flush()
            if progress:
                progress(1)
            yield instance


def score_instances(
    instances: Sequence[Instance],
    target_lang: str,
    terms: Sequence[Sequence[str]] | None = None,
    allowed: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Corpus BLEU/chrF, sentence-averaged latency (in units and computation-aware),
    ``leak_rate`` and, with ``terms``, ``term_accuracy``.

    Args:
        instances: the evaluated lines.
        target_lang: ``en`` or ``zh``.
        terms: per instance, the target terms its prediction must hold
            (:func:`simulinterp.eval.terms.term_found`); adds ``term_accuracy`` (None when
            no term is required) and ``terms`` (how many are).
        allowed: per instance, strings that are never leaks (glossary targets).
    """
    if not instances:
        return {"BLEU": 0.0, "chrF": 0.0, "instances": 0}
    hyps = [i.prediction for i in instances]
    refs = [i.reference for i in instances]
    scores: dict[str, Any] = {
        "BLEU": bleu(hyps, refs, target_lang),
        "chrF": chrf(hyps, refs, target_lang),
    }
    scores["leak_rate"] = leak_rate(hyps, [i.source for i in instances], target_lang, allowed)
    if terms is not None:
        found, total = term_counts(hyps, terms, target_lang)
        scores["term_accuracy"] = found / total if total else None
        scores["terms"] = total
    units = [latency_scores(i.delays, i.source_length, i.reference_length) for i in instances]
    for key in ("AL", "LAAL", "DAL", "AP", "ATD", "StartOffset"):
        scores[key] = fmean(u[key] for u in units)
    timed = [latency_scores(i.elapsed, i.source_length_s, i.reference_length) for i in instances]
    for key in ("AL", "LAAL", "StartOffset"):
        scores[f"{key}_CA"] = fmean(t[key] for t in timed)
    scores["instances"] = len(instances)
    return scores


def oracle_al(data: EvalData) -> float:
    """AL of emitting each reference unit as soon as its aligned source units are read."""
    from simulinterp.alignment import align_corpus, oracle_delays

    sources = [split_units(s, data.source_lang) for s in data.sources]
    targets = [split_units(r, data.target_lang) for r in data.references]
    links = align_corpus(sources, targets)
    values = [
        average_lagging(oracle_delays(pair, len(src), len(tgt)), len(src))
        for pair, src, tgt in zip(links, sources, targets, strict=True)
        if src and tgt
    ]
    return fmean(values) if values else 0.0


def evaluate(
    translator: SimultaneousTranslator,
    data: EvalData,
    seconds_per_unit: float,
    output: Path | None = None,
    progress: Progress | None = None,
    *,
    scheduled: bool = False,
) -> tuple[dict[str, Any], list[Instance]]:
    """Run and score one policy setting; on Ctrl-C, score what finished and re-raise.

    Returns:
        The scores (with ``ms_per_unit``, the computation per source unit) and the instances.
    """
    log_path = None
    if output:
        output.mkdir(parents=True, exist_ok=True)
        log_path = output / "instances.log"
    instances: list[Instance] = []
    started = time.perf_counter()
    try:
        runs = run_instances(
            translator, data, seconds_per_unit, log_path, progress, scheduled=scheduled
        )
        for instance in runs:
            instances.append(instance)
    except KeyboardInterrupt:
        scores = _summary(instances, data, started)
        scores["interrupted"] = True
        if output:
            write_scores(output, scores)
        raise
    return _summary(instances, data, started), instances


def _summary(instances: list[Instance], data: EvalData, started: float) -> dict[str, Any]:
    terms = [data.terms[i.index] for i in instances] if data.terms is not None else None
    allowed = [data.allowed(i.index) for i in instances]
    scores = score_instances(instances, data.target_lang, terms, allowed)
    units = sum(i.source_length for i in instances)
    scores["ms_per_unit"] = 1000 * (time.perf_counter() - started) / max(1, units)
    return scores


def write_scores(output: Path, scores: dict[str, Any]) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n")


def plot_curve(
    points: list[dict[str, Any]],
    path: Path,
    *,
    offline_bleu: float | None,
    oracle: float | None,
    latency_key: str = "LAAL",
    title: str = "",
) -> None:
    """Draw BLEU against latency per policy, with offline BLEU and oracle AL marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for policy in dict.fromkeys(p["policy"] for p in points):
        mine = sorted((p for p in points if p["policy"] == policy), key=lambda p: p[latency_key])
        ax.plot([p[latency_key] for p in mine], [p["BLEU"] for p in mine], "o-", label=policy)
        for p in mine:
            ax.annotate(
                str(p.get("knob")),
                (p[latency_key], p["BLEU"]),
                fontsize=8,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if offline_bleu is not None:
        ax.axhline(
            offline_bleu, color="gray", linestyle="--", label=f"offline ({offline_bleu:.1f})"
        )
    if oracle is not None:
        ax.axvline(oracle, color="green", linestyle=":", label=f"oracle AL ({oracle:.1f})")
    ax.set_xlabel(f"{latency_key} (source units)")
    ax.set_ylabel("BLEU")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
