"""Numbers as words: English cardinals, ordinals, years and decimals; Chinese digits.

Pure functions, no imports beyond the standard library (the Chinese cardinals go through cn2an
in :mod:`simulinterp.tts.text`).
"""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_ZH_DIGITS = "零一二三四五六七八九"
MAX_CARDINAL = 10**15 - 1
"""Larger integers are read digit by digit."""


def _below_thousand(n: int) -> str:
    words = []
    if n >= 100:
        words.append(f"{_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n or not words:
        words.append(_ONES[n])
    return " ".join(words)


def english_cardinal(n: int) -> str:
    """``1234`` -> ``one thousand two hundred thirty-four``; negatives get ``minus``; beyond
    :data:`MAX_CARDINAL` the digits are read one by one."""
    if n < 0:
        return "minus " + english_cardinal(-n)
    if n > MAX_CARDINAL:
        return english_digits(str(n))
    if n < 1000:
        return _below_thousand(n)
    words = []
    for value, name in _SCALES:
        if n >= value:
            words.append(f"{_below_thousand(n // value)} {name}")
            n %= value
    if n:
        words.append(_below_thousand(n))
    return " ".join(words)


def english_digits(digits: str) -> str:
    """``"0451"`` -> ``zero four five one``."""
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def english_ordinal(n: int) -> str:
    """``21`` -> ``twenty-first``, ``100`` -> ``one hundredth``."""
    words = english_cardinal(n)
    head, sep, last = words.rpartition(" ")
    prefix, dash, unit = last.rpartition("-")
    if unit in _ORDINAL_WORDS:
        unit = _ORDINAL_WORDS[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return f"{head}{sep}{prefix}{dash}{unit}"


def english_year(n: int) -> str:
    """``1984`` -> ``nineteen eighty-four``, ``2005`` -> ``two thousand five``,
    ``2024`` -> ``twenty twenty-four``, ``1900`` -> ``nineteen hundred``."""
    if not 1000 <= n <= 9999 or 2000 <= n <= 2009 or n % 1000 == 0:
        return english_cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{english_cardinal(high)} hundred"
    if low < 10:
        return f"{english_cardinal(high)} oh {_ONES[low]}"
    return f"{english_cardinal(high)} {english_cardinal(low)}"


def english_decimal(text: str) -> str:
    """``"3.14"`` -> ``three point one four``; ``"-0.5"`` -> ``minus zero point five``."""
    sign = "minus " if text.startswith("-") else ""
    whole, _, frac = text.lstrip("+-").partition(".")
    words = english_cardinal(int(whole or "0"))
    if frac:
        words += " point " + english_digits(frac)
    return sign + words


def chinese_digits(digits: str) -> str:
    """``"2024"`` -> ``二零二四`` (years, codes, phone numbers)."""
    return "".join(_ZH_DIGITS[int(d)] for d in digits if d.isdigit())
