"""bench/rl: sequence-level RL of the READ/WRITE policy (``train rl``), on a real model.

Part ``cpu`` (proof that the loop runs on a pretrained model): a few stage-1 updates of the
packaged 0.5B (or ``--model``) on ``--pairs`` training pairs per direction. It prints seconds
per update, and the reward, chrF and LAAL of ``--held-out`` dev sentences before and after
(rolled out with one fixed seed, not trained on). Writes ``--out/cpu.json``.

Part ``gpu`` (sized for one H200 and 10-minute commands, see ``../shared/GPU.md``): from the
start model (``--model``: a SimulMask adapter folder, or the base), two routes with the same
number of updates: stage 1 then stage 2 (half the updates each), and stage 2 alone. Each
result and the start model are then scored on the first ``--dev-limit`` lines of the TED dev
sets with ``simulinterp eval --backend transformers --policy learned``. Prints BLEU, chrF, AL
and LAAL per model and direction, the spread of the training reward in the second half of each
route (stability), and writes ``--out/gpu.json``.

    python bench/rl.py --part cpu                       # the packaged 0.5B, ~10 min here
    python bench/rl.py --part cpu --model tiny --updates 2
    python bench/rl.py --part gpu --model tiny --updates 2 --dev-limit 2   # CPU dry run
    python3 bench/rl.py --part gpu --model /root/weights/qwen0.5b.gguf --updates 60  # on the GPU

Run it alone: a second job on the same two cores inflates every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "text"
TRAIN = SHARED / "train"
DEV = {"zh-en": "iwslt17_ted_tst2016_zh-en", "en-zh": "iwslt17_ted_tst2016_en-zh"}
TRAIN_SETS = {"zh-en": "wmt22_general_zh-en", "en-zh": "wmt22_general_en-zh"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--model", default="default", help="preset, checkpoint, adapter or tiny")
    parser.add_argument("--out", default=str(ROOT / "runs" / "rl"))
    parser.add_argument("--directions", default="zh-en,en-zh")
    parser.add_argument("--pairs", type=int, default=4, help="training pairs per direction")
    parser.add_argument("--held-out", type=int, default=4, help="dev sentences per direction")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--sources", type=int, default=2, help="sources per update")
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--max-source-units", type=int, default=24)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--dev-limit", type=int, default=100, help="gpu: dev lines scored")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return run_cpu(args, out) if args.part == "cpu" else run_gpu(args, out)


def start_model(model: str, cache: Path) -> str:
    """``tiny``: the tests' random 2-layer Qwen2 (a dry run); anything else as given."""
    if model != "tiny":
        return model
    folder = cache / "tiny"
    if not (folder / "config.json").is_file():
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_qwen import save_checkpoint

        save_checkpoint(folder)
        config = json.loads((folder / "config.json").read_text())
        config["max_position_embeddings"] = 4096  # room for whole dev sentences (RoPE)
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    return str(folder)


def pairs_folder(out: Path, directions: list[str], count: int, dev: bool) -> Path:
    """A folder of per-direction folders with the first ``count`` pairs of each set."""
    folder = out / ("held-out" if dev else "train-pairs")
    for direction in directions:
        name = DEV[direction] if dev else TRAIN_SETS[direction]
        source = SHARED / ("dev" if dev else "train") / name
        if not source.is_dir():
            sys.exit(f"data not found: {source}")
        target = folder / f"{'dev' if dev else 'train'}_{direction}"
        target.mkdir(parents=True, exist_ok=True)
        for file in ("source.txt", "ref.txt"):
            lines = (source / file).read_text(encoding="utf-8").splitlines()
            (target / file).write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
    return folder


# -- part cpu ------------------------------------------------------------------------------


def run_cpu(args: argparse.Namespace, out: Path) -> int:
    from simulinterp.train.config import RLConfig
    from simulinterp.train.examples import read_parallel
    from simulinterp.train.rl import train_rl
    from simulinterp.train.rollout import episodes_from_pairs

    directions = args.directions.split(",")
    model = start_model(args.model, out / "cache")
    data = pairs_folder(out, directions, args.pairs, dev=False)
    held = episodes_from_pairs(
        read_parallel(pairs_folder(out, directions, args.held_out, dev=True)),
        args.max_source_units,
    )
    config = RLConfig(
        model=model,
        data=str(data),
        output=str(out / "cpu-stage1"),
        stage=1,
        updates=args.updates,
        sources_per_update=args.sources,
        group_size=args.group_size,
        max_source_units=args.max_source_units,
        learning_rate=args.lr,
    )
    started = time.perf_counter()
    print(f"loading {model} and rolling out {len(held)} held-out sentences first", flush=True)
    result = train_rl(config, on_log=_print_update, held_out=held)
    total = time.perf_counter() - started
    times = [h["elapsed_s"] for h in result.history]
    per_update = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    figures = {
        "model": args.model,
        "updates": result.updates,
        "sources_per_update": args.sources,
        "group_size": args.group_size,
        "seconds_per_update": per_update,
        "mean_seconds_per_update": sum(per_update[1:] or per_update)
        / len(per_update[1:] or per_update),
        "total_seconds": total,
        "held_out": result.evaluation,
        "history": result.history,
    }
    (out / "cpu.json").write_text(json.dumps(figures, indent=2) + "\n")
    before, after = result.evaluation["before"], result.evaluation["after"]
    print(
        f"\n{args.model}: {result.updates} stage-1 updates of {args.sources} x "
        f"{args.group_size} rollouts; {figures['mean_seconds_per_update']:.0f} s per update "
        f"(first {per_update[0]:.0f} s); total {total:.0f} s with loading and held-out rollouts"
    )
    print("held out | reward | chrF | BLEU | LAAL | written share")
    for name, row in (("before", before), ("after", after)):
        print(
            f"{name:8} | {row['reward_raw']:6.3f} | {row['chrF']:4.1f} | {row['BLEU']:4.1f} | "
            f"{row['LAAL']:4.2f} | {row['written_share']:.2f}"
        )
    print(f"wrote {out / 'cpu.json'}")
    return 0


