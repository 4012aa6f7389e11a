"""peft LoRA to llama.cpp LoRA GGUF on a tiny random Qwen2: names, layout, scaling, refusals."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")

from simulinterp.llm.base import LLMError  # noqa: E402
from simulinterp.llm.factory import ModelConfig, build_backend  # noqa: E402
from simulinterp.llm.llamacpp import LlamaCppBackend  # noqa: E402
from simulinterp.train.export import AdapterExportError, export_lora_gguf  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning")]

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
"""What llama.cpp calls each adapted Qwen2 module (the test's own table)."""

HIDDEN, KV_WIDTH, FFN, LAYERS = 32, 16, 64, 2
"""The tiny model: 4 heads of 8, 2 key/value heads (so k/v are 16 wide), MLP 64, 2 layers."""


@pytest.fixture(scope="module")
def base_model():
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=64,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=FFN,
        max_position_embeddings=64,
    )
    return transformers.Qwen2ForCausalLM(config).eval()


def _save_lora(model, directory: Path, seed: int = 1, **options):
    """Wrap a copy of ``model`` with a LoRA of non-zero A and B, save it; return the peft model."""
    torch.manual_seed(seed)
    defaults = {"r": 4, "lora_alpha": 8, "target_modules": ALL_PROJECTIONS}
    config = peft.LoraConfig(**{**defaults, "init_lora_weights": False, **options})
    lora = peft.get_peft_model(copy.deepcopy(model), config)
    lora.save_pretrained(directory)
    return lora


def _lora_layers(lora) -> dict[str, object]:
    """``{"0.self_attn.q_proj": layer}`` for every peft LoRA linear layer."""
    layers = {}
    for name, module in lora.named_modules():
        if isinstance(module, peft.tuners.lora.Linear):
            layers[name.split("layers.", 1)[1]] = module
    return layers


def _gguf_name(key: str) -> str:
    """``0.self_attn.q_proj`` -> ``blk.0.attn_q.weight``."""
    block, module = key.split(".", 1)
    return f"blk.{block}.{GGUF_NAMES[module]}.weight"


def _read(path: Path) -> tuple[dict[str, object], dict[str, object]]:
    reader = gguf.GGUFReader(str(path))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    return fields, {tensor.name: tensor for tensor in reader.tensors}


def _assert_deltas_match(lora, path: Path, rtol: float, atol: float) -> None:
    """Every module's ``B @ A * alpha / rank`` read back equals peft's delta weight."""
    fields, tensors = _read(path)
    alpha = fields["adapter.lora.alpha"]
    for key, layer in _lora_layers(lora).items():
        lora_a = np.asarray(tensors[_gguf_name(key) + ".lora_a"].data, dtype=np.float64)
        lora_b = np.asarray(tensors[_gguf_name(key) + ".lora_b"].data, dtype=np.float64)
        rank = lora_b.shape[1]  # llama.cpp's rank: b->ne[0]
        delta = layer.get_delta_weight("default").detach().double().numpy()
        assert np.abs(delta).max() > 1e-3, "the fixture's LoRA should not be zero"
        np.testing.assert_allclose(lora_b @ lora_a * alpha / rank, delta, rtol=rtol, atol=atol)


