"""bench/s2t: streaming ASR and speech-to-text interpretation on the shared recordings.

Part 1 (ASR alone), per engine and language, on the transcribed clips of
``shared/data/speech``:
- RTF: recognizer computation (VAD included) / audio duration, 2 threads;
- WER (en) / CER (zh) of the committed words against the transcripts;
- commit lag: when a word was committed (computation-aware) minus where it ends in the audio,
  from an offline word-timestamped pass of the same model (median and p90).

Part 2 (S2T), both directions, on the same clips: BLEU against the offline cascade's output
(the whole recording transcribed with beam search, then translated sentence by sentence: how
close simultaneous gets to offline), BLEU of both against the human translations where the set
has them (two clips per direction), StartOffset_CA, LAAL_CA (seconds, computation included;
LAAL against the cascade's length) and the whole pipeline's RTF.

    python bench/s2t.py --output runs/s2t            # everything (about 15 minutes)
    python bench/s2t.py --part asr --engines base,tiny.en
    python bench/s2t.py --part asr --engines base,small   # after: simulinterp install whisper-small

Nothing else may run on the CPU meanwhile: the computation-aware figures measure this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from simulinterp.asr.agreement import comparable
from simulinterp.asr.base import SpeechModel
from simulinterp.asr.models import load_speech_model
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.asr.text import normalize
from simulinterp.asr.vad import SileroVAD
from simulinterp.asr.whisper import WhisperEngine
from simulinterp.audio import FileSource, load_file
from simulinterp.eval.quality import bleu
from simulinterp.eval.speech import asr_error, score_speech
from simulinterp.eval.speech_run import SpeechItem, offline_translations, run_items
from simulinterp.lang import split_units
from simulinterp.llm.factory import ModelConfig, build_backend
from simulinterp.pipeline import SpeechEngine
from simulinterp.policy import make_policy
from simulinterp.translate import TranslatorConfig

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
SETS = {"en": ["speech_en_misc", "speech_en_ljspeech_subset"], "zh": ["speech_zh_misc"]}


def clips(lang: str, limit: int) -> list[tuple[Path, str, str]]:
    """(audio, transcript, translation) of transcribed clips, at most ``limit`` per set."""
    out = []
    for name in SETS[lang]:
        rows = (SPEECH / name / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
        kept = 0
        for row in rows:
            cols = row.split("\t")
            if len(cols) < 2 or not cols[1].strip() or kept >= limit:
                continue
            out.append((SPEECH / name / cols[0], cols[1].strip(), (cols + [""])[2].strip()))
            kept += 1
    return out


def stream_asr(
    engine: SpeechModel, vad: SileroVAD, path: Path, lang: str, duty: float = 0.2
) -> tuple[list, float]:
    """Committed words of one clip on the computation-aware clock, and the computation."""
    rec = StreamingRecognizer(engine, vad, RecognizerConfig(lang=lang, max_duty=duty))
    ca = 0.0
    for chunk in FileSource(str(path)):
        rec.insert_audio(chunk.samples)
        if chunk.end_s < ca:
            continue
        started = time.perf_counter()
        at = max(ca, chunk.end_s)
        rec.process(at)
        ca = at + time.perf_counter() - started
    rec.finish(max(ca, rec.audio_s))
    return rec.words, rec.compute_s


def offline_word_ends(engine: SpeechModel, path: Path, lang: str) -> list[tuple[str, float]]:
    """(unit, end_s) from the model's own offline pass with word timestamps (30 s windows,
    beam 5, the whole clip at hand: the model's best, used for lags and the offline WER)."""
    audio = load_file(str(path))
    if not isinstance(engine, WhisperEngine):  # the ONNX engine aligns its own offline text
        words = engine.transcribe_words(audio, lang)  # type: ignore[attr-defined]
        return [
            (unit, end)
            for word, _, end in words
            for unit in split_units(normalize(word, lang), lang)
        ]
    segments, _ = engine._model.transcribe(  # noqa: SLF001 - a bench may reach inside
        audio,
        language=lang,
        beam_size=5,
        word_timestamps=True,
        initial_prompt="以下是普通话的句子。" if lang == "zh" else None,
    )
    ends = []
    for seg in segments:
        for word in seg.words or []:
            for unit in split_units(normalize(word.word, lang), lang):
                ends.append((unit, float(word.end)))
    return ends


