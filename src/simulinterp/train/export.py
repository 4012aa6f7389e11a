"""Export a peft LoRA adapter as a llama.cpp LoRA GGUF that runs on the packaged quantized model.

Why a LoRA GGUF and not a merged model: the packaged model is a Q4_K_M GGUF checked by sha256.
Merging needs full-precision base weights (dequantizing Q4_K_M and quantizing again compounds
the rounding), writes a new ~490 MB file per training run and replaces the verified model. A
LoRA GGUF of ``r=16`` on the seven projections of the 0.5B model holds 8.8 M parameters (about
18 MB in f16), leaves the packaged model untouched, loads in a second next to it (llama.cpp adds
``scale * B @ (A @ x)`` to each adapted matrix product) and can be scaled or dropped at load time.

The file follows llama.cpp's ``convert_lora_to_gguf.py``: ``general.type = "adapter"``,
``adapter.type = "lora"``, ``adapter.lora.alpha``, and a pair of tensors per adapted weight
named after the base tensor, e.g. ``blk.3.attn_q.weight.lora_a`` and ``.lora_b``. peft stores
``lora_A`` as ``(r, in)`` and ``lora_B`` as ``(out, r)`` (rows first); GGUF lists dimensions
fastest first, so they are written as they are and read by llama.cpp as ``ne = [in, r]`` and
``[r, out]``, which is what it checks against the base weight's ``[in, out]``. Qwen2's q/k rows
are not reordered by the HF to GGUF conversion (unlike LLaMA's), so no permutation is needed.

llama.cpp scales each update by ``alpha / rank`` (the rank read from the tensor), peft by
``lora_alpha / r``, or ``lora_alpha / sqrt(r)`` with rsLoRA. The written alpha is peft's scaling
times ``r``; a module whose own rank or alpha (``rank_pattern``, ``alpha_pattern``) gives another
scaling has the ratio folded into its ``lora_b``, so every update equals peft's delta weight.
"""

from __future__ import annotations

import json
import logging
import math
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

ARCHITECTURE = "qwen2"
"""The only architecture exported: others (LLaMA) reorder q/k rows on conversion."""

_SUPPORTED_TENSORS = ("ATTN_Q", "ATTN_K", "ATTN_V", "ATTN_OUT", "FFN_GATE", "FFN_UP", "FFN_DOWN")
"""``gguf.MODEL_TENSOR`` members that llama.cpp adapts in a Qwen2 block."""

_SUPPORTED_HINT = "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"

_REFUSED_OPTIONS = {
    "use_dora": "DoRA learns a magnitude vector that llama.cpp adapters cannot carry",
    "lora_bias": "a bias trained on lora_B is not part of llama.cpp adapters",
    "use_qalora": "QALoRA pools the input of lora_A, which llama.cpp does not do",
    "alora_invocation_tokens": "activated LoRA (alora_invocation_tokens) is not exported",
    "target_parameters": "LoRA on raw parameters (target_parameters) is not exported",
    "modules_to_save": "fully trained modules (modules_to_save) are not part of a LoRA GGUF",
    "trainable_token_indices": "trained token embeddings are not part of a LoRA GGUF",
    "layer_replication": "replicated layers do not exist in the base GGUF",
    "kasa_config": "the KaSA variant changes the forward pass",
    "monteclora_config": "the MonteCLoRA variant changes the forward pass",
    "use_bdlora": "the BD-LoRA variant changes the forward pass",
    "arrow_config": "Arrow routing changes the forward pass",
}
"""adapter_config.json options that must be unset, each with why."""

_BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq", "lora_ga")
"""``init_lora_weights`` methods that also rewrite the base weights."""

_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.(?P<part>lora_[AB])\.weight$")
_LAYER = re.compile(r"\.layers\.(\d+)\.")
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


class AdapterExportError(ValueError):
    """The adapter cannot be exported; the message says why and what to do."""


@dataclass(frozen=True)
class LoraExport:
    """What :func:`export_lora_gguf` wrote.

    Attributes:
        path: the LoRA GGUF.
        tensors: tensors written: a ``lora_a`` and a ``lora_b`` per adapted weight.
        rank: the adapter's rank ``r`` (modules named in ``rank_pattern`` may differ).
        alpha: ``adapter.lora.alpha``: llama.cpp scales each update by ``alpha / rank``.
        bytes: the file's size.
    """

    path: Path
    tensors: int
    rank: int
    alpha: float
    bytes: int


