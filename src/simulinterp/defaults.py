"""What ``interpret``, ``demo`` and ``eval --source-type speech`` use unless told otherwise.

One place, so that a speech evaluation scores exactly what a user of ``interpret`` gets. The
choices come from ``bench/quality.py`` (the README has its table and the reasons); a flag on
the command line overrides each field.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulinterp.lang import check_pair


@dataclass(frozen=True)
class Defaults:
    """Model, policy and translator settings for one direction.

    Attributes:
        model: the packaged preset (``fast``: 0.5B, ``quality``: 1.5B).
        policy: the READ/WRITE policy name.
        knob: the policy's latency knob (``None``: the policy's own default).
        layout: the prompt layout (``sentence`` or ``exchanges``).
        context_sentences: earlier sentence pairs kept in the prompt.
        max_duty: the translator's largest share of computing time (1.0: no cap).
    """

    model: str
    policy: str
    knob: float | None = None
    layout: str = "sentence"
    context_sentences: int = 1
    max_duty: float = 1.0


SPEECH: dict[tuple[str, str], Defaults] = {
    ("en", "zh"): Defaults(model="fast", policy="wait-k", knob=3),
    ("zh", "en"): Defaults(model="fast", policy="wait-k", knob=3),
}


def speech_defaults(source_lang: str, target_lang: str) -> Defaults:
    """The speech defaults of a direction."""
    return SPEECH[check_pair(source_lang, target_lang)]
