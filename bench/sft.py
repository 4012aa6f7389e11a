"""bench/sft: SimulMask SFT step throughput, and SimulMask against prefix prompting.

Part ``speed``: packed SimulMask rows from the training data, the model loaded as ``train sft``
loads it (LoRA by default, ``--full``), ``--warmup`` + ``--steps`` optimizer steps timed
(forward, backward, clipping, AdamW, batch preparation included). Prints tokens/s, step time,
peak memory and model FLOPs utilisation. FLOPs per token follow PaLM's appendix B:
``6 N + 12 L H T`` (N parameters in matrix products: 494 M for the 0.5B, whose dequantized GGUF
has an untied input embedding that is left out; L layers, H hidden size, T padded row length),
over the real (unpadded) tokens. With LoRA the frozen weights get no weight gradient, so
``4 N + 12 L H T`` is printed beside it as the work done.

Part ``dtype``: ``train sft`` for ``--steps`` steps in float32 and then in bfloat16 (same seed,
same rows): the losses step by step and both speeds, to show that bf16 trains like fp32 on a
CPU with AVX512-BF16.

Part ``compare``: one LoRA adapter per method (``simulmask``, ``prefix``), each trained on both
directions at once (one adapter is what ``interpret`` loads for both, and it halves the
training runs; the shuffled data gives each direction about half the budget) and stopped at
the same ``--token-budget`` of input tokens. Prefix prompting spends ~10x more tokens per
sentence pair, so at equal tokens it sees fewer pairs: that is the comparison. Then the base
model (few-shot prompt) and each adapter (plain prompt) on the first ``--dev-limit`` lines of
the IWSLT17 TED dev sets under wait-k at each of ``--ks``, through the code ``simulinterp eval``
runs, in shards of ``--shard-lines`` lines (several processes on a GPU). Prints BLEU and LAAL
per (model, k), BLEU at matched LAAL (linear interpolation inside every curve's range) and the
deltas SimulMask - prefix and adapter - base; writes ``--out/compare.json``.

    python bench/sft.py --part speed --model tiny --steps 5
    python bench/sft.py --part speed --pack-tokens 512 --batch-rows 1 --steps 3   # 0.5B, CPU
    python bench/sft.py --part dtype --pack-tokens 512 --batch-rows 2 --steps 8   # bf16 vs fp32
    python bench/sft.py --part compare --model tiny --token-budget 20000 --pack-tokens 512 \
        --batch-rows 2 --eval-backend transformers --dev-limit 5 --ks 1,3
    PYTHONPATH=src python3 bench/sft.py --part compare --model /root/weights/MODEL.gguf  # GPU
    python bench/sft.py --part compare --skip-train --eval-backend llamacpp   # CPU, its adapters

A GGUF (or the ``default`` preset) is dequantized once into ``--cache`` and the checkpoint is
reused by training and by ``--eval-backend transformers``. ``--eval-backend llamacpp`` runs the
packaged quantized model with each adapter exported to ``adapter.gguf``. Finished shards are
kept under ``--out`` and not run again, so a run cut by ``--time-limit`` (or Ctrl-C) resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from simulinterp.eval.shards import Shard, combine, dev_data, run_shards
from simulinterp.llm.adapter_info import METADATA_FILE
from simulinterp.llm.models import cache_dir
from simulinterp.train.budget import plan_budget

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "text"
METHODS = ("simulmask", "prefix")
H100_BF16_TFLOPS = 989.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["speed", "dtype", "compare"], default="speed")
    parser.add_argument("--model", default="default", help="preset, .gguf, checkpoint or tiny")
    parser.add_argument("--data", default=str(SHARED / "train"), help="training text folders")
    parser.add_argument("--dev", default=str(SHARED / "dev"), help="folder of the dev sets")
    parser.add_argument("--out", default="runs/bench-sft", help="results, adapters, logs")
    parser.add_argument(
        "--cache", default=str(cache_dir().parent / "bench-sft"), help="dequantized checkpoints"
    )
    parser.add_argument("--pack-tokens", type=int, default=2048, help="tokens per packed row")
    parser.add_argument("--batch-rows", type=int, default=4, help="packed rows per step")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU), float32, bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's)")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    speed.add_argument("--steps", type=int, default=10, help="timed steps")
    speed.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    speed.add_argument("--limit", type=int, default=100, help="pairs per data folder (speed)")
    speed.add_argument("--peak-tflops", type=float, default=H100_BF16_TFLOPS)
    comp = parser.add_argument_group("compare")
    comp.add_argument("--token-budget", type=int, default=1_000_000, help="input tokens/method")
    comp.add_argument("--methods", default=",".join(METHODS))
    comp.add_argument("--lr", type=float, default=2e-4, help="peak learning rate")
    comp.add_argument("--skip-train", action="store_true", help="evaluate adapters in --out")
    comp.add_argument("--skip-eval", action="store_true", help="train only")
    comp.add_argument("--eval-backend", choices=["transformers", "llamacpp"], default=None)
    comp.add_argument("--dev-limit", type=int, default=150, help="first N lines per dev set")
    comp.add_argument("--ks", default="1,3,5,7", help="wait-k values")
    comp.add_argument("--directions", default="zh-en,en-zh")
    comp.add_argument("--eval-workers", type=int, default=0, help="processes (0: auto)")
    comp.add_argument("--shard-lines", type=int, default=25, help="dev lines per work unit")
    comp.add_argument(
        "--time-limit", type=float, default=0, help="start no evaluation after S seconds (0: none)"
    )
    comp.add_argument("--laal-points", type=int, default=3, help="matched-LAAL points")
    args = parser.parse_args()
    args.deadline = time.monotonic() + args.time_limit if args.time_limit else math.inf
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.part == "speed":
        return run_speed(args)
    if args.part == "dtype":
        return run_dtype(args)
    return run_compare(args)


# -- models ------------------------------------------------------------------------------


def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def checkpoint_for(model: str, cache: Path) -> Path:
    """A transformers checkpoint folder for ``model``: tiny, a folder, or a dequantized GGUF."""
    if model == "tiny":
        return _tiny_checkpoint(cache / "tiny")
    from simulinterp.train.modeling import resolve_model

    root, gguf_file = resolve_model(model)
    if gguf_file is None:
        return root
    dtype = "bfloat16" if device_name() == "cuda" else "float32"
    target = cache / f"{Path(gguf_file).stem}-{dtype}"
    if (target / "config.json").is_file():
        return target
    import torch
    import transformers

    print(f"dequantizing {root / gguf_file} into {target} (once)", flush=True)
    started = time.perf_counter()
    kwargs = {"gguf_file": gguf_file, "local_files_only": True}
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(root), **kwargs)
    net = transformers.AutoModelForCausalLM.from_pretrained(
        str(root), dtype=getattr(torch, dtype), **kwargs
    )
    # the weights are plain tensors now; only the GGUF marker blocks save_pretrained
    net.hf_quantizer = None
    if hasattr(net.config, "quantization_config"):
        del net.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    net.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    print(f"dequantized in {time.perf_counter() - started:.0f} s", flush=True)
    return target


def _tiny_checkpoint(folder: Path) -> Path:
    """tests/tiny_qwen's random 2-layer Qwen2, with room for the few-shot prompt (RoPE)."""
    if (folder / "config.json").is_file():
        return folder
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_qwen import save_checkpoint

    save_checkpoint(folder)
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 4096
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def gguf_for(model: str) -> str:
    """The GGUF that llama.cpp runs for ``model`` (a preset or a file)."""
    from simulinterp.llm.models import ensure_model

    return str(ensure_model(model))


