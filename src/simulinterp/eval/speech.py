"""Scoring speech input: quality, latency in milliseconds of source audio, and ASR error.

Latency follows SimulEval for speech input. Target unit i (an English word or a Chinese
character) has two times, both in milliseconds from the start of the recording:

* its delay d_i: the source audio consumed when the commit holding it was decided;
* its elapsed time: when that commit was emitted on the computation-aware clock (audio
  arriving in real time, computation taking the time it really took).

AL, LAAL and StartOffset apply their text definitions (:mod:`simulinterp.eval.latency`) with
|X| = the recording's duration in ms; the ``_CA`` variants use the elapsed times instead of the
delays. ATD follows SimulEval's ATDScorer for speech input with text output: the audio read
between two successive distinct delays is cut into 300 ms pseudo source words (the remainder
is one shorter word), target units last 0 ms, and ATD averages each unit's delay minus the end
time of the source word it is aligned with (Kano et al., 2023, arXiv:2211.13173).

Scores are averaged over instances with output: as SimulEval does, an instance with no output
has no latency and is left out of the means (it still counts for BLEU and chrF).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

from simulinterp.eval.latency import (
    average_lagging,
    average_token_delay,
    length_adaptive_average_lagging,
    start_offset,
)
from simulinterp.eval.quality import bleu, chrf
from simulinterp.eval.terms import leak_rate, term_counts
from simulinterp.events import SpeechCommit
from simulinterp.lang import check_language, join_units, split_units, unit_spans

ATD_SOURCE_WORD_MS = 300.0  # SimulEval's pseudo-word length for speech input


@dataclass(frozen=True)
class SpeechInstance:
    """One evaluated recording (or one reference sentence of a long one): a line of
    ``instances.log``.

    Attributes:
        index: 0-based position of the recording in the evaluated list.
        source: the recording's path.
        transcript: the recognized source text (committed words).
        reference: the reference translation.
        prediction: the committed translation.
        delays: per target unit, source audio consumed when it was committed, ms.
        elapsed: per target unit, computation-aware emission time, ms.
        source_length: the recording's (or the sentence's) duration, ms.
        reference_length: reference length in target units.
        prediction_length: prediction length in target units (``len(delays)``).
        source_transcript: the gold transcript, when known (for WER / CER).
        sentence: for a long recording re-segmented to its reference sentences
            (:mod:`simulinterp.eval.resegment`), the 0-based sentence; None otherwise.
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
    sentence: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def unit_times(
    commits: Sequence[SpeechCommit], target_lang: str
) -> tuple[str, list[float], list[float]]:
    """The committed translation and, per target unit, its delay and elapsed time in ms.

    The commits' texts are joined and split into units (:func:`simulinterp.lang.split_units`);
    a unit takes the times of the commit in which its last character arrived, so an English
    word split across two commits (``"hel"`` + ``"lo"``) counts from the second.

    Args:
        commits: the session's commits, in order.
        target_lang: ``"en"`` or ``"zh"``.

    Returns:
        (text with surrounding spaces stripped, delays in ms, elapsed times in ms).
    """
    text, ends = "", []
    for commit in commits:
        text += commit.text
        ends.append(len(text))
    delays: list[float] = []
    elapsed: list[float] = []
    k = 0
    for span in unit_spans(text, target_lang):
        while ends[k] < span.end:
            k += 1
        delays.append(commits[k].audio_s * 1000.0)
        elapsed.append(commits[k].elapsed_s * 1000.0)
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
    """The instance of one recording from its session's commits.

    Args:
        index: position of the recording in the list.
        source: the recording's path.
        commits: the session's commits, in order.
        transcript: the recognized source text.
        reference: the reference translation.
        source_length_ms: the recording's duration, ms.
        target_lang: ``"en"`` or ``"zh"``.
        source_transcript: the gold transcript, when known.
    """
    prediction, delays, elapsed = unit_times(commits, target_lang)
    return SpeechInstance(
        index=index,
        source=source,
        transcript=transcript,
        reference=reference,
        prediction=prediction,
        delays=delays,
        elapsed=elapsed,
        source_length=float(source_length_ms),
        reference_length=len(split_units(reference, target_lang)),
        prediction_length=len(delays),
        source_transcript=source_transcript,
    )


def atd_source_times(delays: Sequence[float], word_ms: float = ATD_SOURCE_WORD_MS) -> list[float]:
    """End times (ms) of SimulEval's pseudo source words for speech ATD.

    The audio read between two successive distinct delays (and from 0 to the first) is cut
    into ``word_ms`` pieces, the remainder being one shorter piece.

    Args:
        delays: d_i per target unit, ms, non-decreasing.
        word_ms: length of a pseudo word, ms.
    """
    times: list[float] = []
    previous = 0.0
    for d in sorted(set(float(x) for x in delays)):
        if d <= previous:
            continue
        whole, rest = divmod(d - previous, word_ms)
        times += [previous + word_ms * (k + 1) for k in range(int(whole))]
        if rest:
            times.append(d)
        previous = d
    return times


def speech_latency(instance: SpeechInstance) -> dict[str, float]:
    """The latency figures of one instance, in ms.

    Returns:
        ``StartOffset``, ``AL``, ``LAAL``, ``ATD`` on the delays and ``StartOffset_CA``,
        ``AL_CA``, ``LAAL_CA`` on the elapsed times; all 0.0 for empty output.
    """
    d, e = instance.delays, instance.elapsed
    length, ref_len = instance.source_length, instance.reference_length
    return {
        "StartOffset": start_offset(d),
        "AL": average_lagging(d, length),
        "LAAL": length_adaptive_average_lagging(d, length, ref_len),
        "ATD": average_token_delay(d, length, source_times=atd_source_times(d), target_duration=0),
        "StartOffset_CA": start_offset(e),
        "AL_CA": average_lagging(e, length),
        "LAAL_CA": length_adaptive_average_lagging(e, length, ref_len),
    }


