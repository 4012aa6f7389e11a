"""bench/quality: both packaged models under the main policies, on text and on speech.

The table that chose the defaults of ``interpret``, ``demo`` and ``eval --source-type speech``
(see ``simulinterp.defaults``). Per direction, every model x policy row has:

- text, the first ``--limit`` lines of the IWSLT17 TED dev sets (whole talks: each line sees
  the talk's earlier sentences as context): BLEU, chrF, LAAL (source units), StartOffset_CA and
  LAAL_CA (seconds, computation included) and ms of computing per source unit. Source text
  arrives at 4 characters/s (zh) or 2.5 words/s (en) and units that arrive while the model is
  busy are read in one batch, as in a live run;
- speech, the shared recordings that have human translations (two per direction): BLEU and chrF
  against them, StartOffset_CA and LAAL_CA (seconds of source audio, computation included) and
  the whole pipeline's real-time factor (VAD + ASR + translation, 2 cores).

    python bench/quality.py --output runs/quality                  # everything (hours)
    python bench/quality.py --part text --limit 100 --models fast,quality
    python bench/quality.py --part speech --directions en-zh
    python bench/quality.py --part levers --models quality --limit 60

A policy is ``name:knob``; ``clause:N:agree`` is the word-capped clause policy with agreement
(after N units it commits only what two hypotheses in a row share, not the model's guess), and
``clause:N:minM`` reads past clauses shorter than M units (``--min-clause M``); flags combine
(``clause:5:agree:min3``).

The row ``default`` (added for the model that ``simulinterp.defaults`` names) runs exactly the
settings of ``interpret``: its policy, knob, layout, context and duty cap.

``--part levers`` measures what makes a step cheaper or the context useful, one change at a time
against the same baseline: the context (0 or 1 earlier sentence pairs), the ``exchanges`` prompt
layout (a step re-reads only the open stretch of source, not the committed target), live
batching (one decision per batch of units that arrived while busy, against one per unit), and the
duty cap.

Nothing else may run on the CPU meanwhile: the computation-aware figures measure this machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from simulinterp.defaults import speech_defaults
from simulinterp.eval.instances import DEFAULT_UNITS_PER_S
from simulinterp.eval.runner import EvalData, evaluate, write_scores
from simulinterp.eval.speech import score_speech
from simulinterp.eval.speech_run import SpeechItem, offline_translations, run_items
from simulinterp.llm.factory import ModelConfig, build_backend
from simulinterp.pipeline import SpeechEngine
from simulinterp.policy import make_policy
from simulinterp.policy.rules import Clause
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TED = {
    ("zh", "en"): SHARED / "text" / "dev" / "iwslt17_ted_tst2016_zh-en",
    ("en", "zh"): SHARED / "text" / "dev" / "iwslt17_ted_tst2016_en-zh",
}
SPEECH = {"en": SHARED / "speech" / "speech_en_misc", "zh": SHARED / "speech" / "speech_zh_misc"}
POLICIES = {
    ("zh", "en"): ["wait-k:3", "wait-k:5", "local-agreement:2", "clause:0", "clause:8"],
    ("en", "zh"): ["wait-k:3", "wait-k:5", "local-agreement:2", "clause:0", "clause:5"],
}


def ted(src: str, tgt: str, limit: int) -> EvalData:
    folder = TED[(src, tgt)]
    if not folder.is_dir():
        sys.exit(f"dev data not found: {folder}")
    lines = [
        (folder / n).read_text(encoding="utf-8").splitlines()[:limit]
        for n in ("source.txt", "ref.txt", "docids.txt")
    ]
    docs = [d.split("\t")[0] for d in lines[2]]
    return EvalData(lines[0], lines[1], src, tgt, docs=docs)


def speech_items(src: str) -> list[SpeechItem]:
    """The recordings of ``src`` speech that have a human translation."""
    folder = SPEECH[src]
    items = []
    for row in (folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        cols = row.split("\t")
        if len(cols) >= 3 and cols[2].strip():
            items.append(SpeechItem(folder / cols[0], (cols[2].strip(),), cols[1].strip()))
    return items


def policy_of(spec: str, src: str, tgt: str):
    if spec == "default":
        chosen = speech_defaults(src, tgt)
        return make_policy(chosen.policy, chosen.knob, src, tgt)
    name, _, rest = spec.partition(":")
    knob, *flags = rest.split(":")
    policy = make_policy(name, float(knob) if knob else None, src, tgt)
    for flag in flags:
        if flag == "agree" and isinstance(policy, Clause):
            policy = replace(policy, agree=True)  # the word cap commits what two agree on
        elif flag.startswith("min") and flag[3:].isdigit() and isinstance(policy, Clause):
            policy = replace(policy, min_clause=int(flag[3:]))  # short clauses join the next
        else:
            raise SystemExit(
                f"unknown policy flag {flag!r} in {spec!r} (clause:N:agree, clause:N:minM)"
            )
    return policy


def config_of(spec: str, src: str, tgt: str, max_duty: float) -> TranslatorConfig:
    """The translator settings of a row: ``default`` is exactly what ``interpret`` uses."""
    if spec == "default":
        chosen = speech_defaults(src, tgt)
        return TranslatorConfig(
            src,
            tgt,
            layout=chosen.layout,
            context_sentences=chosen.context_sentences,
            max_duty=chosen.max_duty,
        )
    return TranslatorConfig(src, tgt, max_duty=max_duty)


def text_row(llm, data: EvalData, spec: str, config: TranslatorConfig, out: Path) -> dict:
    src, tgt = data.source_lang, data.target_lang
    translator = SimultaneousTranslator(llm, policy_of(spec, src, tgt), config)
    where = out / spec.replace(":", "-")
    scores, _ = evaluate(translator, data, 1 / DEFAULT_UNITS_PER_S[src], where, scheduled=True)
    write_scores(where, scores)
    return {
        "BLEU": scores["BLEU"],
        "chrF": scores["chrF"],
        "LAAL": scores["LAAL"],
        "StartOffset_CA_s": scores["StartOffset_CA"],
        "LAAL_CA_s": scores["LAAL_CA"],
        "ms_per_unit": scores["ms_per_unit"],
        "leak_rate": scores.get("leak_rate"),
    }


def speech_row(engine: SpeechEngine, items, spec: str, config: TranslatorConfig, out: Path):
    src, tgt = config.source_lang, config.target_lang
    where = out / spec.replace(":", "-")
    where.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    instances = list(
        run_items(engine, items, policy_of(spec, src, tgt), config, where / "instances.log")
    )
    spent = time.perf_counter() - started
    scores = score_speech(instances, tgt, src)
    write_scores(where, scores)
    audio_s = sum(i.source_length for i in instances) / 1000
    return {
        "s2t_BLEU": scores["BLEU"],
        "s2t_chrF": scores["chrF"],
        "s2t_StartOffset_CA_s": scores["StartOffset_CA"] / 1000,
        "s2t_LAAL_CA_s": scores["LAAL_CA"] / 1000,
        "RTF": spent / audio_s,
        "s2t_leak_rate": scores.get("leak_rate"),
    }


def run_direction(args, src: str, tgt: str, out: Path) -> list[dict]:
    rows = []
    data = ted(src, tgt, args.limit)
    items = speech_items(src)
    for model in args.models.split(","):
        llm = build_backend(ModelConfig(model=model, threads=args.threads))
        config = TranslatorConfig(src, tgt)
        base = out / f"{src}-{tgt}" / model
        extra: dict = {}
        if args.part in ("text", "both"):
            offline = text_row(llm, data, "offline", config, base / "text")
            extra["offline_BLEU"] = offline["BLEU"]
            print(f"{src}->{tgt} {model} offline: BLEU {offline['BLEU']:.2f}", flush=True)
        engine = SpeechEngine(llm) if args.part in ("speech", "both") else None
        if engine is not None:
            cascade = offline_translations(engine, items, config)
            from simulinterp.eval.quality import bleu

            extra["cascade_BLEU"] = bleu(cascade, [i.references[0] for i in items], tgt)
        specs = args.policies.split(",") if args.policies else POLICIES[(src, tgt)]
        if args.default_row and model == speech_defaults(src, tgt).model and "default" not in specs:
            specs = [*specs, "default"]  # what interpret, demo and eval --source-type speech use
        for spec in specs:
            if spec == "default" and model != speech_defaults(src, tgt).model:
                continue
            row = {"direction": f"{src}-{tgt}", "model": model, "policy": spec, **extra}
            config = config_of(spec, src, tgt, args.max_duty)
            row["max_duty"] = config.max_duty
            if spec == "default":
                chosen = speech_defaults(src, tgt)
                knob = f":{chosen.knob:g}" if chosen.knob is not None else ""
                row["policy"] = f"default = {chosen.policy}{knob}, max_duty {chosen.max_duty:g}"
            if args.part in ("text", "both"):
                row |= text_row(llm, data, spec, config, base / "text")
            if engine is not None:
                row |= speech_row(engine, items, spec, config, base / "speech")
            print(json.dumps(row), flush=True)
            rows.append(row)
        llm.close()
    return rows


def levers(args, out: Path) -> list[dict]:
    """One change at a time against the default translator settings, on text."""
    rows = []
    for src, tgt in directions(args):
        data = ted(src, tgt, args.limit)
        for model in args.models.split(","):
            llm = build_backend(ModelConfig(model=model, threads=args.threads))
            spec = args.lever_policy or ("clause:0" if src == "zh" else "local-agreement:2")
            base_cfg = TranslatorConfig(src, tgt)
            variants = {
                "baseline": (base_cfg, True, data),
                "no context": (replace(base_cfg, context_sentences=0), True, data),
                "context, lines not in talks": (base_cfg, True, replace(data, docs=None)),
                "exchanges layout": (replace(base_cfg, layout="exchanges"), True, data),
                "a decision at every unit": (base_cfg, False, data),
                "max_duty 0.5": (replace(base_cfg, max_duty=0.5), True, data),
            }
            for name, (config, scheduled, lines) in variants.items():
                translator = SimultaneousTranslator(llm, policy_of(spec, src, tgt), config)
                where = out / "levers" / f"{src}-{tgt}" / model / name.replace(" ", "_")
                scores, _ = evaluate(
                    translator, lines, 1 / DEFAULT_UNITS_PER_S[src], where, scheduled=scheduled
                )
                row = {
                    "direction": f"{src}-{tgt}",
                    "model": model,
                    "policy": spec,
                    "variant": name,
                    "BLEU": scores["BLEU"],
                    "LAAL": scores["LAAL"],
                    "AL_CA_minus_AL_s": scores["AL_CA"] - scores["AL"] / DEFAULT_UNITS_PER_S[src],
                    "ms_per_unit": scores["ms_per_unit"],
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
            llm.close()
    return rows


def directions(args) -> list[tuple[str, str]]:
    wanted = args.directions.split(",")
    return [d for d in TED if f"{d[0]}-{d[1]}" in wanted]


def print_tables(rows: list[dict]) -> None:
    cols = [
        ("BLEU", "BLEU"),
        ("chrF", "chrF"),
        ("LAAL", "LAAL"),
        ("StartOffset_CA_s", "SO_CA s"),
        ("LAAL_CA_s", "LAAL_CA s"),
        ("ms_per_unit", "ms/unit"),
        ("s2t_BLEU", "S2T BLEU"),
        ("s2t_chrF", "S2T chrF"),
        ("s2t_StartOffset_CA_s", "SO_CA s"),
        ("s2t_LAAL_CA_s", "LAAL_CA s"),
        ("RTF", "RTF"),
    ]
    for direction in dict.fromkeys(r["direction"] for r in rows):
        mine = [r for r in rows if r["direction"] == direction]
        present = [(k, h) for k, h in cols if any(r.get(k) is not None for r in mine)]
        print(f"\n{direction}")
        print("| model | policy | " + " | ".join(h for _, h in present) + " |")
        print("|---|---|" + "---|" * len(present))
        for r in mine:
            cells = [f"{r[k]:.2f}" if r.get(k) is not None else "" for k, _ in present]
            print(f"| {r['model']} | {r['policy']} | " + " | ".join(cells) + " |")
        for model in dict.fromkeys(r["model"] for r in mine):
            first = next(r for r in mine if r["model"] == model)
            refs = {k: first[k] for k in ("offline_BLEU", "cascade_BLEU") if k in first}
            print(f"{model}: " + ", ".join(f"{k} {v:.2f}" for k, v in refs.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["text", "speech", "both", "levers"], default="both")
    parser.add_argument("--models", default="fast,quality", help="presets or GGUF paths")
    parser.add_argument("--directions", default="zh-en,en-zh")
    parser.add_argument("--policies", help="policy:knob,... instead of the grid per direction")
    parser.add_argument("--lever-policy", help="levers: the policy (default: per direction)")
    parser.add_argument("--limit", type=int, default=100, help="TED lines per direction")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument(
        "--max-duty", type=float, default=1.0, help="the translator's duty cap for every row"
    )
    parser.add_argument(
        "--no-default-row",
        dest="default_row",
        action="store_false",
        help="do not add the row of the defaults (interpret's settings) for its model",
    )
    parser.add_argument("--output", default="runs/quality")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.part == "levers":
        rows = levers(args, out)
        write_scores(out / "levers", {"rows": rows})
        return 0
    rows = []
    for src, tgt in directions(args):
        rows += run_direction(args, src, tgt, out)
    write_scores(out, {"rows": rows})
    print_tables(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