# -- part: dtype (does bf16 train like fp32?) ----------------------------------------------


def run_dtype(args: argparse.Namespace) -> int:
    """``train sft`` for ``--steps`` steps in float32, then in bfloat16, from the same seed and
    rows: the loss of every step side by side, and the tokens/s of each."""
    from simulinterp.train.sft import SFTConfig, train_sft

    checkpoint = checkpoint_for(args.model, Path(args.cache))
    runs: dict[str, list[dict]] = {}
    speed: dict[str, float] = {}
    for dtype in ("float32", "bfloat16"):
        config = SFTConfig(
            model=str(checkpoint),
            data=args.data,
            output=str(Path(args.out) / f"dtype-{dtype}"),
            limit=args.limit,
            max_steps=args.steps,
            pack_tokens=args.pack_tokens,
            batch_rows=args.batch_rows,
            max_example_tokens=min(512, args.pack_tokens),
            dtype=dtype,
            seed=args.seed,
            log_every=1,
        )
        print(f"\n{dtype}: {args.steps} steps", flush=True)
        records: list[dict] = []
        result = train_sft(config, on_log=records.append)
        runs[dtype] = [{"step": r["step"], "loss": r["loss"]} for r in records]
        later = [r["tokens_per_s"] for r in records[1:]]  # the first step warms up
        speed[dtype] = sum(later) / len(later) if later else result.tokens_per_s
    pairs = list(zip(runs["float32"], runs["bfloat16"], strict=True))
    print("\nstep | loss fp32 | loss bf16 | difference")
    for a, b in pairs:
        print(f"{a['step']:4} | {a['loss']:9.4f} | {b['loss']:9.4f} | {b['loss'] - a['loss']:+.4f}")
    worst = max(abs(b["loss"] - a["loss"]) / abs(a["loss"]) for a, b in pairs)
    print(
        f"largest relative difference {100 * worst:.2f}%; tokens/s fp32 {speed['float32']:.0f}, "
        f"bf16 {speed['bfloat16']:.0f} ({speed['bfloat16'] / speed['float32']:.2f}x)"
    )
    report = {"losses": runs, "tokens_per_s": speed, "max_relative_difference": worst}
    (Path(args.out) / "dtype.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


# -- part 1: speed -----------------------------------------------------------------------


def run_speed(args: argparse.Namespace) -> int:
    import torch

    from simulinterp.train.modeling import MaskedLossModel, load_for_training
    from simulinterp.train.sft import SFTConfig, build_rows

    device = device_name()
    torch.manual_seed(args.seed)
    checkpoint = checkpoint_for(args.model, Path(args.cache))
    config = SFTConfig(
        model=str(checkpoint),
        data=args.data,
        output=str(Path(args.out) / "speed"),
        full=args.full,
        limit=args.limit,
        pack_tokens=args.pack_tokens,
        batch_rows=args.batch_rows,
        max_example_tokens=min(512, args.pack_tokens),
        dtype=args.dtype,
        seed=args.seed,
    )
    model, tokenizer = load_for_training(config, device)
    rows, _ = build_rows(config, tokenizer)
    wrapper = MaskedLossModel(model)
    wrapper.train()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, prep, tokens, width = _timed_steps(wrapper, model, rows, args, device, tokenizer)
    figures = _speed_figures(model, args, device, times, prep, tokens, width)
    _print_speed(figures)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"speed-{'full' if args.full else 'lora'}-{args.batch_rows}x{args.pack_tokens}.json"
    (out / name).write_text(json.dumps(figures, indent=2) + "\n")
    print(_speed_summary(figures))
    return 0


def _timed_steps(
    wrapper: Any, model: Any, rows: list, args: argparse.Namespace, device: str, tokenizer: Any
) -> tuple[list[float], list[float], list[int], int]:
    """Run warm-up and timed steps as ``train_sft`` does; per timed step: time, prep, tokens."""
    import torch

    from simulinterp.train.mask import pad_batch
    from simulinterp.train.modeling import to_tensors

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainable = [p for p in wrapper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.0)
    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    times, prep, tokens, width = [], [], [], 0
    for step in range(args.warmup + args.steps):
        first = step * args.batch_rows
        picked = [rows[order[(first + j) % len(order)]] for j in range(args.batch_rows)]
        _sync(device)
        started = time.perf_counter()
        batch = pad_batch(picked, pad_id)
        inputs = to_tensors(batch, model, device)
        _sync(device)
        ready = time.perf_counter()
        loss = wrapper(**inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - started)
            prep.append(ready - started)
            tokens.append(sum(len(r) for r in picked))
            width = max(width, batch.input_ids.shape[1])
        took = time.perf_counter() - started
        print(f"step {step + 1}: {took:.3f} s, loss {float(loss.detach()):.3f}", flush=True)
    return times, prep, tokens, width


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _speed_figures(
    model: Any, args: argparse.Namespace, device: str, times, prep, tokens, width: int
) -> dict[str, Any]:
    import resource

    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n)
    embedding, head = base.get_input_embeddings().weight, base.get_output_embeddings().weight
    if embedding.data_ptr() != head.data_ptr():  # untied: the lookup does no matrix product
        params -= embedding.numel()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cfg = base.config
    attention = 12 * cfg.num_hidden_layers * cfg.hidden_size * width
    step_s = sum(times) / len(times)
    tokens_per_s = sum(tokens) / sum(times)
    figures: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "model": args.model,
        "mode": "full" if args.full else "lora",
        "dtype": str(next(base.parameters()).dtype).removeprefix("torch."),
        "batch_rows": args.batch_rows,
        "row_tokens": width,
        "steps": len(times),
        "params": params,
        "trainable_params": trainable,
        "step_s": step_s,
        "prep_s": sum(prep) / len(prep),
        "tokens_per_step": sum(tokens) / len(tokens),
        "tokens_per_s": tokens_per_s,
        "flops_per_token_6n": 6 * params + attention,
        "flops_per_token_4n": 4 * params + attention,
        "peak_tflops": args.peak_tflops,
        "threads": torch.get_num_threads(),
        "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }
    for key in ("6n", "4n"):
        tflops = tokens_per_s * figures[f"flops_per_token_{key}"] / 1e12
        figures[f"tflops_{key}"] = tflops
        figures[f"mfu_{key}"] = tflops / args.peak_tflops if device == "cuda" else None
    figures["peak_memory_gb"] = (
        torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None
    )
    return figures