LATENCY_KEYS = ("StartOffset", "AL", "LAAL", "ATD", "StartOffset_CA", "AL_CA", "LAAL_CA")


def score_speech(
    instances: Sequence[SpeechInstance],
    target_lang: str,
    source_lang: str,
    terms: Sequence[Sequence[str]] | None = None,
    allowed: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Scores of a speech run: corpus quality, mean latency (ms), ASR error, leaks and terms.

    Args:
        instances: the evaluated instances.
        target_lang: selects the BLEU tokenizer (``zh`` for Chinese).
        source_lang: ``"en"`` gives ``WER``, ``"zh"`` gives ``CER``.
        terms: per recording (``instance.index``), the target terms its translation must
            hold; adds ``term_accuracy`` (over recordings, the sentences of a long one
            joined) and ``terms``.
        allowed: per recording, strings that are never leaks (glossary targets).

    Returns:
        ``BLEU`` and ``chrF`` (corpus, 0-100); ``StartOffset``, ``AL``, ``LAAL``, ``ATD``,
        ``StartOffset_CA``, ``AL_CA``, ``LAAL_CA`` (ms, averaged over the instances with
        output, 0.0 when none has any); ``WER`` or ``CER`` (a fraction, corpus-level, see
        :func:`asr_error`) when every instance has a ``source_transcript`` and they hold
        words; ``leak_rate`` (share of instances whose prediction leaks a word of the
        recognized source, :mod:`simulinterp.leaks`); ``instances`` (how many were scored).
    """
    hyps = [i.prediction for i in instances]
    refs = [i.reference for i in instances]
    scores: dict[str, Any] = {
        "BLEU": bleu(hyps, refs, target_lang),
        "chrF": chrf(hyps, refs, target_lang),
    }
    ok = [allowed[i.index] for i in instances] if allowed is not None else None
    scores["leak_rate"] = leak_rate(hyps, [i.transcript for i in instances], target_lang, ok)
    if terms is not None:
        found, total = _recording_terms(instances, terms, target_lang)
        scores["term_accuracy"] = found / total if total else None
        scores["terms"] = total
    figures = [speech_latency(i) for i in instances if i.delays]
    for key in LATENCY_KEYS:
        scores[key] = fmean(f[key] for f in figures) if figures else 0.0
    gold = [i.source_transcript for i in instances]
    if instances and all(g is not None for g in gold):
        lang = check_language(source_lang)
        golds = [str(g) for g in gold]
        if any(_tokens(g, lang) for g in golds):
            key = "WER" if lang == "en" else "CER"
            scores[key] = asr_error([i.transcript for i in instances], golds, lang)
    scores["instances"] = len(instances)
    return scores


def _recording_terms(
    instances: Sequence[SpeechInstance], terms: Sequence[Sequence[str]], target_lang: str
) -> tuple[int, int]:
    """(found, required) terms over recordings, each recording's sentences joined."""
    outputs: dict[int, list[str]] = {}
    for instance in instances:
        outputs.setdefault(instance.index, []).append(instance.prediction)
    indices = sorted(outputs)
    joined = [join_units(outputs[k], target_lang) for k in indices]
    return term_counts(joined, [terms[k] for k in indices], target_lang)


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _tokens(text: str, lang: str) -> list[str]:
    """Normalized tokens: English words, or Chinese characters (see :func:`asr_error`)."""
    if lang == "zh":
        import zhconv

        simplified = str(zhconv.convert(text, "zh-cn")).lower()
        return [c for c in simplified if not (c.isspace() or _is_punctuation(c))]
    text = text.lower().replace("'", "").replace("\u2019", "")
    return "".join(" " if _is_punctuation(c) else c for c in text).split()


def asr_error(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    """Corpus word error rate (English) or character error rate (Chinese), through jiwer.

    Normalization, applied to both sides: English is lower-cased, apostrophes are dropped
    (``don't`` = ``dont``), other punctuation becomes a space and whitespace is collapsed;
    Chinese is converted to simplified characters (zhconv), lower-cased, and stripped of
    punctuation and spaces, and the error is counted on characters. The rate is corpus-level:
    (substitutions + deletions + insertions) over all pairs / reference tokens over all pairs,
    so a pair with an empty reference adds its hypothesis tokens as insertions.

    Args:
        hyps: recognized texts.
        refs: gold transcripts, one per hypothesis.
        lang: ``"en"`` (WER) or ``"zh"`` (CER).

    Returns:
        The error rate as a fraction (0.0 = perfect; may exceed 1.0).

    Raises:
        ValueError: when the lists differ in length, or the references hold no token at all
            while the hypotheses do (the rate is undefined).
    """
    import jiwer

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    code = check_language(lang)
    pairs = [(_tokens(h, code), _tokens(r, code)) for h, r in zip(hyps, refs, strict=True)]
    errors = sum(len(h) for h, r in pairs if not r)
    scored = [(" ".join(h), " ".join(r)) for h, r in pairs if r]
    total = 0
    if scored:
        out = jiwer.process_words([r for _, r in scored], [h for h, _ in scored])
        errors += out.substitutions + out.deletions + out.insertions
        total = out.substitutions + out.deletions + out.hits
    if total == 0:
        if errors:
            raise ValueError("the references hold no words; the error rate is undefined")
        return 0.0
    return errors / total
