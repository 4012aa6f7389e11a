"""The model side of training: loading (checkpoint, GGUF, packaged preset or a trained adapter),
LoRA, masked loss. The one loading path of SFT and RL.

Imports torch, transformers and peft; the rest of :mod:`simulinterp.train` does not (the RL
rollouts and trainer, which run the model, import this module).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from simulinterp.llm.adapter_info import adapter_metadata
from simulinterp.train.mask import IGNORE, Layout

if TYPE_CHECKING:
    from simulinterp.train.config import ModelSetup

logger = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class MaskedLossModel(nn.Module):
    """A causal LM that takes 4-D masks and returns the mean loss over target tokens.

    The language-model head runs only on the rows with a label. Going through this module's
    ``forward`` keeps data-parallel wrappers (DDP) in charge of gradient synchronisation.
    """

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Any, position_ids: Any, attention_mask: Any, labels: Any) -> Any:
        lm = causal_lm(self.model)
        with low_precision(lm, input_ids.device):
            return self._loss(lm, input_ids, position_ids, attention_mask, labels)

    def _loss(
        self, lm: Any, input_ids: Any, position_ids: Any, attention_mask: Any, labels: Any
    ) -> Any:
        hidden = lm.model(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            use_cache=False,
        ).last_hidden_state
        keep = labels != IGNORE
        logits = lm.lm_head(hidden[keep]).float()
        return nn.functional.cross_entropy(logits, labels[keep])


def low_precision(lm: Any, device: Any) -> Any:
    """Autocast to the base model's half dtype when it has one (``--dtype bfloat16``).

    The LoRA weights stay float32 (peft keeps adapters in full precision), so without it their
    matrix products, and the activations around them, run in float32: on a CPU with bf16
    instructions autocast takes a LoRA step from 2.0x to 2.3x the float32 speed.
    """
    dtype = getattr(lm, "dtype", torch.float32)
    if dtype not in (torch.bfloat16, torch.float16):
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def to_tensors(batch: Layout, model: Any, device: Any) -> dict[str, Any]:
    """A padded batch as model inputs; the mask is boolean or additive as attention wants."""
    visible = torch.from_numpy(batch.visible)[:, None].to(device)
    return {
        "input_ids": torch.from_numpy(batch.input_ids).to(device),
        "position_ids": torch.from_numpy(batch.positions).to(device),
        "attention_mask": attention_mask(visible, model),
        "labels": torch.from_numpy(batch.labels).to(device),
    }


def attention_mask(visible: Any, model: Any) -> Any:
    """``visible`` (True: may attend) in the form the model's attention takes.

    SDPA and flex attention take booleans; eager attention adds the mask to its scores.
    """
    if getattr(model.config, "_attn_implementation", "sdpa") != "eager":
        return visible
    dtype = next(model.parameters()).dtype
    return torch.zeros(visible.shape, dtype=dtype, device=visible.device).masked_fill(
        ~visible, torch.finfo(dtype).min
    )


def load_for_training(setup: ModelSetup | Any, device: Any) -> tuple[Any, Any]:
    """Load the model and tokenizer to train, with a trainable LoRA unless ``full``.

    Args:
        setup: a :class:`~simulinterp.train.config.ModelSetup`, or a job's config that has one
            as ``model_setup``. A folder written by ``train sft``/``train rl`` loads its base
            model with its adapter, trainable (the adapter's own rank is kept).
        device: where the model goes.

    Raises:
        FileNotFoundError: the model path does not exist.
        ValueError: transformers cannot load it.
    """
    import transformers

    setup = getattr(setup, "model_setup", setup)
    adapter = trained_adapter(setup.model)
    base = str(adapter_metadata(adapter)["base_model"]) if adapter else setup.model
    root, gguf_file = resolve_model(base)
    dtype = _dtype(setup.dtype, device)
    problem = half_precision_problem(dtype, device)
    if problem:
        logger.warning(problem)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
        logger.info("dequantizing %s (a GGUF loads in about 40 s for 0.5B)", gguf_file)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(root), **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(root), dtype=dtype, attn_implementation="sdpa", **kwargs
        )
    except (OSError, ValueError) as err:
        raise ValueError(f"transformers could not load {base}: {err}") from err
    if gguf_file is not None:  # dequantized: plain tensors, but marked as unsaveable
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    model.to(device)
    model.config.use_cache = False
    import peft

    if adapter is not None:
        model = peft.PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
        logger.info("continuing the adapter in %s (base %s)", adapter, base)
        return model, tokenizer
    if setup.full:
        model.train()
        return model, tokenizer
    lora = peft.LoraConfig(
        r=setup.lora_rank,
        lora_alpha=setup.lora_alpha,
        lora_dropout=0.0,
        target_modules=list(_lora_targets(model)),
        task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("LoRA rank %d: %.2f M trainable parameters", setup.lora_rank, trainable / 1e6)
    return model, tokenizer


def trained_adapter(name: str) -> Path | None:
    """``name`` as the folder of a LoRA adapter this project trained, or ``None``.

    Raises:
        ValueError: an adapter folder whose ``simulinterp.json`` does not name its base model.
    """
    path = Path(name)
    if not (path / "adapter_config.json").is_file():
        return None
    if "base_model" not in adapter_metadata(path):
        raise ValueError(f"{path} holds an adapter but no simulinterp.json naming its base model")
    return path


def resolve_model(name: str) -> tuple[Path, str | None]:
    """A directory and, for GGUF models, the file in it (presets join their packaged parts)."""
    from simulinterp.llm.models import ensure_model, preset_name

    path = ensure_model(name) if preset_name(name) else Path(name)
    if not path.exists():
        raise FileNotFoundError(f"no such model: {name} (a checkpoint folder or a .gguf file)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"{path} is a file but not a .gguf model")
        return path.parent, path.name
    ggufs = sorted(path.glob("*.gguf"))
    if not (path / "config.json").is_file() and len(ggufs) == 1:
        return path, ggufs[0].name
    return path, None


def _lora_targets(model: Any) -> tuple[str, ...]:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = tuple(t for t in LORA_TARGETS if t in names)
    if not found:
        raise ValueError("the model has none of the usual projection layers for LoRA")
    return found


def half_precision_problem(dtype: Any, device: Any) -> str | None:
    """Why ``dtype`` would be slow on ``device``: a CPU without half-precision matrix
    instructions (AVX512-BF16 or AMX for bf16) falls back to a reference matrix product,
    which ran at 0.9 GFLOP/s against 145 in float32 on an AVX2-only EPYC. None when it is fine.
    """
    if torch.device(device).type != "cpu" or dtype not in (torch.bfloat16, torch.float16):
        return None
    supported = (
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
        if dtype == torch.bfloat16
        else torch.ops.mkldnn._is_mkldnn_fp16_supported()
    )
    if supported:
        return None
    name = str(dtype).removeprefix("torch.")
    return (
        f"this CPU has no {name} matrix instructions (AVX512-BF16 or AMX; it reports "
        f"{torch.backends.cpu.get_cpu_capability()}): training in {name} will run about 100 "
        "times slower than in float32 here; use --dtype float32 (or auto)"
    )


def _dtype(name: str, device: Any) -> Any:
    if name == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, name)


def causal_lm(model: Any) -> Any:
    """The ``*ForCausalLM`` inside a peft wrapper (LoRA layers are injected in place)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
