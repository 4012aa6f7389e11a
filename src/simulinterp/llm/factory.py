"""Build an LLM backend from settings (the one place that knows every backend)."""

from __future__ import annotations

from dataclasses import dataclass

from simulinterp.llm.base import LLMBackend, LLMError
from simulinterp.llm.models import preset_name

BACKENDS = ("llamacpp", "transformers", "openai")


@dataclass(frozen=True)
class ModelConfig:
    """Which model serves the translator.

    Attributes:
        backend: ``llamacpp`` (default, CPU), ``transformers`` (PyTorch, LoRA adapters) or
            ``openai`` (any OpenAI-compatible completions server).
        model: a packaged preset (``fast``: the 0.5B, also called ``default``; ``quality``:
            the 1.5B) or a path (a GGUF for llamacpp,
            a checkpoint directory for transformers); the model name for openai.
        adapter: a LoRA adapter: a LoRA GGUF for llamacpp (``simulinterp train export-gguf``
            writes one from a peft directory), a peft adapter directory for transformers;
            ignored by openai.
        base_url: the server address (openai), e.g. ``http://127.0.0.1:8000``.
        threads: CPU threads (llamacpp); 0 uses every core.
        context_tokens: context window to allocate (llamacpp), per parallel request.
        parallel: requests llama.cpp serves at once, each with its own cache (llamacpp): one
            per server session.
        prompt_cache_mib: RAM for llama.cpp's cache of evicted prompt states (llamacpp; None:
            its default, 8 GiB; the server sets 0 so that memory stays flat).
    """

    backend: str = "llamacpp"
    model: str = "default"
    adapter: str | None = None
    base_url: str | None = None
    threads: int = 0
    context_tokens: int = 4096
    parallel: int = 1
    prompt_cache_mib: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}"
            )
        if self.backend == "openai" and not self.base_url:
            raise ValueError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000)")
        if self.threads < 0 or self.context_tokens < 256 or self.parallel < 1:
            raise ValueError("threads must be >= 0, context_tokens >= 256 and parallel >= 1")


def build_backend(config: ModelConfig) -> LLMBackend:
    """Load the model that ``config`` names.

    Raises:
        ModelNotFoundError: a packaged model is not installed (the message has the pip line).
        LLMError: the backend cannot start.
    """
    if config.backend == "llamacpp":
        from simulinterp.llm.llamacpp import LlamaCppBackend
        from simulinterp.llm.models import ensure_model

        path = ensure_model(config.model)
        return LlamaCppBackend(
            path,
            context_tokens=config.context_tokens,
            threads=config.threads,
            lora=config.adapter,
            parallel=config.parallel,
            prompt_cache_mib=config.prompt_cache_mib,
        )
    if config.backend == "transformers":
        from simulinterp.llm.transformers_backend import TransformersBackend

        if preset_name(config.model) is not None:
            raise LLMError("the transformers backend needs --model PATH (a local checkpoint)")
        return TransformersBackend.from_pretrained(config.model, adapter=config.adapter)
    from simulinterp.llm.openai_backend import OpenAICompletionsBackend

    model = None if preset_name(config.model) is not None else config.model
    return OpenAICompletionsBackend(str(config.base_url), model=model)
