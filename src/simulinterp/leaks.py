"""Leaks: source words left untranslated in a translation.

An English translation carries no Chinese character. A Chinese translation carries no Latin
word, except the words a Chinese reader expects in Latin script:

* names, acronyms and codes of the English source (:func:`source_names`): ``NASA``,
  ``iPhone``, ``Hao Ren``, ``MP3``;
* words holding a digit (``2016``, ``3D``, ``5G``), wherever they come from;
* a single capital letter other than ``A`` and ``I`` (``T恤``, ``X光``, ``B超``): ``A`` and
  ``I`` are more often an English article or pronoun left in;
* the words of the allowed strings (glossary targets, required terms).

So a lowercase common word copied from the source (``他擦掉了 fence。``), a whole English
sentence left untranslated, or a Latin word the source does not have (``OK``) is a leak.
Words are compared case-insensitively, with a trailing possessive ``'s`` ignored. Both the
evaluator (``leak_rate``) and the translator (the guard and the decoding constraint) use these
definitions.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from simulinterp.lang import is_sentence_end

# A Latin word: letters and digits, with inner apostrophes, hyphens, dots or ampersands
# ("don't", "Wi-Fi", "U.S", "AT&T").
LATIN_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+|[-.&][A-Za-z0-9]+)*")
_LETTER_RE = re.compile(r"[A-Za-z]")
_LETTERS_RE = re.compile(r"[A-Za-z]+")
_HAN_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_OPENING = "\"'“‘([{«"
_LONE_CAPITALS = frozenset("BCDEFGHJKLMNOPQRSTUVWXYZ")

# Capitalized words that open a sentence and are never the first word of a name, so that
# "In China" does not make "In" a name the way "Hao Ren" makes "Hao" one.
_FUNCTION_WORDS = frozenset(
    """a an the this that these those there here it its i we you he she they my our your his
    her their me us them in on at of for to from by with into onto as and but or so if when
    while because although though then now today yesterday tomorrow after before since until
    what why how who which where yes no not all some many every each one two three last next
    first also just well oh okay ok dear mr mrs ms dr""".split()
)


def source_names(source: str) -> frozenset[str]:
    """The words of an English text that may stay in Latin script in its Chinese translation.

    A word is kept when it holds a digit (``2016``, ``MP3``), has two capital letters
    (``NASA``, ``PhD``) or a capital after its first letter (``iPhone``), or is capitalized
    where a sentence does not start (``Ren`` in "met Hao Ren", ``Fermi`` in "a thought:
    Fermi's paradox"). A capitalized word that starts a sentence (at the start, after a
    sentence end or an opening quote) is a name only when the next word is one too ("Hao Ren
    went home": both); otherwise it is just a sentence start. Capitalized function words ("In
    China", "Note: This is") and single letters, the pronoun ``I`` included (``I'm``), are
    never names.

    Returns:
        The words, lowercased, without a possessive ``'s``.
    """
    words = _source_words(source)
    names: set[str] = set()
    for i, (word, initial) in enumerate(words):
        if len(word) < 2 or _norm(word).split("'")[0] == "i":  # I, I'm, I've
            continue
        if _is_code(word):
            names.add(_norm(word))
        elif _is_capitalized(word) and _norm(word) in _FUNCTION_WORDS:
            continue  # "Note: This is", a title's "The": never a name
        elif _is_capitalized(word) and not initial:
            names.add(_norm(word))
        elif _is_capitalized(word) and i + 1 < len(words):
            following, following_initial = words[i + 1]
            if len(following) > 1 and _is_capitalized(following) and not following_initial:
                names.add(_norm(word))
    return frozenset(names)


def allowed_latin(source: str, allowed: Iterable[str] = ()) -> frozenset[str]:
    """Latin words a Chinese translation of ``source`` may hold: its names and the allowed
    strings' words (lowercased). Words with a digit and lone capitals need no entry."""
    words = {_norm(m.group()) for text in allowed for m in LATIN_WORD_RE.finditer(text)}
    return source_names(source) | frozenset(words)


def is_latin_leak(word: str, allowed: Collection[str]) -> bool:
    """True when a Latin ``word`` of a Chinese translation is a leak.

    Args:
        word: one match of :data:`LATIN_WORD_RE`.
        allowed: lowercased words that are not leaks (see :func:`allowed_latin`).
    """
    if not _LETTER_RE.search(word) or any(ch.isdigit() for ch in word):
        return False
    if word in _LONE_CAPITALS:
        return False
    return _norm(word) not in allowed


def leaked_words(
    translation: str, source: str, target_lang: str, allowed: Iterable[str] = ()
) -> list[str]:
    """The leaked words of ``translation``, in order (empty when it has none).

    Args:
        translation: the translated text.
        source: the source text it translates (names are taken from it).
        target_lang: ``en`` (a leak is a run of Chinese characters) or ``zh`` (a leak is a
            Latin word that is not a name, number or allowed word; see the module docstring).
        allowed: strings that are never leaks (glossary targets, required terms).
    """
    allowed = [a for a in allowed if a]
    if target_lang == "en":
        for text in sorted(allowed, key=len, reverse=True):
            translation = translation.replace(text, " ")
        return _HAN_RUN_RE.findall(translation)
    words = allowed_latin(source, allowed)
    return [
        m.group() for m in LATIN_WORD_RE.finditer(translation) if is_latin_leak(m.group(), words)
    ]


def spells_allowed(letters: str, allowed: Collection[str]) -> bool:
    """True when a run of Latin letters may be part of an allowed word: it is a lone capital
    (not ``A``/``I``) or, case-insensitively, a substring of one of ``allowed``.

    This is the test a decoding constraint applies to one token's letters: the token can help
    spell an allowed word, so it is not banned.
    """
    if letters in _LONE_CAPITALS:
        return True
    low = letters.lower()
    return any(low in word for word in allowed)


def latin_runs(text: str) -> list[str]:
    """The runs of Latin letters in ``text`` (``" Ren,"`` -> ``["Ren"]``)."""
    return _LETTERS_RE.findall(text)


def latin_cut(text: str, allowed: Collection[str]) -> int:
    """Where to cut ``text`` (a continuation in Chinese) before its first leaked Latin word.

    A word that reaches the end of ``text`` may be unfinished: it is kept while it can still
    spell an allowed word (``Kep`` of ``Kepler``).

    Returns:
        The index of the first leaked word, or ``len(text)`` when there is none.
    """
    for match in LATIN_WORD_RE.finditer(text):
        word = match.group()
        if match.end() == len(text) and all(spells_allowed(r, allowed) for r in latin_runs(word)):
            continue
        if is_latin_leak(word, allowed):
            return match.start()
    return len(text)


def _source_words(source: str) -> list[tuple[str, bool]]:
    """Latin words of ``source`` with whether each starts a sentence."""
    words = []
    previous = ""  # the whitespace-separated token before the current one
    for token in source.split():
        initial = not previous or is_sentence_end(previous) or token[0] in _OPENING
        for k, match in enumerate(LATIN_WORD_RE.finditer(token)):
            words.append((match.group(), initial and k == 0))
        previous = token
    return words


def _is_code(word: str) -> bool:
    """A digit, two capitals, or a capital after the first letter: NASA, iPhone, MP3."""
    if any(ch.isdigit() for ch in word):
        return True
    capitals = sum(ch.isupper() for ch in word)
    return capitals >= 2 or (capitals == 1 and not word[0].isupper())


def _is_capitalized(word: str) -> bool:
    return word[0].isupper()


def _norm(word: str) -> str:
    low = word.lower().replace("’", "'")
    return low[:-2] if low.endswith("'s") and len(low) > 2 else low
