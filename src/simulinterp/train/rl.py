"""Sequence-level RL of the READ/WRITE policy: PPO with step and sequence rewards, or the
critic-free group variant (SeqPO-SiMT's setting).

``RLConfig`` + ``train_rl``, one update at a time:

1. roll out ``group_size`` trajectories for each of ``sources_per_update`` sources
   (:mod:`simulinterp.train.rollout`);
2. score their action tokens under the policy (old log-probabilities, values) and under the
   frozen reference (the start policy: the base with the adapter switched off when a new
   adapter is trained, else a frozen copy);
3. reward them (:mod:`simulinterp.train.rewards`): every sub-reward normalized within the
   batch, weighted and summed; step rewards on each step's last token, sequence rewards
   (stage 2) on the trajectory's last token, ``-beta * KL`` on every token;
4. advantages: GAE over tokens with the value head (``ppo``), or each trajectory's return
   against its group's (``group``); then ``ppo_epochs`` passes of the clipped objective;
5. beta follows the KL controller toward ``kl_target``.

Runs through ``accelerate`` as ``train sft`` does (CPU, one GPU, several under torchrun: each
process rolls out its own sources and gradients are averaged). Writes the adapter (or full
model), ``simulinterp.json`` (``policy: learned``, the marker), ``value_head.pt``,
``rl_log.jsonl`` (every reward component, KL, beta, losses, AL, LAAL, BLEU and chrF of the
rollouts per update) and ``rl_curves.png``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simulinterp.eval.latency import average_lagging
from simulinterp.eval.quality import bleu, chrf
from simulinterp.llm.adapter_info import METADATA_FILE
from simulinterp.train import rewards as R
from simulinterp.train.config import STEP_REWARDS, RLConfig
from simulinterp.train.examples import read_parallel
from simulinterp.train.modeling import load_for_training, trained_adapter
from simulinterp.train.ppo import (
    KLController,
    gae,
    group_advantages,
    policy_loss,
    value_loss,
    whitened,
)
from simulinterp.train.rollout import (
    PROMPT_STYLE,
    Episode,
    Rollouts,
    RolloutSettings,
    Scorer,
    Trajectory,
    episodes_from_pairs,
    score_steps,
)

logger = logging.getLogger(__name__)

LOG_FILE = "rl_log.jsonl"
EVAL_FILE = "rl_eval.json"
CURVES_FILE = "rl_curves.png"
VALUE_HEAD_FILE = "value_head.pt"


@dataclass(frozen=True)
class RLResult:
    """What a run did: the output folder, its updates and the log of each."""

    output: Path
    updates: int
    history: list[dict[str, Any]]
    seconds: float
    main_process: bool = True
    evaluation: dict[str, dict[str, float]] | None = None

    @property
    def first_reward(self) -> float:
        return self.history[0]["reward_raw"]

    @property
    def last_reward(self) -> float:
        return self.history[-1]["reward_raw"]


def train_rl(
    config: RLConfig,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    *,
    episodes: Sequence[Episode] | None = None,
    embed: R.Embed | None = None,
    extra_rewards: dict[str, Callable[[Trajectory], list[float]]] | None = None,
    held_out: Sequence[Episode] | None = None,
) -> RLResult:
    """Train the policy of ``config.model`` by RL; see :class:`RLConfig`.

    Args:
        config: the run.
        on_log: called with every update's record (the CLI prints them).
        episodes: use these instead of reading ``config.data`` (tests, speech transcripts).
        embed: the embedding model of the ``embedding`` quality metric (loaded when needed).
        extra_rewards: more step rewards, by name: a function of a trajectory giving one
            value per step, weighted by ``config.weights[name]`` (toy tasks, custom checks).
        held_out: episodes rolled out (not trained on) before the first update and after the
            last, with the same sampling seed: the reward, chrF, BLEU and LAAL before and after
            land in ``result.evaluation`` and ``rl_eval.json``.

    Raises:
        FileNotFoundError: the data or model is missing.
        ValueError: bad settings or no usable episode.
    """
    from accelerate import Accelerator

    config.check_weights(tuple(extra_rewards or ()))
    accelerator = Accelerator(mixed_precision="no")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model, tokenizer = load_for_training(config.model_setup, accelerator.device)
    fresh_adapter = trained_adapter(config.model) is None and not config.full
    reference = None if fresh_adapter else _frozen_copy(model)
    value_head = _value_head(model, config) if config.algorithm == "ppo" else None
    pool = list(episodes) if episodes is not None else load_episodes(config)
    if not pool:
        raise ValueError(f"no episode of at most {config.max_source_units} source units")
    pool = pool[accelerator.process_index :: accelerator.num_processes] or pool
    if config.quality == "embedding" and embed is None:
        embed = R.load_embedder()
    params = [p for p in model.parameters() if p.requires_grad]
    if value_head is not None:
        params += list(value_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    scorer, optimizer = accelerator.prepare(Scorer(model, value_head), optimizer)
    policy = accelerator.unwrap_model(scorer).model
    rollouts = Rollouts(policy, tokenizer, _settings(config))
    generator = torch.Generator(device="cpu").manual_seed(config.seed + accelerator.process_index)
    kl = KLController(config.kl_beta, config.kl_target, config.kl_gain)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    log = _Log(output / LOG_FILE, on_log if accelerator.is_main_process else None)
    batches = _batches(pool, config.sources_per_update, config.seed)
    pad = rollouts.pad_id
    evaluation: dict[str, dict[str, float]] = {}
    if held_out:
        evaluation["before"] = evaluate_policy(rollouts, held_out, config, embed, extra_rewards)
    for update in range(1, config.updates + 1):
        policy.eval()
        trajectories = rollouts.generate(next(batches), config.group_size, generator)
        steps = [s for t in trajectories for s in t.steps]
        with torch.no_grad():
            old, values = score_steps(
                policy, steps, pad, config.minibatch_rows, config.temperature, value_head
            )
            with _reference_of(policy, reference) as ref_model:
                ref, _ = score_steps(
                    ref_model, steps, pad, config.minibatch_rows, config.temperature
                )
        for step, o, r, v in zip(steps, old, ref, values or [None] * len(steps), strict=True):
            step.policy_logprobs = o.tolist()
            step.reference_logprobs = r.tolist()
            step.values = [] if v is None else v.tolist()
        scored = reward_batch(trajectories, config, embed, extra_rewards)
        token_rewards = per_token_rewards(trajectories, scored, kl.beta)
        advantages, returns = advantages_of(trajectories, token_rewards, config)
        stats = _optimize(
            scorer, policy, value_head, optimizer, accelerator, steps, advantages, returns, config
        )
        mean_kl = token_kl(steps)
        beta = kl.beta
        shared_kl = accelerator.reduce(torch.tensor(mean_kl, device=accelerator.device), "mean")
        kl.update(float(shared_kl))
        log.record(update, config.updates, scored, trajectories, mean_kl, beta, stats)
        if config.save_every and update % config.save_every == 0 and accelerator.is_main_process:
            save(policy, value_head, tokenizer, config, output, log.history)
    if held_out:
        evaluation["after"] = evaluate_policy(rollouts, held_out, config, embed, extra_rewards)
        if accelerator.is_main_process:
            (output / EVAL_FILE).write_text(json.dumps(evaluation, indent=2) + "\n")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save(policy, value_head, tokenizer, config, output, log.history)
    return RLResult(
        output,
        config.updates,
        log.history,
        log.elapsed(),
        accelerator.is_main_process,
        evaluation or None,
    )


def evaluate_policy(
    rollouts: Rollouts,
    episodes: Sequence[Episode],
    config: RLConfig,
    embed: R.Embed | None = None,
    extra_rewards: dict[str, Callable[[Trajectory], list[float]]] | None = None,
) -> dict[str, float]:
    """Roll the policy out on ``episodes`` (one trajectory each, a fixed seed) and score it:
    the raw reward of this stage, its components, and the rollouts' AL, LAAL, BLEU, chrF."""
    rollouts.model.eval()
    generator = torch.Generator(device="cpu").manual_seed(config.seed + 10_007)
    trajectories = rollouts.generate(episodes, 1, generator)
    scored = reward_batch(trajectories, config, embed, extra_rewards)
    out: dict[str, float] = {"reward_raw": round(scored.raw_reward(), 5)}
    out["episodes"] = len(episodes)
    for name, values in {**scored.step_components, **scored.sequence_components}.items():
        out[f"r_{name}"] = round(float(np.mean(values)), 5)
    return {**out, **rollout_scores(trajectories)}


