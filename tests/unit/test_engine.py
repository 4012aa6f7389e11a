"""Behaviour of the policies, guards and translator together on the word-for-word fake LLM.

The CLI's bad-input cases live in test_cli.py."""

import random

import pytest

from fakes import EN_ZH, ZH_EN, DictionaryLLM
from simulinterp.eval.instances import run_instance
from simulinterp.policy import CandidateUnit, PolicyView, Read, Write, make_policy
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from simulinterp.translate.guard import allowed_new_units, repetition_cut


def _view(source=3, committed=0, candidate=("a", "b", "c"), logprobs=None, hypotheses=()):
    lps = logprobs or [-0.1] * len(candidate)
    return PolicyView(
        source=tuple("x" * source),
        committed=tuple("c" * committed),
        candidate=tuple(CandidateUnit(" " + t, lp) for t, lp in zip(candidate, lps, strict=True)),
        hypotheses=hypotheses,
    )


@pytest.mark.parametrize(
    ("k", "source", "committed", "expected"),
    [
        (3, 2, 0, Read()),  # not yet k units
        (3, 3, 0, Write(1)),  # k units read: the first target unit
        (3, 5, 1, Write(2)),  # behind by two: catch up, bounded by the schedule
        (3, 5, 3, Read()),  # ahead of the schedule
        (1, 1, 0, Write(1)),
    ],
)
def test_wait_k(k, source, committed, expected):
    assert make_policy("wait-k", k).decide(_view(source, committed)) == expected


def test_wait_k_ratio_paces_english_words_per_chinese_character():
    policy = make_policy("wait-k", 2, "zh", "en")  # 0.66 words per character
    # 5 characters read with k=2: floor(4 * 0.66) = 2 words allowed
    assert policy.decide(_view(source=5, committed=0)) == Write(2)


@pytest.mark.parametrize(
    ("n", "hypotheses", "expected"),
    [
        (2, (), Read()),  # no earlier hypothesis to agree with
        (2, (("a", "b", "z"),), Write(2)),  # agrees on "a b"
        (2, (("q",),), Read()),  # disagrees at once
        (3, (("a", "b"), ("a", "z")), Write(1)),  # the last two earlier + current agree on "a"
    ],
)
def test_local_agreement(n, hypotheses, expected):
    assert make_policy("local-agreement", n).decide(_view(hypotheses=hypotheses)) == expected


def test_confidence_stops_at_first_unsure_unit():
    view = _view(logprobs=[-0.1, -0.2, -3.0])
    assert make_policy("confidence", -0.5).decide(view) == Write(2)
    assert make_policy("confidence", -0.05).decide(view) == Read()


def test_clause_writes_only_at_clause_ends():
    policy = make_policy("clause", 0)
    at_comma = PolicyView(source=("我", "们", "，"), committed=(), candidate=_view().candidate)
    assert policy.wants_candidate(at_comma) and policy.decide(at_comma) == Write(3)
    mid = PolicyView(source=("我", "们"), committed=())
    assert not policy.wants_candidate(mid)


def test_invalid_policy_settings():
    for name, knob in [("wait-k", 0), ("local-agreement", 1), ("confidence", 0.5), ("nope", 1)]:
        with pytest.raises(ValueError):
            make_policy(name, knob)
    with pytest.raises(ValueError):
        Write(0)


@pytest.mark.parametrize(
    ("units", "kept"),
    [
        ("She is a 3D 3D 3D 3D model".split(), 4),  # "3D" four times: keep the first
        ("we go we go we go home".split(), 2),  # a 2-gram three times
        ("the cat sat on the mat".split(), 6),  # no loop
        (list("哈哈哈哈哈"), 1),
    ],
)
def test_repetition_cut(units, kept):
    assert repetition_cut(units) == kept


def test_guard_sees_loops_across_the_commit_boundary_and_refusals():
    assert allowed_new_units(["go", "go", "go"], ["go", "home"], 10, "zh", "en") == 0
    assert allowed_new_units([], "I'm sorry, I can't".split(), 3, "zh", "en") == 0


def _translate(llm, policy, line, src="zh", tgt="en"):
    translator = SimultaneousTranslator(
        llm, make_policy(policy, None, src, tgt), TranslatorConfig(src, tgt)
    )
    return translator, run_instance(translator, 0, line, "", 0.25)


@pytest.mark.parametrize("policy", ["wait-k", "local-agreement", "confidence", "clause", "offline"])
def test_every_policy_translates_fully_and_never_retracts(policy):
    llm = DictionaryLLM()
    translator, instance = _translate(llm, policy, "我们今天去公园，他很喜欢。")
    assert instance.prediction == "I we to day go the park, he very likes it."
    texts = [c.text for c in translator.commits]
    assert "".join(texts).strip() == instance.prediction
    assert [c.source_consumed for c in translator.commits] == sorted(
        c.source_consumed for c in translator.commits
    )
    assert all(d <= instance.source_length for d in instance.delays)


def test_wait_k_delays_follow_the_schedule():
    # en->zh with ratio 1.67: after t >= k words, floor((t-k+1)*1.67) characters may be out
    llm = DictionaryLLM(EN_ZH, target_lang="zh")
    _, instance = _translate(llm, "wait-k", "I go to the park", "en", "zh")
    assert instance.prediction == "我去今公园"
    assert instance.delays == [3, 4, 4, 5, 5]


def test_a_sentence_end_flushes_and_starts_a_new_segment():
    translator, _ = _translate(DictionaryLLM(), "clause", "我去。他去。")
    segments = [(c.segment, c.final) for c in translator.commits]
    assert segments == [(0, True), (1, True)]
    assert translator.text == "I go. he go."


def test_hallucination_loop_is_cut():
    llm = DictionaryLLM(script="We are 3D 3D 3D 3D 3D 3D 3D 3D")
    _, instance = _translate(llm, "offline", "我们今天去公园")
    assert instance.prediction == "We are 3D"


def test_source_longer_than_the_context_is_chunked():
    llm = DictionaryLLM(context_tokens=1500)  # counts characters as tokens
    rng = random.Random(7)
    chars = list("我们今天去公园很好他喜欢")
    line = ""
    while len(line) < 1000:  # random characters, no punctuation, never looping
        pick = rng.choice(chars)
        tail = list(line[-30:] + pick)
        if repetition_cut(tail) == len(tail):
            line += pick
    assert repetition_cut(list(line)) == 1000  # the source itself has no loop
    translator, instance = _translate(llm, "wait-k", line)
    assert instance.prediction.split() == [ZH_EN[c] for c in line]
    assert len({c.segment for c in translator.commits}) > 1
