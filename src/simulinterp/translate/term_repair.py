"""Term repair: an English glossary target the model wrote nearly, but not quite.

A model given a glossary term (``replace`` puts the target into the source) mostly copies it,
and misses it in a few regular ways. Each candidate continuation is checked against the
targets of the terms found in the source that it does not hold yet, and a near miss is put
right:

- **article**: the phrase after another article (``A holy king`` -> ``The Holy King``; WMT
  gives ``a martial arts training institute`` on one line, ``the ...`` on the next), or at a
  sentence start without one;
- **spelling**: the same words but for case, diacritics or hyphens (``a naive little girl`` ->
  ``the naïve little girl``), or a name written as one word (``Haoren`` -> ``Hao Ren``);
- **one word**: a target of three or more words with its first and last words in place and one
  word between them different (``an assistant to the emperor`` -> ``an assistant of the
  emperor``, ``this strange world`` -> ``this unusual world``);
- **names** (a Chinese source): a name of two or three capitalized words with its surname
  under a title (``Mr. Hao`` -> ``Hao Ren``), in Western order (``Ren Hao`` -> ``Hao Ren``), or
  with one part heard as another capitalized word that is not a pronoun, article or title
  (``Hello Ren`` -> ``Hao Ren``: the model took 郝's pinyin for 好). A bare surname is never
  expanded: too many are English words (``He``, ``Su``).

An edit is kept only when it raises the number of targets the text holds, so one never
undoes another (``a monarch`` is not turned into ``the monarch`` when both are wanted and only
the first is there). Everything else stays as the model wrote it: a paraphrase
(``institution``), other words around the phrase (``Wuhan Martial Arts Training Institute``),
another order (``the attendant of the training institute``).

The repair sees one candidate at a time and committed text is never rewritten, so it helps
where a candidate holds the whole phrase (a clause, a sentence); under wait-k the article is
often committed a step before the phrase arrives.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from simulinterp.llm.base import Continuation, Token
from simulinterp.translate.glossary import contains_term

_ARTICLE_RE = re.compile(r"^(a|an|the)\s+(\S.*)$", re.IGNORECASE)
_BEFORE_RE = re.compile(r"(?<![A-Za-z0-9'])(a|an|the)\s+$", re.IGNORECASE)
_SENTENCE_START_RE = re.compile(r"(?:^|[.!?:;\"“]\s*)$")

Edit = tuple[int, int, str]
"""Replace ``text[start:end]`` with the string."""


def article_edits(text: str, targets: Sequence[str]) -> list[Edit]:
    """The edits that give each target its own article where ``text`` has another.

    Args:
        text: English text (a candidate continuation).
        targets: glossary targets that ``text`` should hold and does not.

    Returns:
        Non-overlapping edits, in order.
    """
    edits: list[Edit] = []
    for target in targets:
        found = _ARTICLE_RE.match(target.strip())
        if found is None or contains_term(text, target, "en"):
            continue
        for match in _phrase(found.group(2)).finditer(text):
            before = _BEFORE_RE.search(text, 0, match.start())
            if before is not None:
                start = before.start()
            elif _SENTENCE_START_RE.search(text, 0, match.start()):
                start = match.start()
            else:
                continue
            if any(start < end and match.end() > begin for begin, end, _ in edits):
                continue
            replacement = target.strip()
            if text[start].isupper():
                replacement = replacement[0].upper() + replacement[1:]
            edits.append((start, match.end(), replacement))
            break
    return sorted(edits)


def term_edits(text: str, targets: Sequence[str]) -> list[Edit]:
    """The repairs of the module docstring that raise the number of ``targets`` in ``text``.

    Args:
        text: English text (a candidate continuation).
        targets: glossary targets that ``text`` should hold.

    Returns:
        Non-overlapping edits, in order.
    """
    wanted = list(dict.fromkeys(t.strip() for t in targets if t.strip()))
    missing = [t for t in wanted if not contains_term(text, t, "en")]
    if not missing:
        return []
    proposals = article_edits(text, missing) + near_miss_edits(text, missing)
    kept: list[Edit] = []
    held = _held(text, wanted)
    for edit in sorted(proposals):
        if any(edit[0] < end and edit[1] > start for start, end, _ in kept):
            continue
        trial = _held(_apply(text, [*kept, edit]), wanted)
        if trial > held:
            kept.append(edit)
            held = trial
    return sorted(kept)


def near_miss_edits(text: str, targets: Sequence[str]) -> list[Edit]:
    """Spelling, one-word and name repairs (module docstring) of ``targets`` in ``text``;
    the first near miss of each target, possibly overlapping (:func:`term_edits` chooses)."""
    words = [(m.start(), m.end(), _fold(m.group())) for m in _WORD_RE.finditer(text)]
    edits: list[Edit] = []
    for target in targets:
        wanted = [_fold(w) for w in _WORD_RE.findall(target)]
        if not wanted:
            continue
        span = _same_words(words, wanted) or _joined(words, wanted) or _name(text, target)
        if span is not None:
            start, end = span
            replacement = target.strip()
            if text[start].isupper() and replacement[0].islower():
                replacement = replacement[0].upper() + replacement[1:]
            edits.append((start, end, replacement))
    return edits


def repaired(cont: Continuation, targets: Sequence[str]) -> Continuation:
    """``cont`` with :func:`term_edits` applied; the tokens an edit touches become one
    token with their lowest log-probability."""
    edits = term_edits(cont.text, targets)
    if not edits:
        return cont
    spans, offset = [], 0
    for token in cont.tokens:
        spans.append((offset, offset + len(token.text), token))
        offset += len(token.text)
    if offset != len(cont.text) or not spans:  # tokens that do not spell the text
        lowest = min((t.logprob for t in cont.tokens), default=0.0)
        spans = [(0, len(cont.text), Token(cont.text, lowest))]
    groups: list[list[int]] = []  # runs of token indices that edits touch
    for start, end, _ in edits:
        touched = [k for k, (a, b, _) in enumerate(spans) if a < end and b > start]
        if groups and touched[0] <= groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], touched[-1])
        else:
            groups.append([touched[0], touched[-1]])
    tokens: list[Token] = []
    done = 0
    for low, high in groups:
        tokens += [span[2] for span in spans[done:low]]
        first, last = spans[low][0], spans[high][1]
        inside = [(s - first, e - first, new) for s, e, new in edits if first <= s and e <= last]
        lowest = min(span[2].logprob for span in spans[low : high + 1])
        tokens.append(Token(_apply(cont.text[first:last], inside), lowest))
        done = high + 1
    tokens += [span[2] for span in spans[done:]]
    text = "".join(t.text for t in tokens)
    return Continuation(text, tuple(tokens), cont.finished, cont.prompt_tokens, cont.cached_tokens)


def _apply(text: str, edits: Sequence[Edit]) -> str:
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _phrase(words: str) -> re.Pattern[str]:
    """The phrase as whole words in any case, spaces flexible, hyphens with or without spaces."""
    parts = [re.escape(w) for w in words.split()]
    body = r"\s+".join(parts).replace(r"\-", r"\s*-\s*")
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_ARTICLES = frozenset({"a", "an", "the"})
_TITLES_RE = r"(?:Young Master|Mr|Mrs|Ms|Miss|Mister|Master|Brother|Sister|Old|Little)[.,]?\s+"
_NOT_NAMES = frozenset(
    "A An The I He She It We They You His Her Its Our Their My Your This That These Those "
    "And But Or So If When Then There Here Mr Mrs Ms Miss Mister Master Young Old Little".split()
)
_NAME_RE = re.compile(r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+){1,2}")


def _fold(word: str) -> str:
    """Lowercase, without diacritics, ASCII apostrophes."""
    decomposed = unicodedata.normalize("NFKD", word.replace("’", "'").lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _same_words(
    words: Sequence[tuple[int, int, str]], wanted: Sequence[str]
) -> tuple[int, int] | None:
    """The first run of ``len(wanted)`` words equal to ``wanted`` but for a leading article
    and, in a target of three or more words, one word between its first and last."""
    n = len(wanted)
    for i in range(len(words) - n + 1):
        run = [w for _, _, w in words[i : i + n]]
        differ = [
            j
            for j, (got, want) in enumerate(zip(run, wanted, strict=True))
            if got != want and not (j == 0 and got in _ARTICLES and want in _ARTICLES)
        ]
        if not differ or (n >= 3 and len(differ) == 1 and 0 < differ[0] < n - 1):
            return words[i][0], words[i + n - 1][1]
    return None


def _joined(words: Sequence[tuple[int, int, str]], wanted: Sequence[str]) -> tuple[int, int] | None:
    """A single word that is the target's words written together (``Haoren``)."""
    if len(wanted) < 2:
        return None
    whole = "".join(wanted)
    return next(((start, end) for start, end, w in words if w == whole), None)


