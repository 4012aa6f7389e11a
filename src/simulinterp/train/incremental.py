"""Greedy simultaneous decoding with the KV cache kept, as SimulMask training assumes.

The cache holds the prompt, the source read so far, the assistant header and the target
written so far; nothing is ever recomputed. A newly read source token is attended by later
rows only; it may see the prompt and the earlier source, never the answer. The newest target
token is fed only when the next one is wanted, after the reads that precede it. Positions are
those of :mod:`simulinterp.train.mask`, so with the same schedule this produces exactly the
tokens the masked training pass predicts (the equivalence test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GreedyResult:
    """Tokens written, the source units read before each, and each token's log-probability."""

    tokens: list[int]
    reads: list[int]
    logprobs: list[float]


def simulmask_greedy(
    model: Any,
    prompt_ids: Sequence[int],
    source_ids: Sequence[int],
    source_needs: Sequence[int],
    header_ids: Sequence[int],
    reads_for: Callable[[int], int],
    max_new_tokens: int,
    stop_ids: frozenset[int] = frozenset(),
) -> GreedyResult:
    """Decode greedily under a token-level schedule.

    Args:
        model: a causal LM (transformers, possibly peft-wrapped) that takes 4-D masks.
        prompt_ids: the prompt head.
        source_ids: the whole source (read progressively).
        source_needs: per source token, the source units that must be read for it to exist.
        header_ids: the assistant header.
        reads_for: source units read before target token ``i`` is written.
        max_new_tokens: decoding stops after this many tokens.
        stop_ids: tokens that end the answer (kept in the output).

    Returns:
        The tokens and, per token, the source units read and its log-probability.
    """
    import torch

    device = next(model.parameters()).device
    state = _CacheState(model, torch, device)
    state.feed(list(prompt_ids), list(range(len(prompt_ids))), answer=False)
    n_prompt, read_tokens = len(prompt_ids), 0
    generated: list[int] = []
    reads_used: list[int] = []
    logprobs: list[float] = []
    pending = list(header_ids)  # answer tokens not yet fed
    answer_fed = 0
    while len(generated) < max_new_tokens:
        units = reads_for(len(generated))
        while read_tokens < len(source_ids) and source_needs[read_tokens] <= units:
            state.feed([source_ids[read_tokens]], [n_prompt + read_tokens], answer=False)
            read_tokens += 1
        positions = [n_prompt + read_tokens + answer_fed + j for j in range(len(pending))]
        logits = state.feed(pending, positions, answer=True)
        answer_fed += len(pending)
        scores = torch.log_softmax(logits[0, -1].float(), dim=-1)
        token = int(scores.argmax())
        generated.append(token)
        reads_used.append(units)
        logprobs.append(float(scores[token]))
        if token in stop_ids:
            break
        pending = [token]
    return GreedyResult(generated, reads_used, logprobs)


class _CacheState:
    """A KV cache plus which of its entries belong to the answer."""

    def __init__(self, model: Any, torch: Any, device: Any):
        self.model, self.torch, self.device = model, torch, device
        self.cache: Any = None
        self.is_answer: list[bool] = []
        attn = getattr(model.config, "_attn_implementation", "sdpa")
        self.boolean = attn != "eager"

    def feed(self, ids: list[int], positions: list[int], *, answer: bool) -> Any:
        torch = self.torch
        old = len(self.is_answer)
        visible = torch.ones(len(ids), old + len(ids), dtype=torch.bool)
        if not answer:  # source and prompt never see the answer
            visible[:, :old] = ~torch.tensor(self.is_answer, dtype=torch.bool)
        visible[:, old:] = torch.tril(torch.ones(len(ids), len(ids), dtype=torch.bool))
        mask = visible[None, None].to(self.device)
        if not self.boolean:
            dtype = next(self.model.parameters()).dtype
            mask = torch.zeros(mask.shape, dtype=dtype, device=self.device).masked_fill(
                ~mask, torch.finfo(dtype).min
            )
        with torch.no_grad():
            out = self.model(
                input_ids=torch.tensor([ids], device=self.device),
                position_ids=torch.tensor([positions], device=self.device),
                attention_mask=mask,
                past_key_values=self.cache,
                use_cache=True,
            )
        self.cache = out.past_key_values
        self.is_answer.extend([answer] * len(ids))
        return out.logits