def export_lora_gguf(
    adapter_dir: Path,
    output: Path,
    *,
    base_gguf: Path | None = None,
    dtype: Literal["f16", "f32"] = "f16",
) -> LoraExport:
    """Write the peft LoRA adapter in ``adapter_dir`` as a llama.cpp LoRA GGUF.

    Args:
        adapter_dir: a directory written by peft's ``save_pretrained`` (``adapter_config.json``
            and ``adapter_model.safetensors``) for a Qwen2 model.
        output: the GGUF to write; written to a temporary file first, then renamed.
        base_gguf: the base model GGUF; when given, every adapted weight is checked against it
            (name and shape), so a mismatch fails here rather than when llama.cpp loads.
        dtype: the tensors' type in the file, ``f16`` (as llama.cpp's converter) or ``f32``.

    Raises:
        AdapterExportError: the directory is not a peft LoRA adapter, uses an option llama.cpp
            cannot run, adapts modules other than the attention and MLP projections, or does
            not fit ``base_gguf``.
    """
    import gguf

    if dtype not in ("f16", "f32"):
        raise AdapterExportError(f"dtype must be f16 or f32, not {dtype!r}")
    config = _read_adapter_config(Path(adapter_dir))
    weights = _read_safetensors(Path(adapter_dir) / "adapter_model.safetensors")
    pairs, unexpected = _lora_pairs(weights)
    base_shapes, n_blocks = _read_base(Path(base_gguf)) if base_gguf else (None, 0)
    n_blocks = n_blocks or _block_count(pairs)
    names = _gguf_names(pairs, gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, n_blocks))
    _refuse_unexpected(unexpected, has_pairs=bool(pairs))
    rank = int(config["r"])
    alpha = _scaling(config, rank, float(config["lora_alpha"])) * rank
    if alpha == 0:
        raise AdapterExportError("lora_alpha is 0: the adapter changes nothing; retrain it")
    tensors: list[tuple[str, np.ndarray]] = []
    for module, (lora_a, lora_b) in sorted(pairs.items(), key=lambda item: names[item[0]]):
        module_rank = lora_a.shape[0]
        scaling = _scaling(config, module_rank, _module_alpha(config, module))
        factor = scaling * module_rank / alpha
        if not math.isclose(factor, 1.0, rel_tol=1e-9):
            lora_b = lora_b * np.float32(factor)
        if base_shapes is not None:
            _check_base_shape(names[module], lora_a, lora_b, base_shapes)
        tensors.append((f"{names[module]}.lora_a", lora_a))
        tensors.append((f"{names[module]}.lora_b", lora_b))
    out_type = np.float16 if dtype == "f16" else np.float32
    tensors = [(name, _cast(name, array, out_type)) for name, array in tensors]
    path = Path(output)
    _write_atomically(path, alpha, tensors, Path(adapter_dir).resolve().name)
    size = path.stat().st_size
    logger.info(
        "wrote %s: %d tensors, r=%d, alpha=%g, %d bytes", path, len(tensors), rank, alpha, size
    )
    return LoraExport(path=path, tensors=len(tensors), rank=rank, alpha=alpha, bytes=size)


