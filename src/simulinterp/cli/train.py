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
        help="fine-tune a translator (SimulMask SFT, RL of the policy) and export adapters",
        description="Training jobs (needs the [torch] extra).",
    )
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    _add_sft(jobs)
    _add_rl(jobs)
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


def _add_rl(jobs: argparse._SubParsersAction) -> None:
    from simulinterp.train.config import ALGORITHMS, QUALITY_METRICS, default_weights

    rl = jobs.add_parser(
        "rl",
        help="sequence-level RL of the READ/WRITE policy (PPO with step and sequence rewards, "
        "or the critic-free group variant)",
        description="Roll out whole READ/WRITE trajectories and optimise the policy on step "
        "rewards (stage 1), then step and sequence rewards (stage 2). Writes the adapter, "
        "simulinterp.json, value_head.pt, rl_log.jsonl and rl_curves.png to --output; the "
        "result runs with 'eval --policy learned --adapter OUTPUT' and exports with "
        "'train export-gguf'.",
    )
    rl.add_argument(
        "--model",
        default="default",
        help="the start policy: a 'train sft' (or stage-1 'train rl') output folder, a "
        "checkpoint, a .gguf, or a packaged preset (default: the 0.5B)",
    )
    rl.add_argument(
        "--data",
        required=True,
        help="parallel text (a folder, or folder of folders), or a speech folder (audio/ and "
        "transcripts.tsv with translations: trained on the recognized words and their times)",
    )
    rl.add_argument(
        "--eval-data",
        help="parallel text rolled out before and after training (not trained on): "
        "rl_eval.json holds the reward, BLEU, chrF and LAAL before and after",
    )
    rl.add_argument("--eval-limit", type=int, default=8, help="pairs per --eval-data folder")
    rl.add_argument("--stage", type=int, default=1, choices=[1, 2])
    rl.add_argument("--output", required=True, help="output folder")
    rl.add_argument("--algorithm", default="ppo", choices=list(ALGORITHMS))
    rl.add_argument("--direction", default="both", choices=["both", "zh-en", "en-zh"])
    rl.add_argument("--limit", type=int, default=0, help="pairs per data folder (0: all)")
    rl.add_argument("--updates", type=int, default=20)
    rl.add_argument("--sources", type=int, default=4, help="source sentences per update")
    rl.add_argument("--group-size", type=int, default=2, help="rollouts per source")
    rl.add_argument("--ppo-epochs", type=int, default=2)
    rl.add_argument("--minibatch-rows", type=int, default=16, help="steps per forward pass")
    rl.add_argument("--max-step-tokens", type=int, default=12)
    rl.add_argument("--max-final-tokens", type=int, default=48)
    rl.add_argument("--max-source-units", type=int, default=40, help="longer sources skipped")
    rl.add_argument("--temperature", type=float, default=1.0)
    rl.add_argument("--quality", default="chrf", choices=list(QUALITY_METRICS))
    rl.add_argument("--latency-threshold", type=float, default=3.0, help="l of r_L, in steps")
    rl.add_argument("--seqpo-lambda", type=float, default=0.5)
    names = ", ".join(default_weights())
    rl.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="NAME=W",
        help=f"weight of a sub-reward (repeatable; names: {names})",
    )
    rl.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    rl.add_argument("--lora-rank", type=int, default=8)
    rl.add_argument("--lora-alpha", type=int, default=16)
    rl.add_argument("--lr", type=float, default=2e-5)
    rl.add_argument("--kl-beta", type=float, default=0.05, help="initial KL coefficient")
    rl.add_argument("--kl-target", type=float, default=0.05, help="0: a fixed beta")
    rl.add_argument("--dtype", default="auto", help="auto (bf16 on GPU), float32, bfloat16")
    rl.add_argument("--seed", type=int, default=0)
    rl.add_argument("--save-every", type=int, default=0, help="updates between checkpoints")
    rl.set_defaults(run=run_rl)


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