def _name(text: str, target: str) -> tuple[int, int] | None:
    """A name's surname under a title, the name in Western order, or the name with one part
    heard as another capitalized word (module docstring)."""
    name = target.strip()
    if _NAME_RE.fullmatch(name) is None:
        return None
    parts = re.split(r"[ -]", name)
    surname, rest = re.escape(parts[0]), [re.escape(p) for p in parts[1:]]
    after = rf"(?![A-Za-z])(?![ -]{rest[0]}(?![A-Za-z]))"
    titled = re.search(rf"(?<![A-Za-z]){_TITLES_RE}{surname}{after}", text)
    if titled is not None:
        return titled.start(), titled.end()
    western = r"[ -]".join([*rest, surname])
    found = re.search(rf"(?<![A-Za-z]){western}(?![A-Za-z])", text)
    if found is not None:
        return found.start(), found.end()
    # one part of the name heard as another capitalized word (Hao Ren -> "Hello Ren")
    for k in range(len(parts)):
        pattern = r"[ -]".join(
            r"([A-Z][a-z]+)" if j == k else re.escape(p) for j, p in enumerate(parts)
        )
        for found in re.finditer(rf"(?<![A-Za-z]){pattern}(?![A-Za-z])", text):
            if found.group(1) not in _NOT_NAMES:
                return found.start(), found.end()
    return None


def _held(text: str, targets: Sequence[str]) -> int:
    return sum(contains_term(text, t, "en") for t in targets)
