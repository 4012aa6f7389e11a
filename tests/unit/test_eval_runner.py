"""Per-unit delays, corpus scores and the evaluation loop (simulinterp.eval.runner)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fakes import ZH_EN, DictionaryLLM
from simulinterp.eval.instances import Instance, source_units, unit_delays
from simulinterp.eval.runner import EvalData, evaluate, oracle_al, score_instances
from simulinterp.events import TargetCommit
from simulinterp.policy.rules import WaitK
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig


def _commit(text: str, consumed: int, elapsed_s: float) -> TargetCommit:
    return TargetCommit(text=text, source_consumed=consumed, elapsed_s=elapsed_s, wall_s=0.0)


# -- unit_delays ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commits", "lang", "text", "delays", "elapsed"),
    [
        (
            [("We are", 2, 0.5), (" going", 3, 0.8), (" home.", 5, 1.3)],
            "en",
            "We are going home.",
            [2, 2, 3, 5],
            [0.5, 0.5, 0.8, 1.3],
        ),
        # " thinking" starts in the second commit and ends in the third: it is the third's.
        (
            [("We are", 2, 0.5), (" thin", 3, 0.8), ("king now", 5, 1.3)],
            "en",
            "We are thinking now",
            [2, 2, 5, 5],
            [0.5, 0.5, 1.3, 1.3],
        ),
        # "park" is committed, then "." arrives with the flush: "park." belongs to the flush.
        ([("I go the park", 4, 1.0), (".", 5, 1.4)], "en", "I go the park.", [4, 4, 4, 5], None),
        # A commit of spaces only holds no unit.
        ([("I", 1, 0.3), (" ", 2, 0.6), ("go", 3, 0.9)], "en", "I go", [1, 3], [0.3, 0.9]),
        # Chinese: one unit per character; a Latin run is one unit.
        (
            [("我们", 1, 0.2), ("去公", 3, 0.7), ("园。", 4, 1.0)],
            "zh",
            "我们去公园。",
            [1, 1, 3, 3, 4, 4],
            [0.2, 0.2, 0.7, 0.7, 1.0, 1.0],
        ),
        ([("在NA", 2, 0.4), ("SA工作", 3, 0.9)], "zh", "在NASA工作", [2, 3, 3, 3], None),
        ([], "en", "", [], []),
    ],
)
def test_unit_delays(commits, lang, text, delays, elapsed) -> None:
    found_text, found_delays, found_elapsed = unit_delays([_commit(*c) for c in commits], lang)
    assert found_text == text
    assert found_delays == delays
    if elapsed is not None:
        assert found_elapsed == pytest.approx(elapsed)
    assert all(isinstance(d, float) for d in found_delays)


# -- score_instances --------------------------------------------------------------------


def _instance(index, prediction, reference, delays, elapsed, source_length=4, spu=0.25):
    return Instance(
        index=index,
        source="我们今天",
        reference=reference,
        prediction=prediction,
        delays=delays,
        elapsed=elapsed,
        source_length=source_length,
        source_length_s=source_length * spu,
        reference_length=len(reference.split()),
        prediction_length=len(delays),
    )


SCORE_KEYS = {
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
    "leak_rate",
    "instances",
}


def test_score_instances_by_hand() -> None:
    # A: wait-1 on |X| = |Y| = 4. AL = [(1-0) + (2-1) + (3-2) + (4-3)] / 4 = 1 = LAAL;
    #    DAL: d' = 1, 2, 3, 4 -> 1; AP = 10/16 = 0.625; ATD = k = 1; StartOffset 1.
    #    CA: |X| = 1.0 s, gamma = 4 / 1.0, tau = 4 (1.05 >= 1.0):
    #    AL = [0.3 + (0.55-0.25) + (0.8-0.5) + (1.05-0.75)] / 4 = 0.3 = LAAL; StartOffset 0.3.
    a = _instance(0, "a b c d", "a b c d", [1, 2, 3, 4], [0.3, 0.55, 0.8, 1.05])
    # B: everything after the whole source. AL = d_1 = 4 (tau = 1) = LAAL;
    #    DAL: d' = 4, 5, 6, 7 minus 0..3 -> 4; AP = 16/16 = 1; ATD: T(y) = 5..8, a(t) = t -> 4.
    #    CA: d_1 = 1.1 s > |X| = 1.0 s -> AL = LAAL = d_1 = 1.1; StartOffset 1.1.
    b = _instance(1, "e f g h", "e f g h", [4, 4, 4, 4], [1.1, 1.1, 1.1, 1.1])
    scores = score_instances([a, b], "en")
    assert set(scores) == SCORE_KEYS
    expected = {
        "BLEU": 100.0,  # identical to the references
        "chrF": 100.0,
        "AL": 2.5,
        "LAAL": 2.5,
        "DAL": 2.5,
        "AP": 0.8125,
        "ATD": 2.5,
        "StartOffset": 2.5,
        "AL_CA": 0.7,
        "LAAL_CA": 0.7,
        "StartOffset_CA": 0.7,
        "leak_rate": 0.0,
        "instances": 2,
    }
    assert scores == pytest.approx(expected)


def test_score_instances_counts_leaks_and_terms() -> None:
    # Three lines, one of them with a Chinese word left in: leak_rate 1/3. Required terms:
    # "Hao Ren" (found, in another case), "Su Yu" (missing), "Galaxy Media" (found): 2/3.
    lines = [
        _instance(0, "hao ren went home", "Hao Ren went home", [4] * 4, [1.0] * 4),
        _instance(1, "he met 苏羽", "He met Su Yu", [4] * 3, [1.0] * 3),
        _instance(2, "at Galaxy Media", "at Galaxy Media", [4] * 3, [1.0] * 3),
    ]
    terms = [["Hao Ren"], ["Su Yu"], ["Galaxy Media"]]
    scores = score_instances(lines, "en", terms)
    assert scores["leak_rate"] == pytest.approx(1 / 3)
    assert scores["term_accuracy"] == pytest.approx(2 / 3)
    assert scores["terms"] == 3
    # a glossary target is never a leak
    assert score_instances(lines, "en", allowed=[(), ("苏羽",), ()])["leak_rate"] == 0.0
    # no required term at all: the accuracy is undefined, not 0 or 1
    none = score_instances(lines, "en", [[], [], []])
    assert none["term_accuracy"] is None and none["terms"] == 0


def test_score_instances_laal_uses_the_reference_length() -> None:
    # Output of 2 units for a reference of 4 on |X| = 4: AL with gamma = 2/4 -> tau = 2:
    # [(2-0) + (4-2)] / 2 = 2; LAAL with gamma = 4/4: [(2-0) + (4-1)] / 2 = 2.5.
    short = _instance(0, "a b", "a b c d", [2, 4], [0.6, 1.1])
    scores = score_instances([short], "en")
    assert scores["AL"] == pytest.approx(2.0)
    assert scores["LAAL"] == pytest.approx(2.5)


def test_score_instances_wrong_words_score_zero() -> None:
    wrong = _instance(0, "w x y z", "a b c d", [1, 2, 3, 4], [0.3, 0.55, 0.8, 1.05])
    scores = score_instances([wrong], "en")
    assert scores["BLEU"] == 0.0
    assert scores["AL"] == pytest.approx(1.0)


def test_score_no_instances() -> None:
    assert score_instances([], "en") == {"BLEU": 0.0, "chrF": 0.0, "instances": 0}


# -- evaluate ---------------------------------------------------------------------------

DATA = EvalData(
    sources=["我们今天。", "他很好。", "我去公园。"],
    references=["we today.", "he is good.", "I go to the park."],
    source_lang="zh",
    target_lang="en",
)


def _translator(llm: DictionaryLLM) -> SimultaneousTranslator:
    return SimultaneousTranslator(llm, WaitK(k=2), TranslatorConfig("zh", "en"))


def test_evaluate_writes_one_json_per_instance(tmp_path: Path) -> None:
    progress: list[int] = []
    scores, instances = evaluate(
        _translator(DictionaryLLM()), DATA, 0.25, tmp_path / "run", progress.append
    )
    lines = (tmp_path / "run" / "instances.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert [r["prediction"] for r in records] == ["I we to day.", "he very good.", "I go the park."]
    assert [r["reference"] for r in records] == DATA.references
    assert [r["source_length"] for r in records] == [5, 4, 5]
    # wait-2: word j once j + 1 units are read; the flush at 。 holds the last one.
    assert [r["delays"] for r in records] == [[2, 3, 4, 5], [2, 3, 4], [2, 3, 4, 5]]
    for r in records:
        assert len(r["elapsed"]) == len(r["delays"])
        # Unit j arrives at (j + 1) * 0.25 s: a word is never out before its trigger.
        assert all(e >= d * 0.25 for e, d in zip(r["elapsed"], r["delays"], strict=True))
    assert [i.to_json() for i in instances] == records
    assert progress == [1, 1, 1]
    assert scores["instances"] == 3
    assert scores["StartOffset"] == pytest.approx(2.0)
    assert scores["ms_per_unit"] >= 0.0
    assert not (tmp_path / "run" / "scores.json").exists()  # the caller writes it


def test_evaluate_without_output_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    scores, instances = evaluate(_translator(DictionaryLLM()), DATA, 0.25)
    assert len(instances) == 3
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_evaluation_scores_what_finished(tmp_path: Path) -> None:
    # wait-2 calls the model 4 times on line 1 (们 今 天 。) and 3 times on line 2: the 6th
    # call, inside line 2, is the Ctrl-C.
    llm = DictionaryLLM(interrupt_after=6)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_translator(llm), DATA, 0.25, tmp_path)
    lines = (tmp_path / "instances.log").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["prediction"] for line in lines] == ["I we to day."]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["interrupted"] is True
    assert scores["instances"] == 1
    assert scores["StartOffset"] == pytest.approx(2.0)
    # d = 2, 3, 4, 5 on |X| = 5, |Y| = 4: 1/gamma = 1.25, tau = 4,
    # AL = [(2-0) + (3-1.25) + (4-2.5) + (5-3.75)] / 4 = 6.5 / 4.
    assert scores["AL"] == pytest.approx(1.625)
    assert set(SCORE_KEYS) <= set(scores)


def test_an_interrupt_before_any_instance_still_writes_scores(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        evaluate(_translator(DictionaryLLM(interrupt_after=1)), DATA, 0.25, tmp_path)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["interrupted"] is True
    assert scores["instances"] == 0
    assert (tmp_path / "instances.log").read_text() == ""


# -- oracle AL --------------------------------------------------------------------------


def test_oracle_al_of_a_monotone_word_for_word_corpus() -> None:
    # Each target word translates one source character, in the same order: the oracle writes
    # word j right after reading character j, so every delay is j and AL = 1.
    pytest.importorskip("simulinterp.alignment")
    rng = random.Random(0)
    chars = [c for c in ZH_EN if c not in "，。"]
    sources, references = [], []
    for _ in range(200):
        sentence = rng.sample(chars, rng.randint(3, 7))
        sources.append("".join(sentence))
        references.append(" ".join(ZH_EN[c] for c in sentence))
    data = EvalData(sources, references, "zh", "en")
    assert oracle_al(data) == pytest.approx(1.0)


def test_source_units_arrive_at_the_speaking_rate() -> None:
    units = source_units("我们。他", "zh", 0.25)
    assert [(u.text, u.index, u.arrival_s, u.sentence_end) for u in units] == [
        ("我", 0, 0.25, False),
        ("们", 1, 0.5, False),
        ("。", 2, 0.75, True),
        ("他", 3, 1.0, False),
    ]
