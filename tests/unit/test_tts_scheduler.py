"""The output scheduler: one timeline, no overlaps, faster speech when behind, no drift."""

from __future__ import annotations

import pytest

from simulinterp.tts.scheduler import OutputScheduler, SchedulerConfig


def test_clauses_never_overlap_and_wait_for_their_audio():
    s = OutputScheduler(SchedulerConfig(gap_s=0.1))
    assert s.place(ready_s=2.0, duration_s=3.0, source_end_s=1.5) == 2.0
    assert s.place(ready_s=3.0, duration_s=1.0, source_end_s=2.5) == pytest.approx(5.1)
    assert s.place(ready_s=9.0, duration_s=1.0, source_end_s=8.0) == 9.0  # after a pause: at once
    assert s.end_s == 10.0


@pytest.mark.parametrize(
    ("backlog_s", "speed"),
    [(0.0, 1.0), (3.0, 1.0), (5.5, 1.15), (8.0, 1.3), (20.0, 1.3)],
)
def test_speed_rises_with_the_backlog_within_limits(backlog_s, speed):
    cfg = SchedulerConfig(catch_up_lag_s=3, full_speed_lag_s=8, max_speed=1.3, synthesis_rtf=0)
    s = OutputScheduler(cfg)
    assert s.speed(now_s=10.0 + backlog_s, committed_s=10.0) == pytest.approx(speed)


def test_the_speech_queued_before_counts_in_the_backlog():
    s = OutputScheduler(SchedulerConfig(gap_s=0.0, synthesis_rtf=0.5))
    s.place(ready_s=1.0, duration_s=9.0, source_end_s=0.5)  # speaking until 10 s
    assert s.backlog_s(now_s=2.0, committed_s=2.0) == pytest.approx(8.0)
    assert s.speed(now_s=2.0, committed_s=2.0) == pytest.approx(s.config.max_speed)
    # no queue: only the clause's own synthesis (2 s of speech at RTF 0.5) counts
    idle = OutputScheduler(SchedulerConfig(synthesis_rtf=0.5))
    assert idle.speed(now_s=5.0, committed_s=5.0, duration_s=2.0) == 1.0


def test_the_translators_own_delay_does_not_speed_speech_up():
    s = OutputScheduler()
    # the text came 6 s after its source, but nothing is queued: normal speed
    assert s.speed(now_s=16.0, committed_s=16.0) == 1.0


def test_a_clause_hopelessly_behind_is_skipped():
    s = OutputScheduler(SchedulerConfig(max_lag_s=10.0, full_speed_lag_s=8.0))
    s.place(ready_s=0.0, duration_s=20.0, source_end_s=0.0)
    assert s.place(ready_s=1.0, duration_s=1.0, source_end_s=1.0) is None
    assert s.skipped == 1 and s.end_s == 20.0


def _talk_lags(max_speed: float, minutes: float = 5.0) -> list[float]:
    """A talk of 4 s clauses whose interpretation takes 1.15x as long at normal speed."""
    s = OutputScheduler(SchedulerConfig(max_speed=max_speed, gap_s=0.1, max_lag_s=1e6))
    lags, t = [], 0.0
    while t < minutes * 60:
        t += 4.0
        ready = t + 1.5  # recognition and translation take 1.5 s
        speed = s.speed(ready, t + 1.5)
        start = s.place(ready, 4.0 * 1.15 / speed, t)
        assert start is not None
        lags.append(start - t)
    return lags


def test_speeding_up_keeps_the_lag_from_drifting():
    steady = _talk_lags(max_speed=1.3)
    drifting = _talk_lags(max_speed=1.0)
    assert drifting[-1] - drifting[0] > 10  # at normal speed the lag grows all talk long
    assert max(steady) < 8.0 and abs(steady[-1] - steady[len(steady) // 2]) < 1.0


@pytest.mark.parametrize(
    "kwargs",
    [dict(catch_up_lag_s=5, full_speed_lag_s=4), dict(max_speed=0.9), dict(gap_s=-1)],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        SchedulerConfig(**kwargs)
