"""The short-window encoder patch on a tiny synthetic ONNX graph (needs the onnx package)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the encoder patch needs onnx: pip install 'onnx>=1.16'")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from simulinterp.asr import onnx_install  # noqa: E402
from simulinterp.asr.onnx_patch import (  # noqa: E402
    PatchError,
    patch_encoder_bytes,
    patch_short_windows,
)

MAX_T, D = 6, 4
TABLE = np.arange(MAX_T * D, dtype=np.float32).reshape(MAX_T, D)


def tiny_encoder() -> onnx.ModelProto:
    """x [1, T, D] -> y = Relu(x + table), a stand-in for the head of whisper's encoder,
    plus an attention output declared at the full length, as the export has."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", D])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", D])
    attn = helper.make_tensor_value_info("encoder_attentions.0", TensorProto.FLOAT, [1, MAX_T, D])
    nodes = [
        helper.make_node("Add", ["x", "embed_positions.weight"], ["sum"], name="/Add_2"),
        helper.make_node("Relu", ["sum"], ["y"], name="/Relu"),
        helper.make_node("Identity", ["sum"], ["encoder_attentions.0"], name="/Identity"),
    ]
    table = numpy_helper.from_array(TABLE, "embed_positions.weight")
    graph = helper.make_graph(nodes, "tiny", [x], [y, attn], initializer=[table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=6)


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("length", [1, 3, MAX_T])
def test_the_patched_graph_takes_any_length_up_to_the_table(length: int):
    x = np.random.default_rng(0).standard_normal((1, length, D)).astype(np.float32)
    patched = patch_short_windows(tiny_encoder())
    onnx.checker.check_model(patched)
    outputs = run(patched, x)
    assert len(outputs) == 1  # the attention output declared at the full length is gone
    np.testing.assert_array_equal(outputs[0], np.maximum(x + TABLE[:length], 0))


def test_at_full_length_the_patch_changes_nothing():
    x = np.random.default_rng(1).standard_normal((1, MAX_T, D)).astype(np.float32)
    original = run(tiny_encoder(), x)[0]
    np.testing.assert_array_equal(run(patch_short_windows(tiny_encoder()), x)[0], original)


def test_the_original_graph_refuses_a_short_window():
    with pytest.raises(Exception, match="(?i)broadcast|shape|dimension"):
        run(tiny_encoder(), np.zeros((1, 3, D), dtype=np.float32))


def test_a_patched_graph_is_not_patched_twice():
    with pytest.raises(PatchError, match="already patched"):
        patch_short_windows(patch_short_windows(tiny_encoder()))


def test_a_graph_without_the_table_is_refused():
    model = tiny_encoder()
    del model.graph.initializer[:]
    with pytest.raises(PatchError, match="no 'embed_positions.weight'"):
        patch_short_windows(model)


def test_the_serialized_patch_is_deterministic():
    data = tiny_encoder().SerializeToString()
    assert patch_encoder_bytes(data) == patch_encoder_bytes(data)


def test_install_writes_a_patched_encoder_that_runs(tmp_path, monkeypatch):
    """The whole install on a tarball whose encoder is the tiny graph: real patch, real pins."""
    from test_onnx_install import FOLDER, integrity_of, make_tarball

    monkeypatch.setenv("SIMULINTERP_CACHE", str(tmp_path / "cache"))
    encoder = tiny_encoder().SerializeToString()
    tarball = make_tarball(tmp_path / "t.tgz", {"encoder.onnx": encoder, "config.json": b"{}"})
    patched = patch_encoder_bytes(encoder)
    model = dataclasses.replace(
        onnx_install.WHISPER_SMALL,
        integrity=integrity_of(tarball),
        folder=FOLDER,
        files={"config.json": ("config.json", hashlib.sha256(b"{}").hexdigest())},
        encoder="encoder.onnx",
        encoder_sha256=hashlib.sha256(encoder).hexdigest(),
        patched_sha256=hashlib.sha256(patched).hexdigest(),
    )
    folder = onnx_install.install(model, tarball=tarball).folder
    session = ort.InferenceSession(
        str(folder / onnx_install.ENCODER), providers=["CPUExecutionProvider"]
    )
    (y,) = session.run(None, {"x": np.ones((1, 2, D), dtype=np.float32)})
    np.testing.assert_array_equal(y[0], 1 + TABLE[:2])
