"""bench/speakers: online speaker tracking (DER) and voices adapted to speakers (similarity).

Parts:
- ``der``: the online tracker over every recording of ``speech_multispeaker`` that has reference
  turns (13 AMI-derived and pyannote excerpts, the Picovoice falcon test), fed in 0.1 s chunks as
  live. DER and JER per clip and in total (collar 0.25 s each side, overlap scored, through
  pyannote.metrics), the latency of each speaker decision (decided minus turn start), and the
  tracker's CPU per second of audio on one thread (VAD + embeddings + voice features).
- ``similarity``: per speaker, their audio goes through the tracker (its voice profile, as live);
  a fixed interpretation text is spoken by the voice fitted to them (after 1 s, 3 s and all of
  their audio) and by the plain packaged voice a single speaker gets. Both are compared with the
  speaker's own audio: GE2E cosine (the fit never sees it), F0 distance (semitones) and formant
  distance. en->zh: LibriSpeech speakers (``speech_en_librispeech_untranscribed``); zh->en: the
  Chinese speakers of ``speech_zh_misc`` and ``speech_zh_weaklabeled`` (one speaker per file;
  the two AISHELL S0764 files as one, and the two Microsoft customspeech files, which score 0.99
  against each other, as one).

    OMP_NUM_THREADS=1 python bench/speakers.py                 # both parts
    python bench/speakers.py --part der --output runs/speakers

Nothing else should run meanwhile: the CPU figures measure this machine. Writes
``OUTPUT/speakers.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from simulinterp.asr.vad import SileroVAD
from simulinterp.eval.diarization import diarization_scores
from simulinterp.speakers.encoder import GE2EEncoder
from simulinterp.speakers.features import (
    ProfileAccumulator,
    f0_distance_st,
    formant_distance,
    profile_of,
)
from simulinterp.speakers.rttm import read_rttm
from simulinterp.speakers.tracker import SpeakerTracker, TrackerConfig
from simulinterp.speakers.voices import SpeakerVoices, VoiceBank, profile_cache
from simulinterp.tts.voices import load_synthesizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
RATE = 16_000
CHUNK = 1600
TEXTS = {
    "zh": "今天的会议将讨论明年的经济发展计划，请大家发表自己的看法。谢谢大家。",
    "en": "Today's meeting will discuss next year's economic plan. Please share your views.",
}
STAGES_S = (1.0, 3.0, None)  # fit after this much of the speaker's audio (None: all of it)


def track(encoder, vad, audio: np.ndarray, config: TrackerConfig | None = None):
    """The tracker over ``audio`` in live chunks, and its CPU seconds (this thread)."""
    tracker = SpeakerTracker(encoder, vad, config)
    cpu = 0.0
    for i in range(0, len(audio), CHUNK):
        started = time.process_time()
        tracker.insert_audio(audio[i : i + CHUNK])
        tracker.process()
        cpu += time.process_time() - started
    started = time.process_time()
    tracker.finish()
    return tracker, cpu + time.process_time() - started


def part_der(encoder, vad) -> dict:
    folder = DATA / "speech_multispeaker"
    refs = {}
    for path in sorted((folder / "rttm").glob("*.rttm")):
        refs.update(read_rttm(path))
    hyps, lengths, latencies, cpu, audio_s, speakers = {}, {}, [], 0.0, 0.0, {}
    for name in refs:
        audio, rate = sf.read(folder / "audio" / f"{name}.flac", dtype="float32")
        assert rate == RATE, name
        tracker, spent = track(encoder, vad, audio)
        hyps[name], lengths[name] = tracker.turns(), len(audio) / RATE
        latencies += [c.decided_s - c.start_s for c in tracker.changes]
        cpu, audio_s = cpu + spent, audio_s + len(audio) / RATE
        speakers[name] = (len(tracker.speakers), len({t.speaker for t in refs[name]}))
    scores = diarization_scores(refs, hyps, lengths, collar_s=0.25)
    no_collar = diarization_scores(refs, hyps, lengths, collar_s=0.0)
    print(f"\nDER per clip (collar 0.25 s each side, overlap scored; {len(refs)} clips)")
    print("clip\tDER\tJER\tspeakers found/ref")
    for name, row in scores.per_file.items():
        found, ref = speakers[name]
        print(f"{name}\t{row['DER']:.3f}\t{row['JER']:.3f}\t{found}/{ref}")
    print(
        f"total\tDER {scores.der:.3f}\tJER {scores.jer:.3f}\t(missed {scores.missed_s:.1f} s, "
        f"false alarm {scores.false_alarm_s:.1f} s, confusion {scores.confusion_s:.1f} s of "
        f"{scores.speech_s:.1f} s); without collar DER {no_collar.der:.3f}"
    )
    lat = sorted(latencies)
    p90 = lat[int(0.9 * (len(lat) - 1))] if lat else 0.0
    print(
        f"speaker decisions: {len(lat)}, latency mean {statistics.fmean(lat):.2f} s, "
        f"p90 {p90:.2f} s; tracker CPU {1000 * cpu / audio_s:.1f} ms per s of audio "
        f"({100 * cpu / audio_s:.1f}% of one core)"
    )
    return {
        **scores.to_json(),
        "DER_no_collar": no_collar.der,
        "decisions": len(lat),
        "decision_latency_mean_s": statistics.fmean(lat) if lat else None,
        "decision_latency_p90_s": p90,
        "tracker_cpu_ms_per_s": 1000 * cpu / audio_s,
        "speakers_found_ref": speakers,
    }


def _speakers_en(limit: int) -> list[tuple[str, np.ndarray]]:
    folder = DATA / "speech_en_librispeech_untranscribed" / "audio"
    by_speaker: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.flac")):
        speaker = path.stem.split("_")[-1].split("-")[0]
        by_speaker.setdefault(speaker, []).append(path)
    out = []
    for speaker, paths in sorted(by_speaker.items()):
        audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in paths])
        if len(audio) >= 8 * RATE:
            out.append((f"libri-{speaker}", audio[: 30 * RATE]))
    return out[:limit]


def _speakers_zh(limit: int) -> list[tuple[str, np.ndarray]]:
    by_speaker: dict[str, list[Path]] = {}
    for sub in ("speech_zh_misc", "speech_zh_weaklabeled"):
        for path in sorted((DATA / sub / "audio").glob("*.flac")):
            match = re.search(r"(S\d{4})W|(ms_customspeech_zh)", path.stem)
            key = next((g for g in match.groups() if g), path.stem) if match else path.stem
            by_speaker.setdefault(key, []).append(path)
    out = []
    for speaker, paths in sorted(by_speaker.items()):
        audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in paths])
        if len(audio) >= 3 * RATE:
            out.append((speaker, audio[: 30 * RATE]))
    return out[:limit]


def _say(synth, text: str, voice: str, lang: str, speed: float = 1.0) -> np.ndarray:
    import soxr

    clips = [
        soxr.resample(c.samples, c.sample_rate, RATE).astype(np.float32)
        for c in synth.synthesize(text, voice, lang, speed=speed)
    ]
    return np.concatenate(clips)


def _profile_after(audio: np.ndarray, seconds: float):
    """The speaker's profile once ``seconds`` of their voiced audio have come in."""
    acc = ProfileAccumulator()
    for i in range(0, len(audio), CHUNK):
        acc.add(audio[i : i + CHUNK], RATE)
        if acc.voiced_s >= seconds:
            break
    return acc.profile()


