"""Repair of English glossary targets the model nearly wrote (simulinterp.translate.term_repair)."""

from __future__ import annotations

import pytest

from simulinterp.llm.base import Continuation, Token
from simulinterp.translate.term_repair import article_edits, repaired, term_edits

INSTITUTE = "a martial arts training institute"


def _applied(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text


@pytest.mark.parametrize(
    ("text", "targets", "fixed"),
    [
        # another article before the phrase
        (
            "he joined the martial arts training institute today",
            [INSTITUTE],
            "he joined a martial arts training institute today",
        ),
        # capitalization follows the text; the target's own capitals are kept
        (
            "A holy king can change a dynasty",
            ["the Holy King"],
            "The Holy King can change a dynasty",
        ),
        # a sentence start without an article
        (
            "He left. Martial arts training institute was far",
            [INSTITUTE],
            "He left. A martial arts training institute was far",
        ),
        ("Holy King came", ["the Holy King"], "The Holy King came"),
        # a possessive after the phrase stays
        (
            "a mascot of the martial arts training institute's",
            [INSTITUTE],
            "a mascot of a martial arts training institute's",
        ),
        # after another word, or a paraphrase: left as it is
        ("the Wuhan Martial Arts Training Institute", [INSTITUTE], None),
        ("the martial arts training institution", [INSTITUTE], None),
        # already right, or no article in the target: nothing to do
        ("a martial arts training institute", [INSTITUTE], None),
        ("the Su Yu", ["Su Yu"], None),
        # two targets, each once; hyphens with spaces match
        (
            "the monarch and a Feng - er fan",
            ["a monarch", "the Feng-er fan"],
            "a monarch and the Feng-er fan",
        ),
    ],
)
def test_article_edits(text: str, targets: list[str], fixed: str | None) -> None:
    assert _applied(text, article_edits(text, targets)) == (text if fixed is None else fixed)


@pytest.mark.parametrize(
    ("text", "targets", "fixed"),
    [
        # spelling: diacritics and case, with the article put right too
        (
            "she was a naive little girl then",
            ["the naïve little girl"],
            "she was the naïve little girl then",
        ),
        ("Haoren smiled", ["Hao Ren"], "Hao Ren smiled"),
        # one word between the first and last, in a target of three or more words
        (
            "he would be an assistant to the emperor.",
            ["an assistant of the emperor"],
            "he would be an assistant of the emperor.",
        ),
        ("To this strange world", ["this unusual world"], "To this unusual world"),
        # ... but not the first or last word, two words, or a two-word target
        ("he met an assistant of the king", ["an assistant of the emperor"], None),
        ("a helper to the emperor", ["an assistant of the emperor"], None),
        ("the strange world", ["this unusual world"], None),
        ("a strange world", ["unusual world"], None),
        # names: a surname under a title, or in Western order
        ("Mr. Hao is a good person.", ["Hao Ren"], "Hao Ren is a good person."),
        ('"Mr, Hao, he looks"', ["Hao Ren"], '"Hao Ren, he looks"'),
        ("Young Master Su came", ["Su Yu"], "Su Yu came"),
        ("Ren Hao is here", ["Hao Ren"], "Hao Ren is here"),
        ("Hello Ren, he is like his name", ["Hao Ren"], "Hao Ren, he is like his name"),
        ("then Hao Jen came", ["Hao Ren"], "then Hao Ren came"),
        # ... but not where the other word is a pronoun, title or article, or not capitalized
        ("He Ren", ["Hao Ren"], None),
        ("Hao said so", ["Hao Ren"], None),
        ("the Ren family", ["Hao Ren"], None),
        # a bare surname is never expanded; nor a name already there
        ("He is a good person.", ["He Ping"], None),
        ("Mr. Hao Ren came", ["Hao Ren"], None),
        # a repair that would undo another wanted target is not made
        ("a monarch spoke", ["a monarch", "the monarch"], None),
        # ... while one that adds a target and keeps the others is
        (
            "a monarch met a monarch",
            ["a monarch", "the monarch"],
            "the monarch met a monarch",
        ),
    ],
)
def test_term_edits(text: str, targets: list[str], fixed: str | None) -> None:
    assert _applied(text, term_edits(text, targets)) == (text if fixed is None else fixed)


def test_the_start_of_a_sentence_needs_a_sentence_end_before_it() -> None:
    assert article_edits("He left. Martial arts training institute", [INSTITUTE]) == [
        (9, 40, "A martial arts training institute")
    ]


def test_repaired_keeps_tokens_and_log_probabilities_aligned() -> None:
    pieces = [("He", -0.1), (" joined", -0.2), (" the", -0.9), (" martial", -0.3)]
    pieces += [(" arts training institute", -0.4), (".", -0.05)]
    tokens = tuple(Token(t, lp) for t, lp in pieces)
    cont = Continuation("".join(t for t, _ in pieces), tokens, True, 10, 4)
    fixed = repaired(cont, [INSTITUTE])
    assert fixed.text == "He joined a martial arts training institute."
    assert [t.text for t in fixed.tokens] == [
        "He",
        " joined",
        " a martial arts training institute",
        ".",
    ]
    assert [t.logprob for t in fixed.tokens] == [-0.1, -0.2, -0.9, -0.05]
    assert (fixed.finished, fixed.prompt_tokens, fixed.cached_tokens) == (True, 10, 4)
    assert repaired(cont, ["Su Yu"]) is cont
