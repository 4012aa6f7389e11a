"""Guards against hallucination loops, runaway length and leaked source words.

An untrained model given a sentence prefix sometimes loops ("3D 3D 3D ..."), keeps writing
far past the source, or copies a source word it did not translate ("他擦掉了 fence"). The
guards are pure functions of unit lists, applied to every candidate before a policy sees it
and to every flush.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from simulinterp.lang import join_units, repetition_cut
from simulinterp.leaks import leaked_words

# Target units per source unit that a faithful translation rarely exceeds, and a constant
# allowance for short prefixes.
_LENGTH_RATIO = {("zh", "en"): 1.2, ("en", "zh"): 3.0}
_LENGTH_SLACK = {("zh", "en"): 6, ("en", "zh"): 8}


# Openings of a refusal or a remark instead of a translation (the untrained model sometimes
# answers a short prefix with one). A candidate that starts like this is dropped.
REFUSALS = (
    "i'm sorry",
    "i am sorry",
    "sorry,",
    "i can't",
    "i cannot",
    "as an ai",
    "the sentence is",
    "the text is",
    "抱歉",
    "对不起",
    "我无法",
    "这句话",
)


def is_refusal(text: str) -> bool:
    """True when ``text`` opens like a refusal or a comment rather than a translation."""
    head = " ".join(text.split()).lower()
    return any(head.startswith(r) for r in REFUSALS)


def max_target_units(source_units: int, source_lang: str, target_lang: str) -> int:
    """The most target units a translation of ``source_units`` source units may have."""
    ratio = _LENGTH_RATIO.get((source_lang, target_lang), 2.0)
    slack = _LENGTH_SLACK.get((source_lang, target_lang), 8)
    return math.ceil(ratio * source_units) + slack


def allowed_new_units(
    committed: Sequence[str],
    candidate: Sequence[str],
    source_units: int,
    source_lang: str,
    target_lang: str,
) -> int:
    """How many leading candidate units survive the guards, given what is committed."""
    opening = join_units([u.strip() for u in candidate], target_lang)
    if not committed and is_refusal(opening):
        return 0
    kept = repetition_cut([*committed, *candidate]) - len(committed)
    room = max_target_units(source_units, source_lang, target_lang) - len(committed)
    return max(0, min(len(candidate), kept, room))


def leaking_units(
    units: Sequence[str], source: str, target_lang: str, allowed: Iterable[str] = ()
) -> list[bool]:
    """Per target unit, whether it holds a leaked source word (:mod:`simulinterp.leaks`).

    Args:
        units: target units (a Latin word is one unit of a Chinese target).
        source: the source read so far (names and numbers in it are not leaks).
        target_lang: ``en`` or ``zh``.
        allowed: strings that are never leaks (glossary targets).
    """
    allowed = tuple(allowed)
    return [bool(leaked_words(unit, source, target_lang, allowed)) for unit in units]


def leak_free_units(
    units: Sequence[str], source: str, target_lang: str, allowed: Iterable[str] = ()
) -> int:
    """How many leading units hold no leaked word: a candidate is cut before its first leak."""
    flags = leaking_units(units, source, target_lang, allowed)
    return flags.index(True) if True in flags else len(flags)
