"""Policies by name, with the latency knob each one takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulinterp.policy.base import Policy
from simulinterp.policy.rules import Clause, Confidence, Learned, LocalAgreement, Offline, WaitK


@dataclass(frozen=True)
class PolicySpec:
    """A policy's name, its knob (``None`` when it has none) and how to build it."""

    name: str
    knob: str | None
    default: float | None
    build: Callable[[float | None], Policy]
    help: str


POLICIES: dict[str, PolicySpec] = {
    spec.name: spec
    for spec in (
        PolicySpec(
            "wait-k", "k", 3, lambda v: WaitK(k=int(v or 3)), "read k units, then one per unit"
        ),
        PolicySpec(
            "local-agreement",
            "n",
            2,
            lambda v: LocalAgreement(n=int(v or 2)),
            "commit what the last n hypotheses agree on",
        ),
        PolicySpec(
            "confidence",
            "threshold",
            -1.0,
            lambda v: Confidence(threshold=float(-1.0 if v is None else v)),
            "commit tokens while their log-probability >= threshold",
        ),
        PolicySpec(
            "clause",
            "max_wait",
            0,
            lambda v: Clause(max_wait=int(v or 0)),
            "commit whole clauses at punctuation; max_wait bounds the lag (0: none)",
        ),
        PolicySpec("learned", None, None, lambda v: Learned(), "a trained model decides"),
        PolicySpec("offline", None, None, lambda v: Offline(), "translate whole sentences"),
    )
}


def make_policy(name: str, knob: float | None = None) -> Policy:
    """Build a policy by name with its latency knob (``None``: the default).

    Raises:
        ValueError: unknown policy name or an invalid knob value.
    """
    spec = POLICIES.get(name)
    if spec is None:
        raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
    return spec.build(knob)