def load_episodes(
    config: RLConfig, data: str | None = None, limit: int | None = None
) -> list[Episode]:
    """The episodes of ``data`` (default ``config.data``; both directions unless one is chosen).

    ``data`` is parallel text (a folder, or a folder of folders), or a speech folder
    (``audio/`` and ``transcripts.tsv`` with translations), whose recordings are recognized
    into ASR words with their times (:mod:`simulinterp.train.speech_episodes`).
    """
    from simulinterp.train.speech_episodes import episodes_from_speech, is_speech_folder

    data = config.data if data is None else data
    limit = config.limit if limit is None else limit
    if is_speech_folder(data):
        episodes = episodes_from_speech(
            data,
            limit=limit,
            max_source_units=config.max_source_units,
            direction=config.direction,
            on_recording=lambda done, total: logger.info("recognized %d/%d", done, total),
        )
        logger.info("%s: %d speech episodes", data, len(episodes))
        return episodes
    direction = None if config.direction == "both" else tuple(config.direction.split("-"))
    pairs = read_parallel(data, direction=direction, limit=limit)  # type: ignore[arg-type]
    episodes = episodes_from_pairs(pairs, config.max_source_units)
    logger.info("%d pairs -> %d episodes", len(pairs), len(episodes))
    return episodes


# -- rewards ------------------------------------------------------------------------------