def test_names_shapes_metadata_and_delta_weights(base_model, tmp_path):
    lora = _save_lora(base_model, tmp_path / "adapter")
    report = export_lora_gguf(tmp_path / "adapter", tmp_path / "out" / "lora.gguf", dtype="f32")

    assert report.path == tmp_path / "out" / "lora.gguf"
    assert report.bytes == report.path.stat().st_size
    assert (report.tensors, report.rank, report.alpha) == (2 * 7 * LAYERS, 4, 8.0)
    fields, tensors = _read(report.path)
    assert fields["general.type"] == "adapter"
    assert fields["general.architecture"] == "qwen2"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8.0
    expected = {
        f"blk.{i}.{name}.weight.lora_{part}"
        for i in range(LAYERS)
        for name in GGUF_NAMES.values()
        for part in "ab"
    }
    assert set(tensors) == expected
    in_out = {
        "attn_q": (HIDDEN, HIDDEN),
        "attn_k": (HIDDEN, KV_WIDTH),
        "attn_v": (HIDDEN, KV_WIDTH),
    }
    in_out |= {"attn_output": (HIDDEN, HIDDEN), "ffn_gate": (HIDDEN, FFN), "ffn_up": (HIDDEN, FFN)}
    in_out["ffn_down"] = (FFN, HIDDEN)
    for name, tensor in tensors.items():
        fan_in, fan_out = in_out[name.split(".")[2]]
        # ggml order (ne, fastest first): llama.cpp wants A = [in, r] and B = [r, out]
        expected_ne = [fan_in, 4] if name.endswith("lora_a") else [4, fan_out]
        assert [int(n) for n in tensor.shape] == expected_ne, name
        assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
    _assert_deltas_match(lora, report.path, rtol=1e-5, atol=1e-6)


def test_f16_is_the_default_and_close(base_model, tmp_path):
    lora = _save_lora(base_model, tmp_path / "adapter")
    report = export_lora_gguf(tmp_path / "adapter", tmp_path / "lora.gguf")
    _, tensors = _read(report.path)
    assert {t.tensor_type for t in tensors.values()} == {gguf.GGMLQuantizationType.F16}
    f32 = export_lora_gguf(tmp_path / "adapter", tmp_path / "lora32.gguf", dtype="f32")
    assert report.bytes < 0.6 * f32.bytes
    _assert_deltas_match(lora, report.path, rtol=1e-2, atol=2e-3)


@pytest.mark.parametrize(
    ("options", "alpha"),
    [
        ({"use_rslora": True}, 8 / math.sqrt(4) * 4),
        ({"r": 8, "lora_alpha": 4}, 4.0),
        ({"rank_pattern": {"down_proj": 2}, "alpha_pattern": {"q_proj": 32}}, 8.0),
        (
            {"use_rslora": True, "rank_pattern": {"k_proj": 2}, "alpha_pattern": {"up_proj": 1}},
            16.0,
        ),
    ],
    ids=["rslora", "r8-alpha4", "patterns", "rslora-patterns"],
)
def test_scaling_follows_peft(base_model, tmp_path, options, alpha):
    lora = _save_lora(base_model, tmp_path / "adapter", **options)
    report = export_lora_gguf(tmp_path / "adapter", tmp_path / "lora.gguf", dtype="f32")
    assert report.alpha == pytest.approx(alpha)
    _assert_deltas_match(lora, report.path, rtol=1e-5, atol=1e-6)


def test_bfloat16_adapter_and_some_layers_only(base_model, tmp_path):
    lora = _save_lora(base_model, tmp_path / "adapter", layers_to_transform=[1])
    lora.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    report = export_lora_gguf(tmp_path / "bf16", tmp_path / "lora.gguf", dtype="f32")
    _, tensors = _read(report.path)
    assert report.tensors == 14
    assert {name.split(".")[1] for name in tensors} == {"1"}
    _assert_deltas_match(lora, report.path, rtol=1e-2, atol=1e-3)


