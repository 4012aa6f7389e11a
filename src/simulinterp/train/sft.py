"""Supervised fine-tuning of a simultaneous translator: SimulMask or prefix prompting.

``SFTConfig`` + ``train_sft``: a training loop to read top to bottom. It runs through
``accelerate``, so the same code trains on the CPU, on one GPU, and on several GPUs under
``accelerate launch`` or ``torchrun`` (data-parallel: each process takes its share of the
packed rows). LoRA through peft by default, full fine-tuning with ``full=True``.

The loss is computed on target tokens only, and the language-model head runs only on the rows
that carry a loss: the float logits over a 152k vocabulary are what fills memory otherwise.

Writes to ``output``: the adapter (peft) or the full model, ``simulinterp.json`` (what the
translator needs to use it), ``train_log.jsonl`` (loss, learning rate, tokens/s per logged
step), ``loss.png``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulinterp.llm.adapter_info import METADATA_FILE
from simulinterp.train.config import SFTConfig
from simulinterp.train.examples import (
    TRAINING_PROMPT_STYLE,
    read_parallel,
    schedule_pairs,
    tokenize_all,
)
from simulinterp.train.mask import Layout, layouts_for, pack, pad_batch
from simulinterp.train.schedule import ScheduleSpec

logger = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class SFTResult:
    """What a run did."""

    output: Path
    steps: int
    input_tokens: int
    loss_tokens: int
    first_loss: float
    last_loss: float
    seconds: float
    skipped_examples: int
    main_process: bool = True

    @property
    def tokens_per_s(self) -> float:
        return self.input_tokens / self.seconds if self.seconds else 0.0


def train_sft(
    config: SFTConfig, on_log: Callable[[dict[str, Any]], None] | None = None
) -> SFTResult:
    """Fine-tune ``config.model`` on ``config.data``; see :class:`SFTConfig`.

    Args:
        config: the run.
        on_log: called with every log record (the CLI prints them).

    Raises:
        FileNotFoundError: the data or model is missing.
        ValueError: bad settings or no usable example.
    """
    import torch
    from accelerate import Accelerator

    from simulinterp.train.modeling import MaskedLossModel, load_for_training, to_tensors

    accelerator = Accelerator(mixed_precision="no")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model, tokenizer = load_for_training(config.model_setup, accelerator.device)
    rows, skipped = build_rows(config, tokenizer)
    rows = _share(rows, accelerator.process_index, accelerator.num_processes)
    total_steps = config.max_steps or math.ceil(len(rows) / config.batch_rows * config.epochs)
    wrapper = MaskedLossModel(model)
    trainable = [p for p in wrapper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    scheduler = _cosine_schedule(optimizer, total_steps, config.warmup_ratio)
    wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    log = _Log(output / LOG_FILE, on_log if accelerator.is_main_process else None)
    counts = torch.zeros(2, dtype=torch.long, device=accelerator.device)  # input, loss tokens
    wrapper.train()
    for step, batch_rows in enumerate(_batches(rows, config.batch_rows, config.seed), 1):
        batch = pad_batch(batch_rows, pad_id)
        loss = wrapper(**to_tensors(batch, model, accelerator.device))
        accelerator.backward(loss)
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        local = torch.tensor([sum(len(r) for r in batch_rows), batch.loss_tokens])
        counts += accelerator.reduce(local.to(accelerator.device), reduction="sum")
        done = step >= total_steps or 0 < config.token_budget <= int(counts[0])
        if done or step == 1 or step % config.log_every == 0:
            mean_loss = accelerator.reduce(loss.detach(), reduction="mean")
            log.record(step, total_steps, float(mean_loss), scheduler.get_last_lr()[0], counts)
        if done:
            break
        if config.save_every and step % config.save_every == 0 and accelerator.is_main_process:
            _save(accelerator.unwrap_model(wrapper).model, tokenizer, config, output, log.history)
    if not log.history:
        raise ValueError("no training step ran: the data gave no example")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _save(accelerator.unwrap_model(wrapper).model, tokenizer, config, output, log.history)
    history = log.history
    return SFTResult(
        output=output,
        steps=history[-1]["step"],
        input_tokens=history[-1]["input_tokens"],
        loss_tokens=history[-1]["loss_tokens"],
        first_loss=history[0]["loss"],
        last_loss=history[-1]["loss"],
        seconds=history[-1]["elapsed_s"],
        skipped_examples=skipped,
        main_process=accelerator.is_main_process,
    )


class _Log:
    """Log records: kept, appended to the JSON-lines file and passed on (main process)."""

    def __init__(self, path: Path, on_log: Callable[[dict[str, Any]], None] | None):
        self.path, self.on_log = path, on_log
        self.history: list[dict[str, Any]] = []
        self.started = self.window_start = time.perf_counter()
        if on_log is not None:
            path.write_text("")

    def record(self, step: int, total: int, loss: float, lr: float, counts: Any) -> None:
        now = time.perf_counter()
        input_tokens = int(counts[0])
        previous = self.history[-1]["input_tokens"] if self.history else 0
        record = {
            "step": step,
            "total_steps": total,
            "loss": round(loss, 5),
            "lr": lr,
            "input_tokens": input_tokens,
            "loss_tokens": int(counts[1]),
            "tokens_per_s": round(
                (input_tokens - previous) / max(now - self.window_start, 1e-9), 1
            ),
            "elapsed_s": round(now - self.started, 2),
        }
        self.window_start = now
        self.history.append(record)
        if self.on_log is not None:
            with self.path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            self.on_log(record)


def _share(rows: list[Layout], index: int, processes: int) -> list[Layout]:
    """This process's rows; every process gets as many, so none waits for the others."""
    if processes == 1:
        return rows
    if len(rows) < processes:
        raise ValueError(f"{len(rows)} packed rows cannot feed {processes} processes")
    return rows[: len(rows) - len(rows) % processes][index::processes]


