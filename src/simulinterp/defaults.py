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
        speaking_max_duty: the same while the interpretation is spoken (``--speak``): each
            stage then has one thread, and a cap that saves time alone makes the text fall
            behind (bench/s2s).
    """

    model: str
    policy: str
    knob: float | None = None
    layout: str = "sentence"
    context_sentences: int = 1
    max_duty: float = 1.0
    speaking_max_duty: float = 1.0


SPEECH: dict[tuple[str, str], Defaults] = {
    # bench/quality (README): the 1.5B doubles the 0.5B's faithfulness; the clause policy is
    # one decision per clause, which keeps the 1.5B within RTF 0.6 (a decision per word does not)
    ("zh", "en"): Defaults(model="quality", policy="clause", knob=0),
    # English runs long without a comma: after 5 words the clause policy commits all but the
    # last 2, and the duty cap keeps those extra decisions inside the RTF budget; spoken, the
    # cap let the text fall 12 s behind on dense speech (drift 8.5 s, uncapped 1.4 s: bench/s2s)
    ("en", "zh"): Defaults(model="quality", policy="clause", knob=5, max_duty=0.5),
}


def speech_defaults(source_lang: str, target_lang: str) -> Defaults:
    """The speech defaults of a direction."""
    return SPEECH[check_pair(source_lang, target_lang)]
