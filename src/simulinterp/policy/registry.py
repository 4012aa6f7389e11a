"""Policies by name, with the latency knob each one takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulinterp.policy.base import Policy
from simulinterp.policy.rules import Clause, Confidence, Learned, LocalAgreement, Offline, WaitK


def _whole(value: float | None, default: int, name: str) -> int:
    """An integer knob: ``default`` when unset; 0 stays 0 and 2.5 is refused (never rounded)."""
    if value is None:
        return default
    if not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, got {value:g}")
    return int(value)


@dataclass(frozen=True)
class PolicySpec:
    """A policy's name, its knob (``None`` when it has none) and how to build it."""

    name: str
    knob: str | None
    default: float | None
    build: Callable[[float | None, float], Policy]
    help: str


POLICIES: dict[str, PolicySpec] = {
    spec.name: spec
    for spec in (
        PolicySpec(
            "wait-k",
            "k",
            3,
            lambda v, r: WaitK(k=_whole(v, 3, "k"), ratio=r),
            "read k units, then write at the pace of the source",
        ),
        PolicySpec(
            "local-agreement",
            "n",
            2,
            lambda v, r: LocalAgreement(n=_whole(v, 2, "n")),
            "commit what the last n hypotheses agree on",
        ),
        PolicySpec(
            "confidence",
            "threshold",
            -1.0,
            lambda v, r: Confidence(threshold=float(-1.0 if v is None else v)),
            "commit tokens while their log-probability >= threshold",
        ),
        PolicySpec(
            "clause",
            "max_wait",
            0,
            lambda v, r: Clause(max_wait=_whole(v, 0, "max_wait")),
            "commit whole clauses at punctuation; max_wait bounds the lag (0: none)",
        ),
        PolicySpec("learned", None, None, lambda v, r: Learned(), "a trained model decides"),
        PolicySpec("offline", None, None, lambda v, r: Offline(), "translate whole sentences"),
    )
}


# Target units per source unit in the WMT training references (English words per Chinese
# character, Chinese characters per English word); wait-k writes at this pace.
LENGTH_RATIO = {("zh", "en"): 0.66, ("en", "zh"): 1.67}


def make_policy(
    name: str, knob: float | None = None, source_lang: str = "", target_lang: str = ""
) -> Policy:
    """Build a policy by name with its latency knob (``None``: the default).

    The direction, when given, sets wait-k's target/source pace (:data:`LENGTH_RATIO`).

    Raises:
        ValueError: unknown policy name or an invalid knob value.
    """
    spec = POLICIES.get(name)
    if spec is None:
        raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
    return spec.build(knob, LENGTH_RATIO.get((source_lang, target_lang), 1.0))
