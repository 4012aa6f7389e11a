"""The transformers backend on a tiny random Qwen2 model and an in-memory BPE tokenizer."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from simulinterp.lang import has_cjk  # noqa: E402
from simulinterp.leaks import latin_runs, spells_allowed  # noqa: E402
from simulinterp.llm.base import LLMBackend, LLMError  # noqa: E402
from simulinterp.llm.transformers_backend import (  # noqa: E402
    TransformersBackend,
    cjk_token_ids,
    latin_token_texts,
)

pytestmark = pytest.mark.torch

SENTENCES = [
    "The meeting will start at nine o'clock tomorrow morning.",
    "We need to discuss the budget for next year.",
    "Thank you all for coming to the conference today.",
    "The economy grew by five percent last quarter.",
    "Please translate the following sentence into English.",
    "Climate change is a challenge for every country.",
    "Our company opened a new factory in Shanghai.",
    "The minister answered questions from the press.",
    "Students should read more books in their free time.",
    "Technology is changing the way we live and work.",
    "明天上午九点开会。",
    "我们需要讨论明年的预算。",
    "感谢大家今天来参加会议。",
    "上个季度经济增长了百分之五。",
    "请把下面的句子翻译成英文。",
    "气候变化是每个国家面临的挑战。",
    "我们公司在上海开了一家新工厂。",
    "部长回答了记者的提问。",
    "学生应该在空闲时间多读书。",
    "科技正在改变我们的生活和工作方式。",
]
PROMPT = "Translate into English.\nChinese: 我们需要讨论明年的预算。\nEnglish:"
EOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=[EOS, "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(SENTENCES * 3, trainer=trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
    )
    return transformers.Qwen2ForCausalLM(config).eval()


@pytest.fixture
def backend(model, tokenizer):
    return TransformersBackend(model, tokenizer)


def _same(left, right) -> None:
    """Two continuations agree token for token, log-probabilities within 1e-4."""
    assert [t.text for t in left.tokens] == [t.text for t in right.tokens]
    assert left.text == right.text
    assert left.finished == right.finished
    for a, b in zip(left.tokens, right.tokens, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_text_is_the_tokens_and_logprobs_are_probabilities(backend):
    result = backend.continue_text(PROMPT, " The", max_tokens=12)
    assert isinstance(backend, LLMBackend)
    assert result.tokens
    assert result.text == "".join(t.text for t in result.tokens)
    assert all(math.isfinite(t.logprob) and t.logprob <= 0 for t in result.tokens)
    assert result.prompt_tokens == backend.count_tokens(PROMPT + " The")
    assert backend.context_tokens == 256


def test_cache_reuse_matches_a_fresh_backend(backend, model, tokenizer):
    prefix = ""
    for step in range(4):
        cached = backend.continue_text(PROMPT, prefix, max_tokens=6)
        fresh = TransformersBackend(model, tokenizer).continue_text(PROMPT, prefix, max_tokens=6)
        _same(cached, fresh)
        assert fresh.cached_tokens == 0
        if step > 0:
            assert cached.cached_tokens > 0
        prefix += cached.tokens[0].text + " the"
    diverged = "Translate into French.\nChinese: 感谢大家今天来参加会议。\nFrench:"
    cached = backend.continue_text(diverged, max_tokens=6)
    fresh = TransformersBackend(model, tokenizer).continue_text(diverged, max_tokens=6)
    _same(cached, fresh)
    assert 0 < cached.cached_tokens < backend.count_tokens("Translate into French")


def test_repeating_the_same_call_is_served_from_the_cache(backend):
    first = backend.continue_text(PROMPT, max_tokens=5)
    again = backend.continue_text(PROMPT, max_tokens=5)
    _same(first, again)
    assert again.cached_tokens == again.prompt_tokens - 1


def test_max_tokens_bounds_generation(backend):
    result = backend.continue_text(PROMPT, max_tokens=3)
    assert len(result.tokens) == 3
    assert not result.finished


def test_stop_string_ends_generation(backend):
    free = backend.continue_text(PROMPT, max_tokens=16)
    stop = free.text[3:5]
    assert stop.strip(), f"the tiny model's output is too short to test stops: {free.text!r}"
    result = backend.continue_text(PROMPT, max_tokens=16, stop=["never produced", stop])
    assert result.finished
    assert result.text == free.text[: free.text.index(stop)]
    assert result.text == "".join(t.text for t in result.tokens)


def test_ban_cjk_keeps_chinese_out(backend, tokenizer):
    free = backend.continue_text(PROMPT, "", max_tokens=20)
    assert has_cjk(free.text), "the fixture should produce Chinese when not banned"
    banned = backend.continue_text(PROMPT, "", max_tokens=20, ban_cjk=True)
    assert banned.tokens
    assert not any(has_cjk(t.text) for t in banned.tokens)
    ids = set(cjk_token_ids(tokenizer))
    for token_id in range(len(tokenizer)):
        if has_cjk(tokenizer.decode([token_id])):
            assert token_id in ids


def test_allow_latin_keeps_other_latin_words_out(backend, tokenizer):
    free = backend.continue_text(PROMPT, " The", max_tokens=20)
    assert latin_runs(free.text), "the fixture should produce Latin letters when not banned"
    allowed = {"meeting"}
    constrained = backend.continue_text(PROMPT, " The", max_tokens=20, allow_latin=allowed)
    assert constrained.tokens
    for token in constrained.tokens:
        assert all(spells_allowed(run, allowed) for run in latin_runs(token.text)), token
    texts = dict(latin_token_texts(tokenizer))
    assert tokenizer.eos_token_id not in texts  # special tokens are never banned
    assert all(latin_runs(text) for text in texts.values())


def test_a_character_split_across_tokens_comes_out_whole(tokenizer):
    script = tokenizer.convert_tokens_to_ids(_byte_pieces("ok中文 "))
    backend = TransformersBackend(_ScriptedLM(script, len(tokenizer)), tokenizer)
    result = backend.continue_text("say:", max_tokens=len(script))
    texts = [t.text for t in result.tokens]
    assert texts == ["o", "k", "", "", "中", "", "", "文", " "]
    cut = backend.continue_text("say:", max_tokens=len(script), stop=["文"])
    assert cut.text == "ok中" and cut.finished
    assert [t.text for t in cut.tokens] == ["o", "k", "", "", "中"]
    short = backend.continue_text("say:", max_tokens=6)
    assert short.text == "ok中" and [t.text for t in short.tokens][-1] == ""


def test_missing_path_raises(tmp_path):
    with pytest.raises(LLMError, match="local model directory"):
        TransformersBackend.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(LLMError, match="local model directory"):
        TransformersBackend.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft on a newer transformers
def test_from_pretrained_with_and_without_adapter(model, tokenizer, backend, tmp_path):
    peft = pytest.importorskip("peft")
    model_dir, adapter_dir = tmp_path / "model", tmp_path / "adapter"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    loaded = TransformersBackend.from_pretrained(model_dir, device="cpu", dtype="float32")
    _same(loaded.continue_text(PROMPT, max_tokens=6), backend.continue_text(PROMPT, max_tokens=6))

    base = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=1.0)
    lora.save_pretrained(adapter_dir)
    adapted = TransformersBackend.from_pretrained(model_dir, adapter=adapter_dir, device="cpu")
    with_adapter = adapted.continue_text(PROMPT, max_tokens=6)
    without = loaded.continue_text(PROMPT, max_tokens=6)
    assert with_adapter.text == "".join(t.text for t in with_adapter.tokens)
    assert [t.logprob for t in with_adapter.tokens] != [t.logprob for t in without.tokens]
    adapted.close()
    with pytest.raises(LLMError, match="closed"):
        adapted.continue_text(PROMPT, max_tokens=1)


def _byte_pieces(text: str) -> list[str]:
    """Byte-level BPE pieces (GPT-2's byte-to-unicode mapping) of each UTF-8 byte of ``text``."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    pieces = byte_level.pre_tokenize_str(text)[0][0]
    assert all(ch in alphabet for ch in pieces)
    return list(pieces)


class _ScriptedCache:
    """The two cache methods the backend uses, over a length counter."""

    def __init__(self) -> None:
        self.length = 0

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, tokens_to_remove: int) -> None:
        self.length += tokens_to_remove


class _ScriptedLM(torch.nn.Module):
    """A "model" whose greedy output after any prompt of the first call is ``script``."""

    def __init__(self, script: list[int], vocab_size: int) -> None:
        super().__init__()
        self.script = script
        self.vocab_size = vocab_size
        self.prompt_length = -1
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_position_embeddings=64)

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        cache = past_key_values or _ScriptedCache()
        if past_key_values is None:
            self.prompt_length = input_ids.shape[1]
        cache.length += input_ids.shape[1]
        step = min(cache.length - self.prompt_length, len(self.script) - 1)
        logits = torch.full((1, input_ids.shape[1], self.vocab_size), -5.0)
        logits[0, -1, self.script[step]] = 5.0
        return SimpleNamespace(logits=logits, past_key_values=cache)
