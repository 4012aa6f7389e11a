"""``train sft`` on the packaged 0.5B (dequantized from its GGUF), then the adapter translates.

Two LoRA steps on a few WMT pairs (about 40 s to dequantize and 20 s to train on two cores),
then the adapter, loaded by the transformers backend on the same dequantized base, runs the
simultaneous translator on real sentences with the ``plain`` prompt it was trained with.
"""

from __future__ import annotations

import json
import math

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.torch]


@pytest.fixture(scope="module")
def packaged_gguf():
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    from simulinterp.llm.models import ModelNotFoundError, ensure_model

    try:
        return ensure_model("default")
    except ModelNotFoundError as err:
        pytest.skip(f"the packaged model is not installed: {err}")


def test_sft_on_the_packaged_model_then_translate(packaged_gguf, shared_data, tmp_path):
    from simulinterp.eval.runner import EvalData, evaluate
    from simulinterp.llm.transformers_backend import TransformersBackend
    from simulinterp.policy import make_policy
    from simulinterp.train.sft import SFTConfig, train_sft
    from simulinterp.translate import SimultaneousTranslator, TranslatorConfig

    train = shared_data / "text" / "train"
    config = SFTConfig(
        model="default",
        data=str(train),
        output=str(tmp_path / "adapter"),
        direction="zh-en",
        limit=3,
        max_steps=2,
        pack_tokens=512,
        batch_rows=1,
        log_every=1,
    )
    result = train_sft(config)
    assert result.steps == 2 and math.isfinite(result.last_loss)
    assert 0.5 < result.first_loss < 6.0  # a pretrained model, not a random one
    metadata = json.loads((result.output / "simulinterp.json").read_text())
    assert metadata["prompt_style"] == "plain"

    backend = TransformersBackend.from_pretrained(
        packaged_gguf, adapter=result.output, device="cpu", dtype="float32"
    )
    dev = shared_data / "text" / "dev" / "iwslt17_ted_tst2016_zh-en"
    sources = (dev / "source.txt").read_text(encoding="utf-8").splitlines()[:2]
    references = (dev / "ref.txt").read_text(encoding="utf-8").splitlines()[:2]
    translator = SimultaneousTranslator(
        backend,
        make_policy("wait-k", 3, "zh", "en"),
        TranslatorConfig(source_lang="zh", target_lang="en", prompt_style="plain"),
    )
    scores, instances = evaluate(translator, EvalData(sources, references, "zh", "en"), 0.25)
    for instance in instances:
        words = instance.prediction.split()
        assert len(words) >= 3, instance.prediction
        assert sum(w.isascii() for w in words) / len(words) > 0.9, instance.prediction
    assert scores["LAAL"] > 0
