"""Scoring speech output: when each target word is heard, and what a listener understands.

A target unit's delay is when its audio plays in the output stream (SimulEval's rule for speech
output), in ms from the start of the recording. The spoken clauses come from the speech sink
(:class:`~simulinterp.events.SpokenSegment`); within a clause the units are spread over its
audio in proportion to their characters, the synthesizer's durations at clause level. It works
for any target language (SimulEval's forced aligner is English-only).

Two timelines, as for text output:

* ``_CA`` (computation-aware): the clauses as the run placed them: a clause is ready when its
  commit was emitted on the computation-aware clock and synthesized, and it waits for the one
  before it to end;
* plain: the same clauses and durations replayed as if computing took no time: a clause is
  ready when the source audio its commit needed had been heard.

Figures (ms unless named ``_s``): ``StartOffset`` (the first unit heard), ``EndOffset`` (the end
of the output minus the end of the source), ``AL``, ``LAAL`` and ``ATD`` on the unit times,
their ``_CA`` variants, and ``lag_drift_s``: the mean lag (clause start minus the end of its
source) over the last minute minus that over the first, for recordings of two minutes or more;
``speech_drift_s`` the same for the speech side alone (audio start minus the commit of its text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import fmean
from typing import Any

from simulinterp.eval.latency import (
    average_lagging,
    average_token_delay,
    length_adaptive_average_lagging,
)
from simulinterp.eval.speech import atd_source_times
from simulinterp.events import SpokenSegment
from simulinterp.lang import split_units
from simulinterp.tts.scheduler import OutputScheduler, SchedulerConfig

DRIFT_WINDOW_S = 60.0


@dataclass(frozen=True)
class SpokenRecording:
    """The interpretation speech of one evaluated recording.

    Attributes:
        index: the recording's position in the list.
        spoken: the clauses as placed on the output timeline.
        source_length_ms: the recording's duration.
        reference: the reference translation (sentences joined).
        prediction: the committed translation (text).
        wav: where the interpretation audio was written.
    """

    index: int
    spoken: tuple[SpokenSegment, ...]
    source_length_ms: float
    reference: str
    prediction: str
    wav: str = ""


def _clauses(spoken: Sequence[SpokenSegment]) -> list[list[SpokenSegment]]:
    groups: dict[int, list[SpokenSegment]] = {}
    for s in spoken:
        groups.setdefault(s.clause, []).append(s)
    return [groups[k] for k in sorted(groups)]


def _spans(parts: list[tuple[float, float]], units: list[str]) -> list[float]:
    """Onset of each unit, spread over the clause's audio parts by character share."""
    lengths = [end - start for start, end in parts]
    total, weights = sum(lengths), [max(len(u), 1) for u in units]
    out, done = [], 0
    for w in weights:
        at = done / sum(weights) * total  # seconds into the clause's audio
        k = 0
        while k < len(parts) - 1 and at >= lengths[k]:
            at -= lengths[k]
            k += 1
        out.append(parts[k][0] + min(at, lengths[k]))
        done += w
    return out


def replayed(spoken: Sequence[SpokenSegment], config: SchedulerConfig) -> list[tuple[float, float]]:
    """(start_s, end_s) of each clause part with computation taking no time."""
    scheduler = OutputScheduler(replace(config, max_lag_s=1e9))  # the run skipped what it skipped
    out = []
    for s in spoken:
        start = scheduler.place(s.commit_audio_s, s.end_s - s.start_s, s.source_end_s)
        assert start is not None
        out.append((start, start + s.end_s - s.start_s))
    return out


def output_unit_times(
    spoken: Sequence[SpokenSegment],
    lang: str,
    *,
    computation_aware: bool = True,
    config: SchedulerConfig | None = None,
) -> list[float]:
    """When each target unit starts to be heard, ms, in output order."""
    if computation_aware:
        times = [(s.start_s, s.end_s) for s in spoken]
    else:
        times = replayed(spoken, config or SchedulerConfig())
    where = {id(s): t for s, t in zip(spoken, times, strict=True)}
    out: list[float] = []
    for group in _clauses(spoken):
        units = split_units(group[0].text, lang)
        if units:
            out += [t * 1000.0 for t in _spans([where[id(s)] for s in group], units)]
    return out


