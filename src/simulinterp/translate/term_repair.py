"""Article repair: an English glossary target the model wrote with another article.

A glossary target often carries its article (WMT: ``a martial arts training institute`` on one
line, ``the martial arts training institute`` on the next), and a model given the term copies
the noun phrase but picks the article its own sentence wants. When a candidate holds the
target's phrase after a different article (``the`` for ``a``), or at the start of a sentence
without one, the article is put right; capitalization follows the text (``A holy king`` ->
``The Holy King``). Nothing else is rewritten: a phrase after another word (``Wuhan Martial
Arts Training Institute``) or a paraphrase (``institution``) stays as the model wrote it.

The repair sees one candidate at a time and committed text is never rewritten, so it helps
where a candidate holds the whole phrase (a clause, a sentence); under wait-k the article is
often committed a step before the phrase arrives.
"""

from __future__ import annotations

import re
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


def repaired(cont: Continuation, targets: Sequence[str]) -> Continuation:
    """``cont`` with :func:`article_edits` applied; the tokens an edit touches become one
    token with their lowest log-probability."""
    edits = article_edits(cont.text, targets)
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