def _print_speed(f: dict[str, Any]) -> None:
    print(
        f"\n{f['mode']} on {f['device']} ({f['dtype']}, {f['threads']} threads): "
        f"N = {f['params'] / 1e6:.1f} M parameters in matrix products (an untied input "
        f"embedding left out), {f['trainable_params'] / 1e6:.2f} M trained"
    )
    print(
        f"batch {f['batch_rows']} x {f['row_tokens']} tokens ({f['tokens_per_step']:.0f} real), "
        f"{f['steps']} timed steps"
    )
    print(f"step            {f['step_s']:.3f} s (batch preparation {f['prep_s'] * 1000:.1f} ms)")
    print(f"throughput      {f['tokens_per_s']:,.0f} tokens/s")
    lora = f["mode"] == "lora"
    labels = {
        "6n": "6N+12LHT (PaLM convention" + (", counts weight grads LoRA skips)" if lora else ")"),
        "4n": "4N+12LHT (LoRA: no weight grads for frozen weights, the work done)",
    }
    for key in ("6n", "4n") if lora else ("6n",):
        mfu = f[f"mfu_{key}"]
        share = f"MFU {mfu:.1%} of {f['peak_tflops']:g}" if mfu is not None else "MFU n/a on CPU"
        print(f"{labels[key]}: {f[f'tflops_{key}']:.3f} TFLOP/s, {share}")
    memory = f"{f['peak_memory_gb']:.1f} GB CUDA" if f["peak_memory_gb"] is not None else "n/a"
    print(f"peak memory     {memory}; process max RSS {f['max_rss_gb']:.1f} GB")


