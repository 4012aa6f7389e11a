"""bench/s2s: speech to speech, both directions, on talks of about 5 minutes.

No long talk exists in the shared data, so each talk is built by concatenating the transcribed
recordings of one language (``shared/data/speech``, in their listed order, 0.8 s of silence
between them) until it lasts ``--minutes``; the Chinese ones (2.5 minutes in all) are taken
twice. Each recording's gold transcript, translated offline
by the same LLM with the whole sentence at hand, is its reference (few recordings have a human
translation), so BLEU measures how close the live interpretation comes to the offline one; the
talk is re-segmented to those references as ``eval`` does.

The run is ``interpret --speak``'s pipeline on the computation-aware clock (the file as fast as
possible; recognition and translation in one loop, synthesis in its own thread), with the
direction's defaults. Printed per direction and thread mix:

- TTS RTF (synthesis time / speech produced) of the voice;
- StartOffset_CA, EndOffset_CA (s) as heard, and when the first text was committed;
- lag drift (mean lag of the last minute minus the first), mean lag, the fastest speed used;
- S2T BLEU and ASR-BLEU (the output audio transcribed by whisper-base), both per recording and
  on the text as heard (no punctuation, lower case);
- each stage's share of the talk's duration (recognition, translation, synthesis busy time),
  the process's CPU use (of 2 cores), and the pipeline's RTF.

    python bench/s2s.py                        # both directions, 5 minutes, threads 1/1/1
    python bench/s2s.py --mix 2/2/1,1/1/1 --directions en-zh --minutes 3

Nothing else may run on the CPU meanwhile: the computation-aware figures measure this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from simulinterp.asr.text import normalize
from simulinterp.audio import SAMPLE_RATE, load_file
from simulinterp.defaults import speech_defaults
from simulinterp.eval.speech import score_speech
from simulinterp.eval.speech_output import SpokenRecording, score_speech_output
from simulinterp.eval.speech_run import SpeechItem, run_item
from simulinterp.events import SourceUnit
from simulinterp.lang import is_sentence_end, join_units, split_units
from simulinterp.llm.factory import ModelConfig, build_backend
from simulinterp.pipeline import SpeechEngine
from simulinterp.policy import make_policy
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from simulinterp.tts.output import SpeechOutput
from simulinterp.tts.voices import default_voice, load_synthesizer

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
SETS = {
    "en": ["speech_en_misc", "speech_en_ljspeech_subset"],
    "zh": ["speech_zh_misc", "speech_zh_weaklabeled"],  # weak labels: recognizer outputs
}
GAP_S = 0.8


def build_talk(lang: str, minutes: float, out: Path) -> tuple[Path, list[str], list[float]]:
    """Concatenate transcribed recordings to ``minutes``: (flac, transcripts, start times).

    The Chinese recordings last about 2.5 minutes in all, so the list is taken again from the
    top until the talk is long enough (a repeated recording is a new sentence of the talk).
    """
    clips = []
    for name in SETS[lang]:
        for row in (SPEECH / name / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
            cols = row.split("\t")
            if len(cols) >= 2 and cols[1].strip():
                clips.append((SPEECH / name / cols[0], cols[1].strip()))
    parts, transcripts, starts, total = [], [], [], 0.0
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    while total < minutes * 60:
        for path, text in clips:
            if total >= minutes * 60:
                break
            audio = load_file(path)
            starts.append(total)
            parts += [audio, gap]
            transcripts.append(text)
            total += len(audio) / SAMPLE_RATE + GAP_S
    path = out / f"talk_{lang}.flac"
    sf.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path, transcripts, starts


def offline_references(llm, transcripts: list[str], src: str, tgt: str) -> list[str]:
    """Each gold transcript translated with the whole sentence at hand."""
    translator = SimultaneousTranslator(llm, make_policy("offline"), TranslatorConfig(src, tgt))
    out = []
    for text in transcripts:
        translator.reset()
        units = split_units(normalize(text, src), src)
        for i, unit in enumerate(units):
            translator.feed(SourceUnit(unit, i, sentence_end=is_sentence_end(unit)))
        translator.finish()
        out.append(translator.text.strip())
    return out


def run_mix(args, src: str, tgt: str, mix: str, talk, refs: list[str], out: Path) -> dict:
    asr_t, llm_t, tts_t = (int(x) for x in mix.split("/"))
    chosen = speech_defaults(src, tgt)
    llm = build_backend(ModelConfig(model=chosen.model, threads=llm_t))
    engine = SpeechEngine(llm, threads=asr_t)
    config = TranslatorConfig(
        src, tgt, layout=chosen.layout, context_sentences=chosen.context_sentences,
        max_duty=args.max_duty or chosen.speaking_max_duty,
    )  # fmt: skip
    policy = make_policy(chosen.policy, chosen.knob, src, tgt)
    synth = load_synthesizer(args.tts, threads=tts_t)
    voice = default_voice(synth, tgt)
    path, _, starts = talk
    where = out / f"{src}-{tgt}" / (mix.replace("/", "-") + f"-duty{config.max_duty}")
    where.mkdir(parents=True, exist_ok=True)
    speech = SpeechOutput(synth, voice, tgt, wav_path=where / "talk.interp.wav")
    item = SpeechItem(path, tuple(refs), None, tuple(starts))
    cpu0, started = os.times(), time.perf_counter()
    session_busy: dict = {}
    instances = run_item(
        engine, item, 0, policy, config, None, speech, session_busy, realtime=args.realtime
    )
    wall = time.perf_counter() - started
    cpu1 = os.times()
    talk_s = speech.source_s
    text = score_speech(instances, tgt, src)
    recording = SpokenRecording(
        0, tuple(speech.spoken), talk_s * 1000, join_units(refs, tgt),
        join_units([i.prediction for i in instances], tgt), str(speech.wav_path),
    )  # fmt: skip
    hearer = engine.whisper
    if args.asr_bleu_model:
        from simulinterp.asr.models import load_speech_model

        hearer = load_speech_model(args.asr_bleu_model, threads=2)
    heard = normalize(hearer.transcribe(load_file(speech.wav_path, max_s=4 * 3600), tgt), tgt)
    spoken = score_speech_output([recording], tgt, [heard])
    produced = sum(s.end_s - s.start_s for s in speech.spoken)
    row = {
        "direction": f"{src}-{tgt}",
        "threads_asr_llm_tts": mix,
        "max_duty": config.max_duty,
        "clock": "wall (duplex)" if args.realtime else "computation-aware",
        "voice": f"{synth.name}:{voice}",
        "talk_min": round(talk_s / 60, 2),
        "TTS_RTF": round(speech.compute_s / produced, 3) if produced else None,
        "StartOffset_CA_s": round(spoken["StartOffset_CA"] / 1000, 2),
        "EndOffset_CA_s": round(spoken["EndOffset_CA"] / 1000, 2),
        # the first committed text on the same clock (the talk's first sentence starts at 0)
        "text_StartOffset_CA_s": round(instances[0].elapsed[0] / 1000, 2)
        if instances[0].elapsed
        else None,
        "lag_drift_s": None if spoken["lag_drift_s"] is None else round(spoken["lag_drift_s"], 2),
        "speech_drift_s": None
        if spoken["speech_drift_s"] is None
        else round(spoken["speech_drift_s"], 2),
        "mean_lag_s": round(spoken["mean_lag_s"], 2),
        "max_speed": round(spoken["max_speed"], 2),
        "S2T_BLEU": round(spoken["S2T_BLEU_recordings"], 2),
        "ASR_BLEU": round(spoken["ASR_BLEU"], 2),
        "asr_bleu_model": args.asr_bleu_model or "base",
        "S2T_BLEU_sentences": round(text["BLEU"], 2),
        "share_recognition": round(session_busy.get("recognition", 0) / talk_s, 3),
        "share_translation": round(session_busy.get("translation", 0) / talk_s, 3),
        "share_synthesis": round(speech.compute_s / talk_s, 3),
        "cpu_of_2_cores": round((cpu1.user - cpu0.user + cpu1.system - cpu0.system) / wall / 2, 3),
        "RTF": round(wall / talk_s, 3),
        "skipped_clauses": speech.scheduler.skipped,
    }
    kept = {"asr_output": heard, "prediction": recording.prediction}
    kept["reference"] = recording.reference
    (where / "row.json").write_text(json.dumps({**row, **kept}, ensure_ascii=False))
    with (where / "spoken.jsonl").open("w", encoding="utf-8") as f:
        for s in speech.spoken:
            f.write(json.dumps(s.to_json(), ensure_ascii=False) + "\n")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directions", default="zh-en,en-zh")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument(
        "--mix",
        default="1/1/1",
        help="threads asr/llm/tts, comma-separated (default: interpret --speak's)",
    )
    parser.add_argument("--tts", default="kokoro")
    parser.add_argument(
        "--max-duty", type=float, help="the translator's duty cap (default: the direction's)"
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="play the talk at the speaker's pace through the live duplex pipeline (wall clock)",
    )
    parser.add_argument(
        "--asr-bleu-model",
        help="recognizer that hears the output for ASR-BLEU (default: the run's, whisper-base)",
    )
    parser.add_argument("--output", default="runs/s2s")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for direction in args.directions.split(","):
        src, tgt = direction.split("-")
        talk = build_talk(src, args.minutes, out)
        llm = build_backend(ModelConfig(model=speech_defaults(src, tgt).model, threads=2))
        refs = offline_references(llm, talk[1], src, tgt)
        del llm
        for mix in args.mix.split(","):
            row = run_mix(args, src, tgt, mix, talk, refs, out)
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
    (out / "summary.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    worst = max(r["RTF"] for r in rows)
    print(f"summary: {len(rows)} runs, worst RTF {worst}, StartOffset_CA "
          f"{[r['StartOffset_CA_s'] for r in rows]} s, ASR/S2T BLEU "
          f"{[round(r['ASR_BLEU'] / max(r['S2T_BLEU'], 1e-9), 2) for r in rows]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
