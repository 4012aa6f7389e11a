"""How close the interpretation's voices are to the speakers': adapted against unadapted.

For each input speaker (by the tracker's turns), their source audio is compared with the output
audio of the clauses that interpret them, and with the same texts spoken by the plain packaged
voice that speaker would have had without adaptation (``--no-adapt``):

- ``speaker_similarity`` / ``speaker_similarity_unadapted``: cosine of GE2E speaker embeddings
  (Wan et al., "Generalized end-to-end loss for speaker verification", ICASSP 2018), mean over
  speakers. The adaptation never sees this embedding (it fits F0, formants and rate), so it is
  a fair judge.
- ``speaker_f0_distance_st`` (semitones of median F0) and ``speaker_formant_distance`` (mean
  absolute log ratio of F1-F3) and their ``_unadapted`` twins: the acoustic measures the
  adaptation aims at, reported beside the embedding.
- ``speaker_similarity_better_share``, ``speaker_f0_better_share`` and
  ``speaker_formant_better_share``: the share of speakers for whom the adapted voice is
  closer, by each measure.

A speaker with less than ``MIN_VOICED_S`` of audio on either side is left out (counted in
``speaker_similarity_speakers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import numpy as np

from simulinterp.events import SpokenSegment
from simulinterp.speakers.features import f0_distance_st, formant_distance, profile_of
from simulinterp.speakers.rttm import SpeakerTurn
from simulinterp.speakers.tracker import speaker_label

MIN_VOICED_S = 1.0
RATE = 16_000


@dataclass(frozen=True)
class SpeakerSample:
    """One speaker's voice in, the voice that interpreted them out, and the plain one.

    Attributes:
        speaker: the speaker's label.
        source: their source audio (16 kHz float32).
        adapted: the interpretation of their speech (16 kHz).
        unadapted: the same texts in the plain packaged voice (16 kHz).
    """

    speaker: str
    source: np.ndarray
    adapted: np.ndarray
    unadapted: np.ndarray


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if rate == RATE or len(samples) == 0:
        return samples
    import soxr

    return soxr.resample(samples, rate, RATE).astype(np.float32)


def speaker_samples(
    source: np.ndarray,
    turns: Sequence[SpeakerTurn],
    output: np.ndarray,
    output_rate: int,
    spoken: Sequence[SpokenSegment],
    plain_voice,
) -> list[SpeakerSample]:
    """Cut a recording and its interpretation by speaker.

    Args:
        source: the source recording, 16 kHz.
        turns: the tracker's turns (labels ``S1``...).
        output: the interpretation audio on the input's timeline, at ``output_rate``.
        output_rate: Hz.
        spoken: the clauses, with their speakers and times on the output timeline.
        plain_voice: ``(speaker id, [texts]) -> 16 kHz audio`` of the plain packaged voice.
    """
    out = []
    ids = sorted({s.speaker for s in spoken if s.speaker is not None})
    for k in ids:
        label = speaker_label(k)
        src = [
            source[int(t.start_s * RATE) : int(t.end_s * RATE)] for t in turns if t.speaker == label
        ]
        mine = [s for s in spoken if s.speaker == k]
        clips = [output[int(s.start_s * output_rate) : int(s.end_s * output_rate)] for s in mine]
        if not src or not clips:
            continue
        adapted = _to_16k(np.concatenate(clips), output_rate)
        texts = [s.spoken_text for s in mine]
        out.append(SpeakerSample(label, np.concatenate(src), adapted, plain_voice(k, texts)))
    return out


def similarity_scores(samples: Sequence[SpeakerSample], encoder) -> dict[str, Any]:
    """The ``speaker_*`` keys of ``scores.json`` over every speaker of every recording."""
    rows = []
    for sample in samples:
        if (
            min(len(sample.source), len(sample.adapted), len(sample.unadapted))
            < MIN_VOICED_S * RATE
        ):
            continue
        src, ada, pla = (
            encoder.embed(x) for x in (sample.source, sample.adapted, sample.unadapted)
        )
        p_src, p_ada, p_pla = (
            profile_of(x, RATE) for x in (sample.source, sample.adapted, sample.unadapted)
        )
        row = {
            "speaker": sample.speaker,
            "similarity": float(src @ ada),
            "similarity_unadapted": float(src @ pla),
        }
        if p_src is not None and p_ada is not None and p_pla is not None:
            row |= {
                "f0_distance_st": f0_distance_st(p_src, p_ada),
                "f0_distance_st_unadapted": f0_distance_st(p_src, p_pla),
                "formant_distance": formant_distance(p_src, p_ada),
                "formant_distance_unadapted": formant_distance(p_src, p_pla),
                "source_f0_hz": p_src.f0_hz,
                "adapted_f0_hz": p_ada.f0_hz,
                "unadapted_f0_hz": p_pla.f0_hz,
            }
        rows.append(row)
    if not rows:
        return {"speaker_similarity_speakers": 0}
    scores: dict[str, Any] = {
        "speaker_similarity": fmean(r["similarity"] for r in rows),
        "speaker_similarity_unadapted": fmean(r["similarity_unadapted"] for r in rows),
        "speaker_similarity_better_share": fmean(
            float(r["similarity"] > r["similarity_unadapted"]) for r in rows
        ),
        "speaker_similarity_speakers": len(rows),
        "speaker_similarity_rows": rows,
    }
    acoustic = [r for r in rows if "f0_distance_st" in r]
    if acoustic:
        for key in ("f0_distance_st", "formant_distance"):
            scores[f"speaker_{key}"] = fmean(r[key] for r in acoustic)
            scores[f"speaker_{key}_unadapted"] = fmean(r[f"{key}_unadapted"] for r in acoustic)
        for key, name in (("f0_distance_st", "f0"), ("formant_distance", "formant")):
            scores[f"speaker_{name}_better_share"] = fmean(
                float(r[key] < r[f"{key}_unadapted"]) for r in acoustic
            )
    return scores
