"""SFT on a tiny random Qwen2 checkpoint: the loss falls, LoRA (and only LoRA) changes, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from simulinterp.train.mask import pad_batch  # noqa: E402
from simulinterp.train.modeling import MaskedLossModel, to_tensors  # noqa: E402
from simulinterp.train.sft import SFTConfig, build_rows, train_sft  # noqa: E402

pytestmark = pytest.mark.torch


def _config(tiny_checkpoint, tiny_parallel, output, **changes) -> SFTConfig:
    settings = {
        "model": str(tiny_checkpoint),
        "data": str(tiny_parallel),
        "output": str(output),
        "pack_tokens": 512,
        "batch_rows": 2,
        "learning_rate": 1e-2,
        "epochs": 20,
        "log_every": 5,
    }
    settings.update(changes)
    return SFTConfig(**settings)


def _loss_on_all_rows(model, tokenizer, config) -> float:
    rows, _ = build_rows(config, tokenizer)
    batch = pad_batch(rows, pad_id=0)
    with torch.no_grad():
        return float(MaskedLossModel(model)(**to_tensors(batch, model, "cpu")))


def test_lora_training_lowers_the_loss_and_changes_only_the_adapter(
    tiny_checkpoint, tiny_parallel, tmp_path
):
    import peft
    import transformers

    config = _config(tiny_checkpoint, tiny_parallel, tmp_path / "out")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_checkpoint)
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    before = _loss_on_all_rows(base, tokenizer, config)
    records = []
    result = train_sft(config, on_log=records.append)

    assert result.steps > 5 and result.input_tokens > 0 and result.loss_tokens > 0
    assert np.isfinite(result.last_loss)
    trained = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoint), result.output
    ).eval()
    after = _loss_on_all_rows(trained, tokenizer, config)
    assert after < before - 0.5, (before, after)

    original = dict(
        transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoint).named_parameters()
    )
    compared = 0
    for name, weight in trained.named_parameters():
        if "lora_" in name:
            continue
        plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(weight, original[plain]), name
        compared += 1
    assert compared == len(original)
    lora_b = [p for n, p in trained.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # initialised at zero

    out = result.output
    assert (out / "adapter_config.json").is_file() and (out / "loss.png").stat().st_size > 0
    metadata = json.loads((out / "simulinterp.json").read_text())
    assert metadata["prompt_style"] == "plain" and metadata["method"] == "simulmask"
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log == records and log[-1]["step"] == result.steps
    assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in log)


def test_full_fine_tuning_and_prefix_method_with_a_token_budget(
    tiny_checkpoint, tiny_parallel, tmp_path
):
    import transformers

    config = _config(
        tiny_checkpoint,
        tiny_parallel,
        tmp_path / "full",
        full=True,
        method="prefix",
        token_budget=1500,
    )
    result = train_sft(config)
    assert 1500 <= result.input_tokens < 1500 + 2 * 512
    trained = transformers.AutoModelForCausalLM.from_pretrained(result.output)
    original = transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(
        dict(trained.named_parameters())[weight], dict(original.named_parameters())[weight]
    )


def test_prefix_prompting_costs_more_tokens_per_pair(tiny_checkpoint, tiny_parallel, tmp_path):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_checkpoint)
    masked, _ = build_rows(_config(tiny_checkpoint, tiny_parallel, tmp_path / "a"), tokenizer)
    prefixed, _ = build_rows(
        _config(tiny_checkpoint, tiny_parallel, tmp_path / "b", method="prefix"), tokenizer
    )
    assert sum(r.loss_tokens for r in masked) == sum(r.loss_tokens for r in prefixed)
    assert sum(len(r) for r in prefixed) > 2 * sum(len(r) for r in masked)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "interleaved"}, "method"),
        ({"schedule": "wait-k"}, "wait-k"),
        ({"direction": "de-en"}, "direction"),
        ({"pack_tokens": 64}, "pack_tokens"),
    ],
)
def test_bad_settings_are_refused(changes, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        _config("m", "d", tmp_path, **changes)


def test_missing_data_is_a_clear_error(tiny_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="source.txt"):
        train_sft(_config(tiny_checkpoint, tmp_path, tmp_path / "out"))


def test_bf16_trains_like_fp32_over_the_first_steps(tiny_checkpoint, tiny_parallel, tmp_path):
    curves = {}
    for dtype in ("float32", "bfloat16"):
        records: list[dict] = []
        config = _config(
            tiny_checkpoint,
            tiny_parallel,
            tmp_path / dtype,
            dtype=dtype,
            max_steps=6,
            log_every=1,
            learning_rate=2e-3,
        )
        train_sft(config, on_log=records.append)
        curves[dtype] = [r["loss"] for r in records]
    fp32, bf16 = curves["float32"], curves["bfloat16"]
    assert len(fp32) == len(bf16) == 6
    assert fp32[-1] < fp32[0] and bf16[-1] < bf16[0]  # both learn
    assert max(abs(a - b) / a for a, b in zip(fp32, bf16, strict=True)) < 0.02


def test_half_precision_on_a_cpu_without_its_instructions_is_flagged(monkeypatch):
    from simulinterp.train import modeling

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    problem = modeling.half_precision_problem(torch.bfloat16, "cpu")
    assert problem is not None and "--dtype float32" in problem and "bfloat16" in problem
    assert modeling.half_precision_problem(torch.float32, "cpu") is None
    assert modeling.half_precision_problem(torch.bfloat16, "cuda") is None
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert modeling.half_precision_problem(torch.bfloat16, "cpu") is None
