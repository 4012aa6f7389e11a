"""The backpressure rule of a server session: pure, tested in milliseconds.

``lag_s`` is the audio received minus the audio recognized and translated. As it grows, a
session first stops sending tentative text, then switches to cheaper settings, and at last
stops hearing new audio (it becomes silence) until it has caught up; each step comes back with
hysteresis. So the lag stays near ``max_lag_s`` at worst, whatever the load (``docs/protocol.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

NORMAL, DEGRADED, DROPPING = "normal", "degraded", "dropping"


@dataclass(frozen=True)
class BackpressureConfig:
    """Thresholds of the rule, seconds of lag.

    Attributes:
        skip_partials_s: from this lag on, ``partial`` events are skipped.
        partials_again_s: below this lag they are sent again.
        degrade_s: from this lag on, the session runs degraded (cheaper settings).
        recover_s: below this lag, back to normal.
        max_lag_s: from this lag on, new audio is dropped (replaced by silence).
        resume_s: below this lag, audio is heard again (default: half of ``max_lag_s``).
    """

    skip_partials_s: float = 2.0
    partials_again_s: float = 1.0
    degrade_s: float = 4.0
    recover_s: float = 2.0
    max_lag_s: float = 8.0
    resume_s: float | None = None

    def __post_init__(self) -> None:
        if not (
            0 <= self.partials_again_s <= self.skip_partials_s
            and 0 <= self.recover_s <= self.degrade_s
            and self.max_lag_s > 0
            and 0 <= self.resume_at <= self.max_lag_s
        ):
            raise ValueError("each threshold must be at least the level it returns at")

    @property
    def resume_at(self) -> float:
        return self.max_lag_s / 2 if self.resume_s is None else self.resume_s


class Backpressure:
    """The rule's state for one session.

    Args:
        config: the thresholds.
    """

    def __init__(self, config: BackpressureConfig | None = None) -> None:
        self.config = config or BackpressureConfig()
        self.partials = True
        self.degraded = False
        self.dropping = False

    @property
    def mode(self) -> str:
        return DROPPING if self.dropping else DEGRADED if self.degraded else NORMAL

    def update(self, lag_s: float) -> str:
        """Move the state for the current lag; returns the mode."""
        c = self.config
        if lag_s >= c.skip_partials_s:
            self.partials = False
        elif lag_s < c.partials_again_s:
            self.partials = True
        if lag_s >= c.degrade_s:
            self.degraded = True
        elif lag_s < c.recover_s:
            self.degraded = False
        if lag_s >= c.max_lag_s:
            self.dropping = True
        elif lag_s < c.resume_at:
            self.dropping = False
        return self.mode
