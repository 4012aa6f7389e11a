"""A tiny random Qwen2 model and a byte-level BPE tokenizer with ChatML tokens, built in memory.

No download: the tokenizer is trained on a few sentences (including the training prompt), the
model has two layers of width 32. Used by the training tests.
"""

from __future__ import annotations

from pathlib import Path

from simulinterp.translate.prompts import ASSISTANT_HEADER, prompt_head

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PAIRS = [
    ("我们需要讨论明年的预算。", "We need to discuss next year's budget."),
    ("明天上午九点开会。", "The meeting starts at nine tomorrow morning."),
    ("感谢大家今天来参加会议。", "Thank you all for coming to the meeting today."),
    ("上个季度经济增长了百分之五。", "The economy grew by five percent last quarter."),
    ("气候变化是每个国家面临的挑战。", "Climate change is a challenge for every country."),
    ("我们公司在上海开了一家新工厂。", "Our company opened a new factory in Shanghai."),
    ("部长回答了记者的提问。", "The minister answered questions from the press."),
    ("学生应该在空闲时间多读书。", "Students should read more books in their free time."),
]


def make_tokenizer():
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = [t for pair in PAIRS for t in pair]
    texts += [
        prompt_head(a, b, (), "plain") + ASSISTANT_HEADER for a, b in (("zh", "en"), ("en", "zh"))
    ]
    bpe.train_from_iterator(texts * 3, trainer=trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def make_model(tokenizer, seed: int = 0, attn: str = "sdpa"):
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=0.15,  # logits that LoRA can move within a few steps
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        attn_implementation=attn,
    )
    return transformers.Qwen2ForCausalLM(config).eval()


def write_parallel(root: Path, name: str, pairs: list[tuple[str, str]]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "source.txt").write_text("\n".join(p[0] for p in pairs) + "\n", encoding="utf-8")
    (folder / "ref.txt").write_text("\n".join(p[1] for p in pairs) + "\n", encoding="utf-8")
    return folder


def save_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny model + tokenizer written with ``save_pretrained`` (a local checkpoint)."""
    tokenizer = make_tokenizer()
    make_model(tokenizer, seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