@dataclass
class ScoredBatch:
    """The raw sub-rewards of a batch and the weighted, normalized totals.

    Attributes:
        step_components: name -> one raw value per step (all trajectories, in order).
        sequence_components: name -> one raw value per trajectory.
        step_totals: per step, the weighted sum of the normalized step components.
        sequence_totals: per trajectory, the same for the sequence components.
        weights: the weight of each component in this stage.
    """

    step_components: dict[str, list[float]]
    sequence_components: dict[str, list[float]]
    step_totals: list[float]
    sequence_totals: list[float]
    weights: dict[str, float]

    def raw_reward(self) -> float:
        """The mean reward per trajectory before normalization: the weighted raw step
        rewards summed over its steps, plus its weighted raw sequence rewards. This is what
        learning should raise (the normalized totals have mean 0 by construction)."""
        trajectories = len(next(iter(self.sequence_components.values()), [])) or 1
        steps = sum(
            self.weights.get(name, 0.0) * float(np.sum(values))
            for name, values in self.step_components.items()
        )
        sequence = sum(
            self.weights.get(name, 0.0) * float(np.mean(values))
            for name, values in self.sequence_components.items()
            if values
        )
        return steps / trajectories + sequence


def reward_batch(
    trajectories: Sequence[Trajectory],
    config: RLConfig,
    embed: R.Embed | None = None,
    extra: dict[str, Callable[[Trajectory], list[float]]] | None = None,
) -> ScoredBatch:
    """Every sub-reward of every step and trajectory, normalized within the batch."""
    step: dict[str, list[float]] = {name: [] for name in STEP_REWARDS}
    for name in extra or {}:
        step[name] = []
    outputs, references = [], []
    for trajectory in trajectories:
        episode = trajectory.episode
        due = R.reference_steps(
            episode.reference_reads, episode.reference_units, len(trajectory.steps)
        )
        written_before, due_so_far = 0, 0
        for t, s in enumerate(trajectory.steps):
            out_n, ref_n = len(s.output_units), len(due[t])
            due_so_far += ref_n
            step["listen"].append(R.listening(out_n, ref_n))
            step["proactive"].append(R.proactiveness(out_n, due_so_far - written_before))
            step["length"].append(R.length_match(out_n, ref_n))
            step["format"].append(R.format_ok(s.output, config.format_regex))
            outputs.append(R.joined(s.output_units, episode.target_lang))
            references.append(R.joined(due[t], episode.target_lang))
            written_before += out_n
        for name, function in (extra or {}).items():
            values = function(trajectory)
            if len(values) != len(trajectory.steps):
                raise ValueError(
                    f"reward {name} gave {len(values)} values for {len(trajectory.steps)} steps"
                )
            step[name].extend(values)
    lang = trajectories[0].episode.target_lang if trajectories else "en"
    step["quality"] = _similarity(outputs, references, config, lang, embed)
    sequence = sequence_rewards(trajectories, config, embed)
    step_weights = {
        name: config.weight(name) if name in STEP_REWARDS else float(config.weights.get(name, 0.0))
        for name in step
    }
    sequence_weights = {name: config.weight(name) for name in sequence}
    return ScoredBatch(
        step,
        sequence,
        R.weighted_sum(step, step_weights),
        R.weighted_sum(sequence, sequence_weights),
        {**step_weights, **sequence_weights},
    )


