"""Glossaries: required translations of terms, and how a prompt tells the model about them.

A :class:`Glossary` maps source terms to target terms. :meth:`Glossary.find` matches them in
the source read so far (Chinese: substrings; English: whole words, case-insensitive), leftmost
and longest first, so a term that has only partly arrived (the first character of a
two-character name) simply does not match yet. :func:`prompt_source` then rewrites the source
text of the prompt by one of :data:`GLOSSARY_METHODS`. Every method changes the prompt only
from the first matched term on, after everything that precedes the source, so the key/value
cache of the instruction, examples and context survives each step.

Files (:mod:`simulinterp.translate.glossary_files`) are TSV or WMT-style JSON lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from simulinterp.lang import check_language

GLOSSARY_METHODS = ("replace", "annotate", "hint")
"""How matched terms reach the model.

* ``replace``: the term is replaced by its target in the source (``Hao Ren，人如其名``); the
  model copies it.
* ``annotate``: the target follows the term in brackets (``郝仁(Hao Ren)，人如其名``).
* ``hint``: the source is unchanged and a line after it lists the matched terms
  (``Terms: 郝仁 = Hao Ren``). The small model tends to echo the line after its translation,
  so :data:`HINT_LABEL` is also a stop string.
"""

HINT_LABEL = "Terms:"
"""What opens the hint line (a stop string when the ``hint`` method is used)."""


class GlossaryError(ValueError):
    """A glossary that cannot be used: an empty term, a duplicate, a bad file."""


@dataclass(frozen=True)
class Term:
    """One glossary entry: ``source`` is always translated as ``target``.

    Attributes:
        source: the term in the source language.
        target: its translation.
        later: translations for its second, third, ... occurrence in one text, where they
            differ (a per-segment annotation such as WMT's gives ``a monarch`` for the first
            国君 and ``the monarch`` for the next); the last one given holds for the rest.
    """

    source: str
    target: str
    later: tuple[str, ...] = ()

    def target_at(self, occurrence: int) -> str:
        """The translation of the term's ``occurrence``-th appearance (0: the first)."""
        if occurrence <= 0 or not self.later:
            return self.target
        return self.later[min(occurrence, len(self.later)) - 1]


@dataclass(frozen=True)
class TermMatch:
    """A term found in a source text: ``text[start:end]`` is ``term.source``, its
    ``occurrence``-th appearance there (0: the first)."""

    term: Term
    start: int
    end: int
    occurrence: int = 0

    @property
    def target(self) -> str:
        """The translation this appearance takes."""
        return self.term.target_at(self.occurrence)


@dataclass(frozen=True)
class Glossary:
    """Terms of one translation direction.

    Attributes:
        terms: the entries; no source may be empty or appear twice (case-insensitively for
            an English source).
        source_lang: ``zh`` (terms match as substrings) or ``en`` (as whole words, in any
            case).
    """

    terms: tuple[Term, ...] = ()
    source_lang: str = "zh"
    _patterns: tuple[tuple[re.Pattern[str], Term], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_lang", check_language(self.source_lang))
        seen: dict[str, Term] = {}
        for term in self.terms:
            if not term.source.strip() or not all(t.strip() for t in (term.target, *term.later)):
                raise GlossaryError(f"empty term: {term.source!r} -> {term.target!r}")
            key = self._key(term.source)
            if key in seen:
                raise GlossaryError(
                    f"duplicate term {term.source!r}: {seen[key].target!r} and {term.target!r}"
                )
            seen[key] = term
        longest_first = sorted(self.terms, key=lambda t: len(t.source), reverse=True)
        patterns = tuple((self._pattern(t.source), t) for t in longest_first)
        object.__setattr__(self, "_patterns", patterns)

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target term (with the later occurrences' translations)."""
        return tuple(target for t in self.terms for target in dict.fromkeys((t.target, *t.later)))

    def find(self, text: str, earlier: Mapping[str, int] | None = None) -> list[TermMatch]:
        """The terms in ``text``, in order, not overlapping; at one place the longest wins.

        Args:
            text: the source text.
            earlier: appearances of each term (by its ``source``) before ``text`` in the same
                stream, which number the occurrences (:attr:`Term.later`).
        """
        found = [
            TermMatch(term, m.start(), m.end())
            for pattern, term in self._patterns
            for m in pattern.finditer(text)
        ]
        found.sort(key=lambda m: (m.start, -(m.end - m.start)))
        chosen: list[TermMatch] = []
        seen = dict(earlier or {})
        for match in found:
            if not chosen or match.start >= chosen[-1].end:
                key = match.term.source
                chosen.append(replace(match, occurrence=seen.get(key, 0)))
                seen[key] = seen.get(key, 0) + 1
        return chosen

    def _key(self, source: str) -> str:
        text = source.strip()
        return text.lower() if self.source_lang == "en" else text

    def _pattern(self, source: str) -> re.Pattern[str]:
        escaped = re.escape(source.strip())
        if self.source_lang == "zh":
            return re.compile(escaped)
        return re.compile(rf"(?<![\w]){escaped}(?![\w])", re.IGNORECASE)


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
_HYPHEN_SPACES_RE = re.compile(r"\s*-\s*")
_SPACES_RE = re.compile(r"\s+")


def contains_term(text: str, term: str, lang: str) -> bool:
    """True when ``text`` holds the target ``term`` in language ``lang``.

    English ignores case, typographic quotes, the spacing around hyphens (``Pan - Cultural``
    is ``Pan-Cultural``) and the punctuation at the ends of the term (``Co.,`` is ``Co``), and
    the term must stand as whole words. Chinese ignores whitespace and matches a substring.
    """
    if lang == "zh":
        return "".join(term.split()) in "".join(text.split())
    wanted = normalize_english(term).strip(" \t.,;:!?\"'()[]")
    if not wanted:
        return False
    pattern = rf"(?<![a-z0-9]){re.escape(wanted)}(?![a-z0-9])"
    return re.search(pattern, normalize_english(text)) is not None


def normalize_english(text: str) -> str:
    """Lowercase, ASCII quotes, no spaces around hyphens, single spaces."""
    text = text.translate(_QUOTES).lower()
    return _SPACES_RE.sub(" ", _HYPHEN_SPACES_RE.sub("-", text)).strip()


def prompt_source(text: str, matches: Sequence[TermMatch], method: str, source_lang: str) -> str:
    """The source text as the prompt shows it, with the matched terms marked by ``method``.

    Args:
        text: the source read so far.
        matches: :meth:`Glossary.find` of ``text``.
        method: one of :data:`GLOSSARY_METHODS`.
        source_lang: ``zh`` or ``en`` (spacing of annotations).
    """
    if method not in GLOSSARY_METHODS:
        raise ValueError(f"glossary method must be one of: {', '.join(GLOSSARY_METHODS)}")
    if not matches:
        return text
    if method == "hint":
        pairs = dict.fromkeys(f"{m.term.source} = {m.target}" for m in matches)
        return f"{text}\n{HINT_LABEL} {'; '.join(pairs)}"
    out, position = [], 0
    for match in matches:
        out.append(text[position : match.start])
        if method == "replace":
            out.append(match.target)
        else:
            gap = " " if source_lang == "en" else ""
            out.append(f"{text[match.start : match.end]}{gap}({match.target})")
        position = match.end
    out.append(text[position:])
    return "".join(out)