def lag_drift_s(
    spoken: Sequence[SpokenSegment], source_length_s: float, *, speech_only: bool = False
) -> float | None:
    """Mean lag over the last minute minus that over the first; None under two minutes.

    With ``speech_only`` the lag is the speech side's alone: audio start minus the commit of
    the clause's text (queue and synthesis), without the text's own delay.
    """
    if source_length_s < 2 * DRIFT_WINDOW_S or not spoken:
        return None

    def lag(s: SpokenSegment) -> float:
        return s.start_s - s.committed_s if speech_only else s.lag_s

    first = [lag(s) for s in spoken if s.source_end_s <= DRIFT_WINDOW_S]
    last = [lag(s) for s in spoken if s.source_end_s >= source_length_s - DRIFT_WINDOW_S]
    if not first or not last:
        return None
    return fmean(last) - fmean(first)


def speech_output_latency(
    recording: SpokenRecording, lang: str, config: SchedulerConfig | None = None
) -> dict[str, float | None]:
    """The latency figures of one recording's speech output (see the module docstring)."""
    length = recording.source_length_ms
    ref_len = len(split_units(recording.reference, lang))
    figures: dict[str, float | None] = {}
    for suffix, aware in (("", False), ("_CA", True)):
        d = output_unit_times(recording.spoken, lang, computation_aware=aware, config=config)
        if aware:
            end = max(s.end_s for s in recording.spoken)
        else:
            end = max(e for _, e in replayed(recording.spoken, config or SchedulerConfig()))
        figures[f"StartOffset{suffix}"] = d[0] if d else 0.0
        figures[f"EndOffset{suffix}"] = end * 1000.0 - length
        figures[f"AL{suffix}"] = average_lagging(d, length) if d else 0.0
        figures[f"LAAL{suffix}"] = length_adaptive_average_lagging(d, length, ref_len) if d else 0.0
        figures[f"ATD{suffix}"] = (
            average_token_delay(d, length, source_times=atd_source_times(d), target_duration=0)
            if d
            else 0.0
        )
    figures["lag_drift_s"] = lag_drift_s(recording.spoken, length / 1000.0)
    figures["speech_drift_s"] = lag_drift_s(recording.spoken, length / 1000.0, speech_only=True)
    return figures


OUTPUT_KEYS = (
    "StartOffset",
    "EndOffset",
    "AL",
    "LAAL",
    "ATD",
    "StartOffset_CA",
    "EndOffset_CA",
    "AL_CA",
    "LAAL_CA",
    "ATD_CA",
)


def score_speech_output(
    recordings: Sequence[SpokenRecording],
    lang: str,
    transcripts: Sequence[str] | None = None,
    config: SchedulerConfig | None = None,
) -> dict[str, Any]:
    """Speech-output scores over recordings: mean latency figures, lag drift and ASR-BLEU.

    Args:
        recordings: one per evaluated recording (those with speech count for latency).
        lang: the target language.
        transcripts: the output audio of each recording transcribed by the packaged
            recognizer; adds ``ASR_BLEU`` and ``S2T_BLEU_recordings`` (the text BLEU with the
            same, whole-recording segmentation, for a fair ratio), both on text as heard
            (:func:`~simulinterp.eval.quality.heard_text`: no punctuation, lower case, as
            Seamless scores ASR-BLEU).
        config: the scheduler settings the run used (for the replay without computation).
    """
    from simulinterp.eval.quality import heard_bleu

    voiced = [r for r in recordings if r.spoken]
    figures = [speech_output_latency(r, lang, config) for r in voiced]
    scores: dict[str, Any] = {}
    for key in OUTPUT_KEYS:
        scores[key] = fmean(float(f[key] or 0.0) for f in figures) if figures else 0.0
    for key in ("lag_drift_s", "speech_drift_s"):
        drifts = [f[key] for f in figures if f[key] is not None]
        scores[key] = fmean(float(d) for d in drifts) if drifts else None
    lags = [s.lag_s for r in voiced for s in r.spoken]
    scores["mean_lag_s"] = fmean(lags) if lags else 0.0
    scores["max_speed"] = max((s.speed for r in voiced for s in r.spoken), default=1.0)
    if transcripts is not None:
        refs = [r.reference for r in recordings]
        scores["ASR_BLEU"] = heard_bleu(list(transcripts), refs, lang)
        scores["S2T_BLEU_recordings"] = heard_bleu([r.prediction for r in recordings], refs, lang)
    scores["spoken_clauses"] = sum(len(_clauses(r.spoken)) for r in voiced)
    return scores
