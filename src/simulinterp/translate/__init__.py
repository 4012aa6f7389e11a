"""The simultaneous translator: a policy, an LLM, prompts and the committed target prefix."""

from simulinterp.translate.translator import SimultaneousTranslator, TranslatorConfig

__all__ = ["SimultaneousTranslator", "TranslatorConfig"]
