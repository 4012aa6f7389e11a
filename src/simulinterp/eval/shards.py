"""Evaluation of many settings in shards: resumable, and parallel across processes.

A setting is one model (base or adapter) in one direction under wait-k at one k; a
:class:`Shard` is a run of consecutive dev-set lines of one setting, evaluated as
``simulinterp eval`` evaluates (``instances.log`` and ``scores.json`` in its folder). A shard
whose ``scores.json`` shows a complete run of the same work is not run again, so a run cut by
a deadline or Ctrl-C resumes where it stopped. Several processes share one GPU well: they
interleave their small decoding kernels. :func:`combine` then scores all shards of a setting
together, corpus BLEU over every line.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulinterp.eval.instances import DEFAULT_UNITS_PER_S, Instance
from simulinterp.eval.runner import EvalData, evaluate, score_instances, write_scores
from simulinterp.llm.adapter_info import prompt_style_for
from simulinterp.policy import make_policy
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig

DEV_SETS = {"zh-en": "iwslt17_ted_tst2016_zh-en", "en-zh": "iwslt17_ted_tst2016_en-zh"}
"""The dev-set folder of each direction, under a ``dev`` folder (IWSLT17 TED tst2016)."""

ShardDone = Callable[["Shard", dict[str, Any]], None]


@dataclass(frozen=True)
class Shard:
    """Lines ``[first, last)`` of one dev set, one model, one k: the unit of work and resume.

    Attributes:
        label: the model's name in reports (``base``, ``simulmask``, ...).
        backend: ``transformers`` or ``llamacpp``.
        model: a checkpoint folder (transformers) or a GGUF (llamacpp).
        adapter: the LoRA adapter (a peft folder, or a LoRA GGUF), or None for the base model.
        direction: ``zh-en`` or ``en-zh``.
        k: the wait-k policy's k.
        first: the first dev line (0-based).
        last: one past the last dev line.
        output: the folder for ``instances.log`` and ``scores.json``.
    """

    label: str
    backend: str
    model: str
    adapter: str | None
    direction: str
    k: int
    first: int
    last: int
    output: str

    def done(self) -> bool:
        """A complete earlier run of this shard is in ``output``."""
        path = Path(self.output) / "scores.json"
        if not path.is_file():
            return False
        old = json.loads(path.read_text(encoding="utf-8"))
        same = all(old.get(k) == v for k, v in asdict(self).items())
        return (
            same and not old.get("interrupted") and old.get("instances") == self.last - self.first
        )


def run_shards(
    shards: list[Shard],
    workers: int,
    dev: str | Path,
    deadline: float = math.inf,
    on_done: ShardDone | None = None,
) -> int:
    """Run shards, in ``workers`` processes when more than one.

    Args:
        shards: the shards to run, in order.
        workers: processes; 1 runs every shard in this process.
        dev: the folder of the dev sets (see :data:`DEV_SETS`).
        deadline: no shard starts at or after this ``time.monotonic()``.
        on_done: called in this process with each finished shard and its scores.

    Returns:
        How many shards were left unstarted by the deadline.
    """
    if workers == 1:
        for index, shard in enumerate(shards):
            if time.monotonic() >= deadline:
                return len(shards) - index
            scores = run_shard(shard, dev, threads=0)
            if on_done:
                on_done(shard, scores)
        return 0
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    threads = max(1, (os.cpu_count() or 1) // workers)
    pending, running = list(shards), {}
    # processes, not threads: the GPU interleaves their small decoding kernels
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        while pending or running:
            while pending and len(running) < workers and time.monotonic() < deadline:
                shard = pending.pop(0)
                running[pool.submit(run_shard, shard, dev, threads)] = shard
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                shard, scores = running.pop(future), future.result()
                if on_done:
                    on_done(shard, scores)
    return len(pending)


@functools.lru_cache(maxsize=1)
def load_llm(backend: str, model: str, adapter: str | None, threads: int) -> Any:
    """The model of the last shard, kept in this process while shards of the same model follow.

    Args:
        backend: ``transformers`` or ``llamacpp``.
        model: a checkpoint folder or a GGUF.
        adapter: a LoRA adapter, or None.
        threads: CPU threads for torch and llama.cpp (0: their own choice).
    """
    from simulinterp.llm.factory import ModelConfig, build_backend

    if threads:
        import torch

        torch.set_num_threads(threads)
    config = ModelConfig(backend=backend, model=model, adapter=adapter, threads=threads)
    return build_backend(config)


def run_shard(shard: Shard, dev: str | Path, threads: int) -> dict[str, Any]:
    """Evaluate one shard as ``simulinterp eval`` does and write its instances and scores.

    Returns:
        The scores written to ``scores.json``: the shard's fields, ``prompt_style`` and
        ``seconds`` (of evaluation) besides those of :func:`simulinterp.eval.runner.evaluate`.
    """
    llm = load_llm(shard.backend, shard.model, shard.adapter, threads)
    src, tgt = shard.direction.split("-")
    lines = dev_data(dev, shard.direction, shard.last)
    data = EvalData(lines.sources[shard.first :], lines.references[shard.first :], src, tgt)
    style = prompt_style_for(shard.adapter)
    config = TranslatorConfig(source_lang=src, target_lang=tgt, prompt_style=style)
    translator = SimultaneousTranslator(llm, make_policy("wait-k", shard.k, src, tgt), config)
    started = time.perf_counter()
    scores, _ = evaluate(translator, data, 1.0 / DEFAULT_UNITS_PER_S[src], Path(shard.output))
    scores.update(asdict(shard), prompt_style=style, seconds=time.perf_counter() - started)
    write_scores(Path(shard.output), scores)
    return scores


def combine(folder: Path, shards: list[Shard]) -> dict[str, Any]:
    """Score all shards of one setting together (corpus BLEU) into ``folder/scores.json``.

    Also writes every shard's instances, in order, to ``folder/instances.log``. The shards
    must have run (:meth:`Shard.done`).
    """
    records = []
    for shard in shards:
        log = Path(shard.output) / "instances.log"
        records.extend(json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())
    instances = [Instance(**r) for r in records]
    first = shards[0]
    scores: dict[str, Any] = score_instances(instances, first.direction.split("-")[1])
    parts = [json.loads((Path(s.output) / "scores.json").read_text()) for s in shards]
    units = sum(i.source_length for i in instances)
    seconds = sum(p["seconds"] for p in parts)
    scores.update(
        ms_per_unit=1000 * seconds / max(1, units),
        label=first.label,
        direction=first.direction,
        k=first.k,
        lines=len(instances),
        backend=first.backend,
        model=first.model,
        adapter=first.adapter,
        prompt_style=parts[0]["prompt_style"],
        seconds=seconds,
    )
    write_scores(folder, scores)
    with (folder / "instances.log").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return scores


def dev_data(dev: str | Path, direction: str, limit: int) -> EvalData:
    """The first ``limit`` lines of the dev set of ``direction`` (``zh-en`` or ``en-zh``).

    Raises:
        FileNotFoundError: the dev set's folder is not in ``dev``.
    """
    folder = Path(dev) / DEV_SETS[direction]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"dev data not found: {folder} (a folder with source.txt and ref.txt)"
        )
    sources = (folder / "source.txt").read_text(encoding="utf-8").splitlines()[:limit]
    refs = (folder / "ref.txt").read_text(encoding="utf-8").splitlines()[:limit]
    return EvalData(sources, refs, *direction.split("-"))
