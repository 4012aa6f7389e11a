"""bench/tts: every synthesizer voice on fixed sentences, heard back by whisper-base.

Per backend, voice and language, on six fixed sentences (clauses of interpretation output):
- RTF: synthesis seconds / audio seconds, with 1 and 2 onnxruntime threads;
- first-clause latency: median seconds until the first clause of a sentence is ready (1 thread);
- round trip: CER (zh) / WER (en) of the packaged whisper-base transcribing the audio (16 kHz)
  against the sentence, both normalized for speech (numbers, units and symbols in words).

    python bench/tts.py                      # kokoro (5 voices), piper-joe and espeak if present
    python bench/tts.py --backends kokoro --langs en

Nothing else should run on the CPU meanwhile: RTF and latency measure this machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

import numpy as np
import soxr

from simulinterp.asr.models import load_speech_model
from simulinterp.asr.text import normalize as asr_normalize
from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.eval.speech import asr_error
from simulinterp.tts.text import normalize
from simulinterp.tts.voices import LANGUAGES, load_synthesizer

SENTENCES = {
    "zh": (
        "所以我的美国同胞们，不要问国家能为你们做什么，",
        "而要问你们能为国家做什么。",
        "今天的会议将讨论明年的经济发展计划。",
        "我们用GPU训练了3个模型，准确率是95%。",
        "气温在2024年上升了1.5摄氏度。",
        "谢谢大家，下面请回答问题。",
    ),
    "en": (
        "And so my fellow Americans, ask not what your country can do for you,",
        "ask what you can do for your country.",
        "Today's meeting will discuss the economic plan for next year.",
        "We trained 3 models on a GPU, and the accuracy was 95%.",
        "The temperature rose by 1.5 degrees in 2024.",
        "Thank you all, now let us take some questions.",
    ),
}


def speak(synth, text: str, voice: str, lang: str) -> tuple[np.ndarray, float, float, float]:
    """(16 kHz audio, audio seconds, compute seconds, first-clause seconds) of one sentence."""
    clauses = list(synth.synthesize(text, voice, lang))
    if not clauses:
        return np.zeros(0, np.float32), 0.0, 0.0, 0.0
    audio = np.concatenate(
        [soxr.resample(c.samples, c.sample_rate, SAMPLE_RATE) for c in clauses]
    ).astype(np.float32)
    return (
        audio,
        sum(c.duration_s for c in clauses),
        sum(c.compute_s for c in clauses),
        clauses[0].compute_s,
    )


def bench_voice(backend: str, voice: str, lang: str, whisper) -> dict:
    """One table row: RTF (1 and 2 threads), first-clause latency, round-trip error."""
    row = {"backend": backend, "voice": voice, "lang": lang}
    hyps, refs = [], []
    for threads in (1, 2):
        synth = load_synthesizer(backend, threads=threads)
        list(synth.synthesize("预热。" if lang == "zh" else "Warm up.", voice, lang))
        audio_s = compute_s = 0.0
        firsts = []
        for text in SENTENCES[lang]:
            audio, dur_s, comp_s, first_s = speak(synth, text, voice, lang)
            audio_s, compute_s = audio_s + dur_s, compute_s + comp_s
            firsts.append(first_s)
            if threads == 1:
                # both sides spelled out as spoken: whisper writes "95%", the reference says it
                heard = asr_normalize(whisper.transcribe(audio, lang), lang)
                hyps.append(normalize(heard, lang))
                refs.append(normalize(text, lang))
        row[f"rtf_{threads}t"] = compute_s / max(audio_s, 1e-9)
        if threads == 1:
            row["first_clause_s"] = statistics.median(firsts)
            row["audio_s"] = audio_s
    row["error"] = asr_error(hyps, refs, lang)
    print(f"  {backend}/{voice} {lang}: {hyps[0][:60]}", file=sys.stderr)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| backend | voice | lang | RTF 1 thread | RTF 2 threads | first clause (s) "
        "| round trip CER/WER |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        metric = "CER" if r["lang"] == "zh" else "WER"
        lines.append(
            f"| {r['backend']} | {r['voice']} | {r['lang']} | {r['rtf_1t']:.2f} "
            f"| {r['rtf_2t']:.2f} | {r['first_clause_s']:.2f} | {metric} {r['error']:.1%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="kokoro,piper,espeak")
    parser.add_argument("--langs", default="zh,en")
    args = parser.parse_args()
    has_espeak = bool(shutil.which("espeak-ng") or shutil.which("espeak"))
    whisper = load_speech_model("base", threads=2)
    rows = []
    for backend in args.backends.split(","):
        if backend in ("piper", "espeak") and not has_espeak:
            print(f"skipping {backend}: espeak-ng is not installed", file=sys.stderr)
            continue
        for lang in args.langs.split(","):
            if lang not in LANGUAGES[backend]:
                continue
            for voice in load_synthesizer(backend).voices(lang):
                rows.append(bench_voice(backend, voice, lang, whisper))
    print(table(rows))
    best = {
        lang: min((r for r in rows if r["lang"] == lang), key=lambda r: r["error"])
        for lang in args.langs.split(",")
        if any(r["lang"] == lang for r in rows)
    }
    summary = "; ".join(
        f"{lang}: {r['backend']}/{r['voice']} round-trips best ({r['error']:.1%}, "
        f"RTF {r['rtf_1t']:.2f} on 1 thread)"
        for lang, r in best.items()
    )
    print(f"\nsummary: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
