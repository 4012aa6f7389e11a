"""bench/t2t: text-to-text simultaneous translation on the shared IWSLT17 TED dev sets.

Runs every policy setting below on the first ``--limit`` lines of each direction with the
default packaged model (llama.cpp, CPU), and prints one table per direction: BLEU, chrF,
LAAL, AL, AL_CA, computation per source unit, plus offline BLEU and oracle AL.

    python bench/t2t.py --limit 20 --output runs/t2t

Source text arrives at 4 Chinese characters/s or 2.5 English words/s. AL/LAAL are in source
units (characters for zh, words for en); AL_CA is in seconds, computation included, so
``AL_CA - AL / rate`` is the cost of computing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulinterp.eval.instances import DEFAULT_UNITS_PER_S
from simulinterp.eval.runner import EvalData, evaluate, oracle_al, plot_curve, write_scores
from simulinterp.llm.factory import ModelConfig, build_backend
from simulinterp.policy import make_policy
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "dev"
DIRECTIONS = {("zh", "en"): "iwslt17_ted_tst2016_zh-en", ("en", "zh"): "iwslt17_ted_tst2016_en-zh"}
GRID = [
    ("clause", 0),
    ("clause", 12),
    ("wait-k", 3),
    ("wait-k", 5),
    ("local-agreement", 2),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="lines per direction")
    parser.add_argument("--model", default="default", help="preset or GGUF path")
    parser.add_argument("--output", default="runs/t2t", help="where instances and scores go")
    parser.add_argument("--direction", choices=["zh-en", "en-zh", "both"], default="both")
    parser.add_argument("--grid", help="policy:knob,... to run instead of the default grid")
    args = parser.parse_args()
    grid = _grid(args.grid) if args.grid else GRID
    llm = build_backend(ModelConfig(model=args.model))
    summary = []
    for (src, tgt), folder in DIRECTIONS.items():
        if args.direction not in ("both", f"{src}-{tgt}"):
            continue
        data = _data(DEV / folder, src, tgt, args.limit)
        out = Path(args.output) / f"{src}-{tgt}"
        rows = _run_direction(llm, data, out, grid)
        summary.extend(rows)
    write_scores(Path(args.output), {"rows": summary})
    best = _best_lines(summary)
    print("\n".join(best))
    return 0


def _run_direction(llm, data: EvalData, out: Path, grid) -> list[dict]:
    src, tgt = data.source_lang, data.target_lang
    config = TranslatorConfig(src, tgt)
    spu = 1.0 / DEFAULT_UNITS_PER_S[src]
    offline_translator = SimultaneousTranslator(llm, make_policy("offline"), config)
    offline, _ = evaluate(offline_translator, data, spu, out / "offline")
    print(f"\n{src}->{tgt}, {len(data.sources)} lines: offline BLEU {offline['BLEU']:.2f}")
    print("policy           knob   BLEU   chrF   LAAL     AL  AL_CA(s) ms/unit", flush=True)
    rows = []
    for name, knob in grid:
        started = time.perf_counter()
        translator = SimultaneousTranslator(llm, make_policy(name, knob, src, tgt), config)
        scores, _ = evaluate(translator, data, spu, out / f"{name}-{knob}")
        scores.update(
            direction=f"{src}-{tgt}",
            policy=name,
            knob=knob,
            offline_BLEU=offline["BLEU"],
            seconds=time.perf_counter() - started,
        )
        write_scores(out / f"{name}-{knob}", scores)
        rows.append(scores)
        print(
            f"{name:<16} {knob!s:>5} {scores['BLEU']:6.2f} {scores['chrF']:6.1f} "
            f"{scores['LAAL']:6.2f} {scores['AL']:6.2f} {scores['AL_CA']:8.2f} "
            f"{scores['ms_per_unit']:7.0f}",
            flush=True,
        )
    oracle = oracle_al(data)
    print(f"oracle AL {oracle:.2f} units", flush=True)
    for row in rows:
        row["oracle_AL"] = oracle
        write_scores(out / f"{row['policy']}-{row['knob']}", row)
    plot_curve(
        rows,
        out / "curve.png",
        offline_bleu=offline["BLEU"],
        oracle=oracle,
        title=f"{src}→{tgt}, first {len(data.sources)} TED dev lines",
    )
    return rows


def _best_lines(rows: list[dict]) -> list[str]:
    lines = []
    for direction in dict.fromkeys(r["direction"] for r in rows):
        mine = [r for r in rows if r["direction"] == direction]
        good = [r for r in mine if r["BLEU"] >= 0.95 * r["offline_BLEU"]]
        pick = min(good, key=lambda r: r["LAAL"]) if good else max(mine, key=lambda r: r["BLEU"])
        lines.append(
            f"t2t {direction}: best {pick['policy']} {pick['knob']}: BLEU {pick['BLEU']:.2f} "
            f"(offline {pick['offline_BLEU']:.2f}) at LAAL {pick['LAAL']:.2f}, "
            f"AL_CA-AL/rate {pick['AL_CA'] - pick['AL'] / DEFAULT_UNITS_PER_S[direction[:2]]:.2f}s"
        )
    return lines


def _data(folder: Path, src: str, tgt: str, limit: int) -> EvalData:
    if not folder.is_dir():
        sys.exit(f"dev data not found: {folder}")
    sources = (folder / "source.txt").read_text(encoding="utf-8").splitlines()[:limit]
    refs = (folder / "ref.txt").read_text(encoding="utf-8").splitlines()[:limit]
    return EvalData(sources, refs, src, tgt)


def _grid(text: str) -> list[tuple[str, float | None]]:
    out = []
    for item in text.split(","):
        name, _, knob = item.partition(":")
        out.append((name, float(knob) if knob else None))
    return out


if __name__ == "__main__":
    sys.exit(main())
