"""The rollout environment of RL: a policy model translating a source stream step by step.

At step t the policy has read t source units and sees what inference shows it (the ``plain``
prompt of :mod:`simulinterp.translate.prompts`: the source read so far, the assistant header,
the target committed so far). It writes target text and stops at the wait marker (a READ
after what it wrote; the marker first is a READ with nothing written), at a newline or at the
end of its answer. At the last step no more source will come: the marker is cut from the text
and the policy writes until its answer ends, as the translator's flush does.

The rollouts of one source run as one batch. The key/value cache of the prompt head and the
source read so far is kept for the whole trajectory and grows by one source unit per step;
each step then re-reads only the assistant header and the row's own committed target (the
``sentence`` layout re-reads the target whenever the source grows, at inference too).

Tokens are kept as generated: the committed target of the next step is the ids the policy
wrote, so the log-probabilities scored later (:func:`score_steps`) are those of the actions
taken. Source units may carry times (ASR words of a recording) for delays in seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from simulinterp.lang import join_units, split_units
from simulinterp.train.examples import ParallelPair
from simulinterp.translate.prompts import ASSISTANT_HEADER, prompt_head

PROMPT_STYLE = "plain"
_TEXT_STOPS = ("\n",)


@dataclass(frozen=True)
class Episode:
    """One source stream with its reference, aligned to the steps.

    Attributes:
        source_units: source words (English) or characters (Chinese), one per step.
        reference_units: the reference translation's units.
        reference_reads: per reference unit, the source units read before it may be written
            (a monotonic alignment; :func:`episodes_from_pairs` makes it).
        source_lang: ``zh`` or ``en``.
        target_lang: the other one.
        unit_times: optional arrival time (s) of each source unit, e.g. ASR word end times.
    """

    source_units: tuple[str, ...]
    reference_units: tuple[str, ...]
    reference_reads: tuple[int, ...]
    source_lang: str
    target_lang: str
    unit_times: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.source_units:
            raise ValueError("an episode needs at least one source unit")
        if len(self.reference_reads) != len(self.reference_units):
            raise ValueError("one read count per reference unit")
        if self.unit_times is not None and len(self.unit_times) != len(self.source_units):
            raise ValueError("one time per source unit")

    @property
    def reference(self) -> str:
        return join_units(list(self.reference_units), self.target_lang)


@dataclass
class Step:
    """What the policy did at one step.

    Attributes:
        read: source units read (1-based step number).
        context_ids: the tokens the policy saw (prompt, source read, header, committed).
        action_ids: the tokens it generated, with the marker or end token that stopped it.
        output: the text it wrote (``y_t``; empty: a READ).
        output_units: ``output`` as target units.
        sample_logprobs: log-probabilities of ``action_ids`` as sampled.
        policy_logprobs: the same under the policy before the update (:func:`score_steps`).
        reference_logprobs: the same under the frozen reference.
        values: the value head's estimate before each action token (``ppo`` only).
    """

    read: int
    context_ids: list[int]
    action_ids: list[int]
    output: str
    output_units: list[str]
    sample_logprobs: list[float]
    policy_logprobs: list[float] = field(default_factory=list)
    reference_logprobs: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def wrote(self) -> bool:
        return bool(self.output_units)


@dataclass
class Trajectory:
    """One rollout of one episode; ``group`` numbers the episode within the batch."""

    episode: Episode
    group: int
    steps: list[Step]

    @property
    def output_units(self) -> list[str]:
        return [u for step in self.steps for u in step.output_units]

    @property
    def output(self) -> str:
        return join_units(self.output_units, self.episode.target_lang)

    @property
    def delays(self) -> list[int]:
        """Per output unit, the source units read when it was written."""
        return [step.read for step in self.steps for _ in step.output_units]

    @property
    def delays_s(self) -> list[float] | None:
        """Per output unit, the arrival time of the last source unit read (speech input)."""
        times = self.episode.unit_times
        return None if times is None else [times[d - 1] for d in self.delays]


@dataclass(frozen=True)
class RolloutSettings:
    """How rollouts are generated (the fields of :class:`~simulinterp.train.config.RLConfig`
    of the same names)."""

    marker: str = "<wait>"
    max_step_tokens: int = 12
    max_final_tokens: int = 48
    temperature: float = 1.0


class Rollouts:
    """Generates trajectories with a causal LM (transformers, optionally wrapped by peft).

    Args:
        model: the policy; ``generate`` runs it in eval mode without gradients.
        tokenizer: its tokenizer (ChatML tokens).
        settings: stop marker, token limits and temperature.
    """

    def __init__(self, model: Any, tokenizer: Any, settings: RolloutSettings):
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ends = {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        ends.add(tokenizer.eos_token_id)
        self.end_ids = {i for i in ends if isinstance(i, int) and i >= 0}
        self._heads: dict[tuple[str, str], list[int]] = {}
        self._header = self._encode(ASSISTANT_HEADER)

    def generate(
        self, episodes: Sequence[Episode], group_size: int, generator: torch.Generator
    ) -> list[Trajectory]:
        """``group_size`` trajectories per episode, in order (the group is the episode index)."""
        out: list[Trajectory] = []
        with torch.no_grad():
            for index, episode in enumerate(episodes):
                out.extend(self._episode(episode, index, group_size, generator))
        return out

    # -- one episode, its rollouts as one batch ---------------------------------------

    def _episode(
        self, episode: Episode, group: int, size: int, generator: torch.Generator
    ) -> list[Trajectory]:
        device = _device(self.model)
        head = self._head(episode.source_lang, episode.target_lang)
        pieces = self._source_pieces(episode)
        trajectories = [Trajectory(episode, group, []) for _ in range(size)]
        committed: list[list[int]] = [[] for _ in range(size)]
        cache = None  # the head and the source read so far, for one row
        shared = list(head)
        pending = list(head)  # shared tokens not yet in the cache
        steps = len(pieces)
        for t in range(1, steps + 1):
            pending += pieces[t - 1]
            shared += pieces[t - 1]
            cache = self._extend(cache, pending, len(shared) - len(pending), device)
            pending = []
            final = t == steps
            actions = self._sample(cache, shared, committed, final, generator, device)
            for row, (ids, logprobs) in enumerate(actions):
                context = shared + self._header + committed[row]
                text = self._action_text(ids, final)
                units = split_units(text, episode.target_lang)
                step = Step(t, context, ids, text if units else "", units, logprobs)
                trajectories[row].steps.append(step)
                if units:
                    committed[row] += self._output_ids(ids, text)
        return trajectories

    def _extend(self, cache: Any, ids: list[int], start: int, device: Any) -> Any:
        """Run ``ids`` (positions from ``start``) into the one-row cache and return it."""
        if not ids:
            return cache
        inputs = torch.tensor([ids], device=device)
        positions = torch.arange(start, start + len(ids), device=device)[None]
        result = self._forward(inputs, None, positions, cache)
        return result.past_key_values

    def _sample(
        self,
        cache: Any,
        shared: list[int],
        committed: list[list[int]],
        final: bool,
        generator: torch.Generator,
        device: Any,
    ) -> list[tuple[list[int], list[float]]]:
        """Sample one action per row: header + committed target, then tokens until a stop."""
        settings, rows = self.settings, len(committed)
        limit = settings.max_final_tokens if final else settings.max_step_tokens
        suffixes = [self._header + c for c in committed]
        width = max(len(s) for s in suffixes)
        base = len(shared)
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((rows, base + width), dtype=torch.long, device=device)
        mask[:, :base] = 1
        positions = torch.full((rows, width), base, dtype=torch.long, device=device)
        for row, suffix in enumerate(suffixes):  # pad between the shared part and the row's own
            pad = width - len(suffix)
            ids[row, pad:] = torch.tensor(suffix, device=device)
            mask[row, base + pad :] = 1
            positions[row, pad:] = torch.arange(base, base + len(suffix), device=device)
        step_cache = copy.deepcopy(cache)
        step_cache.batch_repeat_interleave(rows)
        result = self._forward(ids, mask, positions, step_cache)
        step_cache, logits = result.past_key_values, result.logits[:, -1]
        next_position = positions[:, -1] + 1
        actions: list[tuple[list[int], list[float]]] = [([], []) for _ in range(rows)]
        done = [False] * rows
        for _ in range(limit):
            logprobs = torch.log_softmax(logits.float() / settings.temperature, dim=-1)
            tokens = torch.multinomial(logprobs.exp(), 1, generator=generator)[:, 0]
            for row in range(rows):
                if done[row]:
                    continue
                token = int(tokens[row])
                actions[row][0].append(token)
                actions[row][1].append(float(logprobs[row, token]))
                done[row] = self._stops(actions[row][0], final)
            if all(done):
                break
            mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype, device=device)], 1)
            result = self._forward(tokens[:, None], mask, next_position[:, None], step_cache)
            step_cache, logits = result.past_key_values, result.logits[:, -1]
            next_position = next_position + 1
        return actions

    def _stops(self, ids: list[int], final: bool) -> bool:
        if ids[-1] in self.end_ids:
            return True
        text = self.tokenizer.decode(ids)
        stops = _TEXT_STOPS if final else (*_TEXT_STOPS, self.settings.marker)
        return any(s in text for s in stops)

    def _action_text(self, ids: list[int], final: bool) -> str:
        """What the action wrote: the text before the first stop (at the last step, the text
        before a newline with every marker cut out)."""
        text = self.tokenizer.decode([i for i in ids if i not in self.end_ids])
        text = text.split("\n", 1)[0]
        if final:
            return text.replace(self.settings.marker, "")
        return text.split(self.settings.marker, 1)[0]

    def _output_ids(self, ids: list[int], text: str) -> list[int]:
        """The ids that wrote ``text``: a prefix of ``ids`` when one decodes to it exactly,
        else ``text`` encoded (a stop that began inside a token)."""
        for n in range(len(ids), 0, -1):
            if self.tokenizer.decode(ids[:n]) == text:
                return ids[:n]
        return self._encode(text)

    # -- pieces of the prompt ---------------------------------------------------------

    def _head(self, source_lang: str, target_lang: str) -> list[int]:
        key = (source_lang, target_lang)
        if key not in self._heads:
            self._heads[key] = self._encode(prompt_head(*key, (), PROMPT_STYLE))
        return self._heads[key]

    def _source_pieces(self, episode: Episode) -> list[list[int]]:
        """The tokens each source unit adds to the prompt (prefix-stable by construction)."""
        pieces, before = [], ""
        for t in range(1, len(episode.source_units) + 1):
            text = join_units(list(episode.source_units[:t]), episode.source_lang)
            pieces.append(self._encode(text[len(before) :]))
            before = text
        return pieces

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _forward(self, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        from transformers import DynamicCache

        return self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache if cache is not None else DynamicCache(),
            use_cache=True,
        )


def episodes_from_pairs(pairs: Sequence[ParallelPair], max_source_units: int = 0) -> list[Episode]:
    """Episodes of sentence pairs, each reference aligned to the steps by a word alignment
    (the ``align`` schedule: a reference unit is due once the source units it is linked to
    have been read). Pairs longer than ``max_source_units`` (when > 0) are left out."""
    from simulinterp.train.examples import schedule_pairs
    from simulinterp.train.schedule import ScheduleSpec

    out = []
    for pair, reads in schedule_pairs(pairs, ScheduleSpec.parse("align")):
        source = tuple(split_units(pair.source, pair.source_lang))
        target = tuple(split_units(pair.target, pair.target_lang))
        if not source or not target or 0 < max_source_units < len(source):
            continue
        out.append(Episode(source, target, tuple(reads), pair.source_lang, pair.target_lang))
    return out


def _device(model: Any) -> Any:
    return next(model.parameters()).device


# -- scoring the actions taken ------------------------------------------------------------


class Scorer(torch.nn.Module):
    """The policy (and its value head) as one module whose ``forward`` scores action tokens.

    Training calls it through the data-parallel wrapper that ``accelerate`` puts around it,
    so that DDP sees the forward pass and averages the gradients across processes.
    """

    def __init__(self, model: Any, value_head: Any = None):
        super().__init__()
        self.model, self.value_head = model, value_head

    def forward(
        self, ids: Any, mask: Any, rows: Any, cols: Any, targets: Any, temperature: float
    ) -> tuple[Any, Any]:
        from simulinterp.train.modeling import causal_lm

        lm = causal_lm(self.model)
        hidden = lm.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        picked = hidden[rows, cols]
        logits = lm.lm_head(picked).float() / temperature
        token_lp = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]
        if self.value_head is None:
            return token_lp, None
        return token_lp, self.value_head(picked.to(self.value_head.weight.dtype))[:, 0].float()


def score_steps(
    scorer: Any,
    steps: Sequence[Step],
    pad_id: int,
    rows_per_pass: int,
    temperature: float = 1.0,
    value_head: Any = None,
) -> tuple[list[Any], list[Any]]:
    """Log-probabilities (and values) of each step's action tokens, with gradients if enabled.

    Args:
        scorer: a :class:`Scorer` (possibly inside a data-parallel wrapper), or a bare model
            (then scored with ``value_head``).
        steps: one row each: its context and action, right-padded, in passes of
            ``rows_per_pass``.

    Returns:
        Per step a tensor of action-token log-probabilities and, when there is a value head,
        a tensor of values (the state before each action token); else an empty list.
    """
    if not isinstance(getattr(scorer, "module", scorer), Scorer):
        scorer = Scorer(scorer, value_head)
    logprobs: list[Any] = []
    values: list[Any] = []
    for first in range(0, len(steps), rows_per_pass):
        chunk = steps[first : first + rows_per_pass]
        lp, vs = _score_chunk(scorer, chunk, pad_id, temperature)
        logprobs.extend(lp)
        values.extend(vs)
    return logprobs, values


def _score_chunk(
    scorer: Any, steps: Sequence[Step], pad_id: int, temperature: float
) -> tuple[list[Any], list[Any]]:
    device = _device(scorer)
    rows = [s.context_ids + s.action_ids for s in steps]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, device=device)
        mask[i, : len(row)] = 1
    # the hidden state before each action token predicts it (and holds the state's value)
    index = [
        (i, p) for i, s in enumerate(steps) for p in range(len(s.context_ids) - 1, len(rows[i]) - 1)
    ]
    rows_i = torch.tensor([i for i, _ in index], device=device)
    cols_i = torch.tensor([p for _, p in index], device=device)
    targets = torch.tensor([a for s in steps for a in s.action_ids], device=device)
    token_lp, values = scorer(ids, mask, rows_i, cols_i, targets, temperature)
    sizes = [len(s.action_ids) for s in steps]
    logprobs = list(torch.split(token_lp, sizes))
    return logprobs, ([] if values is None else list(torch.split(values, sizes)))
