"""Vocabulary helpers shared by the backends that ban Chinese tokens for English output and
Latin tokens (other than names and glossary terms) for Chinese output."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from simulinterp.leaks import latin_runs, spells_allowed

# UTF-8 lead bytes of U+3000..U+9FFF (CJK punctuation, kana, ideographs) and of U+FF00..U+FFEF.
CJK_LEAD_BYTES = frozenset(range(0xE3, 0xEA)) | {0xEF}


def byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's reversible byte-to-unicode table used by byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


class LatinTokens:
    """The vocabulary tokens that hold Latin letters, for a Chinese target's constraint.

    A token stays open when each run of Latin letters in it can help spell an allowed word
    (:func:`simulinterp.leaks.spells_allowed`: a lone capital, or a substring of the word);
    every other Latin token is banned. Finding the open ones looks up each substring of each
    allowed word in an index of the tokens' letters, so it costs microseconds per word, not a
    pass over the vocabulary.

    Args:
        tokens: (token id, token text) of every ordinary token whose text holds a Latin letter.
    """

    def __init__(self, tokens: Iterable[tuple[int, str]]):
        self.ids: frozenset[int] = frozenset()
        self._by_letters: dict[str, list[int]] = {}
        self._several: list[tuple[int, tuple[str, ...]]] = []  # tokens with two or more runs
        always: set[int] = set()
        ids = set()
        for token_id, text in tokens:
            runs = tuple(latin_runs(text))
            if not runs:
                continue
            ids.add(token_id)
            if len(runs) > 1:
                self._several.append((token_id, runs))
            elif spells_allowed(runs[0], ()):  # a lone capital
                always.add(token_id)
            else:
                self._by_letters.setdefault(runs[0].lower(), []).append(token_id)
        self.ids = frozenset(ids)
        self._always = frozenset(always)

    def banned(self, allowed: Collection[str]) -> list[int]:
        """Ids of the Latin tokens that cannot help spell any of ``allowed``, sorted.

        Args:
            allowed: words (lowercase) that the output may hold.
        """
        words = [w.lower() for w in allowed]
        open_ids = set(self._always)
        for word in words:
            for start in range(len(word)):
                for end in range(start + 1, len(word) + 1):
                    open_ids.update(self._by_letters.get(word[start:end], ()))
        for token_id, runs in self._several:
            if all(spells_allowed(run, words) for run in runs):
                open_ids.add(token_id)
        return sorted(self.ids - open_ids)


def is_latin_text(text: str) -> bool:
    """True when ``text`` (a decoded token) holds a Latin letter."""
    return bool(latin_runs(text))
