"""Token-budget planning (simulinterp.train.budget): row fill, and pairs and steps that let the
budget, not the data or the step count, end a run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from simulinterp.train.budget import READ_MARGIN, BudgetPlan, packed_fill, plan_budget
from simulinterp.train.config import SFTConfig
from simulinterp.train.mask import Layout, pack

PACK_TOKENS = 512
BATCH_ROWS = 2


def test_importing_it_needs_no_torch() -> None:
    code = "import sys, simulinterp.train.budget; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("lengths", "pack_tokens", "fill"),
    [
        ([4, 4], 4, 1.0),  # each fills a row exactly
        ([3, 3, 3], 6, 9 / 12),  # rows of 6 and 3
        ([2, 5, 1], 6, 8 / 12),  # 5 does not fit beside 2; 1 fits beside 5
        ([1, 2, 3], 6, 1.0),  # one full row
        ([5], 4, 5 / 4),  # too long: a row of its own, over full
        ([2, 5], 4, 7 / 8),  # rows of 2 and 5: the long one still gets a row
    ],
)
def test_packed_fill(lengths, pack_tokens, fill) -> None:
    assert packed_fill(lengths, pack_tokens) == pytest.approx(fill)


def _layout(n: int) -> Layout:
    ids = np.zeros(n, dtype=np.int64)
    return Layout(ids, np.arange(n), np.ones((n, n), dtype=bool), ids)


@pytest.mark.parametrize("pack_tokens", [8, 16, 40])
def test_packed_fill_is_the_fill_of_pack(pack_tokens) -> None:
    lengths = [int(n) for n in np.random.default_rng(0).integers(1, 12, size=50)]
    rows = pack([_layout(n) for n in lengths], pack_tokens)
    fill = sum(len(r) for r in rows) / (len(rows) * pack_tokens)
    assert packed_fill(lengths, pack_tokens) == pytest.approx(fill)


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("transformers")
    from tiny_qwen import make_tokenizer

    return make_tokenizer()


def _plan(tiny_parallel, tokenizer, method: str, token_budget: int) -> BudgetPlan:
    return plan_budget(
        data=tiny_parallel,
        method=method,
        tokenizer=tokenizer,
        token_budget=token_budget,
        pack_tokens=PACK_TOKENS,
        batch_rows=BATCH_ROWS,
    )


def _row_lengths(tiny_parallel, tokenizer, method: str, limit: int) -> list[int]:
    """The packed rows SFT trains on with ``limit`` pairs per folder (0: all), as lengths."""
    from simulinterp.train.sft import build_rows

    config = SFTConfig(
        model="unused",
        data=str(tiny_parallel),
        output="unused",
        method=method,
        limit=limit,
        pack_tokens=PACK_TOKENS,
    )
    rows, _ = build_rows(config, tokenizer)
    return [len(r) for r in rows]


@pytest.mark.torch
@pytest.mark.parametrize(("method", "token_budget"), [("simulmask", 500), ("prefix", 3000)])
def test_the_plan_lets_the_budget_end_the_run(tiny_parallel, tokenizer, method, token_budget):
    plan = _plan(tiny_parallel, tokenizer, method, token_budget)
    assert 1 < plan.limit < 8  # the 8 pairs a folder holds are more than the budget needs

    rows = _row_lengths(tiny_parallel, tokenizer, method, plan.limit)
    fewer = _row_lengths(tiny_parallel, tokenizer, method, plan.limit - 1)
    # the pairs read hold the budget with its margin; one pair fewer per folder does not
    assert sum(rows) >= READ_MARGIN * token_budget > sum(fewer)
    # the planned steps reach the budget even on the shortest rows: it stops the run first
    steps_rows = plan.max_steps * BATCH_ROWS
    assert steps_rows <= len(rows)
    assert sum(sorted(rows)[:steps_rows]) >= token_budget
    assert 0 < plan.row_fill <= 1


@pytest.mark.torch
def test_a_budget_beyond_the_data_reads_all_of_it(tiny_parallel, tokenizer):
    plan = _plan(tiny_parallel, tokenizer, "simulmask", 3000)

    assert plan.limit == 0
    assert sum(_row_lengths(tiny_parallel, tokenizer, "simulmask", 0)) < 3000


@pytest.mark.torch
def test_prefix_prompting_spends_more_tokens_per_pair(tiny_parallel, tokenizer):
    simulmask = _plan(tiny_parallel, tokenizer, "simulmask", 1000)
    prefix = _plan(tiny_parallel, tokenizer, "prefix", 1000)

    assert prefix.tokens_per_pair > 3 * simulmask.tokens_per_pair
    assert set(prefix.as_dict()) == {"limit", "max_steps", "row_fill", "tokens_per_pair"}
