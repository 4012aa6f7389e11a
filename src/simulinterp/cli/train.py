"""``simulinterp train``: fine-tune a simultaneous translator, and export what it learned."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from simulinterp.cli.common import EXIT_USAGE, CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="fine-tune a translator (SimulMask SFT) and export adapters",
        description="Training jobs (needs the [torch] extra).",
    )
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    _add_sft(jobs)
    _add_export(jobs)


def _add_sft(jobs: argparse._SubParsersAction) -> None:
    sft = jobs.add_parser(
        "sft",
        help="supervised fine-tuning under a READ/WRITE schedule (SimulMask or prefix prompts)",
        description="Fine-tune a causal LM to translate simultaneously. Writes the LoRA adapter "
        "(or the full model), simulinterp.json, train_log.jsonl and loss.png to --output. "
        "Runs on the CPU, on a GPU, and on several GPUs under 'accelerate launch' or torchrun.",
    )
    sft.add_argument(
        "--model",
        default="default",
        help="checkpoint folder, .gguf file (dequantized), or packaged preset (default: the 0.5B)",
    )
    sft.add_argument("--data", required=True, help="parallel text: a folder, or folder of folders")
    sft.add_argument("--output", required=True, help="output folder")
    sft.add_argument("--schedule", default="wait-k:3", help="wait-k:K or align[:SLACK]")
    sft.add_argument("--method", default="simulmask", choices=["simulmask", "prefix"])
    sft.add_argument("--direction", default="both", choices=["both", "zh-en", "en-zh"])
    sft.add_argument("--limit", type=int, default=0, help="pairs per data folder (0: all)")
    sft.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    sft.add_argument("--lora-rank", type=int, default=16)
    sft.add_argument("--lora-alpha", type=int, default=32)
    sft.add_argument("--lr", type=float, default=2e-4, help="peak learning rate")
    sft.add_argument("--epochs", type=float, default=1.0)
    sft.add_argument("--max-steps", type=int, default=0, help="train N steps (0: --epochs decides)")
    sft.add_argument("--token-budget", type=int, default=0, help="stop after N input tokens")
    sft.add_argument("--pack-tokens", type=int, default=2048, help="tokens per packed row")
    sft.add_argument("--batch-rows", type=int, default=4, help="packed rows per step")
    sft.add_argument("--max-example-tokens", type=int, default=512)
    sft.add_argument("--dtype", default="auto", help="auto (bf16 on GPU), float32, bfloat16")
    sft.add_argument("--seed", type=int, default=0)
    sft.add_argument("--log-every", type=int, default=10, help="steps between log lines")
    sft.add_argument(
        "--save-every", type=int, default=0, help="steps between checkpoints (0: at the end)"
    )
    sft.set_defaults(run=run_sft)


def _add_export(jobs: argparse._SubParsersAction) -> None:
    export = jobs.add_parser(
        "export-gguf",
        help="write a LoRA adapter as a llama.cpp LoRA GGUF (for --backend llamacpp --adapter)",
    )
    export.add_argument("adapter", help="adapter folder written by 'train sft'")
    export.add_argument("--output", help="GGUF to write (default: ADAPTER/adapter.gguf)")
    export.set_defaults(run=run_export)


def run_sft(args: argparse.Namespace) -> int:
    try:
        from simulinterp.train.config import SFTConfig
        from simulinterp.train.sft import train_sft
    except ImportError as err:
        hint = "pip install 'simulinterp[torch]'"
        raise CliError(f"training needs the torch extra: {hint} ({err})") from err
    try:
        config = SFTConfig(
            model=args.model,
            data=args.data,
            output=args.output,
            schedule=args.schedule,
            method=args.method,
            direction=args.direction,
            limit=args.limit,
            full=args.full,
            lora_rank=args.lora_rank,
            lora_alpha=args.lora_alpha,
            learning_rate=args.lr,
            epochs=args.epochs,
            max_steps=args.max_steps,
            token_budget=args.token_budget,
            pack_tokens=args.pack_tokens,
            batch_rows=args.batch_rows,
            max_example_tokens=args.max_example_tokens,
            dtype=args.dtype,
            seed=args.seed,
            log_every=args.log_every,
            save_every=args.save_every,
        )
    except ValueError as err:
        raise CliError(str(err)) from err
    if os.environ.get("RANK", "0") == "0":  # one process of a torchrun speaks
        print(
            f"loading {config.model} (a GGUF is dequantized first: ~40 s for 0.5B)", file=sys.stderr
        )
    try:
        result = train_sft(config, on_log=_print_progress)
    except FileNotFoundError as err:
        raise CliError(str(err), code=1) from err
    except ValueError as err:
        raise CliError(str(err), code=1) from err
    if not result.main_process:
        return 0
    print(
        f"done: {result.steps} steps, {result.input_tokens} tokens "
        f"({result.tokens_per_s:.0f} tokens/s), loss {result.first_loss:.3f} -> "
        f"{result.last_loss:.3f}; {result.skipped_examples} examples too long\n"
        f"wrote {result.output}/ (adapter, simulinterp.json, train_log.jsonl, loss.png)",
        file=sys.stderr,
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from simulinterp.train.export import export_lora_gguf

    adapter = Path(args.adapter)
    output = Path(args.output) if args.output else adapter / "adapter.gguf"
    try:
        report = export_lora_gguf(adapter, output)
    except (FileNotFoundError, ValueError) as err:
        code = 1 if isinstance(err, FileNotFoundError) else EXIT_USAGE
        raise CliError(str(err), code=code) from err
    print(
        f"wrote {report.path}: {report.tensors} tensors, rank {report.rank}, "
        f"alpha {report.alpha:g}, {report.bytes / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


def _print_progress(record: dict[str, Any]) -> None:
    print(
        f"step {record['step']}/{record['total_steps']}  loss {record['loss']:.4f}  "
        f"lr {record['lr']:.2e}  {record['tokens_per_s']:.0f} tokens/s  "
        f"{record['elapsed_s']:.0f} s",
        file=sys.stderr,
        flush=True,
    )
