"""``simulinterp train sft`` on a tiny checkpoint, then ``eval`` with the adapter it wrote."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from simulinterp.cli import main  # noqa: E402
from simulinterp.cli.common import translator_config  # noqa: E402
from simulinterp.llm.adapter_info import adapter_metadata, prompt_style_for  # noqa: E402
from tiny_qwen import PAIRS, write_parallel  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def adapter(tiny_checkpoint, tiny_parallel, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "adapter"
    argv = ["train", "sft", "--model", str(tiny_checkpoint), "--data", str(tiny_parallel)]
    argv += ["--output", str(out), "--max-steps", "3", "--pack-tokens", "512"]
    argv += ["--batch-rows", "1", "--log-every", "1", "--schedule", "align"]
    assert main(argv) == 0
    return out


def test_sft_prints_progress_and_writes_the_adapter(adapter, capsys):
    assert (adapter / "adapter_model.safetensors").is_file()
    log = [json.loads(x) for x in (adapter / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    metadata = adapter_metadata(adapter)
    assert metadata["schedule"] == "align" and metadata["kind"] == "lora"


def test_sft_progress_goes_to_stderr(tiny_checkpoint, tiny_parallel, tmp_path, capsys):
    argv = ["train", "sft", "--model", str(tiny_checkpoint), "--data", str(tiny_parallel)]
    argv += ["--output", str(tmp_path / "o"), "--max-steps", "2", "--pack-tokens", "512"]
    assert main([*argv, "--log-every", "1"]) == 0
    err = capsys.readouterr().err
    assert "step 2/2" in err and "tokens/s" in err and "done: 2 steps" in err


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--schedule", "wait-k"], 2, "wait-k needs its lag"),
        (["--method", "simulmask", "--pack-tokens", "10"], 2, "pack_tokens"),
    ],
)
def test_sft_bad_settings(tiny_checkpoint, tiny_parallel, tmp_path, capsys, extra, code, message):
    argv = ["train", "sft", "--model", str(tiny_checkpoint), "--data", str(tiny_parallel)]
    assert main([*argv, "--output", str(tmp_path), *extra]) == code
    assert message in capsys.readouterr().err


def test_sft_missing_data_and_model(tiny_checkpoint, tmp_path, capsys):
    argv = ["train", "sft", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "none")]
    assert main([*argv, "--output", str(tmp_path / "o")]) == 1
    assert "no such data folder" in capsys.readouterr().err
    argv = ["train", "sft", "--model", str(tmp_path / "nomodel"), "--data", str(tmp_path)]
    write_parallel(tmp_path, "x_zh-en", PAIRS[:2])
    assert main([*argv, "--output", str(tmp_path / "o")]) == 1
    assert "no such model" in capsys.readouterr().err


def test_the_adapter_sets_the_prompt_style(adapter, tmp_path):
    assert prompt_style_for(adapter) == "plain"
    assert prompt_style_for(adapter, "few-shot") == "few-shot"
    assert prompt_style_for(None) == "few-shot" and prompt_style_for(tmp_path) == "few-shot"
    args = argparse.Namespace(
        source_lang="zh", target_lang="en", adapter=str(adapter), prompt_style="auto"
    )
    assert translator_config(args).prompt_style == "plain"
    (tmp_path / "simulinterp.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        adapter_metadata(tmp_path)


def test_eval_runs_the_trained_adapter(adapter, tiny_checkpoint, tiny_parallel, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--source", str(tiny_parallel / "toy_zh-en" / "source.txt")]
    argv += ["--reference", str(tiny_parallel / "toy_zh-en" / "ref.txt"), "--output", str(out)]
    argv += [
        "--backend",
        "transformers",
        "--model",
        str(tiny_checkpoint),
        "--adapter",
        str(adapter),
    ]
    argv += ["--from", "zh", "--to", "en", "--policy", "wait-k", "--k", "3"]
    assert main(argv) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["LAAL"] > 0 and "BLEU" in scores
    lines = (out / "instances.log").read_text().splitlines()
    assert len(lines) == len(PAIRS)


def test_two_processes_under_torchrun_share_the_rows(tiny_checkpoint, tmp_path):
    """Data-parallel training on the CPU (gloo): what torchrun does on GPUs, same code."""
    import os
    import subprocess
    import sys

    doubled = tmp_path / "data"
    write_parallel(doubled, "toy_zh-en", PAIRS * 3)
    write_parallel(doubled, "toy_en-zh", [(b, a) for a, b in PAIRS * 3])
    argv = [
        "-m",
        "simulinterp",
        "train",
        "sft",
        "--model",
        str(tiny_checkpoint),
        "--data",
        str(doubled),
    ]
    argv += ["--pack-tokens", "512", "--batch-rows", "1", "--log-every", "1"]
    single = main(argv[2:] + ["--output", str(tmp_path / "one")])
    assert single == 0
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    done = subprocess.run(
        [*launcher, *argv, "--output", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("done:") == 1  # only the main process reports
    one = [json.loads(x) for x in (tmp_path / "one" / "train_log.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()]
    rows = one[-1]["step"]
    assert two[-1]["step"] == rows // 2  # each process takes half the packed rows
    longest_row = 512
    assert (
        one[-1]["input_tokens"] - longest_row <= two[-1]["input_tokens"] <= one[-1]["input_tokens"]
    )
    assert (tmp_path / "two" / "adapter_model.safetensors").is_file()


def test_export_gguf_writes_the_llama_cpp_adapter_beside_the_peft_one(adapter, capsys):
    import gguf

    assert main(["train", "export-gguf", str(adapter)]) == 0
    written = adapter / "adapter.gguf"
    assert "wrote" in capsys.readouterr().err and written.stat().st_size > 0
    reader = gguf.GGUFReader(written)
    names = {t.name for t in reader.tensors}
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.1.ffn_down.weight.lora_b" in names
    # the llamacpp backend finds it from the folder, and so does the prompt style
    from simulinterp.llm.llamacpp import _lora_gguf

    assert _lora_gguf(adapter) == written
    assert prompt_style_for(written) == "plain"


def test_export_gguf_refuses_what_is_not_an_adapter(tmp_path, capsys):
    assert main(["train", "export-gguf", str(tmp_path)]) != 0
    assert "adapter_config.json" in capsys.readouterr().err
