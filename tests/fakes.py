"""A scripted LLM for fast, exact unit tests of the translator and the CLI.

``DictionaryLLM`` translates the source read so far word for word with a lexicon and continues
from the committed prefix exactly as a real backend would (forced-prefix continuation, token
limit, stop at the end of the translation). It counts one token per character so the context
limit is easy to reason about.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from simulinterp.lang import has_cjk, split_units
from simulinterp.llm.base import Continuation, LLMError, Token

ZH_EN = {
    "我": "I",
    "们": "we",
    "今": "to",
    "天": "day",
    "去": "go",
    "公": "the",
    "园": "park",
    "很": "very",
    "好": "good",
    "，": ",",
    "。": ".",
    "他": "he",
    "喜": "likes",
    "欢": "it",
}
EN_ZH = {v: k for k, v in ZH_EN.items() if v not in {",", "."}} | {",": "，", ".": "。"}


class DictionaryLLM:
    """Word-for-word translation of the last user turn of a ChatML prompt.

    Args:
        lexicon: source unit -> target unit (unknown units become ``x``, or ``某`` for a
            Chinese target, where a Latin ``x`` would be a leaked word; a unit already in the
            target's script is copied).
        target_lang: ``en`` joins units with spaces, ``zh`` without.
        context_tokens: prompts longer than this (in characters) raise :class:`LLMError`.
        logprob: log-probability of each generated token, as a function of its position.
        script: optional fixed continuation text (ignores the lexicon), e.g. to simulate a loop.
        interrupt_after: raise KeyboardInterrupt on this call number (simulates Ctrl-C).
    """

    name = "fake"

    def __init__(
        self,
        lexicon: dict[str, str] | None = None,
        target_lang: str = "en",
        context_tokens: int = 4096,
        logprob: Callable[[int], float] = lambda i: -0.1,
        script: str | None = None,
        interrupt_after: int | None = None,
    ):
        self.lexicon = ZH_EN if lexicon is None else lexicon
        self.target_lang = target_lang
        self.context_tokens = context_tokens
        self.logprob = logprob
        self.script = script
        self.interrupt_after = interrupt_after
        self.calls: list[tuple[str, str, int]] = []
        self.allow_latin: list[frozenset[str] | None] = []  # what each call allowed

    def translation(self, prompt: str) -> str:
        source = prompt.rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
        source_lang = "zh" if has_cjk(source) else "en"
        units = split_units(source, source_lang)
        if source_lang == "en":  # "park." is "park" and "."
            units = [p for u in units for p in ([u[:-1], u[-1]] if u[-1:] in ",." else [u]) if p]
        unknown = "某" if self.target_lang == "zh" else "x"
        words = [
            # a unit already in the target's script is copied: a Latin name in Chinese, or
            # Chinese a glossary put into English
            self.lexicon.get(u, u if has_cjk(u) == (self.target_lang == "zh") else unknown)
            for u in units
        ]
        if self.target_lang == "zh":
            return "".join(words)
        out = ""
        for word in words:
            out += word if not out or word in {",", "."} else " " + word
        return out

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
        self.calls.append((prompt, prefix, max_tokens))
        self.allow_latin.append(None if allow_latin is None else frozenset(allow_latin))
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        if len(prompt) + len(prefix) + max_tokens > self.context_tokens:
            raise LLMError(f"prompt of {len(prompt) + len(prefix)} tokens exceeds the context")
        full = self.script if self.script is not None else self.translation(prompt)
        rest = full[len(prefix) :] if full.startswith(prefix) else ""
        pieces = _tokens(rest, self.target_lang)
        finished = len(pieces) <= max_tokens
        pieces = pieces[:max_tokens]
        tokens = tuple(Token(p, self.logprob(i)) for i, p in enumerate(pieces))
        return Continuation("".join(pieces), tokens, finished, len(prompt) + len(prefix), 0)

    def count_tokens(self, text: str) -> int:
        return len(text)

    def close(self) -> None:
        pass


def _tokens(text: str, lang: str) -> list[str]:
    """English: one token per word with its leading space; Chinese: one per character."""
    if lang == "zh":
        return list(text)
    out: list[str] = []
    for ch in text:
        if ch == " " or not out or out[-1].endswith((",", ".")):
            out.append(ch)
        else:
            out[-1] += ch
    return out
