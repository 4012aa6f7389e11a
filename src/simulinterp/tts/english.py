"""English phonemes for Kokoro from misaki's pronouncing dictionaries, without spaCy.

misaki's own English G2P tags parts of speech with spaCy (a model downloaded at run time) and
reads numbers with num2words (LGPL); neither is allowed here. Numbers are words already
(:mod:`simulinterp.tts.text`), and this module looks each word up in misaki's American gold
then silver dictionaries (``misaki/data/us_gold.json``, ``us_silver.json``, Apache-2.0), with
the default reading of words whose reading depends on the part of speech. Words that are not
there: plural, past and ``-ing`` forms of known stems, camel-case and hyphenated compounds,
acronyms spelled letter by letter, and a plain letter-to-sound rule as the last resort.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources

logger = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'.\-]*|[,.!?;:—…\"()“”]")
_PUNCT_OUT = {'"': "“", "…": "…", "—": "—"}
_VOICELESS = set("ptkfθ")
_SIBILANT = set("szʃʒʧʤ")
_VOWELS = set("aeiouæɑɒɔəɛɜɪʊʌᵊAIOWYɐ")
# the last resort: letters (and common digraphs) to Kokoro's phonemes, first match wins
_RULES = (
    ("tion", "ʃən"),
    ("sh", "ʃ"),
    ("ch", "ʧ"),
    ("th", "θ"),
    ("ng", "ŋ"),
    ("ph", "f"),
    ("ck", "k"),
    ("qu", "kw"),
    ("ee", "i"),
    ("ea", "i"),
    ("oo", "u"),
    ("ai", "A"),
    ("ay", "A"),
    ("ei", "A"),
    ("ou", "W"),
    ("ow", "O"),
    ("oa", "O"),
    ("ie", "i"),
    ("a", "æ"),
    ("b", "b"),
    ("c", "k"),
    ("d", "d"),
    ("e", "ɛ"),
    ("f", "f"),
    ("g", "ɡ"),
    ("h", "h"),
    ("i", "ɪ"),
    ("j", "ʤ"),
    ("k", "k"),
    ("l", "l"),
    ("m", "m"),
    ("n", "n"),
    ("o", "ɑ"),
    ("p", "p"),
    ("r", "ɹ"),
    ("s", "s"),
    ("t", "t"),
    ("u", "ʌ"),
    ("v", "v"),
    ("w", "w"),
    ("x", "ks"),
    ("y", "i"),
    ("z", "z"),
)


def _load(name: str) -> dict[str, str]:
    try:
        path = resources.files("misaki") / "data" / name
    except ModuleNotFoundError as err:
        raise ImportError("the Kokoro voice needs misaki: pip install misaki==0.9.4") from err
    table = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for word, value in table.items():
        if isinstance(value, dict):
            value = value.get("DEFAULT") or next((v for v in value.values() if v), None)
        if value:
            out[word] = value
    return out


class EnglishG2P:
    """Dictionary lookup of American English phonemes (Kokoro's phoneme set).

    The dictionaries (about 180,000 words) are read on the first call.
    """

    def __init__(self) -> None:
        self._lexicon: dict[str, str] | None = None

    @property
    def lexicon(self) -> dict[str, str]:
        if self._lexicon is None:
            self._lexicon = _load("us_silver.json") | _load("us_gold.json")
        return self._lexicon

    def __call__(self, text: str) -> str:
        """Phonemes of ``text`` (words and punctuation; numbers already in words)."""
        out = ""
        for token in _TOKEN_RE.findall(text.replace("’", "'")):
            if not token[0].isalpha():
                out = out.rstrip() + _PUNCT_OUT.get(token, token) + " "
                continue
            trailing = token.endswith(".") and token.count(".") == 1 and len(token) > 2
            phonemes = self.word(token.rstrip(".") if trailing else token)
            out += phonemes + ("." if trailing else "") + " "
        return out.strip()

    def word(self, word: str) -> str:
        """Phonemes of one word."""
        found = self._lookup(word)
        if found:
            return found
        if "-" in word.strip("-"):
            return " ".join(self.word(part) for part in word.split("-") if part)
        letters = word.replace(".", "")
        if "." in word.rstrip(".") or (letters.isupper() and len(letters) <= 5):
            return self._spell(letters)
        camel = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", letters)
        if len(camel) > 1:
            return "".join(self.word(part) for part in camel)
        logger.debug("no pronunciation for %r: letter-to-sound rule", word)
        return _rule(letters.lower())

    def _lookup(self, word: str) -> str | None:
        lex = self.lexicon
        for form in (word, word.lower(), word.capitalize()):
            if form in lex:
                return lex[form]
        lower = word.lower()
        for suffix, stem_end in (("'s", ""), ("ies", "y"), ("es", ""), ("s", "")):
            if lower.endswith(suffix) and len(lower) > len(suffix) + 2:
                stem = self._known(lower[: -len(suffix)] + stem_end)
                if stem:
                    return stem + _s_ending(stem)
        if lower.endswith("ed") and len(lower) > 4:
            doubled = (lower[:-3],) if lower[-3] == lower[-4] else ()
            for stem_word in (lower[:-2], lower[:-1], *doubled):
                stem = self._known(stem_word)
                if stem:
                    return stem + _ed_ending(stem)
        if lower.endswith("ing") and len(lower) > 5:
            doubled = (lower[:-4],) if lower[-4] == lower[-5] else ()
            for stem_word in (lower[:-3], lower[:-3] + "e", *doubled):
                stem = self._known(stem_word)
                if stem:
                    return stem + "ɪŋ"
        return None

    def _known(self, word: str) -> str | None:
        lex = self.lexicon
        return lex.get(word) or lex.get(word.capitalize())

    def _spell(self, letters: str) -> str:
        return "".join(self.lexicon.get(ch.upper(), _rule(ch.lower())) for ch in letters)


def _s_ending(stem: str) -> str:
    last = stem[-1]
    if last in _SIBILANT:
        return "ᵻz"
    return "s" if last in _VOICELESS else "z"


def _ed_ending(stem: str) -> str:
    last = stem[-1]
    if last in "td":
        return "ᵻd"
    return "t" if last in _VOICELESS | {"s", "ʃ", "ʧ"} else "d"


def _rule(word: str) -> str:
    """A plain letter-to-sound reading, stressed on its first vowel."""
    out, i = [], 0
    while i < len(word):
        for letters, sound in _RULES:
            if word.startswith(letters, i):
                out.append(sound)
                i += len(letters)
                break
        else:
            i += 1
    phonemes = "".join(out)
    first = next((k for k, ch in enumerate(phonemes) if ch in _VOWELS), None)
    if first is None:
        return phonemes
    return phonemes[:first] + "ˈ" + phonemes[first:]