def sequence_rewards(
    trajectories: Sequence[Trajectory], config: RLConfig, embed: R.Embed | None = None
) -> dict[str, list[float]]:
    """``latency`` (r_L), ``sequence_quality`` (r_Q) and ``seqpo`` per trajectory."""
    lang = trajectories[0].episode.target_lang if trajectories else "en"
    quality = _similarity(
        [t.output for t in trajectories],
        [t.episode.reference for t in trajectories],
        config,
        lang,
        embed,
    )
    latency, seqpo = [], []
    for trajectory, q in zip(trajectories, quality, strict=True):
        episode = trajectory.episode
        waits = R.segment_waits([s.wrote for s in trajectory.steps])
        latency.append(R.latency_penalty(waits, config.latency_threshold))
        laal = R.laal_of(trajectory.delays, len(episode.source_units), len(episode.reference_units))
        seqpo.append(R.seqpo(q, laal, len(episode.source_units), config.seqpo_lambda))
    return {"latency": latency, "sequence_quality": quality, "seqpo": seqpo}


def _similarity(
    outputs: list[str], references: list[str], config: RLConfig, lang: str, embed: R.Embed | None
) -> list[float]:
    return R.similarity(outputs, references, config.quality, lang, embed)


def per_token_rewards(
    trajectories: Sequence[Trajectory], scored: ScoredBatch, beta: float
) -> list[np.ndarray]:
    """Per trajectory, one reward per action token: ``-beta * KL`` on every token, the step's
    reward on its last token, the sequence reward on the trajectory's last token."""
    out, index = [], 0
    for number, trajectory in enumerate(trajectories):
        parts = []
        for step in trajectory.steps:
            kl = np.asarray(step.policy_logprobs) - np.asarray(step.reference_logprobs)
            rewards = -beta * kl
            rewards[-1] += scored.step_totals[index]
            index += 1
            parts.append(rewards)
        tokens = np.concatenate(parts)
        tokens[-1] += scored.sequence_totals[number]
        out.append(tokens)
    return out


