"""Advantages, the KL controller and PPO's losses (simulinterp.train.ppo), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.train.ppo import (
    KLController,
    discounted_returns,
    gae,
    group_advantages,
    policy_loss,
    value_loss,
)


def test_gae_against_a_hand_computation() -> None:
    rewards, values, gamma, lam = [1.0, 0.0, 2.0], [0.5, 1.0, 1.5], 0.9, 0.8
    # deltas: r_t + gamma V_{t+1} - V_t, with V_3 = 0
    d2 = 2.0 - 1.5
    d1 = 0.0 + 0.9 * 1.5 - 1.0
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a2 = d2
    a1 = d1 + 0.9 * 0.8 * a2
    a0 = d0 + 0.9 * 0.8 * a1
    advantages, returns = gae(rewards, values, gamma, lam)
    assert advantages == pytest.approx([a0, a1, a2])
    assert returns == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5])


def test_gae_with_lambda_one_is_the_return_minus_the_value() -> None:
    rewards, values = [0.0, 1.0, -1.0, 3.0], [0.2, 0.1, 0.0, -0.3]
    advantages, _ = gae(rewards, values, 0.95, 1.0)
    assert advantages == pytest.approx(discounted_returns(rewards, 0.95) - np.array(values))


def test_group_advantages_share_a_baseline_per_source() -> None:
    out = group_advantages([1.0, 3.0, 5.0, 5.0, 0.0, 2.0], [0, 0, 1, 1, 2, 2])
    assert out == pytest.approx([-1.0, 1.0, 0.0, 0.0, -1.0, 1.0])  # group 1 does not vary


@pytest.mark.parametrize(("kl", "direction"), [(0.2, 1), (0.01, -1), (0.05, 0)])
def test_the_kl_controller_follows_the_target(kl: float, direction: int) -> None:
    controller = KLController(beta=0.1, target=0.05, gain=0.1)
    beta = controller.update(kl)
    assert np.sign(round(beta - 0.1, 12)) == direction
    assert abs(np.log(beta / 0.1)) <= 0.1 * 0.2 + 1e-12  # one update moves log beta by <= 0.02


def test_a_fixed_beta_without_target() -> None:
    assert KLController(beta=0.1, target=0.0).update(5.0) == 0.1


def test_the_policy_loss_clips_the_ratio() -> None:
    torch = pytest.importorskip("torch")
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 0.5, 1.0]))
    adv = torch.tensor([1.0, -1.0, 2.0])
    loss, stats = policy_loss(new, old, adv, clip=0.2)
    # min(r A, clip(r) A): 1.2, -0.8 (pessimistic for a negative advantage), 2.0
    assert float(loss) == pytest.approx(-(1.2 - 0.8 + 2.0) / 3)
    assert stats["clip_fraction"] == pytest.approx(2 / 3)


def test_the_value_loss_is_pessimistic_when_clipped() -> None:
    torch = pytest.importorskip("torch")
    values, old, returns = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert float(value_loss(values, old, returns, clip=0.0)) == pytest.approx(0.5)
    # the value clipped to 0.2 misses by 2.8: the larger error counts
    assert float(value_loss(values, old, returns, clip=0.2)) == pytest.approx(0.5 * 2.8**2)
