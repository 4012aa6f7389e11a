"""The protocol every LLM backend implements.

A translator needs one operation: continue a text. The text is a prompt followed by the
committed target prefix; the backend returns up to ``max_tokens`` new tokens with their
log-probabilities, stopping early at any stop string or at the end-of-sequence token. Backends
keep the key/value cache of the longest common prefix between calls, so a step that only
appends to the previous text costs only the new tokens.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class LLMError(RuntimeError):
    """A backend failed (model missing, server unreachable, context exceeded)."""


@dataclass(frozen=True)
class Token:
    """One generated token: its text and natural-log probability under the model."""

    text: str
    logprob: float


@dataclass(frozen=True)
class Continuation:
    """What a backend generated after ``prompt + prefix``.

    Attributes:
        text: the generated text (the concatenation of ``tokens``, stop string excluded).
        tokens: the generated tokens with log-probabilities.
        finished: generation ended by itself (end of sequence or a stop string), not by the
            token limit. A finished continuation is a complete answer.
        prompt_tokens: tokens in ``prompt + prefix``.
        cached_tokens: of those, how many were served from the key/value cache.
    """

    text: str
    tokens: tuple[Token, ...]
    finished: bool
    prompt_tokens: int = 0
    cached_tokens: int = 0


@runtime_checkable
class LLMBackend(Protocol):
    """Forced-prefix continuation with log-probabilities and stop strings."""

    name: str
    context_tokens: int
    """Context window in tokens (prompt, prefix and generation together)."""

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
        """Generate greedily after ``prompt + prefix``.

        Args:
            prompt: the instruction, examples and source text, ending where the answer starts.
            prefix: the committed target text; generation continues it exactly.
            max_tokens: upper bound on generated tokens.
            stop: strings that end generation (not included in the result).
            ban_cjk: forbid tokens holding Chinese characters (an English target).
            allow_latin: a Chinese target: forbid tokens holding Latin letters except those
                that can spell one of these words (case-insensitive: the token's letters are a
                substring of a word, or a lone capital other than A and I; see
                :func:`simulinterp.leaks.spells_allowed`). Digits and punctuation are never
                forbidden. None (the default): no restriction.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...