def _print_update(record: dict[str, Any]) -> None:
    print(
        f"update {record['update']}/{record['total_updates']}: reward {record['reward_raw']:.3f}"
        f"  KL {record['kl']:.4f}  beta {record['beta']:.4f}  chrF {record['chrF']:.1f}  "
        f"LAAL {record['LAAL']:.2f}  {record['elapsed_s']:.0f} s",
        flush=True,
    )


# -- part gpu ------------------------------------------------------------------------------


def run_gpu(args: argparse.Namespace, out: Path) -> int:
    directions = args.directions.split(",")
    model = start_model(args.model, out / "cache")
    data = pairs_folder(out, directions, max(args.pairs, 2000), dev=False)
    half = max(1, args.updates // 2)
    common = ["--data", str(data), "--sources", str(args.sources)]
    common += ["--group-size", str(args.group_size), "--lr", str(args.lr)]
    common += ["--max-source-units", str(args.max_source_units)]
    routes = {
        "two-stage": [("stage1", model, 1, half), ("stage2", None, 2, args.updates - half)],
        "one-stage": [("stage2-only", model, 2, args.updates)],
    }
    trained: dict[str, Path] = {}
    stability: dict[str, dict[str, float]] = {}
    for route, legs in routes.items():
        previous = None
        for name, start, stage, updates in legs:
            folder = out / route / name
            start_at = start if start is not None else str(previous)
            _cli(
                ["train", "rl", "--model", start_at, "--stage", str(stage)]
                + ["--updates", str(max(1, updates)), "--output", str(folder), *common]
            )
            previous = folder
        trained[route] = previous  # type: ignore[assignment]
        log = [json.loads(x) for x in (previous / "rl_log.jsonl").read_text().splitlines()]
        rewards = [r["reward_raw"] for r in log[len(log) // 2 :]]
        mean = sum(rewards) / len(rewards)
        spread = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
        stability[route] = {"reward_mean_2nd_half": mean, "reward_std_2nd_half": spread}
    scores = {}
    base = _base_of(model)
    for label, adapter in (("start", _adapter_of(model)), *trained.items()):
        for direction in directions:
            scores[f"{label} {direction}"] = _dev_scores(base, adapter, direction, args, out)
    report = {"stability": stability, "dev": scores, "updates": args.updates}
    (out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\nmodel direction | BLEU | chrF | AL | LAAL")
    for key, row in scores.items():
        print(
            f"{key:22} | {row['BLEU']:5.2f} | {row['chrF']:5.2f} | {row['AL']:5.2f} | "
            f"{row['LAAL']:5.2f}"
        )
    for route, row in stability.items():
        print(
            f"{route}: training reward in the second half {row['reward_mean_2nd_half']:.3f} "
            f"+- {row['reward_std_2nd_half']:.3f}"
        )
    print(f"wrote {out / 'gpu.json'}")
    return 0


def _base_of(model: str) -> str:
    metadata = Path(model) / "simulinterp.json"
    if metadata.is_file():
        return str(json.loads(metadata.read_text())["base_model"])
    return model


def _adapter_of(model: str) -> Path | None:
    return Path(model) if (Path(model) / "adapter_config.json").is_file() else None


def _dev_scores(
    base: str, adapter: Path | None, direction: str, args: argparse.Namespace, out: Path
) -> dict[str, float]:
    src, tgt = direction.split("-")
    folder = SHARED / "dev" / DEV[direction]
    lines = out / "dev-lines" / direction
    lines.mkdir(parents=True, exist_ok=True)
    for file in ("source.txt", "ref.txt"):
        text = (folder / file).read_text(encoding="utf-8").splitlines()[: args.dev_limit]
        (lines / file).write_text("\n".join(text) + "\n", encoding="utf-8")
    where = out / "eval" / (adapter.name if adapter else "start-base") / direction
    argv = ["eval", "--source", str(lines / "source.txt"), "--reference", str(lines / "ref.txt")]
    argv += ["--from", src, "--to", tgt, "--backend", "transformers", "--model", base]
    argv += ["--output", str(where), "--no-offline"]
    # the start policy as RL saw it: the plain prompt, the model deciding itself
    argv += ["--policy", "learned", "--prompt-style", "plain"]
    if adapter is not None:
        argv += ["--adapter", str(adapter)]
    _cli(argv)
    scores = json.loads((where / "scores.json").read_text())
    return {k: float(scores[k]) for k in ("BLEU", "chrF", "AL", "LAAL") if k in scores}


def _cli(argv: list[str]) -> None:
    print("$ simulinterp " + " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "simulinterp", *argv], check=True)


if __name__ == "__main__":
    sys.exit(main())
