"""READ/WRITE decisions of every built-in policy, as tables of hand-made PolicyViews."""

from __future__ import annotations

import itertools
import math

import pytest

from simulinterp.policy import POLICIES, CandidateUnit, PolicyView, Read, Write, make_policy
from simulinterp.policy.base import write_or_read
from simulinterp.policy.rules import Clause, Confidence, Learned, LocalAgreement, Offline, WaitK

ZH = tuple("我们今天去公园很好他喜欢")


def _cand(*texts: str, logprobs: tuple[float, ...] | None = None) -> tuple[CandidateUnit, ...]:
    lps = logprobs or (-0.1,) * len(texts)
    return tuple(CandidateUnit(t, lp) for t, lp in zip(texts, lps, strict=True))


def _words(n: int) -> tuple[str, ...]:
    return tuple(f"w{i}" for i in range(n))


def _view(
    n_source: int = 0,
    n_committed: int = 0,
    candidate: tuple[CandidateUnit, ...] | None = None,
    **kwargs,
) -> PolicyView:
    source = kwargs.pop("source", ZH[:n_source])
    committed = kwargs.pop("committed", _words(n_committed))
    return PolicyView(source=source, committed=committed, candidate=candidate, **kwargs)


# -- Write / Read -----------------------------------------------------------------------


@pytest.mark.parametrize("units", [0, -1])
def test_write_needs_a_unit(units: int) -> None:
    with pytest.raises(ValueError, match="Read"):
        Write(units)


def test_write_and_read_are_values() -> None:
    assert Write(2) == Write(2) != Write(3)
    assert Read() == Read()


# -- wait-k -----------------------------------------------------------------------------

# k, source read, committed, candidate units -> wants_candidate, max_units, action.
# allowed = max(0, source - k + 1) - committed.
WAIT_K = [
    (1, 0, 0, 3, False, 1, Read()),
    (1, 1, 0, 3, True, 1, Write(1)),
    (1, 5, 3, 4, True, 2, Write(2)),
    (1, 5, 5, 4, False, 1, Read()),
    (2, 1, 0, 3, False, 1, Read()),
    (2, 2, 0, 3, True, 1, Write(1)),
    (2, 4, 1, 5, True, 2, Write(2)),
    (2, 3, 5, 2, False, 1, Read()),  # already ahead of the schedule
    (3, 2, 0, 4, False, 1, Read()),
    (3, 3, 0, 4, True, 1, Write(1)),
    (3, 5, 3, 1, False, 1, Read()),
    (3, 6, 2, 1, True, 2, Write(1)),  # the candidate is the limit
    (3, 8, 0, 9, True, 6, Write(6)),
    (4, 3, 0, 2, False, 1, Read()),
    (4, 4, 0, 2, True, 1, Write(1)),
    (4, 10, 6, 0, True, 1, Read()),  # an empty candidate
    (4, 10, 2, 9, True, 5, Write(5)),
]


@pytest.mark.parametrize(("k", "src", "com", "cand", "wants", "most", "action"), WAIT_K)
def test_wait_k(k, src, com, cand, wants, most, action) -> None:
    policy = WaitK(k=k)
    view = _view(src, com)
    assert policy.wants_candidate(view) is wants
    assert policy.max_units(view) == most
    assert policy.decide(_view(src, com, _cand(*_words(cand)))) == action


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_wait_k_reads_without_a_candidate(k: int) -> None:
    assert WaitK(k=k).decide(_view(10, 0, None)) == Read()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_wait_k_never_writes_more_than_the_schedule(k: int) -> None:
    policy = WaitK(k=k)
    for src, cand in itertools.product(range(11), range(13)):
        for com in range(src + 1):
            action = policy.decide(_view(src, com, _cand(*_words(cand))))
            if isinstance(action, Write):
                assert action.units <= cand
                assert com + action.units <= max(0, src - k + 1)
            else:
                assert cand == 0 or com >= src - k + 1


@pytest.mark.parametrize(
    ("k", "ratio", "src", "allowed"),
    [
        (3, 0.66, 3, 0),  # floor(1 * 0.66)
        (3, 0.66, 4, 1),  # floor(2 * 0.66) = floor(1.32)
        (3, 0.66, 5, 1),  # floor(1.98)
        (3, 0.66, 6, 2),  # floor(2.64)
        (1, 1.67, 3, 5),  # floor(5.01)
        (2, 0.5, 5, 2),  # floor(4 * 0.5) = 2 exactly
    ],
)
def test_wait_k_ratio(k: int, ratio: float, src: int, allowed: int) -> None:
    policy = WaitK(k=k, ratio=ratio)
    assert policy.wants_candidate(_view(src)) is (allowed >= 1)
    expected = Write(allowed) if allowed else Read()
    assert policy.decide(_view(src, 0, _cand(*_words(20)))) == expected