def _speed_summary(f: dict[str, Any]) -> str:
    mfu = f["mfu_6n"]
    extra = ""
    if mfu is not None:
        extra = f", MFU {mfu:.1%} (6N)" + (
            f" / {f['mfu_4n']:.1%} (4N)" if f["mode"] == "lora" else ""
        )
        extra += f", peak {f['peak_memory_gb']:.1f} GB"
    return (
        f"sft speed: {f['mode']} {f['model']} {f['dtype']} on {f['device']}, "
        f"{f['batch_rows']}x{f['row_tokens']}: {f['tokens_per_s']:,.0f} tokens/s, "
        f"{f['step_s']:.3f} s/step{extra}"
    )


# -- part 2: compare ---------------------------------------------------------------------


def run_compare(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    backend = args.eval_backend or ("transformers" if device_name() == "cuda" else "llamacpp")
    needs_checkpoint = not args.skip_train or (backend == "transformers" and not args.skip_eval)
    checkpoint = checkpoint_for(args.model, Path(args.cache)) if needs_checkpoint else None
    training = {}
    for method in methods:
        folder = out / "adapters" / method
        record = out / f"train-{method}.json"
        if checkpoint is not None and not args.skip_train:
            training[method] = train_method(method, checkpoint, folder, args)
        elif not (folder / METADATA_FILE).is_file():
            sys.exit(f"--skip-train: no adapter in {folder}")
        elif record.is_file():
            training[method] = json.loads(record.read_text())
    if args.skip_eval:
        print(f"sft compare: trained {', '.join(methods)} into {out}/adapters (no evaluation)")
        return 0
    rows = evaluate_all(checkpoint, methods, backend, args)
    report = compare_report(rows, methods, args.laal_points)
    summary = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("part", "deadline")}
        | {"eval_backend": backend, "checkpoint": str(checkpoint)},
        "training": training,
        "scores": rows,
        "report": report,
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    for name in ("compare.json", f"compare-{backend}.json"):
        (out / name).write_text(text)
    print_report(report)
    print(f"wrote {out}/compare.json (and compare-{backend}.json)")
    print(compare_summary(report, training))
    return 0


