"""LLM backends behind one protocol (forced-prefix continuation with log-probabilities)."""

from simulinterp.llm.base import Continuation, LLMBackend, LLMError, Token

__all__ = ["Continuation", "LLMBackend", "LLMError", "Token"]
