"""SimulMask attention masks and positions, the prefix-prompt baseline, and packing.

SimulMask (Raffel et al., 2024, "Simultaneous Masking, Not Prompting Optimization",
arXiv 2405.10443) trains one forward pass per example: the row that predicts target token
``i`` may attend to the prompt, to the source tokens read when ``i`` was written, and to the
assistant header and earlier target tokens, never to later source tokens.

**Rows, not tokens.** The row at a token predicts the *next* token, so a row's source budget is
the one of the token it predicts. This is what cached incremental inference does: the newest
target token is fed to the model only when the next one is wanted, after the source has grown.
The assistant header's rows all see the source read before the first write.

**Positions (RoPE).** Each row gets the position it has at inference: prompt and source tokens
count up from 0; a header or target row sits right after the source it can see, at
``prompt + visible source tokens + its offset in the answer``. A row's distance to every
source token, and to itself, is then exactly what inference gives it. Two rows written after
different amounts of source are further apart than in a translator that re-reads the committed
target after each new source unit (ours, with llama.cpp); with the KV cache kept, as in
:func:`simulinterp.train.incremental.simulmask_greedy`, the positions match inference exactly
(the equivalence test checks it token by token). The paper fixes ALiBi for the same problem;
with RoPE the positions themselves carry the schedule.

**Baseline.** Prefix prompting writes one ordinary causal example per WRITE step: the source
read so far, the target written before, and the new target tokens (the only ones with loss).

Examples are packed into rows of at most ``pack_tokens`` tokens with block-diagonal masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulinterp.train.examples import TokenizedExample

IGNORE = -100
METHODS = ("simulmask", "prefix")


@dataclass(frozen=True)
class Layout:
    """One example ready for the model.

    Attributes:
        input_ids: token ids, ``(L,)``.
        positions: RoPE position of each row, ``(L,)``.
        visible: ``visible[q, k]`` is True when row ``q`` may attend to token ``k``, ``(L, L)``.
        labels: the token row ``q`` must predict, or ``IGNORE``, ``(L,)``.
    """

    input_ids: np.ndarray
    positions: np.ndarray
    visible: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def loss_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())


def row_reads(example: TokenizedExample) -> np.ndarray:
    """Source units each header and target row may see (the budget of the token it predicts)."""
    reads = np.array(example.target_reads, dtype=np.int64)
    header = np.full(example.header_tokens, reads[0])
    # a target row predicts the next target token; the last one predicts nothing
    target = np.concatenate([reads[1:], reads[-1:]])
    return np.concatenate([header, target])


def simulmask_layout(example: TokenizedExample) -> Layout:
    """The SimulMask mask, positions and labels of one example (see the module docstring)."""
    ids = np.array(example.input_ids, dtype=np.int64)
    total, fixed = len(ids), example.prompt_tokens + example.source_tokens
    needs = np.array(example.source_needs, dtype=np.int64)
    answer_reads = row_reads(example)
    # source tokens are a prefix-closed set (needs are non-decreasing): count them per row
    visible_source = np.searchsorted(needs, answer_reads, side="right")
    causal = np.tril(np.ones((total, total), dtype=bool))
    visible = causal.copy()
    source_cols = np.arange(example.source_tokens)
    answer_rows = slice(fixed, total)
    visible[answer_rows, example.prompt_tokens : fixed] = (
        source_cols[None, :] < visible_source[:, None]
    )
    positions = np.arange(total, dtype=np.int64)
    offsets = np.arange(total - fixed)
    positions[answer_rows] = example.prompt_tokens + visible_source + offsets
    labels = np.full(total, IGNORE, dtype=np.int64)
    start = example.target_start
    labels[start - 1 : total - 1] = ids[start:]
    return Layout(ids, positions, visible, labels)


def prefix_layouts(example: TokenizedExample) -> list[Layout]:
    """Prefix-prompt augmentation: one causal example per WRITE step of the schedule."""
    head = list(example.input_ids[: example.prompt_tokens])
    source = example.input_ids[
        example.prompt_tokens : example.prompt_tokens + example.source_tokens
    ]
    start = example.target_start
    header = list(example.input_ids[start - example.header_tokens : start])
    target = example.input_ids[start:]
    reads = example.target_reads
    needs = np.array(example.source_needs, dtype=np.int64)
    layouts = []
    for first, last in _write_steps(reads):
        visible_source = int(np.searchsorted(needs, reads[first], side="right"))
        ids = np.array([*head, *source[:visible_source], *header, *target[: last + 1]])
        labels = np.full(len(ids), IGNORE, dtype=np.int64)
        new = last + 1 - first
        labels[len(ids) - new - 1 : len(ids) - 1] = ids[len(ids) - new :]
        total = len(ids)
        layouts.append(
            Layout(
                ids,
                np.arange(total, dtype=np.int64),
                np.tril(np.ones((total, total), dtype=bool)),
                labels,
            )
        )
    return layouts


def layouts_for(examples: Sequence[TokenizedExample], method: str) -> list[Layout]:
    """Every layout of ``examples`` under ``method`` (``simulmask`` or ``prefix``)."""
    if method == "simulmask":
        return [simulmask_layout(e) for e in examples]
    if method == "prefix":
        return [layout for e in examples for layout in prefix_layouts(e)]
    raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")


def pack(layouts: Sequence[Layout], pack_tokens: int) -> list[Layout]:
    """Pack layouts, in order, into rows of at most ``pack_tokens`` tokens.

    A row's mask is block-diagonal (no attention across examples) and positions restart at
    every example. A layout longer than ``pack_tokens`` gets a row of its own.
    """
    rows: list[Layout] = []
    current: list[Layout] = []
    for layout in layouts:
        if current and sum(len(x) for x in current) + len(layout) > pack_tokens:
            rows.append(_join(current))
            current = []
        current.append(layout)
    if current:
        rows.append(_join(current))
    return rows


def pad_batch(rows: Sequence[Layout], pad_id: int) -> Layout:
    """Stack rows into one batch (leading axis), padding to the longest.

    Pad rows attend only to themselves (a fully masked row would give NaN) and carry no loss.
    """
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    positions = np.zeros((len(rows), width), dtype=np.int64)
    visible = np.zeros((len(rows), width, width), dtype=bool)
    labels = np.full((len(rows), width), IGNORE, dtype=np.int64)
    for b, row in enumerate(rows):
        n = len(row)
        ids[b, :n], positions[b, :n], labels[b, :n] = row.input_ids, row.positions, row.labels
        visible[b, :n, :n] = row.visible
        visible[b, np.arange(n, width), np.arange(n, width)] = True
    return Layout(ids, positions, visible, labels)


def _join(layouts: Sequence[Layout]) -> Layout:
    if len(layouts) == 1:
        return layouts[0]
    total = sum(len(x) for x in layouts)
    visible = np.zeros((total, total), dtype=bool)
    at = 0
    for layout in layouts:
        n = len(layout)
        visible[at : at + n, at : at + n] = layout.visible
        at += n
    return Layout(
        np.concatenate([x.input_ids for x in layouts]),
        np.concatenate([x.positions for x in layouts]),
        visible,
        np.concatenate([x.labels for x in layouts]),
    )


def _write_steps(reads: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of target tokens written after the same number of source units."""
    steps, first = [], 0
    for i in range(1, len(reads) + 1):
        if i == len(reads) or reads[i] != reads[first]:
            steps.append((first, i - 1))
            first = i
    return steps
