"""Terminology and leak metrics: ``term_accuracy`` and ``leak_rate``.

``term_accuracy`` is the WMT terminology task's term success rate (Semenov et al., 2023,
"Findings of the WMT 2023 Shared Task on Machine Translation with Terminologies"): the share of
the required target terms, over all lines, that appear in the line's output. How a term is
matched (:func:`term_found`, :func:`simulinterp.translate.glossary.contains_term`): English
ignores case, typographic quotes and the spacing around hyphens (``Pan - Cultural`` is
``Pan-Cultural``), and the punctuation at the ends of the term (``Co.,`` is ``Co``); it must
stand as whole words. Chinese ignores whitespace and matches a substring.

``leak_rate`` is the share of lines whose output holds a leaked source word
(:func:`simulinterp.leaks.leaked_words`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from simulinterp.leaks import leaked_words
from simulinterp.translate.glossary import contains_term


def term_found(term: str, output: str, target_lang: str) -> bool:
    """True when ``output`` holds the required ``term`` (see the module docstring)."""
    return contains_term(output, term, target_lang)


def term_counts(
    outputs: Sequence[str], required: Sequence[Sequence[str]], target_lang: str
) -> tuple[int, int]:
    """(required terms found, required terms) over line-aligned outputs and term lists."""
    if len(outputs) != len(required):
        raise ValueError(f"{len(outputs)} outputs for {len(required)} lines of terms")
    found = total = 0
    for output, terms in zip(outputs, required, strict=True):
        total += len(terms)
        found += sum(term_found(term, output, target_lang) for term in terms)
    return found, total


def term_accuracy(
    outputs: Sequence[str], required: Sequence[Sequence[str]], target_lang: str
) -> float | None:
    """Share of the required terms found in their line's output; None when none is required."""
    found, total = term_counts(outputs, required, target_lang)
    return found / total if total else None


def leak_rate(
    outputs: Sequence[str],
    sources: Sequence[str],
    target_lang: str,
    allowed: Sequence[Iterable[str]] | None = None,
) -> float:
    """Share of lines whose output leaks a source word; 0.0 for no lines.

    Args:
        outputs: the translations.
        sources: the source each translates (its names are not leaks).
        target_lang: ``en`` or ``zh``.
        allowed: per line, strings that are never leaks (glossary targets, required terms).
    """
    if len(outputs) != len(sources):
        raise ValueError(f"{len(outputs)} outputs for {len(sources)} sources")
    if not outputs:
        return 0.0
    per_line = allowed if allowed is not None else [()] * len(outputs)
    leaking = sum(
        bool(leaked_words(out, src, target_lang, ok))
        for out, src, ok in zip(outputs, sources, per_line, strict=True)
    )
    return leaking / len(outputs)