def run_rl(args: argparse.Namespace) -> int:
    try:
        from simulinterp.train.config import RLConfig, default_weights
        from simulinterp.train.rl import train_rl
    except ImportError as err:
        hint = "pip install 'simulinterp[torch]'"
        raise CliError(f"training needs the torch extra: {hint} ({err})") from err
    weights = default_weights()
    for item in args.weight:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise CliError(f"--weight takes NAME=NUMBER, not {item!r}")
    try:
        config = RLConfig(
            model=args.model,
            data=args.data,
            output=args.output,
            stage=args.stage,
            algorithm=args.algorithm,
            direction=args.direction,
            limit=args.limit,
            updates=args.updates,
            sources_per_update=args.sources,
            group_size=args.group_size,
            ppo_epochs=args.ppo_epochs,
            minibatch_rows=args.minibatch_rows,
            max_step_tokens=args.max_step_tokens,
            max_final_tokens=args.max_final_tokens,
            max_source_units=args.max_source_units,
            temperature=args.temperature,
            quality=args.quality,
            latency_threshold=args.latency_threshold,
            seqpo_lambda=args.seqpo_lambda,
            weights=weights,
            full=args.full,
            lora_rank=args.lora_rank,
            lora_alpha=args.lora_alpha,
            learning_rate=args.lr,
            kl_beta=args.kl_beta,
            kl_target=args.kl_target,
            dtype=args.dtype,
            seed=args.seed,
            save_every=args.save_every,
        )
        config.check_weights()
    except ValueError as err:
        raise CliError(str(err)) from err
    if os.environ.get("RANK", "0") == "0":
        from simulinterp.train.speech_episodes import is_speech_folder

        for data in (config.data, args.eval_data):
            if data and is_speech_folder(data):
                print(
                    f"recognizing the translated recordings of {data} (whisper-base, as live)",
                    file=sys.stderr,
                )
        print(
            f"loading {config.model} (a GGUF is dequantized first: ~40 s for 0.5B)", file=sys.stderr
        )
    try:
        held_out = _held_out(args, config)
        result = train_rl(config, on_log=_print_rl_progress, held_out=held_out)
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err), code=1) from err
    if not result.main_process:
        return 0
    if result.evaluation:
        before, after = result.evaluation["before"], result.evaluation["after"]
        print(
            f"held out ({before['episodes']} sentences): reward {before['reward_raw']:.3f} -> "
            f"{after['reward_raw']:.3f}, BLEU {before['BLEU']:.1f} -> {after['BLEU']:.1f}, "
            f"chrF {before['chrF']:.1f} -> {after['chrF']:.1f}, LAAL {before['LAAL']:.2f} -> "
            f"{after['LAAL']:.2f}",
            file=sys.stderr,
        )
    first, last = result.history[0], result.history[-1]
    print(
        f"done: {result.updates} updates in {result.seconds:.0f} s; reward "
        f"{result.first_reward:.3f} -> {result.last_reward:.3f}, chrF {first['chrF']:.1f} -> "
        f"{last['chrF']:.1f}, LAAL {first['LAAL']:.2f} -> {last['LAAL']:.2f}\n"
        f"wrote {result.output}/ (adapter, simulinterp.json, value_head.pt, rl_log.jsonl, "
        "rl_curves.png)",
        file=sys.stderr,
    )
    return 0


def _held_out(args: argparse.Namespace, config: Any) -> list[Any] | None:
    if not args.eval_data:
        return None
    from simulinterp.train.rl import load_episodes

    return load_episodes(config, args.eval_data, args.eval_limit)


def _print_rl_progress(record: dict[str, Any]) -> None:
    parts = " ".join(f"{k[2:]} {record[k]:.3f}" for k in sorted(record) if k.startswith("r_"))
    print(
        f"update {record['update']}/{record['total_updates']}  reward {record['reward_raw']:.3f}"
        f"  [{parts}]  KL {record['kl']:.4f}  beta {record['beta']:.4f}  "
        f"policy {record['policy_loss']:.4f}  value {record['value_loss']:.4f}  "
        f"AL {record['AL']:.2f}  LAAL {record['LAAL']:.2f}  BLEU {record['BLEU']:.1f}  "
        f"chrF {record['chrF']:.1f}  {record['elapsed_s']:.0f} s",
        file=sys.stderr,
        flush=True,
    )


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
