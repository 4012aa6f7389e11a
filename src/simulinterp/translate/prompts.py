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
LAYOUTS = ("sentence", "exchanges")
"""How the current sentence sits in the prompt: ``sentence``, one user turn holding the source
read so far and the committed target continued after the assistant header (the target is
re-read whenever the source grows); ``exchanges``, one user/assistant exchange per stretch of
source that has been translated to the end, so a new source unit re-reads only the open
stretch and what has been committed of it."""
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


# The same examples cut into exchanges, as the ``exchanges`` layout lays out a sentence.
EXCHANGE_EXAMPLES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("zh", "en"): (
        ("今天的会议主要讨论明年的预算，", "Today's meeting is mainly about next year's budget,"),
        ("请大家先看一下第一页。", "so please look at page one first."),
        ("虽然天气很冷，", "Although the weather was very cold,"),
        ("但是很多人还是来参加了这次活动。", "many people still came to the event."),
        ("如果明天下午", "If tomorrow afternoon"),
        ("不下雨的话，", "it does not rain,"),
    ),
    ("en", "zh"): (
        ("Today's meeting is mainly about next year's budget,", "今天的会议主要讨论明年的预算，"),
        ("so please look at page one first.", "请大家先看一下第一页。"),
        ("Although the weather was very cold,", "虽然天气很冷，"),
        ("many people still came to the event.", "但是很多人还是来参加了这次活动。"),
        ("If it does not rain", "如果不下雨"),
        ("tomorrow afternoon,", "明天下午，"),
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
    layout: str = "sentence",
) -> str:
    """The prompt for translating ``source_text``; the answer starts right after it.

    Args:
        source_lang: ``zh`` or ``en``.
        target_lang: the other one.
        source_text: the source read so far in the current sentence.
        context: earlier (source, translation) pairs of the same stream, oldest first.
        style: ``few-shot`` (with this project's examples) or ``plain`` (none; what trained
            adapters expect).
        layout: one of :data:`LAYOUTS` (picks how the few-shot examples are laid out).
    """
    head = prompt_head(source_lang, target_lang, context, style, layout)
    return head + source_text + ASSISTANT_HEADER


def prompt_head(
    source_lang: str,
    target_lang: str,
    context: Sequence[tuple[str, str]] = (),
    style: str = "few-shot",
    layout: str = "sentence",
) -> str:
    """Everything before the source text: system turn, examples, context, user header.

    ``context`` holds earlier (source, translation) pairs: whole sentences in the ``sentence``
    layout, exchanges (and the current sentence's closed ones) in the ``exchanges`` layout.
    """
    if style not in PROMPT_STYLES:
        raise ValueError(
            f"unknown prompt style {style!r}; choose one of: {', '.join(PROMPT_STYLES)}"
        )
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    table = EXAMPLES if layout == "sentence" else EXCHANGE_EXAMPLES
    examples = table[(source_lang, target_lang)] if style == "few-shot" else ()
    turns = [_turn("system", system_prompt(source_lang, target_lang))]
    for src, tgt in (*examples, *context):
        turns.append(_turn("user", src))
        turns.append(_turn("assistant", tgt))
    return "".join(turns) + "<|im_start|>user\n"


def _turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"
