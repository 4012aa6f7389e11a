"""Make target text speakable: numbers, units and symbols as words, clauses, language runs.

Pure text processing (cn2an is the only import beyond the standard library, and only for
Chinese numbers, inside a function). A backend calls :func:`speakable_clauses` and phonemizes
each :class:`Run` with its language's front end, so Latin words inside Chinese are spoken as
English rather than dropped.

    >>> [c.text for c in speakable_clauses("我们用GPU训练了3个模型，准确率是95%。", "zh")]
    ['我们用GPU训练了三个模型，', '准确率是百分之九十五。']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from simulinterp.tts.numbers import (
    chinese_digits,
    english_cardinal,
    english_decimal,
    english_digits,
    english_ordinal,
    english_year,
)


@dataclass(frozen=True)
class Run:
    """A stretch of one language inside a clause.

    Attributes:
        text: the words (and punctuation) of the run.
        lang: ``"zh"`` or ``"en"``: which phonemizer speaks it.
    """

    text: str
    lang: str


@dataclass(frozen=True)
class Clause:
    """One clause ready to phonemize.

    Attributes:
        text: the normalized clause, its punctuation kept (``准确率是百分之九十五。``).
        runs: the clause cut into language runs, in order.
    """

    text: str
    runs: tuple[Run, ...]


_NUM = r"\d+(?:\.\d+)?"
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF10, 0xFF1A)}  # ０-９
_FULLWIDTH |= {c: c - 0xFEE0 for c in range(0xFF21, 0xFF3B)}  # Ａ-Ｚ
_FULLWIDTH |= {c: c - 0xFEE0 for c in range(0xFF41, 0xFF5B)}  # ａ-ｚ
_FULLWIDTH |= {0xFF05: "%", 0xFF0E: ".", 0xFFE5: "¥", 0xFF04: "$", 0xFF0B: "+", 0xFF1D: "="}

# unit -> (English singular, English plural, Chinese)
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour", "公里每小时"),
    "km": ("kilometer", "kilometers", "公里"),
    "kg": ("kilogram", "kilograms", "公斤"),
    "cm": ("centimeter", "centimeters", "厘米"),
    "mm": ("millimeter", "millimeters", "毫米"),
    "mg": ("milligram", "milligrams", "毫克"),
    "ml": ("milliliter", "milliliters", "毫升"),
    "ms": ("millisecond", "milliseconds", "毫秒"),
    "kWh": ("kilowatt hour", "kilowatt hours", "千瓦时"),
    "kW": ("kilowatt", "kilowatts", "千瓦"),
    "GHz": ("gigahertz", "gigahertz", "吉赫兹"),
    "Hz": ("hertz", "hertz", "赫兹"),
    "TB": ("terabyte", "terabytes", "TB"),
    "GB": ("gigabyte", "gigabytes", "GB"),
    "MB": ("megabyte", "megabytes", "MB"),
    "mph": ("mile per hour", "miles per hour", "英里每小时"),
    "°C": ("degree Celsius", "degrees Celsius", "摄氏度"),
    "℃": ("degree Celsius", "degrees Celsius", "摄氏度"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit", "华氏度"),
    "℉": ("degree Fahrenheit", "degrees Fahrenheit", "华氏度"),
    "°": ("degree", "degrees", "度"),
    "m": ("meter", "meters", "米"),
    "g": ("gram", "grams", "克"),
}
_UNIT_RE = re.compile(rf"(-?{_NUM})\s?({'|'.join(re.escape(u) for u in _UNITS)})(?![A-Za-z])")
# currency symbol -> (English singular, plural, Chinese)
_CURRENCIES = {
    "$": ("dollar", "dollars", "美元"),
    "€": ("euro", "euros", "欧元"),
    "£": ("pound", "pounds", "英镑"),
    "¥": ("yuan", "yuan", "元"),
}
_CURRENCY_RE = re.compile(
    rf"([$€£¥])\s?({_NUM})(?:\s?(thousand|million|billion|trillion|万|亿)(?![A-Za-z]))?"
)
_SYMBOLS = {  # symbol -> (English, Chinese)
    "&": ("and", "和"),
    "+": ("plus", "加"),
    "=": ("equals", "等于"),
    "@": ("at", "艾特"),
    "×": ("times", "乘"),
    "÷": ("divided by", "除以"),
    "#": ("number", "号"),
    "%": ("percent", "百分比"),
    "℃": ("degrees Celsius", "摄氏度"),
    "°": ("degrees", "度"),
    "$": ("dollars", "美元"),
    "€": ("euros", "欧元"),
    "£": ("pounds", "英镑"),
    "¥": ("yuan", "元"),
}
_YEAR_WORDS = r"(?:in|since|by|from|until|till|of|year|around|before|after|during|early|late)"
_DROP_CATEGORIES = {"So", "Sk", "Sm", "Sc", "Cs", "Co", "Cn", "Cf", "Me", "Cc"}
_DROP_CHARS = set("*_\\|^`/[]{}<>~")
_CLAUSE_RE = re.compile(r"(?:[，。！？；：…]+|[,.!?;:]+(?=\s|$|[^\x00-\x7f]))[”’」』）》)\]\"']*")
_ABBREVIATION_RE = re.compile(
    r"(?:\b[A-Za-z]|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|etc|Inc|Ltd|No|e\.g|i\.e))\Z"
)
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z0-9'’.\-]*(?:\s+[A-Za-z][A-Za-z0-9'’.\-]*)*")
_CJK_RUN = re.compile(rf"[{_CJK}]+")


def _zh_number(text: str) -> str:
    import cn2an

    bare = text.lstrip("-")
    if len(bare) > 12 or (len(bare) > 1 and bare[0] == "0" and "." not in bare):
        return ("负" if text.startswith("-") else "") + chinese_digits(bare)
    return cn2an.an2cn(text)


def _en_number(text: str, previous: str = "") -> str:
    if "." in text:
        return english_decimal(text)
    bare = text.lstrip("-")
    if len(bare) > 1 and bare[0] == "0":
        return english_digits(bare)
    value = int(text)
    if len(bare) == 4 and (1900 <= value <= 2099 or re.search(rf"\b{_YEAR_WORDS}\s*$", previous)):
        return english_year(value)
    return english_cardinal(value)


def _number(text: str, lang: str) -> str:
    return _zh_number(text) if lang == "zh" else _en_number(text)


def _plural(value: str, singular: str, plural: str) -> str:
    return singular if value in ("1", "-1", "1.0") else plural


def _currency(match: re.Match, lang: str) -> str:
    symbol, value, scale = match.group(1), match.group(2), match.group(3)
    singular, plural, zh = _CURRENCIES[symbol]
    if lang == "zh":
        return _zh_number(value) + (scale or "") + zh
    if scale:
        return f" {english_decimal(value)} {scale} {plural} "
    whole, _, cents = value.partition(".")
    words = f"{english_cardinal(int(whole))} {_plural(whole, singular, plural)}"
    if len(cents) == 2 and symbol != "¥" and int(cents):
        small = "pence" if symbol == "£" else "cents"
        words += f" {english_cardinal(int(cents))} {small if cents != '01' else small[:-1]}"
    elif cents:
        words = f"{english_decimal(value)} {plural}"
    return f" {words} "


def _unit(match: re.Match, lang: str) -> str:
    value, unit = match.group(1), match.group(2)
    singular, plural, zh = _UNITS[unit]
    if lang == "zh":
        return _zh_number(value) + zh
    return f" {_number(value, 'en')} {_plural(value, singular, plural)} "


def _time(match: re.Match, lang: str) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if lang == "zh":
        return _zh_number(str(hours)) + "点" + (_zh_number(str(minutes)) + "分" if minutes else "")
    if minutes == 0:
        return f"{english_cardinal(hours)} o'clock"
    tail = f"oh {english_cardinal(minutes)}" if minutes < 10 else english_cardinal(minutes)
    return f"{english_cardinal(hours)} {tail}"


def _en_plain_number(match: re.Match) -> str:
    return f"{_en_number(match.group(0), match.string[: match.start()])}"


def _say_numbers(text: str, lang: str) -> str:
    """Numbers with their units, currencies and percent signs as words."""
    zh = lang == "zh"
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,000,000
    say_digits = chinese_digits if zh else english_digits
    text = re.sub(  # phone numbers, codes: 010-12345678
        r"(?<![A-Za-z0-9.])(\d{2,4})-(\d{5,})(?![A-Za-z0-9.])",
        lambda m: say_digits(m[1]) + ("、" if zh else ", ") + say_digits(m[2]),
        text,
    )
    text = re.sub(  # ranges: 3-5 km, 3~5%
        r"(?<![A-Za-z0-9.])(\d{1,4}(?:\.\d+)?)\s?[-–~～]\s?(?=\d{1,4}(?:\.\d+)?(?![\d.])(%?))",
        lambda m: m[1] + m[2] + ("到" if zh else " to "),
        text,
    )
    text = _CURRENCY_RE.sub(lambda m: _currency(m, lang), text)
    if zh:
        text = re.sub(rf"(-?{_NUM})\s?%", lambda m: "百分之" + _zh_number(m.group(1)), text)
    else:
        text = re.sub(rf"(-?{_NUM})\s?%", lambda m: f"{_en_number(m.group(1))} percent", text)
    text = _UNIT_RE.sub(lambda m: _unit(m, lang), text)
    if zh:
        year = r"(\d{4})(?=\s?(?:[-–~～到至]\s?\d{4}\s?)?年)"
        text = re.sub(year, lambda m: chinese_digits(m.group(1)), text)
    else:
        text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: english_ordinal(int(m[1])), text)
        text = re.sub(r"\b(\d{4})s\b", lambda m: _decade(int(m.group(1))), text)
    text = re.sub(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])", lambda m: _time(m, lang), text)
    if zh:
        text = re.sub(r"(\d+)/(\d+)", lambda m: f"{_zh_number(m[2])}分之{_zh_number(m[1])}", text)
    else:
        text = re.sub(r"(\d+)/(\d+)", lambda m: f"{english_cardinal(int(m[1]))} over {m[2]}", text)
    number = rf"(?:(?<![A-Za-z0-9.])-)?{_NUM}"
    if zh:
        return re.sub(number, lambda m: _zh_number(m.group(0)), text)
    return re.sub(number, _en_plain_number, text)


def _decade(year: int) -> str:
    words = english_year(year)
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _say_symbols(text: str, lang: str) -> str:
    for symbol, (en, zh) in _SYMBOLS.items():
        if symbol in text:
            text = text.replace(symbol, zh if lang == "zh" else f" {en} ")
    return text


def _drop_unspeakable(text: str) -> str:
    """Emoji, pictographs, control and format characters out (a space where they were)."""
    out = []
    for ch in text:
        if ch in _DROP_CHARS or unicodedata.category(ch) in _DROP_CATEGORIES:
            out.append(" ")
        elif 0xFE00 <= ord(ch) <= 0xFE0F or 0xE0000 <= ord(ch) <= 0xE007F:
            continue  # variation selectors, tag characters
        else:
            out.append(ch)
    return "".join(out)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([，。！？；：、,.!?;:…])", r"\1", text)
    text = re.sub(rf"(?<=[{_CJK}，。！？；：、])\s+|\s+(?=[{_CJK}])", "", text)
    return re.sub(r"^[，。！？；：、,.!?;:…\s]+", "", text)


def normalize(text: str, lang: str) -> str:
    """``text`` with numbers, units and symbols as words of ``lang`` and the unspeakable out.

    Args:
        text: target text, possibly mixed.
        lang: ``"zh"`` or ``"en"``: the language the numbers and symbols are read in.

    Returns:
        the text to phonemize; punctuation kept.
    """
    text = unicodedata.normalize("NFC", text).translate(_FULLWIDTH)
    text = _say_numbers(text, lang)
    text = _say_symbols(text, lang)
    return _tidy(_drop_unspeakable(text))


def split_clauses(text: str) -> list[str]:
    """Cut at clause punctuation (，。！？；：,.!?;: …), keeping it (and closing quotes) with
    its clause. An ASCII mark splits only before a space, the end or a non-ASCII character,
    so ``U.S.`` and ``3.5`` stay whole. Pieces with nothing to say are dropped."""
    pieces, start = [], 0
    for match in _CLAUSE_RE.finditer(text):
        if match.group(0) == "." and _ABBREVIATION_RE.search(text, 0, match.start()):
            continue  # Mr. Smith, the U.S. economy
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if any(ch.isalnum() for ch in p)]


def language_runs(clause: str, lang: str) -> tuple[Run, ...]:
    """Cut a clause into runs of ``lang`` and of the other language (Latin words in Chinese,
    Chinese characters in English)."""
    other = "en" if lang == "zh" else "zh"
    pattern = _LATIN_RUN if lang == "zh" else _CJK_RUN
    runs, start = [], 0
    for match in pattern.finditer(clause):
        if clause[start : match.start()].strip():
            runs.append(Run(clause[start : match.start()].strip(), lang))
        runs.append(Run(match.group(0), other))
        start = match.end()
    if clause[start:].strip():
        runs.append(Run(clause[start:].strip(), lang))
    return tuple(runs)


MAX_PIECE = {"en": 10, "zh": 14}  # words / characters: about 3-4 s of speech
_ZH_BREAK_AFTER = set("的了是在和与及就也都而但把被对向从让")


def split_long(clause: str, lang: str, max_units: int | None = None) -> list[str]:
    """Cut a clause longer than ``max_units`` (words, or Chinese characters) into balanced
    pieces, so the first piece is heard soon and each next piece is synthesized while the one
    before plays (a 7 s clause would otherwise leave the listener waiting for its synthesis).
    English breaks between words; Chinese after a particle or a function word near the cut
    when there is one."""
    limit = max_units or MAX_PIECE[lang]
    if lang == "en":
        words = clause.split()
        if len(words) <= limit:
            return [clause]
        n = -(-len(words) // limit)
        size = -(-len(words) // n)
        return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    han = [i for i, ch in enumerate(clause) if ch.isalnum()]
    if len(han) <= limit:
        return [clause]
    n = -(-len(han) // limit)
    ends = _word_ends(clause)  # cut between words, never inside one
    pieces, start = [], 0
    for k in range(1, n):
        target = han[min(k * len(han) // n, len(han) - 1)]
        choices = [e for e in ends if start + 2 < e < len(clause) - 2]
        if not choices:
            break
        cut = min(choices, key=lambda e: abs(e - target) - 2 * (clause[e - 1] in _ZH_BREAK_AFTER))
        pieces.append(clause[start:cut])
        start = cut
    pieces.append(clause[start:])
    return [piece for piece in pieces if piece.strip()]


def _word_ends(clause: str) -> list[int]:
    """Offsets where a Chinese word ends (jieba's segmentation)."""
    import logging

    import jieba

    logging.getLogger("jieba").setLevel(logging.WARNING)
    ends, at = [], 0
    for word in jieba.cut(clause):
        at += len(word)
        ends.append(at)
    return ends


def speakable_clauses(text: str, lang: str) -> list[Clause]:
    """Normalize ``text`` (:func:`normalize`), cut it into clauses (long ones into pieces,
    :func:`split_long`) and each into language runs.

    Text that is only punctuation, emoji or symbols gives an empty list.
    """
    return [
        Clause(piece, language_runs(piece, lang))
        for clause in split_clauses(normalize(text, lang))
        for piece in split_long(clause, lang)
    ]
