"""The scale-out backend: any OpenAI-compatible *completions* server (vLLM, SGLang, llama-server).

The server does the work; this adapter only speaks HTTP with the standard library. Three things
differ between servers and are handled here:

* Log-probabilities come in the legacy OpenAI shape (``logprobs.tokens`` and
  ``logprobs.token_logprobs``) from vLLM and SGLang, and as ``logprobs.content[]`` entries with
  ``token`` and ``logprob`` from llama.cpp's server. Both are read.
* Prefix caching is automatic in vLLM and SGLang; llama.cpp takes a ``cache_prompt`` flag. The
  flag is not a standard field (OpenAI itself rejects unknown fields), so it is sent only when
  ``/v1/models`` says the models are ``owned_by: llamacpp``. The probe runs once, on first use.
* ``ban_cjk`` cannot be a ``logit_bias`` (keyed by token ids, which a client cannot enumerate
  portably). The continuation is instead cut before the first token holding a Chinese character
  (or a UTF-8 fragment of one) and marked not finished: a partial answer, possibly empty.
  ``allow_latin`` works the same way: the continuation is cut before the first Latin word that
  is not a name, number or allowed word (:func:`simulinterp.leaks.latin_cut`; an unfinished
  last word stays while it can still spell an allowed one).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Collection, Sequence
from typing import Any

from simulinterp.lang import has_cjk
from simulinterp.leaks import latin_cut
from simulinterp.llm.base import Continuation, LLMError, Token
from simulinterp.llm.vocab import CJK_LEAD_BYTES

logger = logging.getLogger(__name__)

_CHARS_PER_TOKEN_ESTIMATE = 3

_Entry = tuple[Token, bytes | None]
"""A generated token and its raw bytes (llama.cpp reports them; other servers do not)."""


class _BadAnswer(LLMError):
    """The server answered, but with an HTTP error status or not with a JSON object."""


class OpenAICompletionsBackend:
    """Greedy forced-prefix continuation through an OpenAI-compatible ``/v1/completions``.

    Args:
        base_url: the server root, with or without a trailing ``/v1``
            (``http://127.0.0.1:8080`` or ``http://gpu-host:8000/v1``).
        model: the model name to request; defaults to the first one ``/v1/models`` lists.
        api_key: sent as ``Authorization: Bearer``; none when ``None``.
        timeout_s: per-request timeout in seconds.
        context_tokens: the server's context window (prompt, prefix and generation together).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        context_tokens: int = 4096,
    ):
        self.root_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.context_tokens = context_tokens
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._is_llamacpp: bool | None = None  # unknown until the first probe
        self._warned_estimate = False

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
        self._probe()
        body: dict[str, Any] = {
            "prompt": prompt + prefix,
            "max_tokens": max(1, max_tokens),
            "temperature": 0,
            "logprobs": 1,
        }
        if stop:
            body["stop"] = list(stop)
        if self.model:
            body["model"] = self.model
        if self._is_llamacpp:
            body["cache_prompt"] = True
        response = self._request("/v1/completions", body)
        try:
            choice = response["choices"][0]
            text = choice.get("text") or ""
            entries = _align(_parse_logprobs(choice.get("logprobs")), text)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            url = f"{self.root_url}/v1/completions"
            raise LLMError(f"{url} returned an unexpected answer: {response!r:.300}") from err
        tokens = tuple(token for token, _ in entries)
        finished = choice.get("finish_reason") == "stop"
        if ban_cjk and (has_cjk(text) or any(_is_cjk(*entry) for entry in entries)):
            tokens, text = _cut_at_cjk(entries, text)
            finished = False
        if allow_latin is not None:
            cut = latin_cut(text, {w.lower() for w in allow_latin})
            if cut < len(text):
                tokens, text = _cut_at(tokens, text, cut), text[:cut]
                finished = False
        usage = response.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return Continuation(
            text=text,
            tokens=tokens,
            finished=finished,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
        )

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``, from the server's ``/tokenize`` or else estimated.

        llama.cpp takes ``{"content": text}``, vLLM ``{"prompt": text}``; the first form that
        returns tokens wins. A server that has neither gets ``len(text) / 3`` (a warning is
        logged once); an unreachable server raises :class:`LLMError`.
        """
        if not text:
            return 0
        for body in ({"content": text}, {"prompt": text}):
            if self.model and "prompt" in body:
                body["model"] = self.model
            try:
                response = self._request("/tokenize", body)
            except _BadAnswer as err:
                logger.debug("tokenize with %s failed: %s", sorted(body), err)
                continue
            if isinstance(response.get("count"), int):
                return int(response["count"])
            if response.get("tokens"):
                return len(response["tokens"])
        if not self._warned_estimate:
            logger.warning(
                "%s/tokenize is unavailable; estimating tokens as characters / %d",
                self.root_url,
                _CHARS_PER_TOKEN_ESTIMATE,
            )
            self._warned_estimate = True
        return max(1, len(text) // _CHARS_PER_TOKEN_ESTIMATE)

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""

    def _probe(self) -> None:
        """Ask ``/v1/models`` once for the model name and whether the server is llama.cpp."""
        if self._is_llamacpp is not None:
            return
        try:
            listing = self._request("/v1/models", None)
        except _BadAnswer as err:
            logger.warning("%s; assuming a generic OpenAI server", err)
            listing = {}
        models = [m for m in listing.get("data") or [] if isinstance(m, dict)]
        self._is_llamacpp = any(m.get("owned_by") == "llamacpp" for m in models)
        if self.model is None and models:
            self.model = models[0].get("id")
        logger.info("%s serves %s (llama.cpp: %s)", self.root_url, self.model, self._is_llamacpp)

    def _request(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """GET (no body) or POST JSON to ``root_url + path``; errors become :class:`LLMError`."""
        url = self.root_url + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = _error_text(err.read())
            raise _BadAnswer(f"{url} answered HTTP {err.code}: {detail}") from err
        except urllib.error.URLError as err:
            raise LLMError(f"cannot reach {url}: {err.reason}") from err
        except TimeoutError as err:
            raise LLMError(f"{url} timed out after {self._timeout_s:g} s") from err
        except OSError as err:
            raise LLMError(f"cannot reach {url}: {err}") from err
        try:
            parsed = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise _BadAnswer(f"{url} returned malformed JSON: {raw[:200]!r}") from err
        if not isinstance(parsed, dict):
            raise _BadAnswer(f"{url} returned {type(parsed).__name__}, not a JSON object")
        return parsed


def _parse_logprobs(logprobs: Any) -> list[_Entry]:
    """Tokens (with their raw bytes when the server gives them) from either logprobs shape."""
    if not isinstance(logprobs, dict):
        return []
    if isinstance(logprobs.get("content"), list):  # llama.cpp
        return [
            (Token(e["token"], float(e["logprob"])), bytes(e["bytes"]) if "bytes" in e else None)
            for e in logprobs["content"]
        ]
    texts = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    return [
        (Token(t, float(v) if v is not None else 0.0), None)
        for t, v in zip(texts, values, strict=False)
    ]


def _align(entries: list[_Entry], text: str) -> list[_Entry]:
    """Drop what a server reports past ``text`` (a stop string some servers keep in logprobs)."""
    joined = "".join(token.text for token, _ in entries)
    if len(joined) <= len(text) or not joined.startswith(text):
        return entries
    kept: list[_Entry] = []
    used = 0
    for token, raw in entries:
        if used >= len(text):
            break
        piece = token.text[: len(text) - used]
        kept.append((Token(piece, token.logprob), raw if piece == token.text else None))
        used += len(piece)
    return kept


def _cut_at_cjk(entries: list[_Entry], text: str) -> tuple[tuple[Token, ...], str]:
    """Keep the tokens before the first one holding (or starting) a Chinese character."""
    if not entries:  # no logprobs: cut the text itself
        cut = next((i for i, ch in enumerate(text) if has_cjk(ch)), len(text))
        return (), text[:cut]
    kept: list[Token] = []
    for token, raw in entries:
        if _is_cjk(token, raw):
            break
        kept.append(token)
    return tuple(kept), "".join(token.text for token in kept)


def _cut_at(tokens: Sequence[Token], text: str, cut: int) -> tuple[Token, ...]:
    """The tokens covering ``text[:cut]``; the one the cut falls in keeps its first part."""
    kept: list[Token] = []
    used = 0
    for token in tokens:
        if used >= cut:
            break
        piece = token.text[: cut - used]
        kept.append(Token(piece, token.logprob))
        used += len(piece)
    return tuple(kept)


def _is_cjk(token: Token, raw: bytes | None) -> bool:
    """The token holds a Chinese character, or (by its raw bytes) a UTF-8 fragment of one."""
    return has_cjk(token.text) or bool(raw and any(b in CJK_LEAD_BYTES for b in raw))


def _error_text(raw: bytes) -> str:
    """The server's error message from an error body (OpenAI, llama.cpp or plain text)."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text[:500] or "(empty body)"
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error)[:500]
