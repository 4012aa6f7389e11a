"""Languages and the units that latency is counted in.

Units follow SimulEval: words for English, characters for Chinese. A run of Latin letters or
digits inside Chinese text (``NASA``, ``2016``) counts as one unit, as it does for a reader.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

LANGUAGES = {"en": "English", "zh": "Chinese"}
SENTENCE_END = frozenset("。！？!?；;…")
CLAUSE_END = frozenset("，,、；;：:。！？!?…")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_CJK_RE = re.compile(f"[{_CJK}]")
# One unit: a CJK character (with the spaces before it), or a run of anything else that is
# not space or CJK (with the spaces before it).
_ZH_UNIT_RE = re.compile(rf"\s*(?:[{_CJK}]|[^\s{_CJK}]+)")
_EN_UNIT_RE = re.compile(r"\s*\S+")


_SPACE_BY_CJK_RE = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


class LanguageError(ValueError):
    """An unknown or unsupported language code."""


def check_language(code: str) -> str:
    """Return the normalized language code or raise :class:`LanguageError`.

    Args:
        code: a code such as ``"zh"``, ``"en"``, ``"zh-CN"`` or ``"EN"``.
    """
    norm = code.strip().lower().replace("_", "-").split("-")[0]
    if norm not in LANGUAGES:
        known = ", ".join(sorted(LANGUAGES))
        raise LanguageError(f"unknown language code {code!r}; simulinterp knows: {known}")
    return norm


def check_pair(source: str, target: str) -> tuple[str, str]:
    """Validate a translation direction and return it normalized."""
    src, tgt = check_language(source), check_language(target)
    if src == tgt:
        raise LanguageError(f"source and target are both {src!r}; choose two languages")
    return src, tgt


def has_cjk(text: str) -> bool:
    """True when ``text`` holds a Chinese character or CJK punctuation."""
    return bool(_CJK_RE.search(text))


def chinese_spacing(text: str, before: str = "") -> str:
    """``text`` without the spaces that touch a Chinese character or CJK punctuation.

    Written Chinese has no spaces between characters; a model's token boundary can still put
    one there (``什 么``). Spaces between Latin words stay (``iPhone 15``). ``before``: the text
    already written, whose last character decides the fate of a leading space.
    """
    tidy = _SPACE_BY_CJK_RE.sub("", before[-1:] + text)
    return tidy[len(before[-1:]) :]


@dataclass(frozen=True)
class Span:
    """One unit of text: ``text[start:end]`` including the spaces before it."""

    start: int
    end: int


def unit_spans(text: str, lang: str) -> list[Span]:
    """Split ``text`` into units (English words, Chinese characters) as character spans.

    Spans cover the text without gaps except trailing space, so ``text[:spans[i].end]`` is the
    exact prefix that ends with unit ``i``.
    """
    pattern = _ZH_UNIT_RE if lang == "zh" else _EN_UNIT_RE
    return [Span(m.start(), m.end()) for m in pattern.finditer(text)]


def split_units(text: str, lang: str) -> list[str]:
    """Split ``text`` into units with the surrounding spaces removed."""
    return [text[s.start : s.end].strip() for s in unit_spans(text, lang)]


def join_units(units: list[str] | tuple[str, ...], lang: str) -> str:
    """Join source units back into text (spaces for English, none between Chinese chars).

    A unit of punctuation alone (a recognizer's "," after a pause) joins the word before it.
    """
    if lang != "zh":
        out = ""
        for unit in units:
            glue = not out or (unit and all(unicodedata.category(c)[0] == "P" for c in unit))
            out += unit if glue else " " + unit
        return out
    out = ""
    for unit in units:
        if out and not has_cjk(unit) and not has_cjk(out[-1]):
            out += " "
        out += unit
    return out


def is_sentence_end(unit: str) -> bool:
    """True when a source unit closes a sentence (。 ！ ？ . ! ? …)."""
    stripped = unit.rstrip("\"'”’)）」』")
    if not stripped:
        return False
    last = stripped[-1]
    if last in SENTENCE_END:
        return True
    return last == "." and not _is_abbreviation(stripped)


def is_clause_end(unit: str) -> bool:
    """True when a source unit closes a clause (a comma or stronger)."""
    stripped = unit.rstrip("\"'”’)）」』")
    return bool(stripped) and (stripped[-1] in CLAUSE_END or is_sentence_end(unit))


_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "e.g.", "i.e.", "u.s."}
)


def _is_abbreviation(word: str) -> bool:
    return word.lower() in _ABBREVIATIONS or bool(re.fullmatch(r"[A-Z]\.", word))


def repetition_cut(units: Sequence[str], max_ngram: int = 6) -> int:
    """Length of the longest prefix of ``units`` that has not started looping.

    A loop is an n-gram (n = 2..``max_ngram``) repeated three times in a row, or one unit
    repeated four times in a row. The cut keeps the first occurrence only.

    Returns:
        How many leading units to keep (``len(units)`` when there is no loop).
    """
    normalized = [u.strip().lower() for u in units]
    for end in range(1, len(normalized) + 1):
        for n in range(1, max_ngram + 1):
            repeats = 4 if n == 1 else 3
            start = end - n * repeats
            if start < 0:
                continue
            gram = normalized[start : start + n]
            if all(normalized[start + r * n : start + (r + 1) * n] == gram for r in range(repeats)):
                return start + n
    return len(normalized)
