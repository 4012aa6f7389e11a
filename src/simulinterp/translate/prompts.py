"""Few-shot chat prompts per direction, laid out so the key/value cache survives each step.

The prompt is ChatML (the format of the packaged Qwen2.5 models): a system instruction, a few
examples written for this project (the ``few-shot`` style, for untrained models; the ``plain``
style that fine-tuned adapters are trained with has none), the previous sentence pair of the
stream as context, then the source read so far as the last user turn. The committed target is
appended after the assistant header by the translator, so everything up to the new source unit
stays cached. Training builds its examples from the same pieces (:func:`prompt_head`,
:data:`ASSISTANT_HEADER`), so the model sees at inference exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

from simulinterp.lang import LANGUAGES

STOP_STRINGS = ("<|im_end|>", "<|endoftext|>", "\n")
PROMPT_STYLES = ("few-shot", "plain")
ASSISTANT_HEADER = "<|im_end|>\n<|im_start|>assistant\n"
"""What follows the source text: the user turn closes and the answer begins."""
END_OF_ANSWER = "<|im_end|>"

# Our own examples (not taken from any test set). The last one is a cut-off sentence, which
# shows the model that a prefix is translated as far as it goes and no further.
EXAMPLES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("zh", "en"): (
        (
            "今天的会议主要讨论明年的预算，请大家先看一下第一页。",
            "Today's meeting is mainly about next year's budget, so please look at page one first.",
        ),
        (
            "虽然天气很冷，但是很多人还是来参加了这次活动。",
            "Although the weather was very cold, many people still came to the event.",
        ),
        ("如果明天下午不下雨的话，", "If it does not rain tomorrow afternoon,"),
    ),
    ("en", "zh"): (
        (
            "Today's meeting is mainly about next year's budget, so please look at page one first.",
            "今天的会议主要讨论明年的预算，请大家先看一下第一页。",
        ),
        (
            "Although the weather was very cold, many people still came to the event.",
            "虽然天气很冷，但是很多人还是来参加了这次活动。",
        ),
        ("If it does not rain tomorrow afternoon,", "如果明天下午不下雨的话，"),
    ),
}


def system_prompt(source_lang: str, target_lang: str) -> str:
    src, tgt = LANGUAGES[source_lang], LANGUAGES[target_lang]
    return (
        f"You are a simultaneous interpreter. Translate the {src} text into {tgt}. "
        "The text may stop in the middle of a sentence: translate exactly what is there, "
        "without completing it. Reply with the translation only."
    )


def build_prompt(
    source_lang: str,
    target_lang: str,
    source_text: str,
    context: Sequence[tuple[str, str]] = (),
    style: str = "few-shot",
) -> str:
    """The prompt for translating ``source_text``; the answer starts right after it.

    Args:
        source_lang: ``zh`` or ``en``.
        target_lang: the other one.
        source_text: the source read so far in the current sentence.
        context: earlier (source, translation) pairs of the same stream, oldest first.
        style: ``few-shot`` (with this project's examples) or ``plain`` (none; what trained
            adapters expect).
    """
    return prompt_head(source_lang, target_lang, context, style) + source_text + ASSISTANT_HEADER


def prompt_head(
    source_lang: str,
    target_lang: str,
    context: Sequence[tuple[str, str]] = (),
    style: str = "few-shot",
) -> str:
    """Everything before the source text: system turn, examples, context, user header."""
    if style not in PROMPT_STYLES:
        raise ValueError(
            f"unknown prompt style {style!r}; choose one of: {', '.join(PROMPT_STYLES)}"
        )
    examples = EXAMPLES[(source_lang, target_lang)] if style == "few-shot" else ()
    turns = [_turn("system", system_prompt(source_lang, target_lang))]
    for src, tgt in (*examples, *context):
        turns.append(_turn("user", src))
        turns.append(_turn("assistant", tgt))
    return "".join(turns) + "<|im_start|>user\n"


def _turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"
