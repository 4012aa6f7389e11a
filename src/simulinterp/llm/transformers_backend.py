"""A PyTorch backend through Hugging Face ``transformers`` (the training and GPU path).

Decoding is greedy, one token at a time, over a ``past_key_values`` cache that survives between
calls: the next call crops the cache to the longest common prefix of its token ids with the
previous ones and runs only the new suffix, as llama.cpp's ``cache_prompt`` does.

torch, transformers and peft (the ``[torch]`` extra) are imported when a backend is made.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from simulinterp.lang import has_cjk
from simulinterp.llm.base import Continuation, LLMError, Token
from simulinterp.llm.vocab import CJK_LEAD_BYTES, LatinTokens, byte_decoder, is_latin_text

logger = logging.getLogger(__name__)

_EXTRA_EOS_TOKENS = ("<|im_end|>", "<|endoftext|>")
_DECODE_CONTEXT_TOKENS = 4
"""Input tokens decoded before the generated ones, so that leading spaces come out right."""


def _require(module: str) -> Any:
    """Import an optional dependency or fail with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        hint = "pip install 'simulinterp[torch]'"
        raise LLMError(f"the transformers backend needs {module}: {hint}") from err


class TransformersBackend:
    """Greedy forced-prefix continuation with a ``transformers`` causal language model.

    Args:
        model: a loaded causal LM (``AutoModelForCausalLM``, possibly wrapped by peft), used
            as it is: put it in ``eval()`` mode for deterministic output.
        tokenizer: its tokenizer.
    """

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any):
        self._torch = _require("torch")
        self._model = model
        self._tokenizer = tokenizer
        self._device = next(model.parameters()).device
        self.context_tokens = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
        self._eos_ids = _eos_token_ids(model, tokenizer)
        self._logits_kwarg = _logits_to_keep_kwarg(model)
        self._cached_ids: list[int] = []
        self._cache: Any = None
        self._cjk_ids: Any = None
        self._latin: LatinTokens | None = None
        self._latin_masks: dict[frozenset[str], Any] = {}

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        adapter: str | Path | None = None,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
    ) -> TransformersBackend:
        """Load a local checkpoint directory (never the hub).

        Args:
            path: a directory written by ``save_pretrained``, or a directory holding
                ``gguf_file``, or a ``.gguf`` file itself.
            adapter: a directory holding a peft (LoRA) adapter to apply.
            gguf_file: a GGUF file inside ``path`` (or an absolute path); transformers
                dequantizes it to ``dtype``.
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; defaults to CUDA when available.
            dtype: ``"auto"`` (the checkpoint's), ``"float32"``, ``"bfloat16"``, ``"float16"``.

        Raises:
            LLMError: the path or adapter is missing, or the model does not load.
        """
        torch, transformers = _require("torch"), _require("transformers")
        root = Path(path)
        if gguf_file is None and root.suffix == ".gguf" and root.is_file():
            root, gguf_file = root.parent, root.name
        if not root.is_dir():
            raise LLMError(f"not a local model directory: {path} (hub ids are not downloaded)")
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file is not None:
            gguf = Path(gguf_file) if Path(gguf_file).is_absolute() else root / gguf_file
            if not gguf.is_file():
                raise LLMError(f"GGUF file not found: {gguf}")
            kwargs["gguf_file"] = str(gguf)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype, None)
        if torch_dtype is None:
            raise LLMError(f"unknown dtype: {dtype}")
        from packaging.version import Version  # a dependency of transformers

        old = Version(transformers.__version__) < Version("4.56")
        dtype_key = "torch_dtype" if old else "dtype"  # renamed in 4.56
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(root), **kwargs)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(root), **kwargs, **{dtype_key: torch_dtype}
            )
        except (OSError, ValueError) as err:
            raise LLMError(f"transformers could not load {root}: {err}") from err
        model = model.to(device).eval()
        if adapter is not None:
            model = _load_adapter(model, Path(adapter))
        logger.info("loaded %s on %s (%s)", root, device, model.dtype)
        return cls(model, tokenizer)

    def continue_text(
        self,
        prompt: str,
        prefix: str = "",
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        ban_cjk: bool = False,
        allow_latin: Collection[str] | None = None,
    ) -> Continuation:
        """Generate greedily after ``prompt + prefix``; see :class:`LLMBackend`.

        With ``ban_cjk`` or ``allow_latin`` the banned tokens are removed before the softmax,
        so the reported log-probabilities are those of the constrained distribution.
        """
        if self._model is None:
            raise LLMError("the transformers backend is closed")
        input_ids = self._tokenizer.encode(prompt + prefix, add_special_tokens=False)
        if not input_ids:
            raise LLMError("nothing to continue: the prompt and prefix are empty")
        room = self.context_tokens - len(input_ids)
        if room <= 0:
            raise LLMError(
                f"{len(input_ids)} prompt tokens exceed the context {self.context_tokens}"
            )
        with self._torch.inference_mode():
            cached = self._reuse_cache(input_ids)
            logits = self._forward(input_ids[cached:])
            banned = self._banned_ids(ban_cjk, allow_latin)
            texts, logprobs, text, finished = self._decode_loop(
                input_ids, logits, min(max_tokens, room), stop, banned
            )
        tokens = _cut_tokens(texts, logprobs, len(text))
        return Continuation(
            text=text,
            tokens=tokens,
            finished=finished,
            prompt_tokens=len(input_ids),
            cached_tokens=cached,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` (without special tokens)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def close(self) -> None:
        """Drop the model and the cache, and return GPU memory to the driver."""
        on_cuda = self._model is not None and self._device.type == "cuda"
        self._model = None
        self._cache = None
        self._cached_ids = []
        if on_cuda:
            self._torch.cuda.empty_cache()

    def _decode_loop(
        self,
        input_ids: list[int],
        logits: Any,
        max_tokens: int,
        stop: Sequence[str],
        banned: Any,
    ) -> tuple[list[str], list[float], str, bool]:
        """Pick tokens greedily until EOS, a stop string or ``max_tokens``.

        Returns:
            Per-token texts (a token ending inside a character gives "" and the one completing
            it the whole character), their log-probabilities, the generated text (cut before a
            stop string; EOS excluded) and whether generation finished by itself.
        """
        torch = self._torch
        texts: list[str] = []
        logprobs: list[float] = []
        generated: list[int] = []
        decoded = ""
        fed = list(input_ids)
        finished = False
        while len(generated) < max_tokens:
            if banned is not None:
                logits[banned] = -float("inf")
            log_probs = torch.log_softmax(logits, dim=-1)
            token_id = int(torch.argmax(log_probs))
            if token_id in self._eos_ids:
                finished = True
                break
            generated.append(token_id)
            logprobs.append(float(log_probs[token_id]))
            # a trailing U+FFFD is a character still incomplete: its bytes wait for the next token
            text = self._decode(input_ids, generated).rstrip("\ufffd")
            texts.append(text[len(decoded) :])
            decoded = text if len(text) > len(decoded) else decoded
            cut = _find_stop(decoded, stop)
            if cut >= 0:
                decoded, finished = decoded[:cut], True
                break
            if len(generated) < max_tokens:
                logits = self._forward([token_id])
                fed.append(token_id)
        self._cached_ids = fed
        return texts, logprobs, decoded, finished

    def _reuse_cache(self, input_ids: list[int]) -> int:
        """Crop the cache to the common prefix with ``input_ids``; return the tokens kept."""
        pairs = zip(self._cached_ids, input_ids, strict=False)
        common = next((i for i, (old, new) in enumerate(pairs) if old != new), None)
        shortest = min(len(self._cached_ids), len(input_ids))
        keep = min(shortest if common is None else common, len(input_ids) - 1)
        if self._cache is not None and 0 < keep:
            remove = self._cache.get_seq_length() - keep
            try:
                if remove > 0:
                    self._cache.crop(-remove)  # negative: remove from the end (all versions)
            except (RuntimeError, ValueError) as err:
                logger.debug("cache crop failed, recomputing: %s", err)
            if self._cache.get_seq_length() == keep:
                self._cached_ids = self._cached_ids[:keep]
                return keep
        self._cache = None
        self._cached_ids = []
        return 0

    def _forward(self, ids: list[int]) -> Any:
        """Run ``ids`` after the cache, keep the grown cache, return the last logits (float32)."""
        torch = self._torch
        input_ids = torch.tensor([ids], dtype=torch.long, device=self._device)
        kwargs = {"past_key_values": self._cache, "use_cache": True, **self._logits_kwarg}
        outputs = self._model(input_ids=input_ids, **kwargs)
        self._cache = outputs.past_key_values
        return outputs.logits[0, -1].float()

    def _decode(self, input_ids: list[int], generated: list[int]) -> str:
        """Text of ``generated``, decoded after a few input tokens for spacing context."""
        context = input_ids[-_DECODE_CONTEXT_TOKENS:]
        options = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
        head = self._tokenizer.decode(context, **options)
        return self._tokenizer.decode(context + generated, **options)[len(head) :]

    def _banned_ids(self, ban_cjk: bool, allow_latin: Collection[str] | None) -> Any:
        """The ids to mask (a tensor), or None when nothing is banned."""
        parts = [self._cjk_token_ids()] if ban_cjk else []
        if allow_latin is not None:
            parts.append(self._latin_token_ids(frozenset(w.lower() for w in allow_latin)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else self._torch.cat(parts)

    def _latin_token_ids(self, allowed: frozenset[str]) -> Any:
        """Latin tokens that cannot spell ``allowed`` (the last few sets are kept)."""
        if self._latin is None:
            self._latin = LatinTokens(latin_token_texts(self._tokenizer))
        if allowed not in self._latin_masks:
            if len(self._latin_masks) >= 8:
                self._latin_masks.pop(next(iter(self._latin_masks)))
            ids = self._latin.banned(allowed)
            torch = self._torch
            self._latin_masks[allowed] = torch.tensor(ids, dtype=torch.long, device=self._device)
        return self._latin_masks[allowed]

    def _cjk_token_ids(self) -> Any:
        """Vocabulary ids whose text holds or begins a CJK character (computed once)."""
        if self._cjk_ids is None:
            ids = cjk_token_ids(self._tokenizer)
            logger.debug("banning %d CJK tokens for English output", len(ids))
            self._cjk_ids = self._torch.tensor(ids, dtype=self._torch.long, device=self._device)
        return self._cjk_ids


def cjk_token_ids(tokenizer: Any) -> list[int]:
    """Ids of ``tokenizer``'s vocabulary that contain, or begin, a CJK character.

    Byte-level BPE pieces are mapped back to their bytes, so a token holding only the lead
    byte of a Chinese character is banned too; other pieces are decoded one by one.
    """
    byte_of = byte_decoder()
    banned = []
    for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(range(len(tokenizer)))):
        if piece and all(ch in byte_of for ch in piece):
            raw = bytes(byte_of[ch] for ch in piece)
            text = raw.decode("utf-8", errors="ignore")
            if has_cjk(text) or not CJK_LEAD_BYTES.isdisjoint(raw):
                banned.append(token_id)
        elif piece and has_cjk(tokenizer.decode([token_id])):
            banned.append(token_id)
    return banned


def latin_token_texts(tokenizer: Any) -> list[tuple[int, str]]:
    """(id, text) of ``tokenizer``'s ordinary tokens whose text holds a Latin letter.

    Special and added tokens (``<|im_end|>``) are left out: they are never banned.
    """
    special = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    byte_of = byte_decoder()
    found = []
    for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(range(len(tokenizer)))):
        if not piece or token_id in special:
            continue
        if all(ch in byte_of for ch in piece):
            text = bytes(byte_of[ch] for ch in piece).decode("utf-8", errors="ignore")
        else:
            text = tokenizer.decode([token_id])
        if is_latin_text(text):
            found.append((token_id, text))
    return found


def _find_stop(text: str, stop: Sequence[str]) -> int:
    """Index of the earliest stop string in ``text``, or -1."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return min(hits) if hits else -1


def _cut_tokens(texts: list[str], logprobs: list[float], length: int) -> tuple[Token, ...]:
    """Tokens whose texts concatenate to the first ``length`` characters.

    All tokens are kept when nothing was cut, including trailing ones inside an unfinished
    character; after a stop-string cut, the tokens past the cut are dropped.
    """
    if length >= sum(len(text) for text in texts):
        return tuple(Token(text, logprob) for text, logprob in zip(texts, logprobs, strict=True))
    tokens = []
    used = 0
    for text, logprob in zip(texts, logprobs, strict=True):
        if used >= length:
            break
        piece = text[: length - used]
        tokens.append(Token(piece, logprob))
        used += len(piece)
    return tuple(tokens)


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """End-of-sequence ids: the tokenizer's, the generation config's, and Qwen's chat ends."""
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(config_eos if isinstance(config_eos, list | tuple) else [config_eos])
    ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _EXTRA_EOS_TOKENS if t in vocab)
    return frozenset(int(i) for i in ids if i is not None)


def _logits_to_keep_kwarg(model: Any) -> dict[str, int]:
    """Ask the model for the last position's logits only, under this version's keyword."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = inspect.signature(base.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in parameters:
            return {name: 1}
    return {}


def _load_adapter(model: Any, adapter: Path) -> Any:
    """Wrap ``model`` with the peft adapter saved in ``adapter``."""
    if not adapter.is_dir():
        raise LLMError(f"adapter directory not found: {adapter}")
    peft = _require("peft")
    try:
        return peft.PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    except (OSError, ValueError) as err:
        raise LLMError(f"peft could not load the adapter {adapter}: {err}") from err