@pytest.mark.parametrize(("k", "ratio"), [(0, 1.0), (-1, 1.0), (3, 0.0), (3, -0.5)])
def test_wait_k_invalid(k: int, ratio: float) -> None:
    with pytest.raises(ValueError, match="wait-k"):
        WaitK(k=k, ratio=ratio)


# -- LocalAgreement ---------------------------------------------------------------------

# n, committed, candidate, earlier hypotheses (oldest first) -> action.
LOCAL_AGREEMENT = [
    (2, (), ("I", "we", "to"), (), Read()),  # no history yet
    (2, (), ("I", "we", "to"), (("I", "we"),), Write(2)),
    (2, (), ("I", "we", "to"), (("You", "we"),), Read()),
    (2, ("I",), ("we", "go", "home"), (("I", "we", "go"),), Write(2)),
    # Only the last n-1 = 1 earlier hypothesis counts.
    (2, (), ("I", "we"), (("You",), ("I", "we", "go")), Write(2)),
    # The agreement is shorter than what is committed: nothing new.
    (2, ("I", "we"), ("go",), (("I", "they"),), Read()),
    (2, ("I",), (), (("I", "we"),), Read()),  # an empty candidate
    (3, (), ("I", "we", "go"), (("I", "we", "go"),), Read()),  # needs two earlier ones
    (3, (), ("I", "we", "go"), (("I", "they"), ("I", "we", "go")), Write(1)),
    (3, (), ("I", "we", "go", "x"), (("You",), ("I", "we"), ("I", "we", "go")), Write(2)),
    (3, ("I",), ("we", "go"), (("I", "we", "go"), ("I", "we", "go", "on")), Write(2)),
]


@pytest.mark.parametrize(("n", "committed", "candidate", "hypotheses", "action"), LOCAL_AGREEMENT)
def test_local_agreement(n, committed, candidate, hypotheses, action) -> None:
    policy = LocalAgreement(n=n)
    view = _view(
        len(committed) + 2, candidate=_cand(*candidate), committed=committed, hypotheses=hypotheses
    )
    assert policy.wants_candidate(view) is True
    assert policy.max_units(view) is None
    assert policy.decide(view) == action


def test_local_agreement_strips_spaces_of_candidate_units() -> None:
    view = _view(3, candidate=_cand(" I", " we"), committed=(), hypotheses=(("I", "we"),))
    assert LocalAgreement(n=2).decide(view) == Write(2)


def test_local_agreement_reads_without_a_candidate() -> None:
    assert LocalAgreement(2).decide(_view(3, hypotheses=(("I",),))) == Read()


@pytest.mark.parametrize("n", [1, 0, -2])
def test_local_agreement_invalid(n: int) -> None:
    with pytest.raises(ValueError, match="n >= 2"):
        LocalAgreement(n=n)


# -- Confidence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "logprobs", "action"),
    [
        (-1.0, (-0.1, -0.5, -2.0, -0.1), Write(2)),  # stops at the first unit under it
        (-1.0, (-1.0, -0.2), Write(2)),  # at the threshold is confident enough
        (-1.0, (-1.5, -0.1, -0.1), Read()),
        (-1.0, (-0.3, -0.3, -0.3), Write(3)),
        (-1.0, (), Read()),
        (-0.2, (-0.1, -0.3, -0.1), Write(1)),
        (0.0, (0.0, -0.01), Write(1)),
        (-math.inf, (-50.0, -99.0), Write(2)),
    ],
)
def test_confidence(threshold: float, logprobs: tuple[float, ...], action) -> None:
    policy = Confidence(threshold=threshold)
    candidate = _cand(*_words(len(logprobs)), logprobs=logprobs)
    view = _view(4, candidate=candidate)
    assert policy.wants_candidate(view) is True
    assert policy.max_units(view) is None
    assert policy.decide(view) == action


def test_confidence_reads_without_a_candidate() -> None:
    assert Confidence().decide(_view(4)) == Read()


def test_confidence_invalid() -> None:
    with pytest.raises(ValueError, match="<= 0"):
        Confidence(threshold=0.5)


# -- Clause -----------------------------------------------------------------------------