def _read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """``adapter_config.json``, checked to be a plain LoRA that llama.cpp can run."""
    if not adapter_dir.is_dir():
        raise AdapterExportError(f"adapter directory not found: {adapter_dir}")
    config_path = adapter_dir / "adapter_config.json"
    weights_path = adapter_dir / "adapter_model.safetensors"
    if not config_path.is_file():
        raise AdapterExportError(
            f"{adapter_dir} has no adapter_config.json: save the adapter with peft's "
            "save_pretrained"
        )
    if not weights_path.is_file():
        raise AdapterExportError(
            f"{adapter_dir} has no adapter_model.safetensors: save the adapter with peft's "
            "save_pretrained(..., safe_serialization=True)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise AdapterExportError(f"cannot read {config_path}: {err}") from err
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        kind = config.get("peft_type") if isinstance(config, dict) else None
        raise AdapterExportError(f"{adapter_dir} holds a {kind} adapter; only LoRA is exported")
    refused = [f"{key}: {why}" for key, why in _REFUSED_OPTIONS.items() if config.get(key)]
    if config.get("bias", "none") != "none":
        refused.append(f"bias={config['bias']!r}: trained base biases are not part of a LoRA GGUF")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(_BASE_CHANGING_INITS):
        refused.append(
            f"init_lora_weights={init!r} also changed the base weights: save the adapter with "
            "path_initial_model_for_weight_conversion to turn it into a plain LoRA"
        )
    if refused:
        raise AdapterExportError(f"cannot export {adapter_dir}: " + "; ".join(refused))
    return config


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as float32 arrays (F32, F16 or BF16)."""
    data = path.read_bytes()
    header_bytes = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + header_bytes])
    except ValueError as err:
        raise AdapterExportError(f"{path} is not a safetensors file: {err}") from err
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        stored = _SAFETENSORS_DTYPES.get(info["dtype"])
        if stored is None:
            raise AdapterExportError(f"{path}: tensor {key} has unsupported dtype {info['dtype']}")
        start, end = (8 + header_bytes + offset for offset in info["data_offsets"])
        array = np.frombuffer(data[start:end], dtype=stored).reshape(info["shape"])
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[key] = array.astype(np.float32)
    return tensors


def _lora_pairs(
    tensors: dict[str, np.ndarray],
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """``{module: (lora_A, lora_B)}`` from peft's state dict, and the keys of other tensors."""
    parts: dict[str, dict[str, np.ndarray]] = {}
    unexpected = []
    for key, array in tensors.items():
        match = _KEY.match(key)
        if match is None:
            unexpected.append(key)
        else:
            parts.setdefault(match["module"], {})[match["part"]] = array
    pairs = {}
    for module, found in parts.items():
        lora_a, lora_b = found.get("lora_A"), found.get("lora_B")
        if lora_a is None or lora_b is None:
            raise AdapterExportError(f"{module} has lora_A or lora_B missing")
        if lora_a.ndim != 2 or lora_b.ndim != 2 or lora_a.shape[0] != lora_b.shape[1]:
            raise AdapterExportError(
                f"{module}: lora_A {lora_a.shape} and lora_B {lora_b.shape} are not (r, in) "
                "and (out, r)"
            )
        pairs[module] = (lora_a, lora_b)
    return pairs, unexpected


def _refuse_unexpected(unexpected: list[str], *, has_pairs: bool) -> None:
    """Refuse tensors that are not LoRA pairs, and an adapter without any pair."""
    if unexpected:
        hint = ""
        if any("lora_embedding" in key for key in unexpected):
            hint = f" (token embeddings are not supported; target {_SUPPORTED_HINT})"
        elif any("lora_magnitude_vector" in key for key in unexpected):
            hint = " (DoRA is not supported)"
        raise AdapterExportError(f"unsupported adapter tensors{hint}: {', '.join(unexpected)}")
    if not has_pairs:
        raise AdapterExportError("the adapter has no LoRA tensors")


def _block_count(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> int:
    """Blocks to map names for when no base GGUF says: enough for the adapter's layers."""
    layers = [int(m[1]) for module in pairs if (m := _LAYER.search(f".{module}."))]
    return max(layers, default=0) + 1


def _gguf_names(pairs: dict[str, Any], name_map: Any) -> dict[str, str]:
    """GGUF base tensor names (``blk.0.attn_q.weight``) of the adapted modules."""
    import gguf

    supported = {gguf.MODEL_TENSOR[name] for name in _SUPPORTED_TENSORS}
    names, refused = {}, []
    for module in pairs:
        found = name_map.get_type_and_name(f"{module}.weight", try_suffixes=(".weight",))
        if found is None or found[0] not in supported:
            refused.append(module)
        else:
            names[module] = found[1]
    if refused:
        raise AdapterExportError(
            f"unsupported target modules: {', '.join(sorted(refused))}; llama.cpp adapters are "
            f"exported for the attention and MLP projections ({_SUPPORTED_HINT})"
        )
    return names


def _scaling(config: dict[str, Any], rank: int, alpha: float) -> float:
    """peft's update scaling: ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA."""
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _module_alpha(config: dict[str, Any], module: str) -> float:
    """``lora_alpha``, or the first ``alpha_pattern`` entry that matches ``module`` (as peft)."""
    for pattern, alpha in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            return float(alpha)
    return float(config["lora_alpha"])


def _read_base(base_gguf: Path) -> tuple[dict[str, list[int]], int]:
    """The base GGUF's ``{tensor name: ne}`` and block count; checks its architecture.

    Reads the header directly: ``gguf.GGUFReader`` takes about 9 s on the packaged model, most
    of it making an array view of each of its 300,000 vocabulary and merge strings.
    """
    if not base_gguf.is_file():
        raise AdapterExportError(f"base GGUF not found: {base_gguf}")
    with base_gguf.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF" or struct.unpack_from("<I", data, 4)[0] not in (2, 3):
            raise AdapterExportError(f"{base_gguf} is not a little-endian GGUF (v2 or v3)")
        n_tensors, n_values = struct.unpack_from("<QQ", data, 8)
        offset, values = 24, {}
        for _ in range(n_values):
            key, offset = _gguf_string(data, offset)
            value_type, start = struct.unpack_from("<I", data, offset)[0], offset + 4
            offset = _skip_gguf_value(data, start, value_type)
            if key == "general.architecture" or key.endswith(".block_count"):
                values[key] = data[start:offset]
        shapes = {}
        for _ in range(n_tensors):
            name, offset = _gguf_string(data, offset)
            n_dims = struct.unpack_from("<I", data, offset)[0]
            shapes[name] = list(struct.unpack_from(f"<{n_dims}Q", data, offset + 4))
            offset += 4 + 8 * n_dims + 4 + 8  # dims, then the type and the data offset
    arch = values["general.architecture"][8:].decode() if "general.architecture" in values else "?"
    blocks = values.get(f"{arch}.block_count")
    if arch != ARCHITECTURE or blocks is None:
        raise AdapterExportError(
            f"{base_gguf} is a {arch} model; only {ARCHITECTURE} adapters are exported"
        )
    return shapes, int.from_bytes(blocks, "little")


_GGUF_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_string(data: mmap.mmap, offset: int) -> tuple[str, int]:
    """The GGUF string at ``offset`` (u64 length, UTF-8 bytes) and the offset after it."""
    length = struct.unpack_from("<Q", data, offset)[0]
    end = offset + 8 + length
    return data[offset + 8 : end].decode("utf-8", errors="replace"), end


def _skip_gguf_value(data: mmap.mmap, offset: int, value_type: int) -> int:
    """The offset after the GGUF value of ``value_type`` at ``offset``."""
    if value_type == _GGUF_STRING:
        return offset + 8 + struct.unpack_from("<Q", data, offset)[0]
    if value_type != _GGUF_ARRAY:
        return offset + _GGUF_SCALAR_BYTES[value_type]
    item_type, count = struct.unpack_from("<IQ", data, offset)
    offset += 12
    if item_type in _GGUF_SCALAR_BYTES:
        return offset + count * _GGUF_SCALAR_BYTES[item_type]
    for _ in range(count):
        offset = _skip_gguf_value(data, offset, item_type)
    return offset


def _check_base_shape(
    name: str, lora_a: np.ndarray, lora_b: np.ndarray, base_shapes: dict[str, list[int]]
) -> None:
    """The base weight ``name`` exists with ``ne = [in, out]`` matching the LoRA pair."""
    if name not in base_shapes:
        raise AdapterExportError(f"the base GGUF has no tensor {name}: wrong base model?")
    expected = [lora_a.shape[1], lora_b.shape[0]]
    if base_shapes[name] != expected:
        raise AdapterExportError(
            f"{name} is {base_shapes[name]} (in, out) in the base GGUF but the adapter gives "
            f"{expected}: the adapter was trained on another model"
        )


def _cast(name: str, array: np.ndarray, out_type: type) -> np.ndarray:
    """``array`` as ``out_type``, C-contiguous, refusing values that do not fit."""
    cast = np.ascontiguousarray(array, dtype=out_type)
    if not np.isfinite(cast).all():
        raise AdapterExportError(f"{name} has values that do not fit {np.dtype(out_type)}")
    return cast


def _write_atomically(
    path: Path, alpha: float, tensors: list[tuple[str, np.ndarray]], name: str
) -> None:
    """Write the adapter GGUF to a temporary file beside ``path``, then rename it."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    temp_name = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(temp_name, ARCHITECTURE)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(name)
        for tensor_name, array in tensors:
            writer.add_tensor(tensor_name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
