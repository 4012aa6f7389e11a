"""Sharded evaluation (simulinterp.eval.shards): resume, corpus scores over shards, dev sets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from fakes import DictionaryLLM
from simulinterp.eval import shards as shards_module
from simulinterp.eval.instances import Instance
from simulinterp.eval.quality import bleu
from simulinterp.eval.shards import DEV_SETS, Shard, combine, dev_data, run_shards


def _shard(output: Path, first: int = 0, last: int = 2, **changes) -> Shard:
    shard = Shard("base", "transformers", "model", None, "zh-en", 3, first, last, str(output))
    return replace(shard, **changes)


def _write_scores(shard: Shard, **changes) -> None:
    scores = asdict(shard) | {"instances": shard.last - shard.first, "seconds": 1.0} | changes
    Path(shard.output).mkdir(parents=True, exist_ok=True)
    (Path(shard.output) / "scores.json").write_text(json.dumps(scores))


def test_importing_it_needs_no_torch() -> None:
    code = "import sys, simulinterp.eval.shards; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# -- Shard.done -------------------------------------------------------------------------


def test_a_shard_without_scores_is_not_done(tmp_path: Path) -> None:
    assert not _shard(tmp_path / "s").done()


@pytest.mark.parametrize(
    ("written", "done"),
    [
        ({}, True),  # a complete run of this very shard
        ({"k": 5}, False),  # another k
        ({"model": "other"}, False),  # another model
        ({"adapter": "adapters/prefix"}, False),  # another adapter
        ({"last": 3}, False),  # other lines
        ({"interrupted": True}, False),  # Ctrl-C: scores of what finished
        ({"instances": 1}, False),  # fewer instances than lines
    ],
)
def test_shard_done(tmp_path: Path, written, done) -> None:
    shard = _shard(tmp_path / "s")
    _write_scores(shard, **written)
    assert shard.done() is done


# -- combine ----------------------------------------------------------------------------


def _instance(index: int, prediction: str, reference: str, source_length: int) -> Instance:
    """An instance whose every word waited for the whole source: its LAAL is the source length."""
    words = len(prediction.split())
    return Instance(
        index=index,
        source="我" * source_length,
        reference=reference,
        prediction=prediction,
        delays=[float(source_length)] * words,
        elapsed=[source_length * 0.25] * words,
        source_length=source_length,
        source_length_s=source_length * 0.25,
        reference_length=len(reference.split()),
        prediction_length=words,
    )


def _write_shard(shard: Shard, instances: list[Instance], seconds: float) -> None:
    _write_scores(shard, seconds=seconds, prompt_style="few-shot")
    log = "".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in instances)
    (Path(shard.output) / "instances.log").write_text(log, encoding="utf-8")


def test_combine_scores_every_instance_of_every_shard(tmp_path: Path) -> None:
    first = [_instance(0, "we need to talk", "we need to talk", 2)]
    second = [
        _instance(1, "the meeting is at nine", "the meeting starts at nine", 4),
        _instance(2, "thank you all", "thank you all for coming", 6),
    ]
    parts = [_shard(tmp_path / "a", 0, 1), _shard(tmp_path / "b", 1, 3)]
    _write_shard(parts[0], first, seconds=2.0)
    _write_shard(parts[1], second, seconds=4.0)
    folder = tmp_path / "setting"

    scores = combine(folder, parts)

    everything = first + second
    assert scores["lines"] == scores["instances"] == 3
    # the mean over the 3 lines (2 + 4 + 6) / 3, not over the shards' means (2 and 5)
    assert scores["LAAL"] == pytest.approx(4.0)
    assert scores["BLEU"] == pytest.approx(
        bleu([i.prediction for i in everything], [i.reference for i in everything], "en")
    )
    assert scores["seconds"] == 6.0
    assert scores["ms_per_unit"] == pytest.approx(1000 * 6.0 / 12)
    assert (scores["label"], scores["k"], scores["prompt_style"]) == ("base", 3, "few-shot")
    assert json.loads((folder / "scores.json").read_text()) == scores
    lines = (folder / "instances.log").read_text(encoding="utf-8").splitlines()
    assert [Instance(**json.loads(line)) for line in lines] == everything


# -- dev sets and running ----------------------------------------------------------------

SOURCES = ["我们今天。", "他很好。", "我去公园。"]
REFERENCES = ["we today.", "he is good.", "I go to the park."]


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    folder = tmp_path / "dev" / DEV_SETS["zh-en"]
    folder.mkdir(parents=True)
    (folder / "source.txt").write_text("\n".join(SOURCES) + "\n", encoding="utf-8")
    (folder / "ref.txt").write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    return tmp_path / "dev"


def test_dev_data_reads_the_first_lines(dev: Path) -> None:
    data = dev_data(dev, "zh-en", 2)
    assert (data.sources, data.references) == (SOURCES[:2], REFERENCES[:2])
    assert (data.source_lang, data.target_lang) == ("zh", "en")


def test_dev_data_of_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=DEV_SETS["en-zh"]):
        dev_data(tmp_path, "en-zh", 5)


def test_run_shards_evaluates_each_shard_once(dev: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(shards_module, "load_llm", lambda *_: DictionaryLLM())
    parts = [_shard(tmp_path / "a", 0, 2), _shard(tmp_path / "b", 2, 3)]
    finished = []

    left = run_shards(parts, 1, dev, on_done=lambda s, scores: finished.append((s, scores)))

    assert left == 0
    assert [s for s, _ in finished] == parts
    assert all(s.done() for s in parts)
    assert [scores["instances"] for _, scores in finished] == [2, 1]
    combined = combine(tmp_path / "setting", parts)
    lines = (tmp_path / "setting" / "instances.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["source"] for r in records] == SOURCES
    assert [r["index"] for r in records] == [0, 1, 0]  # counted within each shard
    assert [r["prediction"] for r in records] == ["I we to day.", "he very good.", "I go the park."]
    assert combined["lines"] == 3


def test_run_shards_starts_none_after_the_deadline(dev: Path, tmp_path: Path) -> None:
    parts = [_shard(tmp_path / "a", 0, 2), _shard(tmp_path / "b", 2, 3)]
    finished = []

    left = run_shards(parts, 1, dev, time.monotonic() - 1, lambda *a: finished.append(a))

    assert left == 2 and finished == []
    assert not any(s.done() for s in parts)
