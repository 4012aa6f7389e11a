"""The default backend: llama.cpp through the prebuilt ``xllamacpp`` wheel, on the CPU.

llama.cpp's server core keeps the key/value cache of the previous request and reuses the longest
common prefix (``cache_prompt``), so a step that appends a source unit or continues the committed
target only pays for the new tokens.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from simulinterp.lang import has_cjk
from simulinterp.llm.base import Continuation, LLMError, Token
from simulinterp.llm.vocab import CJK_LEAD_BYTES, LatinTokens, byte_decoder, is_latin_text

logger = logging.getLogger(__name__)


class LlamaCppBackend:
    """Greedy forced-prefix continuation with llama.cpp.

    Args:
        model_path: a GGUF file (see :func:`simulinterp.llm.models.ensure_model`).
        context_tokens: the context window to allocate.
        threads: CPU threads; defaults to the number of cores.
        lora: a LoRA adapter GGUF for this model (see
            :func:`simulinterp.train.export.export_lora_gguf`), applied to every request.
        lora_scale: the adapter's strength: 1.0 is the trained update, 0.0 none.

    Raises:
        LLMError: a file is missing, ``lora`` is a peft directory, or llama.cpp refuses them.
    """

    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        context_tokens: int = 4096,
        threads: int = 0,
        lora: str | Path | None = None,
        lora_scale: float = 1.0,
    ):
        try:
            import xllamacpp
        except ImportError as err:  # pragma: no cover - a core dependency
            raise LLMError("the llamacpp backend needs xllamacpp: pip install xllamacpp") from err
        path = Path(model_path)
        if not path.is_file():
            raise LLMError(f"GGUF model not found: {path}")
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = context_tokens
        params.n_parallel = 1
        params.warmup = False
        n_threads = threads or max(1, os.cpu_count() or 1)
        params.cpuparams.n_threads = n_threads
        params.cpuparams_batch.n_threads = n_threads
        self.lora_path = _lora_gguf(lora) if lora is not None else None
        if self.lora_path is not None:
            params.lora_adapters = [
                xllamacpp.CommonAdapterLoraInfo(str(self.lora_path), lora_scale)
            ]
        try:
            self._server = xllamacpp.Server(params)
        except Exception as err:
            with_lora = f" with the LoRA {self.lora_path}" if self.lora_path else ""
            raise LLMError(f"llama.cpp could not load {path}{with_lora}: {err}") from err
        self.model_path = path
        self.context_tokens = context_tokens
        self._latin_lists: dict[frozenset[str], list[list[Any]]] = {}

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
        """Generate greedily after ``prompt + prefix``; see :class:`LLMBackend`."""
        request: dict[str, Any] = {
            "prompt": prompt + prefix,
            "n_predict": max(1, max_tokens),
            "n_probs": 1,
            "temperature": 0.0,
            "cache_prompt": True,
            "stop": list(stop),
        }
        biases = [self._cjk_bias] if ban_cjk else []
        if allow_latin is not None:
            biases.append(self._latin_bias(frozenset(w.lower() for w in allow_latin)))
        if biases:
            request["logit_bias"] = biases[0] if len(biases) == 1 else sum(biases, [])
        response = self._call(request)
        choice = response["choices"][0]
        content = (choice.get("logprobs") or {}).get("content") or []
        tokens = tuple(Token(t["token"], float(t["logprob"])) for t in content)
        usage = response.get("usage") or {}
        return Continuation(
            text=choice.get("text", ""),
            tokens=tokens,
            finished=choice.get("finish_reason") == "stop",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)),
        )

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` (asks llama.cpp; the text is left in the cache)."""
        response = self._call({"prompt": text, "n_predict": 0, "cache_prompt": True})
        return int((response.get("usage") or {}).get("prompt_tokens", 0))

    def close(self) -> None:
        self._server = None

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._server is None:
            raise LLMError("the llamacpp backend is closed")
        response = self._server.handle_completions(request)
        if not isinstance(response, dict) or "error" in response or "choices" not in response:
            message = response.get("error") if isinstance(response, dict) else response
            raise LLMError(f"llama.cpp refused the request: {message}")
        return response

    @cached_property
    def _cjk_bias(self) -> list[list[Any]]:
        """``logit_bias`` entries banning every token that holds or starts a CJK character."""
        banned = _cached_cjk_token_ids(self.model_path)
        logger.debug("banning %d CJK tokens for English output", len(banned))
        return [[token_id, False] for token_id in banned]

    @cached_property
    def _latin_tokens(self) -> LatinTokens:
        texts = _cached_vocab(self.model_path, "latin-tokens", latin_token_texts)
        return LatinTokens((int(token_id), str(text)) for token_id, text in texts)

    def _latin_bias(self, allowed: frozenset[str]) -> list[list[Any]]:
        """``logit_bias`` entries banning the Latin tokens that cannot spell ``allowed``.

        The list for the last few allowed sets is kept: a sentence's set changes only when a
        new name arrives, so most steps reuse it.
        """
        cache = self._latin_lists
        if allowed not in cache:
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            banned = self._latin_tokens.banned(allowed)
            logger.debug("banning %d Latin tokens (allowed: %s)", len(banned), sorted(allowed))
            cache[allowed] = [[token_id, False] for token_id in banned]
        return cache[allowed]


