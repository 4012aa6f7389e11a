"""A graph patch that lets a transformers.js whisper encoder take windows shorter than 30 s.

The exported encoder adds its whole positional table (``embed_positions.weight``, [1500, d])
to the convolution output, so any input but 3,000 log-mel frames fails to broadcast. The patch
inserts Shape -> Gather -> Slice, which cuts the table to the sequence length actually present,
and drops the per-layer ``encoder_attentions.*`` outputs, whose shapes are declared at 1500.
At 3,000 frames the patched encoder computes exactly what the original did.

The ``onnx`` package is needed here only, once, when the model is installed
(``pip install "onnx>=1.16"``); nothing at run time imports this module.
"""

from __future__ import annotations

from typing import Any

POSITIONS = "embed_positions.weight"
DROPPED_OUTPUTS = "encoder_attentions."
_PREFIX = "simulinterp_short_window"
ONNX_PIP = 'pip install "onnx>=1.16"'


class PatchError(ValueError):
    """The graph does not have the shape the patch expects."""


def require_onnx() -> Any:
    """The ``onnx`` module, or an ImportError with the pip line that installs it."""
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            "patching the whisper-small encoder needs the onnx package (at install time only). "
            f"Install it with:\n  {ONNX_PIP}\n(or: pip install 'simulinterp[small]')"
        ) from err
    return onnx


def short_window_nodes(hidden: str, table: str = POSITIONS) -> tuple[list[Any], list[Any], str]:
    """The nodes and constants that cut ``table`` to the length of ``hidden``'s axis 1.

    Args:
        hidden: the [batch, time, d] tensor the positional table is added to.
        table: the [max_time, d] positional table.

    Returns:
        (nodes in topological order, initializers they read, the name of the cut table).
    """
    require_onnx()
    from onnx import TensorProto, helper

    zero, time_axis = f"{_PREFIX}/zero", f"{_PREFIX}/time_axis"
    shape, length, cut = f"{_PREFIX}/shape", f"{_PREFIX}/length", f"{_PREFIX}/positions"
    constants = [
        helper.make_tensor(zero, TensorProto.INT64, [1], [0]),
        helper.make_tensor(time_axis, TensorProto.INT64, [1], [1]),
    ]
    nodes = [
        helper.make_node("Shape", [hidden], [shape], name=f"{_PREFIX}/Shape"),
        helper.make_node("Gather", [shape, time_axis], [length], name=f"{_PREFIX}/Gather", axis=0),
        helper.make_node("Slice", [table, zero, length, zero], [cut], name=f"{_PREFIX}/Slice"),
    ]
    return nodes, constants, cut


def patch_short_windows(model: Any, table: str = POSITIONS) -> Any:
    """Patch an encoder ``ModelProto`` in place (and return it) to accept short windows.

    Raises:
        PatchError: the table is missing, read by other than one Add, or already patched.
    """
    graph = model.graph
    if any(node.name.startswith(_PREFIX) for node in graph.node):
        raise PatchError("the encoder is already patched for short windows")
    if not any(init.name == table for init in graph.initializer):
        raise PatchError(f"the encoder has no {table!r} initializer")
    users = [i for i, node in enumerate(graph.node) if table in node.input]
    if len(users) != 1 or graph.node[users[0]].op_type != "Add":
        raise PatchError(f"expected {table!r} to be read by exactly one Add node")
    index = users[0]
    add = graph.node[index]
    hidden = next(name for name in add.input if name != table)
    nodes, constants, cut = short_window_nodes(hidden, table)
    graph.initializer.extend(constants)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)
    for k, name in enumerate(add.input):
        if name == table:
            add.input[k] = cut
    kept = [out for out in graph.output if not out.name.startswith(DROPPED_OUTPUTS)]
    del graph.output[:]
    graph.output.extend(kept)
    return model


def patch_encoder_bytes(data: bytes) -> bytes:
    """The serialized patched encoder for the serialized original ``data``."""
    onnx = require_onnx()
    model = onnx.load_from_string(data)
    return patch_short_windows(model).SerializeToString()