# max_wait, holdback, source, units since the last write, candidate units -> wants, action.
CLAUSE = [
    (0, 2, ("我", "们", "，"), 3, 4, True, Write(4)),  # a clause end: everything
    (0, 2, ("我", "们", "。"), 3, 4, True, Write(4)),
    (0, 2, ("我", "、"), 2, 1, True, Write(1)),
    (0, 2, ("If", "so,"), 2, 3, True, Write(3)),
    (0, 2, ("我", "们"), 2, 4, False, Read()),  # elsewhere: nothing
    (0, 2, ("I", "met", "Dr."), 3, 2, False, Read()),
    (0, 2, ("我", "们", "，"), 3, 0, True, Read()),  # an empty candidate
    (0, 2, (), 0, 2, False, Read()),
    (0, 2, ("我",) * 50, 50, 9, False, Read()),  # max_wait 0: no limit
    # max_wait: after that many units without a write, all but the last `holdback` units.
    (5, 2, ("我",) * 5, 5, 4, True, Write(2)),
    (5, 2, ("我",) * 7, 6, 5, True, Write(3)),
    (5, 2, ("我",) * 5, 5, 2, True, Read()),  # all of it held back
    (5, 2, ("我",) * 5, 4, 4, False, Read()),  # not overdue yet
    (5, 0, ("我",) * 5, 5, 3, True, Write(3)),
    (5, 2, ("我",) * 4 + ("，",), 5, 4, True, Write(4)),  # a clause end wins over holdback
]


@pytest.mark.parametrize(
    ("max_wait", "holdback", "source", "since", "cand", "wants", "action"), CLAUSE
)
def test_clause(max_wait, holdback, source, since, cand, wants, action) -> None:
    policy = Clause(max_wait=max_wait, holdback=holdback)
    view = _view(source=source, units_since_write=since)
    assert policy.wants_candidate(view) is wants
    assert policy.max_units(view) is None
    assert policy.decide(_view(source=source, units_since_write=since, candidate=None)) == Read()
    full = _view(source=source, units_since_write=since, candidate=_cand(*_words(cand)))
    assert policy.decide(full) == action


# agree: an overdue commit keeps only what the hypothesis before agrees on (and the holdback).
# committed, previous hypothesis, candidate -> action
CLAUSE_AGREE = [
    ((), None, ("a", "b", "c", "d", "e"), Read()),  # no hypothesis before: wait for one
    ((), ("a", "b", "x"), ("a", "b", "c", "d", "e"), Write(2)),  # "a b" agree
    ((), ("a", "b", "c", "d", "e", "f"), ("a", "b", "c", "d", "e"), Write(3)),  # holdback wins
    ((), ("z",), ("a", "b", "c", "d", "e"), Read()),  # nothing agrees
    (("a",), ("a", "b", "c"), ("b", "c", "q", "r"), Write(2)),  # beyond the committed "a"
    (("a",), ("a",), ("b", "c", "q", "r"), Read()),  # the hypothesis before was all committed
]


@pytest.mark.parametrize(("committed", "previous", "cand", "action"), CLAUSE_AGREE)
def test_clause_agree_commits_what_two_hypotheses_share(committed, previous, cand, action) -> None:
    policy = Clause(max_wait=3, agree=True)
    hypotheses = () if previous is None else (previous,)
    source = ("w",) * 4
    view = _view(
        source=source,
        committed=committed,
        units_since_write=4,
        hypotheses=hypotheses,
        candidate=_cand(*cand),
    )
    assert policy.decide(view) == action
    # without agreement the same view commits all but the holdback
    assert Clause(max_wait=3).decide(view) == write_or_read(len(cand) - 2)


@pytest.mark.parametrize(
    ("max_wait", "since", "agree_wants", "guess_wants"),
    [(5, 3, False, False), (5, 4, True, False), (5, 5, True, True), (1, 0, False, False)],
)
def test_clause_agree_makes_its_first_hypothesis_one_unit_before_the_cap(
    max_wait: int, since: int, agree_wants: bool, guess_wants: bool
) -> None:
    source = ("w",) * 6
    view = _view(source=source, units_since_write=since)
    assert Clause(max_wait=max_wait, agree=True).wants_candidate(view) is agree_wants
    assert Clause(max_wait=max_wait).wants_candidate(view) is guess_wants
    # the probe itself never writes: it is only there to be agreed with
    probe = _view(source=source, units_since_write=since, candidate=_cand("a", "b", "c", "d"))
    if agree_wants and since < max_wait:
        assert Clause(max_wait=max_wait, agree=True).decide(probe) == Read()


def test_clause_agree_does_not_touch_clause_ends() -> None:
    view = _view(
        source=("我", "们", "，"),
        units_since_write=3,
        hypotheses=(("z",),),
        candidate=_cand("we", "are"),
    )
    assert Clause(max_wait=3, agree=True).decide(view) == Write(2)