def _tiny_base_gguf(path: Path, arch: str = "qwen2", ffn: int = FFN) -> Path:
    """A base GGUF with the tiny model's projection shapes (zeros), as llama.cpp lays them out."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_token_list(["<s>", "a", "bc"])  # arrays before the block count, as in models
    writer.add_token_scores([0.0, -1.0, -2.0])
    writer.add_block_count(LAYERS)
    for i in range(LAYERS):
        for name, (fan_in, fan_out) in {
            "attn_q": (HIDDEN, HIDDEN),
            "attn_k": (HIDDEN, KV_WIDTH),
            "attn_v": (HIDDEN, KV_WIDTH),
            "attn_output": (HIDDEN, HIDDEN),
            "ffn_gate": (HIDDEN, ffn),
            "ffn_up": (HIDDEN, ffn),
            "ffn_down": (ffn, HIDDEN),
        }.items():
            writer.add_tensor(f"blk.{i}.{name}.weight", np.zeros((fan_out, fan_in), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_checked_against_the_base_gguf(base_model, tmp_path):
    _save_lora(base_model, tmp_path / "adapter")
    good = _tiny_base_gguf(tmp_path / "base.gguf")
    report = export_lora_gguf(tmp_path / "adapter", tmp_path / "lora.gguf", base_gguf=good)
    assert report.tensors == 28

    output = tmp_path / "lora.gguf"
    before = output.read_bytes()
    wrong = _tiny_base_gguf(tmp_path / "wide.gguf", ffn=128)
    with pytest.raises(AdapterExportError, match="another model"):
        export_lora_gguf(tmp_path / "adapter", output, base_gguf=wrong)
    llama = _tiny_base_gguf(tmp_path / "llama.gguf", arch="llama")
    with pytest.raises(AdapterExportError, match="llama model; only qwen2"):
        export_lora_gguf(tmp_path / "adapter", output, base_gguf=llama)
    with pytest.raises(AdapterExportError, match="not found"):
        export_lora_gguf(tmp_path / "adapter", output, base_gguf=tmp_path / "none.gguf")
    (tmp_path / "text.gguf").write_text("not a model")
    with pytest.raises(AdapterExportError, match="is not a little-endian GGUF"):
        export_lora_gguf(tmp_path / "adapter", output, base_gguf=tmp_path / "text.gguf")
    assert output.read_bytes() == before, "a failed export must leave the old file alone"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"target_modules": ["embed_tokens"]}, "token embeddings are not supported"),
        ({"target_modules": ["q_proj", "lm_head"]}, "unsupported target modules: lm_head"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"bias": "lora_only"}, "bias='lora_only'"),
        ({"lora_alpha": 0}, "lora_alpha is 0"),
        ({"init_lora_weights": "pissa"}, "path_initial_model_for_weight_conversion"),
    ],
    ids=["dora", "embeddings", "lm_head", "modules_to_save", "bias", "alpha0", "pissa"],
)
def test_unsupported_adapters_are_refused(base_model, tmp_path, options, message):
    _save_lora(base_model, tmp_path / "adapter", **options)
    with pytest.raises(AdapterExportError, match=message):
        export_lora_gguf(tmp_path / "adapter", tmp_path / "lora.gguf")
    assert not (tmp_path / "lora.gguf").exists()


def test_not_an_adapter_directory(base_model, tmp_path):
    with pytest.raises(ValueError, match="adapter directory not found"):
        export_lora_gguf(tmp_path / "missing", tmp_path / "lora.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no adapter_config.json"):
        export_lora_gguf(tmp_path / "empty", tmp_path / "lora.gguf")
    ia3 = peft.IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"])
    peft.get_peft_model(copy.deepcopy(base_model), ia3).save_pretrained(tmp_path / "ia3")
    with pytest.raises(ValueError, match="IA3 adapter; only LoRA"):
        export_lora_gguf(tmp_path / "ia3", tmp_path / "lora.gguf")


def test_llamacpp_refuses_a_peft_directory(base_model, tmp_path, monkeypatch):
    _save_lora(base_model, tmp_path / "adapter")
    model = tmp_path / "model.gguf"
    model.write_bytes(b"never loaded: the adapter is checked first")
    with pytest.raises(LLMError, match="simulinterp train export-gguf"):
        LlamaCppBackend(model, lora=tmp_path / "adapter")
    with pytest.raises(LLMError, match="LoRA GGUF not found"):
        LlamaCppBackend(model, lora=tmp_path / "missing.gguf")
    monkeypatch.setattr("simulinterp.llm.models.ensure_model", lambda name: model)
    with pytest.raises(LLMError, match="simulinterp train export-gguf"):
        build_backend(ModelConfig(adapter=str(tmp_path / "adapter")))
