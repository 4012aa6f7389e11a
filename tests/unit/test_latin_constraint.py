"""The Latin constraint for Chinese output: which tokens stay open (llm.vocab.LatinTokens) and
the openai backend's cut (it cannot bias token ids)."""

from __future__ import annotations

from typing import Any

import pytest

from simulinterp.llm.openai_backend import OpenAICompletionsBackend
from simulinterp.llm.vocab import LatinTokens

VOCAB = [
    (0, " Kep"),
    (1, "ler"),
    (2, " fence"),
    (3, "T"),  # a lone capital: always open
    (4, " A"),  # but not A
    (5, "e"),
    (6, "NASA"),
    (7, "-Fi"),
    (8, "Wi"),
    (9, "ok.ay"),  # two runs: open only when both can spell allowed words
    (10, "的"),  # no Latin: not a Latin token at all
    (11, "2016"),
]


@pytest.mark.parametrize(
    ("allowed", "banned"),
    [
        (set(), [0, 1, 2, 4, 5, 6, 7, 8, 9]),
        ({"kepler"}, [2, 4, 6, 7, 8, 9]),
        ({"KEPLER"}, [2, 4, 6, 7, 8, 9]),  # case does not matter
        ({"nasa", "wi-fi"}, [0, 1, 2, 5, 9]),  # "A" is a piece of "nasa"
        ({"okay"}, [0, 1, 2, 5, 6, 7, 8]),
        ({"ok", "fence"}, [0, 1, 4, 6, 7, 8, 9]),
    ],
)
def test_latin_tokens_ban_what_cannot_spell_an_allowed_word(allowed, banned) -> None:
    tokens = LatinTokens(VOCAB)
    assert tokens.ids == frozenset(range(10))
    assert tokens.banned(allowed) == banned


def _answer(pieces: list[str]) -> dict[str, Any]:
    """A llama.cpp-server completions answer whose text is ``pieces`` joined."""
    return {
        "choices": [
            {
                "text": "".join(pieces),
                "finish_reason": "stop",
                "logprobs": {"content": [{"token": p, "logprob": -0.5} for p in pieces]},
            }
        ],
        "usage": {"prompt_tokens": 10},
    }


@pytest.fixture
def openai_with(monkeypatch: pytest.MonkeyPatch):
    def make(pieces: list[str]) -> OpenAICompletionsBackend:
        backend = OpenAICompletionsBackend("http://127.0.0.1:1")
        backend._is_llamacpp = True  # no probe
        monkeypatch.setattr(backend, "_request", lambda path, body: _answer(pieces))
        return backend

    return make


@pytest.mark.parametrize(
    ("pieces", "allow", "text", "finished"),
    [
        # a lowercase word the source had: cut before it, not finished
        (["他", "擦", "掉", "了", " fence", "。"], [], "他擦掉了 ", False),
        # a name that is allowed passes
        (["NASA", "的", "Kep", "ler", "任务"], ["nasa", "kepler"], "NASA的Kepler任务", True),
        # an unfinished allowed name at the end stays
        (["NASA", "的", "Kep"], ["nasa", "kepler"], "NASA的Kep", True),
        # an acronym the source lacks is cut like any other word
        (["NASA", "的", "Kep"], ["kepler"], "", False),
        # None: no restriction
        (["他", " fence"], None, "他 fence", True),
    ],
)
def test_openai_cuts_before_a_disallowed_latin_word(
    openai_with, pieces, allow, text, finished
) -> None:
    result = openai_with(pieces).continue_text("p", max_tokens=8, allow_latin=allow)
    assert result.text == text
    assert "".join(t.text for t in result.tokens) == text
    assert result.finished is finished
