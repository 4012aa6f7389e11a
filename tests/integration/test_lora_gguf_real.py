"""A peft LoRA exported to GGUF runs in llama.cpp on the packaged Qwen2.5 0.5B as peft runs it.

The packaged Q4_K_M GGUF is dequantized into transformers once, wrapped with a deterministic
random rsLoRA on all seven projections (each update 8 % of its weight's norm), saved, exported
against the base GGUF and loaded into llama.cpp next to the same base. Both sides then share the
base weights, so greedy tokens match and log-probabilities differ only by llama.cpp's quantized
activations. Runtime: loading the GGUF into transformers takes about 50 s (tokenizer and
dequantization), peft's greedy decoding about 15 s, the export under 1 s, each of the three
llama.cpp runs about 3 s; the whole module took 125 s on two CPU cores shared with a training
job. ``SIMULINTERP_TEST_THREADS`` sets llama.cpp's threads.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulinterp.llm.base import Continuation
from simulinterp.train.export import LoraExport, export_lora_gguf

pytestmark = [pytest.mark.integration, pytest.mark.torch]

PROMPTS = (
    "Translate into English.\nChinese: 我们需要讨论明年的预算。\nEnglish:",
    "import numpy as np\n\n# the mean of each row of a matrix\ndef row_means(matrix):\n",
    "Monday, Tuesday, Wednesday,",
    "The capital of France is",
)
NEW_TOKENS = 6
CLEAR_CHOICE = math.log(0.6)
"""A greedy token at least this likely leads the runner-up by 0.4 nats or more: no near-tie."""
RELATIVE_UPDATE = 0.08
"""``|delta W| / |W|`` (Frobenius) of every adapted weight: outputs move, text stays sane."""
RANK, ALPHA = 8, 16


@dataclass(frozen=True)
class Runs:
    """Greedy continuations of :data:`PROMPTS` on every side, and the exported adapter."""

    report: LoraExport
    peft: list[Continuation]
    base: list[Continuation]
    lora: list[Continuation]
    lora_off: list[Continuation]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    from simulinterp.llm.models import ModelNotFoundError, ensure_model

    pytest.importorskip("peft")
    pytest.importorskip("transformers")
    try:
        model_path = ensure_model("default")
    except ModelNotFoundError as err:
        pytest.skip(f"the packaged default model is not installed: {err}")
    folder = tmp_path_factory.mktemp("lora")
    peft_runs = _peft_lora(model_path, folder / "adapter")
    report = export_lora_gguf(folder / "adapter", folder / "lora.gguf", base_gguf=model_path)
    return Runs(
        report=report,
        peft=peft_runs,
        base=_llamacpp(model_path, None),
        lora=_llamacpp(model_path, report.path),
        lora_off=_llamacpp(model_path, report.path, lora_scale=0.0),
    )


def _peft_lora(model_path: Path, adapter_dir: Path) -> list[Continuation]:
    """Wrap the dequantized base with the random LoRA, save it, and continue the prompts."""
    import peft
    import torch
    import transformers

    from simulinterp.llm.transformers_backend import TransformersBackend

    where = {"gguf_file": model_path.name, "local_files_only": True}
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path.parent, **where)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_path.parent, dtype=torch.float32, **where
    )
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = peft.LoraConfig(
        r=RANK, lora_alpha=ALPHA, use_rslora=True, target_modules=targets, init_lora_weights=False
    )
    lora = peft.get_peft_model(model, config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in lora.modules():
            if isinstance(module, peft.tuners.lora.Linear):
                lora_a, lora_b = module.lora_A["default"].weight, module.lora_B["default"].weight
                lora_a.copy_(
                    torch.randn(lora_a.shape, generator=generator) / lora_a.shape[1] ** 0.5
                )
                lora_b.copy_(torch.randn(lora_b.shape, generator=generator))
                ratio = module.get_delta_weight("default").norm() / module.base_layer.weight.norm()
                lora_b.mul_(RELATIVE_UPDATE / ratio)
    lora.save_pretrained(adapter_dir)
    adapted = TransformersBackend(lora, tokenizer)
    continuations = [adapted.continue_text(p, max_tokens=NEW_TOKENS) for p in PROMPTS]
    adapted.close()
    return continuations


def _llamacpp(model_path: Path, lora: Path | None, lora_scale: float = 1.0) -> list[Continuation]:
    from simulinterp.llm.llamacpp import LlamaCppBackend

    threads = int(os.environ.get("SIMULINTERP_TEST_THREADS", "0"))
    backend = LlamaCppBackend(
        model_path, context_tokens=512, threads=threads, lora=lora, lora_scale=lora_scale
    )
    continuations = [backend.continue_text(p, max_tokens=NEW_TOKENS) for p in PROMPTS]
    backend.close()
    return continuations


def _common(*continuations: Continuation) -> int:
    """Leading tokens with the same text in every continuation."""
    count = 0
    for tokens in zip(*(c.tokens for c in continuations), strict=False):
        if len({token.text for token in tokens}) > 1:
            break
        count += 1
    return count


def _gap(left: Continuation, right: Continuation, tokens: int) -> float:
    """Summed absolute log-probability difference over the first ``tokens`` tokens."""
    pairs = zip(left.tokens[:tokens], right.tokens[:tokens], strict=True)
    return sum(abs(a.logprob - b.logprob) for a, b in pairs)


def test_the_export_covers_every_projection_of_the_base(runs: Runs) -> None:
    report = runs.report
    assert report.tensors == 2 * 7 * 24  # lora_a and lora_b, 7 projections, 24 blocks
    assert report.rank == RANK
    assert report.alpha == pytest.approx(ALPHA / math.sqrt(RANK) * RANK)  # rsLoRA
    assert 5e6 < report.bytes < 12e6  # 4.4 M parameters in f16


def test_the_adapter_changes_llamacpp_output(runs: Runs) -> None:
    for lora, base in zip(runs.lora, runs.base, strict=True):
        same = _common(lora, base)
        pairs = zip(lora.tokens[:same], base.tokens[:same], strict=True)
        shifts = [abs(a.logprob - b.logprob) for a, b in pairs]
        assert max(shifts, default=1.0) > 0.05, (lora.text, base.text)  # default: a new text
    for off, base in zip(runs.lora_off, runs.base, strict=True):
        assert off.text == base.text  # lora_scale=0 is the base model
        assert _gap(off, base, len(base.tokens)) < 1e-3


def test_llamacpp_with_the_adapter_agrees_with_peft(runs: Runs) -> None:
    compared = 0
    for lora, reference in zip(runs.lora, runs.peft, strict=True):
        agreed = _common(lora, reference)
        if agreed < len(reference.tokens):  # they may part only where peft's choice is unclear
            assert reference.tokens[agreed].logprob < CLEAR_CHOICE, (lora.text, reference.text)
        for ours, theirs in zip(lora.tokens[:agreed], reference.tokens[:agreed], strict=True):
            assert ours.logprob == pytest.approx(theirs.logprob, abs=0.15), reference.text
        compared += agreed
    assert compared >= 0.75 * NEW_TOKENS * len(PROMPTS)
    # the agreement is the adapter's: without it llama.cpp is much further from peft
    with_adapter = without = 0.0
    for lora, base, reference in zip(runs.lora, runs.base, runs.peft, strict=True):
        same = _common(lora, base, reference)
        with_adapter += _gap(lora, reference, same)
        without += _gap(base, reference, same)
    assert with_adapter < 0.35 * without, (with_adapter, without)
