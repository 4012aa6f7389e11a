"""The OpenAI-compatible backend against a real llama.cpp HTTP server (xllamacpp) on loopback.

The server is llama.cpp's own HTTP server, started in-process by ``xllamacpp.Server`` with a port
set, serving the packaged default GGUF. ``SIMULINTERP_TEST_GGUF`` points at a GGUF instead.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulinterp.lang import has_cjk
from simulinterp.llm.base import LLMBackend, LLMError
from simulinterp.llm.openai_backend import OpenAICompletionsBackend

pytestmark = pytest.mark.integration

SOURCE_ZH = "我们身处人类历史的转折点上"
PROMPT_ZH_EN = (
    "<|im_start|>system\nYou are a professional interpreter.<|im_end|>\n"
    f"<|im_start|>user\nTranslate into English:\n{SOURCE_ZH}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
PROMPT_EN_ZH = (
    "<|im_start|>system\nYou are a professional interpreter.<|im_end|>\n"
    "<|im_start|>user\nTranslate into Chinese:\nWe are at a turning point in human history."
    "<|im_end|>\n<|im_start|>assistant\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    """``$SIMULINTERP_TEST_GGUF``, else the packaged default model (skip when not installed)."""
    override = os.environ.get("SIMULINTERP_TEST_GGUF")
    if override:
        return Path(override)
    try:
        from simulinterp.llm.models import ModelNotFoundError, ensure_model
    except ImportError:
        pytest.skip("simulinterp.llm.models is not available; set SIMULINTERP_TEST_GGUF")
    try:
        return ensure_model("default")
    except ModelNotFoundError as err:
        pytest.skip(f"the packaged default model is not installed: {err}")


@pytest.fixture(scope="module")
def server_url(gguf_path: Path) -> Iterator[str]:
    """llama.cpp's HTTP server on 127.0.0.1 and a free port, for the whole module."""
    xllamacpp = pytest.importorskip("xllamacpp")
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path)
    params.hostnames = ["127.0.0.1"]
    params.port = _free_port()
    params.n_ctx = 2048
    params.n_parallel = 1
    params.warmup = False
    params.verbosity = 0  # errors only: keep the test output readable
    threads = max(1, os.cpu_count() or 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    try:
        url = server.listening_address
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        del server
        gc.collect()


@pytest.fixture(scope="module")
def backend(server_url: str) -> Iterator[OpenAICompletionsBackend]:
    llm = OpenAICompletionsBackend(server_url, timeout_s=120.0, context_tokens=2048)
    yield llm
    llm.close()


def test_tokens_carry_log_probabilities(backend: OpenAICompletionsBackend) -> None:
    assert isinstance(backend, LLMBackend)
    result = backend.continue_text(PROMPT_ZH_EN, max_tokens=24, stop=["<|im_end|>"])
    assert result.tokens
    assert result.text == "".join(token.text for token in result.tokens)
    assert all(math.isfinite(t.logprob) and t.logprob <= 0.0 for t in result.tokens)
    assert "turning point" in result.text.lower() or "history" in result.text.lower()
    assert result.prompt_tokens > 20


def test_prefix_is_continued(backend: OpenAICompletionsBackend) -> None:
    result = backend.continue_text(PROMPT_ZH_EN, "We are", max_tokens=8)
    assert result.text[:1] == " " and result.text[1:2].isalpha(), result.text
    assert not has_cjk(result.text)


def test_stop_string_ends_generation(backend: OpenAICompletionsBackend) -> None:
    free = backend.continue_text(PROMPT_ZH_EN, "We are", max_tokens=12)
    words = free.text.split()
    assert len(words) >= 3, free.text
    stop_word = " " + words[2]
    stopped = backend.continue_text(PROMPT_ZH_EN, "We are", max_tokens=12, stop=[stop_word])
    assert stopped.finished
    assert stopped.text == free.text[: free.text.index(stop_word)]
    assert stop_word not in stopped.text


def test_max_tokens_bounds_length(backend: OpenAICompletionsBackend) -> None:
    result = backend.continue_text(PROMPT_ZH_EN, "We are", max_tokens=3)
    assert 1 <= len(result.tokens) <= 3
    assert not result.finished


def test_shared_prefix_is_served_from_cache(backend: OpenAICompletionsBackend) -> None:
    backend.continue_text(PROMPT_ZH_EN, "We", max_tokens=2)
    second = backend.continue_text(PROMPT_ZH_EN, "We are at", max_tokens=2)
    assert second.prompt_tokens > 20
    assert second.cached_tokens > 20  # llama.cpp reports usage.prompt_tokens_details


def test_ban_cjk_cuts_a_chinese_answer(backend: OpenAICompletionsBackend) -> None:
    free = backend.continue_text(PROMPT_EN_ZH, max_tokens=6)
    assert has_cjk(free.text), free.text
    banned = backend.continue_text(PROMPT_EN_ZH, max_tokens=6, ban_cjk=True)
    assert not has_cjk(banned.text)
    assert not banned.finished
    assert banned.text == "".join(token.text for token in banned.tokens)


def test_count_tokens_and_v1_suffix(server_url: str, backend: OpenAICompletionsBackend) -> None:
    assert backend.count_tokens("hello world") == 2
    assert backend.count_tokens("") == 0
    with_v1 = OpenAICompletionsBackend(server_url + "/v1/", timeout_s=120.0)
    assert with_v1.count_tokens(SOURCE_ZH) == backend.count_tokens(SOURCE_ZH) > 0
    assert with_v1.continue_text(PROMPT_ZH_EN, "We are", max_tokens=2).tokens


def test_dead_server_fails_fast_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    dead = OpenAICompletionsBackend(url, timeout_s=5.0)
    start = time.monotonic()
    with pytest.raises(LLMError, match=url.replace(".", r"\.")):
        dead.continue_text("hello", max_tokens=2)
    assert time.monotonic() - start < 3.0