def advantages_of(
    trajectories: Sequence[Trajectory], token_rewards: Sequence[np.ndarray], config: RLConfig
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per trajectory, advantages and value targets per action token.

    ``ppo``: GAE with the value head's estimates, whitened over the batch. ``group``: the
    trajectory's total reward against its group (same source), on every one of its tokens.
    """
    if config.algorithm == "group":
        totals = [float(r.sum()) for r in token_rewards]
        scores = group_advantages(totals, [t.group for t in trajectories])
        advantages = [np.full(len(r), a) for r, a in zip(token_rewards, scores, strict=True)]
        return advantages, [np.zeros(len(r)) for r in token_rewards]
    advantages, returns = [], []
    for trajectory, rewards in zip(trajectories, token_rewards, strict=True):
        values = np.concatenate([s.values for s in trajectory.steps])
        a, g = gae(rewards, values, config.gamma, config.gae_lambda)
        advantages.append(a)
        returns.append(g)
    flat = whitened(np.concatenate(advantages))
    sizes = np.cumsum([len(a) for a in advantages])[:-1]
    return list(np.split(flat, sizes)), returns


# -- optimisation -------------------------------------------------------------------------


def _optimize(
    scorer: Any,
    policy: Any,
    value_head: Any,
    optimizer: Any,
    accelerator: Any,
    steps: list[Any],
    advantages: list[np.ndarray],
    returns: list[np.ndarray],
    config: RLConfig,
) -> dict[str, float]:
    """``ppo_epochs`` passes of minibatches of steps; the mean losses and diagnostics."""
    step_adv = _split_by_step(steps, advantages)
    step_ret = _split_by_step(steps, returns)
    order = list(range(len(steps)))
    rng = random.Random(config.seed)
    totals: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clip_fraction": []}
    policy.train()
    # DDP needs as many backward passes in every process, and the processes' rollouts differ
    # in length: all split their steps into the largest process's number of minibatches
    local = torch.tensor([math.ceil(len(steps) / config.minibatch_rows)], device=accelerator.device)
    count = int(accelerator.gather(local).max())
    for _ in range(config.ppo_epochs):
        rng.shuffle(order)
        padded = (order * math.ceil(count / len(order)))[: max(len(order), count)]
        for chunk in (list(c) for c in np.array_split(padded, count)):
            batch = [steps[i] for i in chunk]
            logp, values = score_steps(scorer, batch, 0, len(batch), config.temperature)
            device = logp[0].device
            new = torch.cat(logp)
            old = torch.tensor([x for s in batch for x in s.policy_logprobs], device=device)
            adv = torch.tensor(np.concatenate([step_adv[i] for i in chunk]), device=device)
            loss, stats = policy_loss(new, old, adv.float(), config.clip_ratio)
            totals["policy_loss"].append(float(loss.detach()))
            totals["clip_fraction"].append(stats["clip_fraction"])
            if value_head is not None:
                target = torch.tensor(np.concatenate([step_ret[i] for i in chunk]), device=device)
                old_v = torch.tensor([x for s in batch for x in s.values], device=device)
                v_loss = value_loss(torch.cat(values), old_v, target.float(), config.value_clip)
                totals["value_loss"].append(float(v_loss.detach()))
                loss = loss + config.value_coef * v_loss
            accelerator.backward(loss)
            if config.max_grad_norm:
                params = [p for g in optimizer.param_groups for p in g["params"]]
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return {name: float(np.mean(v)) if v else 0.0 for name, v in totals.items()}


def token_kl(steps: Sequence[Any]) -> float:
    """The mean over sampled tokens of ``log pi - log pi_ref``: a Monte Carlo estimate of the
    KL per token from the policy to the reference."""
    diffs = [np.asarray(s.policy_logprobs) - np.asarray(s.reference_logprobs) for s in steps]
    return float(np.mean(np.concatenate(diffs))) if diffs else 0.0


def _split_by_step(steps: list[Any], per_trajectory: list[np.ndarray]) -> list[np.ndarray]:
    """Per-trajectory token arrays cut back into per-step arrays (steps in order)."""
    out, flat = [], np.concatenate(per_trajectory) if per_trajectory else np.zeros(0)
    offset = 0
    for step in steps:
        out.append(flat[offset : offset + len(step.action_ids)])
        offset += len(step.action_ids)
    return out


def _reference_of(policy: Any, reference: Any) -> Any:
    """The frozen reference: a separate copy, or the policy with its new adapter off."""
    if reference is not None:
        return nullcontext(reference)
    return _AdapterOff(policy)


class _AdapterOff:
    def __init__(self, model: Any):
        self.model = model
        self._context = model.disable_adapter()

    def __enter__(self) -> Any:
        self._context.__enter__()
        return self.model

    def __exit__(self, *exc: Any) -> None:
        self._context.__exit__(*exc)


def _frozen_copy(model: Any) -> Any:
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def _value_head(model: Any, config: RLConfig) -> Any:
    """A linear value head on the last hidden state; continued from the start model's folder
    when one was saved there (stage 2 after stage 1)."""
    hidden = model.config.hidden_size
    head = torch.nn.Linear(hidden, 1).to(next(model.parameters()).device)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    saved = Path(config.model) / VALUE_HEAD_FILE
    if saved.is_file():
        head.load_state_dict(torch.load(saved, map_location=head.weight.device))
    return head


def _settings(config: RLConfig) -> RolloutSettings:
    return RolloutSettings(
        config.marker, config.max_step_tokens, config.max_final_tokens, config.temperature
    )


def _batches(pool: list[Episode], size: int, seed: int) -> Iterator[list[Episode]]:
    rng = random.Random(seed)
    order = list(range(len(pool)))
    while True:
        rng.shuffle(order)
        for first in range(0, len(order), size):
            chunk = order[first : first + size]
            if len(chunk) < size and len(pool) >= size:
                break  # a short batch at an epoch's end: start the next epoch instead
            yield [pool[i] for i in chunk]


# -- the log, saving and curves -----------------------------------------------------------


class _Log:
    def __init__(self, path: Path, on_log: Callable[[dict[str, Any]], None] | None):
        self.path, self.on_log = path, on_log
        self.history: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        if on_log is not None:
            path.write_text("")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def record(
        self,
        update: int,
        total: int,
        scored: ScoredBatch,
        trajectories: Sequence[Trajectory],
        kl: float,
        beta: float,
        stats: dict[str, float],
    ) -> None:
        record: dict[str, Any] = {"update": update, "total_updates": total}
        for name, values in {**scored.step_components, **scored.sequence_components}.items():
            record[f"r_{name}"] = round(float(np.mean(values)), 5) if values else 0.0
        record["reward"] = round(
            float(np.mean(scored.step_totals) + np.mean(scored.sequence_totals or [0.0])), 5
        )
        record["reward_raw"] = round(scored.raw_reward(), 5)
        record.update(kl=round(kl, 6), beta=round(beta, 6))
        record.update({k: round(v, 6) for k, v in stats.items()})
        record.update(rollout_scores(trajectories))
        record["elapsed_s"] = round(self.elapsed(), 2)
        self.history.append(record)
        if self.on_log is not None:
            with self.path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            self.on_log(record)


def rollout_scores(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """AL, LAAL (source units), BLEU and chrF of the rollouts against their references; for
    speech episodes also ``LAAL_s``, in seconds of the recording."""
    if not trajectories:
        return {}
    lang = trajectories[0].episode.target_lang
    outputs = [t.output for t in trajectories]
    references = [t.episode.reference for t in trajectories]
    als, laals, laals_s = [], [], []
    for t in trajectories:
        n = len(t.episode.source_units)
        if t.delays:
            als.append(average_lagging(t.delays, n))
        laals.append(R.laal_of(t.delays, n, len(t.episode.reference_units)))
        times = t.episode.unit_times
        if times is not None:  # speech: seconds behind the speaker, as SimulEval's speech LAAL
            delays_s = t.delays_s or []
            laals_s.append(R.laal_of(delays_s, times[-1], len(t.episode.reference_units)))
    timed = {"LAAL_s": round(float(np.mean(laals_s)), 3)} if laals_s else {}
    return {
        "AL": round(float(np.mean(als)), 3) if als else float("nan"),
        "LAAL": round(float(np.mean(laals)), 3),
        **timed,
        "BLEU": round(bleu(outputs, references, lang), 2),
        "chrF": round(chrf(outputs, references, lang), 2),
        "written_share": round(float(np.mean([s.wrote for t in trajectories for s in t.steps])), 3),
    }


def save(
    model: Any,
    value_head: Any,
    tokenizer: Any,
    config: RLConfig,
    output: Path,
    history: list[dict[str, Any]],
) -> None:
    """The adapter (or full model), its metadata, the value head and the curves."""
    model.save_pretrained(str(output))
    if config.full:
        tokenizer.save_pretrained(str(output))
    if value_head is not None:
        torch.save(value_head.state_dict(), output / VALUE_HEAD_FILE)
    start = trained_adapter(config.model)
    base = (
        json.loads((start / METADATA_FILE).read_text(encoding="utf-8"))["base_model"]
        if start
        else config.model
    )
    metadata = {
        "kind": "full" if config.full else "lora",
        "prompt_style": PROMPT_STYLE,
        "base_model": base,
        "policy": "learned",
        "marker": config.marker,
        "method": f"rl-{config.algorithm}",
        "stage": config.stage,
        "start": config.model,
        "config": asdict(config),
        "updates": history[-1]["update"] if history else 0,
    }
    (output / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    if history:
        plot_curves(history, output / CURVES_FILE)


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Rewards, KL and beta, losses, and the rollouts' quality and latency per update."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib comes with the torch extra
        logger.warning("matplotlib is missing: no curves (pip install matplotlib)")
        return
    updates = [h["update"] for h in history]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    ax = axes[0][0]
    for key in sorted(k for k in history[0] if k.startswith("r_")):
        ax.plot(updates, [h[key] for h in history], label=key[2:])
    ax.plot(updates, [h["reward_raw"] for h in history], "k", linewidth=2, label="total (raw)")
    ax.set(xlabel="update", title="rewards (batch means, raw)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[0][1]
    ax.plot(updates, [h["kl"] for h in history], label="KL per token")
    ax.plot(updates, [h["beta"] for h in history], label="beta")
    ax.set(xlabel="update", title="KL to the reference")
    ax.legend()
    ax = axes[1][0]
    ax.plot(updates, [h["policy_loss"] for h in history], label="policy")
    ax.plot(updates, [h["value_loss"] for h in history], label="value")
    ax.set(xlabel="update", title="losses")
    ax.legend()
    ax = axes[1][1]
    ax.plot(updates, [h["chrF"] for h in history], label="chrF")
    ax.plot(updates, [h["BLEU"] for h in history], label="BLEU")
    ax.set(xlabel="update", title="rollouts: quality and LAAL")
    twin = ax.twinx()
    twin.plot(updates, [h["LAAL"] for h in history], "r--", label="LAAL")
    twin.set_ylabel("LAAL (source units)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