def _lora_gguf(lora: str | Path) -> Path:
    """The LoRA GGUF at ``lora`` (or the ``adapter.gguf`` that ``train export-gguf`` put in it).

    A peft directory without one is refused with the command that converts it.
    """
    path = Path(lora)
    if path.is_dir() and (path / "adapter.gguf").is_file():
        return path / "adapter.gguf"
    if (path / "adapter_config.json").is_file():
        raise LLMError(
            f"{path} is a peft adapter directory and llama.cpp needs a LoRA GGUF: run "
            f"'simulinterp train export-gguf {path}' first (it writes {path}/adapter.gguf)"
        )
    if not path.is_file():
        raise LLMError(f"LoRA GGUF not found: {path}")
    return path


def _cached_cjk_token_ids(gguf_path: Path) -> list[int]:
    """:func:`cjk_token_ids`, kept in the model cache (reading the vocabulary takes seconds)."""
    return [int(i) for i in _cached_vocab(gguf_path, "cjk-ids", cjk_token_ids)]


def _cached_vocab(gguf_path: Path, kind: str, compute: Callable[[Path], list[Any]]) -> list[Any]:
    """``compute(gguf_path)``, kept in the model cache as ``NAME.SIZE.KIND.json``."""
    from simulinterp.llm.models import cache_dir

    stat = gguf_path.stat()
    cached = cache_dir() / f"{gguf_path.name}.{stat.st_size}.{kind}.json"
    if cached.is_file():
        return list(json.loads(cached.read_text(encoding="utf-8")))
    found = compute(gguf_path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(found, ensure_ascii=False), encoding="utf-8")
    return found


def cjk_token_ids(gguf_path: Path) -> list[int]:
    """Ids of vocabulary tokens that contain, or begin, a CJK character.

    Reads the vocabulary from the GGUF metadata (byte-level BPE, GPT-2 byte mapping).
    """
    return [
        token_id
        for token_id, raw, _ in _vocabulary(gguf_path)
        if has_cjk(raw.decode("utf-8", errors="ignore")) or not CJK_LEAD_BYTES.isdisjoint(raw)
    ]


def latin_token_texts(gguf_path: Path) -> list[tuple[int, str]]:
    """(id, text) of the ordinary vocabulary tokens whose text holds a Latin letter.

    Control tokens (``<|im_end|>``) and other special ones are left out: they are never banned.
    """
    found = []
    for token_id, raw, ordinary in _vocabulary(gguf_path):
        text = raw.decode("utf-8", errors="ignore")
        if ordinary and is_latin_text(text):
            found.append((token_id, text))
    return found


_NORMAL_TOKEN = 1  # llama.cpp's LLAMA_TOKEN_TYPE_NORMAL in tokenizer.ggml.token_type


def _vocabulary(gguf_path: Path) -> list[tuple[int, bytes, bool]]:
    """(id, raw bytes, is an ordinary token) of every token in the GGUF's vocabulary."""
    try:
        from gguf import GGUFReader
    except ImportError as err:  # pragma: no cover - a core dependency
        raise LLMError("reading the vocabulary needs the gguf package: pip install gguf") from err
    fields = GGUFReader(str(gguf_path)).fields
    tokens, types = fields.get("tokenizer.ggml.tokens"), fields.get("tokenizer.ggml.token_type")
    if tokens is None:
        return []
    kinds = [int(types.parts[i][0]) for i in types.data] if types is not None else []
    decode = byte_decoder()
    out = []
    for token_id, part_index in enumerate(tokens.data):
        piece = bytes(tokens.parts[part_index]).decode("utf-8", errors="replace")
        raw = bytes(decode.get(ch, 0x3F) for ch in piece)
        ordinary = not kinds or kinds[token_id] == _NORMAL_TOKEN
        out.append((token_id, raw, ordinary))
    return out
