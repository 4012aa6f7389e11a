"""Planning a run that a token budget ends: how many pairs to read, how many steps to take.

Comparing training methods fairly means giving each the same number of input tokens, but
methods spend very different numbers of tokens per sentence pair (prefix prompting makes
~10x more than SimulMask). ``plan_budget`` samples the first pairs of every data folder,
measures tokens per pair and how full packed rows get under one method, and returns the
per-folder pair limit and step count with which the budget, not the data or the step count,
ends the run (``SFTConfig.limit``, ``max_steps`` and ``token_budget``). Used by
``bench/sft.py`` and meant for any trainer that compares methods at equal tokens.

Needs a tokenizer but not torch.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulinterp.train.examples import read_parallel, schedule_pairs, tokenize_all
from simulinterp.train.mask import layouts_for
from simulinterp.train.schedule import ScheduleSpec

READ_MARGIN = 1.15
"""Pairs are read for this many budgets: the sample's tokens per pair is an estimate."""
STEP_MARGIN = 1.03
"""Steps are planned for this many budgets, so that the budget stops the run first."""


@dataclass(frozen=True)
class BudgetPlan:
    """What a run needs so that its token budget ends it.

    Attributes:
        limit: pairs to read per data folder (0: all, when even all fall short).
        max_steps: optimizer steps, so that the cosine schedule decays over the budget.
        row_fill: share of each packed row's tokens that examples fill (0 to 1).
        tokens_per_pair: mean input tokens per pair over the folders, under the method.
    """

    limit: int
    max_steps: int
    row_fill: float
    tokens_per_pair: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_budget(
    *,
    data: str | Path,
    method: str,
    tokenizer: Any,
    token_budget: int,
    pack_tokens: int,
    batch_rows: int,
    seed: int = 0,
    schedule: str = "wait-k:3",
    sample_pairs: int = 40,
    max_example_tokens: int = 512,
) -> BudgetPlan:
    """Pairs per folder and steps so that the token budget, not the data, ends the run.

    From the first ``sample_pairs`` pairs of every folder: tokens per pair under ``method`` and
    how full packed rows get. The limit reads just enough pairs for ``READ_MARGIN`` budgets
    (prefix prompting makes ~10x more tokens per pair than SimulMask, and its masks take
    ``pack_tokens**2`` bytes a row); the step count is what the budget needs at that fill,
    plus ``STEP_MARGIN``, so that the cosine schedule decays over the run the budget allows.

    Args:
        data: a folder of parallel text, or a folder of such folders (as ``SFTConfig.data``).
        method: ``simulmask`` or ``prefix``.
        tokenizer: the model's tokenizer.
        token_budget: input tokens the run may use.
        pack_tokens: tokens per packed row.
        batch_rows: packed rows per optimizer step.
        seed: the order in which the sampled examples are packed.
        schedule: the READ/WRITE schedule of the examples (``SFTConfig.schedule``).
        sample_pairs: pairs read from the start of each folder to measure.
        max_example_tokens: longer examples are skipped, as in training (at most
            ``pack_tokens``).

    Raises:
        FileNotFoundError: no parallel text in ``data``.
    """
    per_folder, lengths = _sample_folders(
        _folders(Path(data)),
        method,
        tokenizer,
        ScheduleSpec.parse(schedule),
        sample_pairs,
        min(max_example_tokens, pack_tokens),
    )
    random.Random(seed).shuffle(lengths)
    fill = packed_fill(lengths, pack_tokens)
    steps = math.ceil(token_budget / (pack_tokens * fill * batch_rows) * STEP_MARGIN)
    return BudgetPlan(
        limit=_pairs_limit(per_folder, READ_MARGIN * token_budget),
        max_steps=max(1, steps),
        row_fill=fill,
        tokens_per_pair=sum(t for t, _ in per_folder) / len(per_folder),
    )


def packed_fill(lengths: list[int], pack_tokens: int) -> float:
    """Share of each row's ``pack_tokens`` that greedy in-order packing fills (as ``pack``).

    An example longer than ``pack_tokens`` gets a row of its own, so the share can exceed 1.
    """
    rows, current = [], 0
    for n in lengths:
        if current and current + n > pack_tokens:
            rows.append(current)
            current = 0
        current += n
    rows.append(current)
    return sum(rows) / (len(rows) * pack_tokens)


def _folders(data: Path) -> list[Path]:
    """The parallel-text folders under ``data``, or ``data`` itself."""
    return sorted(p.parent for p in data.glob("*/source.txt")) or [data]


def _sample_folders(
    folders: list[Path],
    method: str,
    tokenizer: Any,
    spec: ScheduleSpec,
    sample_pairs: int,
    max_tokens: int,
) -> tuple[list[tuple[float, int]], list[int]]:
    """Per folder: (tokens per pair, pairs it holds); and the length of every sampled layout."""
    per_folder, lengths = [], []
    for folder in folders:
        pairs = read_parallel(folder, limit=sample_pairs)
        examples, _ = tokenize_all(tokenizer, schedule_pairs(pairs, spec), max_tokens)
        sizes = [len(x) for x in layouts_for(examples, method)]
        lengths.extend(sizes)
        with (folder / "source.txt").open(encoding="utf-8") as lines:
            available = sum(1 for line in lines if line.strip())
        per_folder.append((sum(sizes) / max(1, len(pairs)), available))
    return per_folder, lengths


def _pairs_limit(per_folder: list[tuple[float, int]], want: float) -> int:
    """The fewest pairs per folder whose estimated tokens reach ``want`` (0: not even all)."""
    for n in range(1, max(a for _, a in per_folder) + 1):
        if sum(t * min(n, a) for t, a in per_folder) >= want:
            return n
    return 0