def part_similarity(encoder, vad, direction: str, limit: int) -> dict:
    source_lang, target_lang = direction.split("-")
    speakers = _speakers_en(limit) if source_lang == "en" else _speakers_zh(limit)
    synth = load_synthesizer("kokoro")
    bank = VoiceBank(synth, target_lang, cache=profile_cache(synth, target_lang))
    plain = bank.voices[0]
    plain_audio = _say(synth, TEXTS[target_lang], plain, target_lang)
    rows = []
    for name, audio in speakers:
        tracker, _ = track(encoder, vad, audio)
        main = max(
            range(len(tracker.speakers)), key=lambda k: tracker.speakers[k].windows, default=0
        )
        src_embed = encoder.embed(audio)
        src_profile = profile_of(audio, RATE)
        if src_profile is None or tracker.profile(main) is None:
            print(f"{name}: no voiced profile (left out)")
            continue
        row = {"speaker": name, "source_f0_hz": src_profile.f0_hz}
        for stage in STAGES_S:
            profile = _profile_after(audio, stage) if stage is not None else tracker.profile(main)
            if profile is None:
                continue
            fit = SpeakerVoices(bank, prefix=f"bench-{name}").voice_for(0, profile)
            spoken = _say(synth, TEXTS[target_lang], fit.name, target_lang, fit.speed)
            key = "all" if stage is None else f"{stage:g}s"
            row[f"similarity_{key}"] = float(src_embed @ encoder.embed(spoken))
            if stage is None:
                heard = profile_of(spoken, RATE)
                row["voice"] = {v: round(w, 2) for v, w in fit.weights.items()}
                row["f0_distance_st"] = f0_distance_st(src_profile, heard)
                row["formant_distance"] = formant_distance(src_profile, heard)
                row["adapted_f0_hz"] = heard.f0_hz
        heard_plain = profile_of(plain_audio, RATE)
        row["similarity_unadapted"] = float(src_embed @ encoder.embed(plain_audio))
        row["f0_distance_st_unadapted"] = f0_distance_st(src_profile, heard_plain)
        row["formant_distance_unadapted"] = formant_distance(src_profile, heard_plain)
        rows.append(row)
        synth.remove_voice(f"bench-{name}-1-{target_lang}")
    return _similarity_table(direction, rows, plain)