def train_method(method: str, checkpoint: Path, folder: Path, args: argparse.Namespace) -> dict:
    """Train one adapter on both directions up to the token budget; returns its record."""
    import transformers

    from simulinterp.train.sft import SFTConfig, train_sft

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    plan = plan_budget(
        data=args.data,
        method=method,
        tokenizer=tokenizer,
        token_budget=args.token_budget,
        pack_tokens=args.pack_tokens,
        batch_rows=args.batch_rows,
        seed=args.seed,
    )
    print(
        f"\n{method}: {plan.tokens_per_pair:.0f} tokens per pair, "
        f"{plan.limit or 'all'} pairs per folder, {plan.max_steps} steps planned",
        flush=True,
    )
    config = SFTConfig(
        model=str(checkpoint),
        data=args.data,
        output=str(folder),
        method=method,
        direction="both",
        limit=plan.limit,
        max_steps=plan.max_steps,
        token_budget=args.token_budget,
        pack_tokens=args.pack_tokens,
        batch_rows=args.batch_rows,
        max_example_tokens=min(512, args.pack_tokens),
        learning_rate=args.lr,
        dtype=args.dtype,
        seed=args.seed,
        log_every=max(1, plan.max_steps // 10),
        save_every=max(1, plan.max_steps // 5),  # an interrupted run still leaves an adapter
    )

    def show(r: dict) -> None:
        print(
            f"  step {r['step']}/{r['total_steps']} loss {r['loss']:.4f} "
            f"{r['input_tokens']:,} tokens {r['tokens_per_s']:,.0f} tokens/s",
            flush=True,
        )

    result = train_sft(config, on_log=show)
    record = {
        **{k: v for k, v in asdict(result).items() if k != "output"},
        "tokens_per_s": result.tokens_per_s,
        "adapter": str(folder),
        **plan.as_dict(),
    }
    (folder.parent.parent / f"train-{method}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{method}: {result.steps} steps, {result.input_tokens:,} input tokens "
        f"({result.loss_tokens:,} with loss), loss {result.first_loss:.3f} -> "
        f"{result.last_loss:.3f}, {result.tokens_per_s:,.0f} tokens/s",
        flush=True,
    )
    return record


def evaluate_all(checkpoint: Path | None, methods: list[str], backend: str, args) -> list[dict]:
    """Evaluate the base model and every adapter at every k; finished shards are kept."""
    out = Path(args.out)
    model = str(checkpoint) if backend == "transformers" else gguf_for(args.model)
    models: list[tuple[str, str | None]] = [("base", None)]
    for method in methods:
        adapter = out / "adapters" / method
        models.append(
            (method, str(export_gguf(adapter, model) if backend == "llamacpp" else adapter))
        )
    settings = {}  # (label, direction, k) -> (folder, shards)
    for label, adapter in models:
        for direction in args.directions.split(","):
            lines = _dev_lines(args.dev, direction, args.dev_limit)
            for k in (int(k) for k in args.ks.split(",")):
                folder = out / "eval" / backend / label / direction / f"k{k}"
                shards = [
                    Shard(
                        label,
                        backend,
                        model,
                        adapter,
                        direction,
                        k,
                        first,
                        min(first + args.shard_lines, lines),
                        str(folder / f"lines{first}"),
                    )
                    for first in range(0, lines, args.shard_lines)
                ]
                settings[label, direction, k] = (folder, shards)
    todo = [s for _, shards in settings.values() for s in shards if not s.done()]
    total = sum(len(shards) for _, shards in settings.values())
    print(f"\nevaluating {len(todo)} of {total} shards ({total - len(todo)} done earlier)")
    on_gpu = backend == "transformers" and device_name() == "cuda"
    workers = args.eval_workers or (min(14, (os.cpu_count() or 3) - 2) if on_gpu else 1)
    with _native_logs(backend):
        left = run_shards(todo, workers, args.dev, args.deadline, on_done=_print_shard)
    if left:
        print(f"time limit: {left} shards left; run again with --skip-train to go on")
    return [
        combine(folder, shards)
        for folder, shards in settings.values()
        if all(s.done() for s in shards)
    ]


def _dev_lines(dev: str, direction: str, limit: int) -> int:
    """Lines of the dev set that are evaluated; exits when it is missing."""
    try:
        return len(dev_data(dev, direction, limit).sources)
    except FileNotFoundError as err:
        sys.exit(str(err))


def _native_logs(backend: str) -> contextlib.AbstractContextManager:
    """llama.cpp logs every request to stderr: into a file for good, as the CLI does."""
    if backend != "llamacpp":
        return contextlib.nullcontext()
    from simulinterp.cli.common import native_logs_to

    return native_logs_to(cache_dir().parent / "llama.log")


def _print_shard(shard: Shard, scores: dict[str, Any]) -> None:
    print(
        f"{shard.direction} {shard.label:<9} k={shard.k} lines {shard.first}-{shard.last}: "
        f"BLEU {scores['BLEU']:6.2f} LAAL {scores['LAAL']:5.2f} ({scores['seconds']:.0f} s)",
        flush=True,
    )


def export_gguf(adapter: Path, base_gguf: str) -> Path:
    """The adapter as a llama.cpp LoRA GGUF (``train export-gguf``), written once."""
    target = adapter / "adapter.gguf"
    if not target.is_file():
        from simulinterp.train.export import export_lora_gguf

        export_lora_gguf(adapter, target, base_gguf=Path(base_gguf))
    return target


# -- the report --------------------------------------------------------------------------


def compare_report(rows: list[dict], methods: list[str], points: int) -> dict[str, Any]:
    """Per direction: BLEU/LAAL per (model, k), BLEU at matched LAAL, and the deltas."""
    import numpy as np

    report: dict[str, Any] = {}
    labels = ["base", *methods]
    for direction in dict.fromkeys(r["direction"] for r in rows):
        mine = [r for r in rows if r["direction"] == direction]
        ks = sorted({r["k"] for r in mine})
        table = {
            label: {
                r["k"]: {"BLEU": r["BLEU"], "LAAL": r["LAAL"]} for r in mine if r["label"] == label
            }
            for label in labels
        }
        curves = {
            label: sorted((v["LAAL"], v["BLEU"]) for v in table[label].values())
            for label in labels
            if table[label]
        }
        low = max(c[0][0] for c in curves.values())
        high = min(c[-1][0] for c in curves.values())
        laals = list(np.linspace(low, high, points)) if high >= low and points > 0 else []
        matched = {
            label: [float(np.interp(x, [p[0] for p in c], [p[1] for p in c])) for x in laals]
            for label, c in curves.items()
        }
        pairs = [(m, "base") for m in methods]
        if set(METHODS) <= set(methods):
            pairs.insert(0, ("simulmask", "prefix"))
        deltas = {}
        for a, b in pairs:
            if a in curves and b in curves:
                at_k = {
                    k: table[a][k]["BLEU"] - table[b][k]["BLEU"]
                    for k in ks
                    if k in table[a] and k in table[b]
                }
                at_laal = [x - y for x, y in zip(matched[a], matched[b], strict=True)]
                deltas[f"{a} - {b}"] = {"at_k": at_k, "at_laal": at_laal}
        report[direction] = {
            "ks": ks,
            "table": table,
            "laal": [float(x) for x in laals],
            "matched_bleu": matched,
            "deltas": deltas,
        }
    return report


def print_report(report: dict[str, Any]) -> None:
    for direction, r in report.items():
        ks = r["ks"]
        head = "".join(f"{'k=' + str(k):>8}" for k in ks)
        print(f"\n{direction}, wait-k: BLEU, then LAAL (source units: zh characters, en words)")
        print(f"{'':<26}{head} |{head}")
        for label, row in r["table"].items():
            if row:
                bleu = "".join(_cell(row[k]["BLEU"] if k in row else None) for k in ks)
                laal = "".join(_cell(row[k]["LAAL"] if k in row else None) for k in ks)
                print(f"{_name(label):<26}{bleu} |{laal}")
        for name, d in r["deltas"].items():
            print(f"{'BLEU ' + name:<26}" + "".join(_cell(d["at_k"].get(k), "+") for k in ks))
        if not r["laal"]:
            print("no LAAL range common to every curve: no BLEU at matched LAAL")
            continue
        print("BLEU at matched LAAL (linear interpolation of each curve)")
        print(f"{'LAAL':<26}" + "".join(_cell(x) for x in r["laal"]))
        for label, values in r["matched_bleu"].items():
            print(f"{_name(label):<26}" + "".join(_cell(v) for v in values))
        for name, d in r["deltas"].items():
            print(f"{'BLEU ' + name:<26}" + "".join(_cell(v, "+") for v in d["at_laal"]))


def _cell(value: float | None, sign: str = "") -> str:
    return f"{'-':>8}" if value is None else f"{value:{sign}8.2f}"


def _name(label: str) -> str:
    return "base (few-shot)" if label == "base" else f"{label} (plain)"


def compare_summary(report: dict[str, Any], training: dict[str, dict]) -> str:
    """One line: mean BLEU deltas per direction, at matched LAAL where the curves overlap."""
    parts = []
    for direction, r in report.items():
        bits = []
        for name, d in r["deltas"].items():
            values = d["at_laal"] or list(d["at_k"].values())
            where = "matched LAAL" if d["at_laal"] else "same k"
            if values:
                bits.append(f"{name} {sum(values) / len(values):+.2f} BLEU ({where})")
        parts.append(f"{direction}: " + ", ".join(bits))
    tokens = ", ".join(f"{m} {t['input_tokens']:,}" for m, t in training.items())
    deltas = "; ".join(parts) or "no setting evaluated to the end yet"
    return f"sft compare (input tokens: {tokens or 'unknown'}): {deltas}"


if __name__ == "__main__":
    sys.exit(main())
