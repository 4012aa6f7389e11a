"""Turning whisper's text into source units: punctuation, script and loop cuts."""

from __future__ import annotations

import re

from simulinterp.lang import has_cjk, repetition_cut, split_units

_ZH_PUNCT = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；"}
_ASCII_PUNCT = {v: k for k, v in _ZH_PUNCT.items()}
_STRAY_G = re.compile(r"(?<=[\u3400-\u9fff])\uff27(?=[\u3400-\u9fff]|$)")
_CJK_BEFORE_DOT = re.compile(r"(?<=[\u3400-\u9fff])\.")
_GARBAGE = re.compile(
    r"\[[^\]]*\]|\((?:music|applause|laughter|silence|inaudible|noise)\)"
    r"|_{2,}|-{3,}|\.{4,}|[♪♫♬*#~^|<>\[\]{}]+",
    re.IGNORECASE,
)


def to_simplified(text: str) -> str:
    """Traditional Chinese characters converted to simplified (whisper mixes both)."""
    try:
        import zhconv
    except ImportError:  # pragma: no cover - a core dependency
        return text
    return str(zhconv.convert(text, "zh-cn"))


def whisper_spelling(text: str) -> str:
    """Committed Chinese text spelled as whisper writes it (ASCII commas and marks), so that a
    forced prefix looks like the decoder's own output."""
    return "".join(_ASCII_PUNCT.get(c, c) for c in text)


def normalize(text: str, lang: str) -> str:
    """Clean one piece of recognized text for the translator.

    Chinese: simplified characters, full-width punctuation, no spaces between characters.
    English: collapsed whitespace. Both: no runs of underscores, dashes, music notes or other
    symbols, which whisper writes for silence, music or reverberation where no word was said.
    """
    text = _GARBAGE.sub(" ", text)
    if lang == "zh":
        text = to_simplified(text)
        text = _CJK_BEFORE_DOT.sub("。", text)
        # whisper-base sometimes writes U+FF27 (bytes EF BC A7) where the full-width comma
        # (EF BC 8C) belongs; between Chinese characters it is always that comma
        text = _STRAY_G.sub("，", text)
        if has_cjk(text):
            text = "".join(_ZH_PUNCT.get(c, c) for c in text)
        text = re.sub(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])", "", text)
    return " ".join(text.split())


def units_of(text: str, lang: str) -> list[str]:
    """Recognized text as source units, with a repetition loop cut off."""
    units = split_units(normalize(text, lang), lang)
    broken = [i for i, u in enumerate(units) if "\ufffd" in u]  # a character cut mid-bytes
    if broken:
        units = units[: broken[0]]
    units = units[: repetition_cut(units)]
    return units[: _repeated_span_cut(units)]


def _repeated_span_cut(units: list[str], shortest: int = 3, longest: int = 40) -> int:
    """Where a span of ``shortest`` or more units is repeated at once (a decoder loop)."""
    got = [u.lower() for u in units]
    for end in range(2 * shortest, len(got) + 1):
        for n in range(shortest, min(longest, end // 2) + 1):
            if got[end - n : end] == got[end - 2 * n : end - n]:
                return end - n
    return len(got)