def _batches(rows: list[Layout], size: int, seed: int) -> Iterator[list[Layout]]:
    """Batches of rows, reshuffled every epoch, forever (the caller stops)."""
    rng = random.Random(seed)
    order = list(range(len(rows)))
    while True:
        rng.shuffle(order)
        for first in range(0, len(order), size):
            yield [rows[i] for i in order[first : first + size]]


def build_rows(config: SFTConfig, tokenizer: Any) -> tuple[list[Layout], int]:
    """Read, schedule, tokenize, lay out and pack the training data."""
    direction = None if config.direction == "both" else tuple(config.direction.split("-"))
    pairs = read_parallel(config.data, direction=direction, limit=config.limit)  # type: ignore[arg-type]
    scheduled = schedule_pairs(pairs, ScheduleSpec.parse(config.schedule))
    examples, skipped = tokenize_all(tokenizer, scheduled, config.max_example_tokens)
    if not examples:
        raise ValueError(
            f"no example of at most {config.max_example_tokens} tokens in {config.data}"
        )
    layouts = layouts_for(examples, config.method)
    rng = random.Random(config.seed)
    rng.shuffle(layouts)  # mix directions and lengths before packing
    rows = pack(layouts, config.pack_tokens)
    logger.info(
        "%d pairs -> %d examples (%d too long) -> %d layouts -> %d packed rows",
        len(pairs),
        len(examples),
        skipped,
        len(layouts),
        len(rows),
    )
    return rows, skipped


def _cosine_schedule(optimizer: Any, total_steps: int, warmup_ratio: float) -> Any:
    import torch

    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _save(model: Any, tokenizer: Any, config: SFTConfig, output: Path, history: list[dict]) -> None:
    model.save_pretrained(str(output))
    if config.full:
        tokenizer.save_pretrained(str(output))
    metadata = {
        "kind": "full" if config.full else "lora",
        "prompt_style": TRAINING_PROMPT_STYLE,
        "base_model": config.model,
        "schedule": config.schedule,
        "method": config.method,
        "direction": config.direction,
        "config": asdict(config),
        "final_loss": history[-1]["loss"],
        "steps": history[-1]["step"],
    }
    (output / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    _plot(history, output / "loss.png")


def _plot(history: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib comes with the torch extra
        logger.warning("matplotlib is missing: no loss plot (pip install matplotlib)")
        return
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(9, 3.2))
    steps = [h["step"] for h in history]
    losses = [h["loss"] for h in history]
    ax_loss.plot(steps, losses, alpha=0.35, label="logged step")
    smoothed, value = [], losses[0]
    for loss in losses:  # exponential moving average: one row per step is noisy
        value = 0.8 * value + 0.2 * loss
        smoothed.append(value)
    ax_loss.plot(steps, smoothed, label="moving average")
    ax_loss.legend()
    ax_loss.set(xlabel="step", ylabel="loss (target tokens)", title="training loss")
    ax_lr.plot(steps, [h["lr"] for h in history])
    ax_lr.set(xlabel="step", ylabel="learning rate", title="schedule")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