def _similarity_table(direction: str, rows: list[dict], plain: str) -> dict:
    def mean(key):
        values = [r[key] for r in rows if key in r]
        return statistics.fmean(values) if values else float("nan")

    def better(a, b, lower=False):
        pairs = [(r[a], r[b]) for r in rows if a in r and b in r]
        return statistics.fmean(float(x < y if lower else x > y) for x, y in pairs)

    print(f"\nspeaker similarity, {direction} ({len(rows)} speakers; unadapted = {plain})")
    print("speaker\tF0 Hz\tcos adapted (1s/3s/all)\tcos plain\tF0 dist st a/p\tformant a/p")
    for r in rows:
        stages = "/".join(
            f"{r.get(f'similarity_{k}', float('nan')):.3f}" for k in ("1s", "3s", "all")
        )
        print(
            f"{r['speaker']}\t{r['source_f0_hz']:.0f}\t{stages}\t{r['similarity_unadapted']:.3f}\t"
            f"{r['f0_distance_st']:.1f}/{r['f0_distance_st_unadapted']:.1f}\t"
            f"{r['formant_distance']:.3f}/{r['formant_distance_unadapted']:.3f}"
        )
    out = {
        "speakers": len(rows),
        "unadapted_voice": plain,
        "speaker_similarity": mean("similarity_all"),
        "speaker_similarity_1s": mean("similarity_1s"),
        "speaker_similarity_3s": mean("similarity_3s"),
        "speaker_similarity_unadapted": mean("similarity_unadapted"),
        "similarity_better_share": better("similarity_all", "similarity_unadapted"),
        "f0_distance_st": mean("f0_distance_st"),
        "f0_distance_st_unadapted": mean("f0_distance_st_unadapted"),
        "f0_better_share": better("f0_distance_st", "f0_distance_st_unadapted", lower=True),
        "formant_distance": mean("formant_distance"),
        "formant_distance_unadapted": mean("formant_distance_unadapted"),
        "formant_better_share": better(
            "formant_distance", "formant_distance_unadapted", lower=True
        ),
        "rows": rows,
    }
    print(
        f"mean\tcos {out['speaker_similarity_1s']:.3f}/{out['speaker_similarity_3s']:.3f}/"
        f"{out['speaker_similarity']:.3f} vs {out['speaker_similarity_unadapted']:.3f} "
        f"(better for {out['similarity_better_share']:.0%}); F0 {out['f0_distance_st']:.1f} vs "
        f"{out['f0_distance_st_unadapted']:.1f} st (better for {out['f0_better_share']:.0%}); "
        f"formants {out['formant_distance']:.3f} vs {out['formant_distance_unadapted']:.3f} "
        f"(better for {out['formant_better_share']:.0%})"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["der", "similarity", "all"], default="all")
    parser.add_argument("--speakers", type=int, default=16, help="speakers per direction")
    parser.add_argument("--output", default="runs/speakers")
    args = parser.parse_args()
    encoder, vad = GE2EEncoder(), SileroVAD()
    results = {}
    if args.part in ("der", "all"):
        results["der"] = part_der(encoder, vad)
    if args.part in ("similarity", "all"):
        for direction in ("en-zh", "zh-en"):
            results[direction] = part_similarity(encoder, vad, direction, args.speakers)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speakers.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(f"\nwrote {out / 'speakers.json'}")


if __name__ == "__main__":
    main()