def commit_lags(words: list, ends: list[tuple[str, float]]) -> list[float]:
    a = [comparable(w.text) for w in words]
    b = [comparable(u) for u, _ in ends]
    lags = []
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            for k in range(op.src_end - op.src_start):
                lags.append(words[op.src_start + k].committed_s - ends[op.dest_start + k][1])
    return lags


def asr_part(
    engines: list[str], limit: int, langs: tuple[str, ...] = ("en", "zh"), duty: float = 0.2
) -> list[dict]:
    vad = SileroVAD()
    rows = []
    for name in engines:
        engine = load_speech_model(name)
        for lang in langs:
            if lang not in engine.languages:
                continue
            hyps, offline, refs, lags, compute, duration = [], [], [], [], 0.0, 0.0
            for path, transcript, _ in clips(lang, limit):
                words, spent = stream_asr(engine, vad, path, lang, duty)
                joiner = " " if lang == "en" else ""
                hyps.append(joiner.join(w.text for w in words))
                refs.append(transcript)
                compute += spent
                duration += len(load_file(str(path))) / 16000
                ends = offline_word_ends(engine, path, lang)
                offline.append(joiner.join(u for u, _ in ends))
                lags += commit_lags(words, ends)
                print(f"  {name} {lang} {path.name}: {hyps[-1][:70]}", file=sys.stderr)
            row = {
                "engine": name,
                "lang": lang,
                "duty": duty,
                "clips": len(refs),
                "audio_s": round(duration, 1),
                "RTF": round(compute / duration, 3),
                ("WER" if lang == "en" else "CER"): round(asr_error(hyps, refs, lang), 3),
                "offline_error": round(asr_error(offline, refs, lang), 3),
                "lag_median_s": round(statistics.median(lags), 2) if lags else None,
                "lag_p90_s": round(float(np.percentile(lags, 90)), 2) if lags else None,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def timing_part(engines: list[str], repeats: int = 5) -> list[dict]:
    """Per engine, the median time of encoding a 5 s window (plus the default 1.5 s of
    silence) and of a greedy decode capped at 20 tokens (on the 11 s JFK clip, which holds
    more than 20)."""
    audio = load_file(str(SPEECH / "speech_en_misc/audio/whisper_jfk.flac"))
    rows = []
    for name in engines:
        engine = load_speech_model(name)
        encode_s, decode_s = [], []
        engine.encode(audio[: 5 * 16000])  # warm up
        whole = engine.encode(audio)
        for _ in range(repeats):
            started = time.perf_counter()
            engine.encode(audio[: 5 * 16000])
            encode_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            decoded = engine.decode(whole, "en", max_new_tokens=20)
            decode_s.append(time.perf_counter() - started)
        row = {
            "engine": name,
            "encode_5s_ms": round(1000 * statistics.median(encode_s)),
            "decode_20_tokens_ms": round(1000 * statistics.median(decode_s)),
            "tokens": len(engine.tokenizer("en").encode(decoded.text)),  # type: ignore[attr-defined]
            "finished": decoded.finished,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


FINDINGS_CLIPS = [
    ("speech_en_misc/audio/whisper_jfk.flac", "en"),
    ("speech_en_misc/audio/ms_customspeech_en_train_audio2.flac", "en"),
    ("speech_en_misc/audio/mfa_acoustic_corpus.flac", "en"),
    ("speech_zh_misc/audio/f5tts_basic_ref_zh.flac", "zh"),
    ("speech_zh_misc/audio/firered_wenetspeech_TEST_MEETING_T0000000001.flac", "zh"),
    ("speech_zh_misc/audio/ms_customspeech_zh_train_audio2.flac", "zh"),
]


def findings_part(engine_name: str) -> list[dict]:
    """Per clip, the six clips on which FINDINGS measured the naive and peer systems."""
    engine, vad = load_speech_model(engine_name), SileroVAD()
    rows = []
    for relative, lang in FINDINGS_CLIPS:
        path = SPEECH / relative
        table = (path.parent.parent / "transcripts.tsv").read_text(encoding="utf-8")
        transcript = next(
            r.split("\t")[1] for r in table.splitlines() if r.split("\t")[0].endswith(path.name)
        )
        words, _ = stream_asr(engine, vad, path, lang)
        lags = commit_lags(words, offline_word_ends(engine, path, lang))
        hyp = (" " if lang == "en" else "").join(w.text for w in words)
        row = {
            "clip": path.name,
            "lang": lang,
            "lag_median_s": round(statistics.median(lags), 2) if lags else None,
            "lag_p90_s": round(float(np.percentile(lags, 90)), 2) if lags else None,
            "error": round(asr_error([hyp], [transcript], lang), 2),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def s2t_part(limit: int, policies: list[str], output: Path) -> list[dict]:
    llm = build_backend(ModelConfig(model="default", threads=2))
    engine = SpeechEngine(llm)
    rows = []
    for src, tgt in (("en", "zh"), ("zh", "en")):
        config = TranslatorConfig(source_lang=src, target_lang=tgt)
        found = clips(src, limit)
        offline = offline_translations(engine, [SpeechItem(p, ("",)) for p, _, _ in found], config)
        # the latency of each clip is judged against the cascade's length (LAAL's |Y*|)
        items = [SpeechItem(p, (off,), t) for (p, t, _), off in zip(found, offline, strict=True)]
        real = [i for i, (_, _, tr) in enumerate(found) if tr]
        real_refs = [found[i][2] for i in real]
        for spec in policies:
            name, _, knob = spec.partition(":")
            policy = make_policy(name, float(knob) if knob else None, src, tgt)
            where = output / f"{src}-{tgt}" / spec.replace(":", "-")
            where.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            instances = list(run_items(engine, items, policy, config, where / "instances.log"))
            spent = time.perf_counter() - started
            scores = score_speech(instances, tgt, src)
            duration = sum(i.source_length for i in instances) / 1000
            preds = [i.prediction for i in instances]
            row = {
                "direction": f"{src}-{tgt}",
                "policy": spec,
                "clips": len(items),
                "BLEU_vs_cascade": round(scores["BLEU"], 2),
                "clips_with_translation": len(real),
                "BLEU_ref": round(bleu([preds[i] for i in real], real_refs, tgt), 2),
                "offline_BLEU_ref": round(bleu([offline[i] for i in real], real_refs, tgt), 2),
                "StartOffset_CA_s": round(scores["StartOffset_CA"] / 1000, 2),
                "LAAL_CA_s": round(scores["LAAL_CA"] / 1000, 2),
                "StartOffset_s": round(scores["StartOffset"] / 1000, 2),
                "LAAL_s": round(scores["LAAL"] / 1000, 2),
                "RTF": round(spent / duration, 3),
            }
            (where / "scores.json").write_text(json.dumps(scores, indent=2))
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part", choices=["asr", "s2t", "both", "findings", "timing"], default="both"
    )
    parser.add_argument(
        "--engines", default="base", help="ASR presets to compare (base,small,tiny.en)"
    )
    parser.add_argument("--limit", type=int, default=12, help="clips per speech set")
    parser.add_argument("--langs", default="en,zh", help="ASR part: source languages")
    parser.add_argument(
        "--duty", type=float, default=0.2, help="ASR part: the recognizer's max_duty"
    )
    parser.add_argument("--policies", default="clause:0,wait-k:5", help="S2T policy:knob list")
    parser.add_argument("--output", default="runs/s2t")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    if args.part == "timing":
        summary["timing"] = timing_part(args.engines.split(","))
    if args.part == "findings":
        summary["findings"] = findings_part(args.engines.split(",")[0])
    if args.part in ("asr", "both"):
        langs = tuple(args.langs.split(","))
        summary["asr"] = asr_part(args.engines.split(","), args.limit, langs, args.duty)
    if args.part in ("s2t", "both"):
        summary["s2t"] = s2t_part(args.limit, args.policies.split(","), output)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {output}/summary.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