# min_clause 3: source, units since the last write -> wants a candidate (and writes it)
CLAUSE_MIN = [
    (("And", "so,"), 2, False),  # a two-word clause is read past
    (("Americans,", "ask", "not,"), 2, False),  # counted from the clause end before it
    (("fellow", "Americans,", "ask", "not,"), 4, False),  # ... not from the last write
    (("my", "fellow", "Americans,"), 3, True),  # three words: a clause
    (("And", "so,", "my", "fellow", "Americans,"), 1, True),  # the short one joined the next
    (("Yes.",), 1, True),  # a sentence end is never read past
    (("所", "以", "，"), 3, True),
    (("好", "，"), 2, False),
]


@pytest.mark.parametrize(("source", "since", "wants"), CLAUSE_MIN)
def test_clause_min_clause_reads_past_a_clause_of_a_word_or_two(source, since, wants) -> None:
    policy = Clause(min_clause=3)
    view = _view(source=source, units_since_write=since, candidate=_cand("a", "b"))
    assert policy.wants_candidate(view) is wants
    assert policy.decide(view) == (Write(2) if wants else Read())
    # without it every clause end is one
    assert Clause().wants_candidate(view) is True


def test_clause_min_clause_leaves_the_word_cap_alone() -> None:
    view = _view(source=("ask", "not,", "what"), units_since_write=3, candidate=_cand(*"abcd"))
    assert Clause(max_wait=3, min_clause=5).decide(view) == Write(2)


@pytest.mark.parametrize(("max_wait", "holdback"), [(-1, 2), (0, -1)])
def test_clause_invalid(max_wait: int, holdback: int) -> None:
    with pytest.raises(ValueError, match="max_wait"):
        Clause(max_wait=max_wait, holdback=holdback)
    with pytest.raises(ValueError, match="min_clause"):
        Clause(min_clause=-1)


# -- Learned and Offline ----------------------------------------------------------------


@pytest.mark.parametrize(("cand", "action"), [(3, Write(3)), (1, Write(1)), (0, Read())])
def test_learned_writes_whatever_the_model_wrote(cand: int, action) -> None:
    policy = Learned()
    view = _view(2, candidate=_cand(*_words(cand)))
    assert policy.wants_candidate(view) is True
    assert policy.max_units(view) is None
    assert policy.decide(view) == action
    assert policy.decide(_view(2)) == Read()


@pytest.mark.parametrize("source", [(), ("我",), ("我", "，"), ("我", "。")])
def test_offline_never_writes(source: tuple[str, ...]) -> None:
    policy = Offline()
    view = _view(source=source, candidate=_cand("I", "we"), units_since_write=99)
    assert policy.wants_candidate(view) is False
    assert policy.max_units(view) == 0
    assert policy.decide(view) == Read()


# -- the registry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "knob", "source", "target", "expected"),
    [
        ("wait-k", None, "", "", WaitK(k=3, ratio=1.0)),
        ("wait-k", 5, "", "", WaitK(k=5, ratio=1.0)),
        ("wait-k", 2.0, "zh", "en", WaitK(k=2, ratio=0.66)),
        ("wait-k", 1, "en", "zh", WaitK(k=1, ratio=1.67)),
        ("local-agreement", None, "zh", "en", LocalAgreement(n=2)),
        ("local-agreement", 3, "", "", LocalAgreement(n=3)),
        ("confidence", None, "", "", Confidence(threshold=-1.0)),
        ("confidence", -0.5, "", "", Confidence(threshold=-0.5)),
        ("confidence", 0, "", "", Confidence(threshold=0.0)),
        ("clause", None, "", "", Clause(max_wait=0)),
        ("clause", 0, "", "", Clause(max_wait=0)),
        ("clause", 8, "zh", "en", Clause(max_wait=8)),
        ("learned", None, "", "", Learned()),
        ("offline", None, "zh", "en", Offline()),
    ],
)
def test_make_policy(name, knob, source, target, expected) -> None:
    policy = make_policy(name, knob, source, target)
    assert policy == expected
    assert policy.name == name


def test_every_registered_policy_builds_with_its_default() -> None:
    for name, spec in POLICIES.items():
        assert make_policy(name, spec.default).name == name


@pytest.mark.parametrize(
    ("name", "knob", "message"),
    [
        ("wait-k", 0, "k >= 1"),  # 0 is not "unset": it must not fall back to k = 3
        ("wait-k", -2, "k >= 1"),
        ("wait-k", 2.5, "whole number"),
        ("local-agreement", 1, "n >= 2"),
        ("local-agreement", 0, "n >= 2"),
        ("local-agreement", 2.5, "whole number"),
        ("confidence", 0.5, "<= 0"),
        ("clause", -1, "max_wait"),
        ("clause", 1.5, "whole number"),
    ],
)
def test_make_policy_rejects_invalid_knobs(name: str, knob: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_policy(name, knob)


def test_make_policy_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown policy 'wait-q'; choose one of: wait-k, "):
        make_policy("wait-q")
