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
from simulinterp.leaks import latin_runs, spells_allowed
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
        parallel: requests served at once (threads may call concurrently: a server's
            sessions), each in its own slot with its own prompt cache and
            ``context_tokens`` of context.
        prompt_cache_mib: RAM for llama.cpp's cache of evicted prompt states (0: none, each
            slot still reuses its own prompt prefix; None: llama.cpp's default, 8 GiB).

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
        parallel: int = 1,
        prompt_cache_mib: int | None = None,
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
        params.n_ctx = context_tokens * parallel
        params.n_parallel = parallel
        if prompt_cache_mib is not None:  # llama.cpp keeps evicted prompt states in RAM,
            params.cache_ram_mib = prompt_cache_mib  # up to 8 GiB by default
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
        self._latin_sets: dict[frozenset[str], frozenset[int]] = {}
        self._latin_seen: set[int] = set()  # Latin tokens the model has tried to emit

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
        cjk = self._cjk_bias if ban_cjk else []
        if allow_latin is not None:
            allowed = frozenset(w.lower() for w in allow_latin)
            return self._continue_without_latin(request, cjk, allowed)
        if cjk:
            request["logit_bias"] = cjk
        response = self._call(request)
        choice = response["choices"][0]
        content = (choice.get("logprobs") or {}).get("content") or []
        return _continuation(response, choice.get("text", ""), content, response)

    def _continue_without_latin(
        self, request: dict[str, Any], cjk: list[list[Any]], allowed: frozenset[str]
    ) -> Continuation:
        """Greedy generation that never emits a Latin token unable to spell ``allowed``.

        Banning all of them (over 90,000 ids) in every request costs more than the step's
        generation, so tokens are banned on demand: each request bans the Latin tokens the
        model has already tried to emit (kept for the backend's life); when it emits another
        one, the tokens before it are kept, it joins the ban, and generation resumes from the
        kept text (cached). Greedy decoding picks the same tokens as under the full ban; after
        :data:`_ON_DEMAND_ROUNDS` such rounds the last request bans them all.
        """
        banned = self._latin_banned(allowed)
        kept: list[dict[str, Any]] = []
        kept_bytes = b""
        first: dict[str, Any] | None = None
        budget = int(request["n_predict"])
        prompt = request["prompt"]
        ban_all = False
        for round_ in range(_ON_DEMAND_ROUNDS + 1):
            if ban_all or round_ == _ON_DEMAND_ROUNDS:
                ban = self._latin_bias(allowed)
            else:
                ban = [[token_id, False] for token_id in sorted(self._latin_seen & banned)]
            text_so_far = kept_bytes.decode("utf-8", errors="ignore")
            request.update(prompt=prompt + text_so_far, n_predict=budget - len(kept))
            request["logit_bias"] = cjk + ban if cjk else ban
            response = self._call(request)
            first = first or response
            choice = response["choices"][0]
            content = (choice.get("logprobs") or {}).get("content") or []
            bad = next((k for k, t in enumerate(content) if _is_banned(t, banned, allowed)), None)
            if bad is None:
                text = text_so_far + choice.get("text", "")
                return _continuation(response, text, kept + content, first)
            if "id" in content[bad]:
                self._latin_seen.add(int(content[bad]["id"]))
            else:  # an answer without token ids: ban them all at once
                ban_all = True
            kept += content[:bad]
            kept_bytes += b"".join(bytes(t.get("bytes") or b"") for t in content[:bad])
            if len(kept) >= budget:
                break
        text = kept_bytes.decode("utf-8", errors="ignore")
        return _continuation(None, text, kept, first)

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

    def _latin_banned(self, allowed: frozenset[str]) -> frozenset[int]:
        """The Latin tokens that cannot spell ``allowed`` (kept for the last few sets: a
        sentence's set changes only when a new name arrives)."""
        if allowed not in self._latin_sets:
            if len(self._latin_sets) >= 8:
                self._latin_sets.pop(next(iter(self._latin_sets)))
                self._latin_lists.clear()
            self._latin_sets[allowed] = frozenset(self._latin_tokens.banned(allowed))
        return self._latin_sets[allowed]

    def _latin_bias(self, allowed: frozenset[str]) -> list[list[Any]]:
        """``logit_bias`` entries banning every Latin token that cannot spell ``allowed``."""
        if allowed not in self._latin_lists:
            banned = sorted(self._latin_banned(allowed))
            logger.debug("banning %d Latin tokens (allowed: %s)", len(banned), sorted(allowed))
            self._latin_lists[allowed] = [[token_id, False] for token_id in banned]
        return self._latin_lists[allowed]


_ON_DEMAND_ROUNDS = 6
"""Requests that ban only the Latin tokens seen so far, before one bans them all."""


def _is_banned(entry: dict[str, Any], banned: frozenset[int], allowed: frozenset[str]) -> bool:
    """Whether a generated token (a ``logprobs.content`` entry) is a banned Latin token."""
    if "id" in entry:
        return int(entry["id"]) in banned
    return not all(spells_allowed(run, allowed) for run in latin_runs(str(entry.get("token"))))


def _continuation(
    response: dict[str, Any] | None,
    text: str,
    content: list[dict[str, Any]],
    first: dict[str, Any] | None,
) -> Continuation:
    """A :class:`Continuation` from llama.cpp's answer: ``text`` and the ``content`` entries;
    finished when ``response`` (the last answer, None when cut short) stopped by itself; the
    token counts of ``first`` (the first request)."""
    finished = response is not None and response["choices"][0].get("finish_reason") == "stop"
    usage = (first or {}).get("usage") or {}
    return Continuation(
        text=text,
        tokens=tuple(Token(t["token"], float(t["logprob"])) for t in content),
        finished=finished,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)),
    )


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
