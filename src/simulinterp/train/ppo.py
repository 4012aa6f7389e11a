"""The optimisation side of RL: advantages, the KL controller and PPO's losses.

Token-level, as in RL from feedback on language models: every generated token is an action,
a step's reward sits on its last token, the sequence reward on the trajectory's last token, and
every token pays ``beta * (log pi(token) - log pi_ref(token))``.

- :func:`gae`: generalized advantage estimation (Schulman et al., 2016) over one trajectory.
- :func:`group_advantages`: the critic-free variant: the returns of the rollouts of one source
  share their mean as baseline and are scaled by their spread (as GRPO does).
- :class:`KLController`: beta moves in log space in proportion to the relative KL error
  (Ziegler et al., 2019): ``log beta += gain * clip(KL / target - 1, -0.2, 0.2)``.
- :func:`policy_loss`, :func:`value_loss`: PPO's clipped objectives (Schulman et al., 2017).

Numpy for the bookkeeping; the two losses take torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def gae(
    rewards: Sequence[float], values: Sequence[float], gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of one trajectory; the state after its end is worth 0.

    ``delta_t = r_t + gamma * V_{t+1} - V_t``, ``A_t = delta_t + gamma * lam * A_{t+1}``,
    returns ``A_t + V_t`` (the value head's targets).
    """
    if len(rewards) != len(values):
        raise ValueError("one value per reward")
    advantages = np.zeros(len(rewards))
    running, next_value = 0.0, 0.0
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + np.asarray(values, dtype=float)


def discounted_returns(rewards: Sequence[float], gamma: float) -> np.ndarray:
    """``G_t = sum_{s >= t} gamma^(s - t) r_s``."""
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def group_advantages(scores: Sequence[float], groups: Sequence[int]) -> np.ndarray:
    """Each score minus its group's mean, over the group's standard deviation.

    A group whose scores do not vary gets 0 (nothing to learn from it).
    """
    scores_a = np.asarray(scores, dtype=float)
    groups_a = np.asarray(groups)
    out = np.zeros(len(scores_a))
    for group in np.unique(groups_a):
        members = groups_a == group
        spread = scores_a[members].std()
        if spread > 1e-8:
            out[members] = (scores_a[members] - scores_a[members].mean()) / spread
    return out


def whitened(values: np.ndarray) -> np.ndarray:
    """``values`` with mean 0 and standard deviation 1 (unchanged when constant)."""
    spread = values.std()
    return (values - values.mean()) / spread if spread > 1e-8 else values - values.mean()


@dataclass
class KLController:
    """Adaptive KL coefficient: a proportional controller on ``log beta``.

    Attributes:
        beta: the current coefficient.
        target: the KL per token to steer toward (0: beta stays fixed).
        gain: how far one update may move ``log beta`` (at most ``0.2 * gain``).
    """

    beta: float
    target: float
    gain: float = 0.1

    def update(self, kl: float) -> float:
        """Move beta after an update whose mean KL per token was ``kl``; returns the new beta."""
        if self.target > 0 and self.beta > 0 and math.isfinite(kl):
            error = min(0.2, max(-0.2, kl / self.target - 1.0))
            self.beta *= math.exp(self.gain * error)
        return self.beta


def policy_loss(logp: Any, old_logp: Any, advantages: Any, clip: float) -> tuple[Any, dict]:
    """PPO's clipped surrogate (to minimize) over tokens, and its diagnostics.

    Returns:
        The loss, and ``clip_fraction`` (share of tokens whose ratio was clipped) and
        ``approx_kl`` (mean of ``old_logp - logp``, the policy's move in this update).
    """
    import torch

    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        stats = {
            "clip_fraction": float(((ratio - 1).abs() > clip).float().mean()),
            "approx_kl": float((old_logp - logp).mean()),
        }
    return loss, stats


def value_loss(values: Any, old_values: Any, returns: Any, clip: float) -> Any:
    """Squared error of the value head, with PPO's clipped variant when ``clip > 0``."""
    import torch

    error = (values - returns) ** 2
    if clip <= 0:
        return 0.5 * error.mean()
    moved = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * torch.max(error, (moved - returns) ** 2).mean()
