"""Settings of the training jobs, in one module that SFT and RL share (no torch here).

:class:`ModelSetup` says which model is trained and how (LoRA or full, dtype); both
:class:`SFTConfig` and :class:`RLConfig` hand one to
:func:`simulinterp.train.modeling.load_for_training`, the one loading path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulinterp.train.mask import METHODS
from simulinterp.train.schedule import ScheduleSpec

DTYPES = ("auto", "float32", "bfloat16", "float16")
DIRECTIONS = ("both", "zh-en", "en-zh")


@dataclass(frozen=True)
class ModelSetup:
    """The model a job trains.

    Attributes:
        model: a checkpoint directory, a ``.gguf`` file (dequantized by transformers), a
            packaged preset (``default``: the 0.5B GGUF), or a folder written by ``train sft``
            or ``train rl`` (its adapter is loaded onto the base it names, and trained on).
        full: full fine-tuning instead of LoRA.
        lora_rank: LoRA rank (of a new adapter).
        lora_alpha: LoRA scaling numerator (scaling = alpha / rank).
        dtype: ``auto`` (bf16 on GPU, float32 on CPU), ``float32``, ``bfloat16``, ``float16``.
    """

    model: str
    full: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.lora_rank < 1:
            raise ValueError("lora_rank must be positive")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of: {', '.join(DTYPES)}")


@dataclass(frozen=True)
class SFTConfig:
    """One fine-tuning run.

    Attributes:
        model: a checkpoint directory, a ``.gguf`` file (dequantized by transformers), or a
            packaged preset (``default``: the 0.5B GGUF).
        data: a folder of parallel text (``source.txt``/``ref.txt``), or a folder of such
            folders whose names give the direction (``../shared/data/text/train``).
        output: where the adapter, log and plot go.
        schedule: ``wait-k:K`` or ``align[:SLACK]`` (see :mod:`simulinterp.train.schedule`).
        method: ``simulmask`` (one masked pass per example) or ``prefix`` (one example per
            WRITE step).
        direction: ``zh-en``, ``en-zh`` or ``both``.
        limit: at most this many pairs per data folder (0: all).
        full: full fine-tuning instead of LoRA.
        lora_rank: LoRA rank.
        lora_alpha: LoRA scaling numerator (scaling = alpha / rank).
        learning_rate: peak learning rate (linear warm-up, cosine decay).
        warmup_ratio: share of the steps spent warming up.
        epochs: passes over the data.
        max_steps: train this many optimizer steps, whatever ``epochs`` says (0: use epochs).
        token_budget: stop after this many input tokens (0: no limit); how the two methods
            are compared on the same budget.
        pack_tokens: tokens per packed row.
        batch_rows: packed rows per step and process.
        max_example_tokens: longer examples are skipped.
        max_grad_norm: gradient clipping.
        dtype: ``auto`` (bf16 on GPU, float32 on CPU), ``float32``, ``bfloat16``.
        seed: shuffling and initialisation.
        log_every: steps between log lines.
        save_every: steps between checkpoints written to ``output`` (0: only at the end).
    """

    model: str
    data: str
    output: str
    schedule: str = "wait-k:3"
    method: str = "simulmask"
    direction: str = "both"
    limit: int = 0
    full: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    max_steps: int = 0
    token_budget: int = 0
    pack_tokens: int = 2048
    batch_rows: int = 4
    max_example_tokens: int = 512
    max_grad_norm: float = 1.0
    dtype: str = "auto"
    seed: int = 0
    log_every: int = 10
    save_every: int = 0

    def __post_init__(self) -> None:
        ScheduleSpec.parse(self.schedule)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of: {', '.join(METHODS)}")
        if self.pack_tokens < self.max_example_tokens:
            raise ValueError("pack_tokens must be at least max_example_tokens")
        if min(self.batch_rows, self.lora_rank, self.log_every) < 1 or self.epochs <= 0:
            raise ValueError("batch_rows, lora_rank, log_every and epochs must be positive")
        if self.direction not in DIRECTIONS:
            raise ValueError("direction must be zh-en, en-zh or both")
        _ = self.model_setup  # validates the model fields

    @property
    def model_setup(self) -> ModelSetup:
        return ModelSetup(self.model, self.full, self.lora_rank, self.lora_alpha, self.dtype)


STEP_REWARDS = ("listen", "proactive", "quality", "length", "format")
SEQUENCE_REWARDS = ("latency", "sequence_quality", "seqpo")
ALGORITHMS = ("ppo", "group")
QUALITY_METRICS = ("chrf", "bleu", "embedding")


def default_weights() -> dict[str, float]:
    """Weights of the normalized sub-rewards (:mod:`simulinterp.train.rewards`).

    The step rewards count in both stages, the sequence rewards only in stage 2. ``seqpo``
    (quality minus lambda times latency, SeqPO-SiMT's single reward) is off by default: set
    it, and the production recipe's ``latency`` and ``sequence_quality`` to 0, to train
    SeqPO-SiMT's way.
    """
    return {
        "listen": 0.5,
        "proactive": 0.5,
        "quality": 1.0,
        "length": 0.5,
        "format": 0.5,
        "latency": 1.0,
        "sequence_quality": 1.0,
        "seqpo": 0.0,
    }


@dataclass(frozen=True)
class RLConfig:
    """One reinforcement-learning run of the READ/WRITE policy.

    Attributes:
        model: the start policy: a ``train sft`` output folder, or a base model as in
            :class:`ModelSetup` (``default``: the packaged 0.5B). A frozen copy of it is the
            KL reference.
        data: parallel text, as for ``train sft``.
        output: where the adapter, ``rl_log.jsonl`` and ``rl_curves.png`` go.
        stage: 1, step rewards only; 2, step and sequence rewards together.
        algorithm: ``ppo`` (clipped ratio, value head, GAE) or ``group`` (critic-free: the
            rollouts of one source share a baseline and are normalized together).
        direction: ``zh-en``, ``en-zh`` or ``both``.
        limit: at most this many pairs per data folder (0: all).
        updates: policy updates to run.
        sources_per_update: source sentences rolled out per update (and process).
        group_size: rollouts per source (at least 2 for ``group``).
        ppo_epochs: passes over each batch of rollouts.
        minibatch_rows: (trajectory, step) rows per forward pass.
        max_step_tokens: tokens the policy may write at one step before it must stop.
        max_final_tokens: tokens it may write at the last step (the flush).
        max_source_units: longer sources are skipped.
        temperature: sampling temperature of the rollouts.
        marker: the wait marker (a READ); generation also stops at the end of the answer.
        format_regex: what a step's output must match (``r_f``).
        quality: ``chrf``, ``bleu`` or ``embedding`` (an English sentence-embedding model,
            for English targets; see :mod:`simulinterp.train.rewards`).
        latency_threshold: ``l`` of the sequence latency penalty, in steps waited.
        seqpo_lambda: lambda of SeqPO-SiMT's reward, quality - lambda * LAAL / |X|.
        weights: weight per sub-reward (see :func:`default_weights`).
        learning_rate: AdamW learning rate (constant).
        clip_ratio: PPO's epsilon.
        value_clip: clipping of the value update (0: none).
        value_coef: weight of the value loss.
        gamma: discount over tokens.
        gae_lambda: GAE's lambda.
        kl_beta: initial coefficient of the per-token KL penalty.
        kl_target: the KL per token the controller steers toward (0: a fixed beta).
        kl_gain: the controller's proportional gain (log beta moves by at most 0.2 * gain
            per update).
        max_grad_norm: gradient clipping.
        seed: sampling and shuffling.
        save_every: updates between checkpoints (0: only at the end).
    """

    model: str
    data: str
    output: str
    stage: int = 1
    algorithm: str = "ppo"
    direction: str = "both"
    limit: int = 0
    updates: int = 20
    sources_per_update: int = 4
    group_size: int = 2
    ppo_epochs: int = 2
    minibatch_rows: int = 16
    max_step_tokens: int = 12
    max_final_tokens: int = 48
    max_source_units: int = 40
    temperature: float = 1.0
    marker: str = "<wait>"
    format_regex: str = r"[^<>\n]*"
    quality: str = "chrf"
    latency_threshold: float = 3.0
    seqpo_lambda: float = 0.5
    weights: dict[str, float] = field(default_factory=default_weights)
    full: bool = False
    lora_rank: int = 8
    lora_alpha: int = 16
    learning_rate: float = 2e-5
    clip_ratio: float = 0.2
    value_clip: float = 0.2
    value_coef: float = 0.5
    gamma: float = 1.0
    gae_lambda: float = 0.95
    kl_beta: float = 0.05
    kl_target: float = 0.05
    kl_gain: float = 0.1
    max_grad_norm: float = 1.0
    dtype: str = "auto"
    seed: int = 0
    save_every: int = 0

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError("stage must be 1 (step rewards) or 2 (step and sequence rewards)")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of: {', '.join(ALGORITHMS)}")
        if self.algorithm == "group" and self.group_size < 2:
            raise ValueError("the group algorithm needs group_size >= 2 (rollouts per source)")
        if self.direction not in DIRECTIONS:
            raise ValueError("direction must be zh-en, en-zh or both")
        if self.quality not in QUALITY_METRICS:
            raise ValueError(f"quality must be one of: {', '.join(QUALITY_METRICS)}")
        positive = (self.updates, self.sources_per_update, self.group_size, self.ppo_epochs)
        if min(*positive, self.minibatch_rows, self.max_step_tokens, self.max_final_tokens) < 1:
            raise ValueError("updates, batch sizes, epochs and token limits must be positive")
        if self.temperature <= 0 or not 0 < self.clip_ratio < 1 or self.kl_beta < 0:
            raise ValueError("temperature and clip_ratio must be positive, kl_beta >= 0")
        if not self.marker.strip():
            raise ValueError("the wait marker must be a non-empty text")
        _ = self.model_setup

    @property
    def model_setup(self) -> ModelSetup:
        return ModelSetup(self.model, self.full, self.lora_rank, self.lora_alpha, self.dtype)

    def check_weights(self, extra: tuple[str, ...] = ()) -> None:
        """Raise ValueError for a weight of an unknown reward (``extra``: custom ones)."""
        known = (*STEP_REWARDS, *SEQUENCE_REWARDS, *extra)
        unknown = set(self.weights) - set(known)
        if unknown:
            raise ValueError(
                f"unknown rewards {', '.join(sorted(unknown))}; known: {', '.join(known)}"
            )

    def weight(self, reward: str) -> float:
        """The weight of ``reward`` in this stage (sequence rewards count from stage 2)."""
        if reward in SEQUENCE_REWARDS and self.stage < 2:
            return 0.0
        return float(self.weights.get(reward, default_weights().get(reward, 0.0)))
