"""Corpus-level translation quality metrics through sacrebleu (BLEU and chrF).

BLEU follows Papineni et al. (2002) and chrF Popović (2015), both as computed by sacrebleu
(Post, 2018, "A Call for Clarity in Reporting BLEU Scores"), so scores are comparable with
published ones. Chinese targets use sacrebleu's ``zh`` tokenizer (every CJK character is a
token); other targets use the default ``13a``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import sacrebleu


def _tokenizer(target_lang: str) -> str:
    """sacrebleu tokenizer for a target language code (``zh``, ``zh-CN`` -> ``zh``)."""
    norm = target_lang.strip().lower().replace("_", "-").split("-")[0]
    return "zh" if norm == "zh" else "13a"


def heard_text(text: str) -> str:
    """Text as speech carries it, for BLEU on transcripts of speech (ASR-BLEU): NFKC, lower
    case, every punctuation mark and symbol a space, whitespace collapsed. Speech has no
    commas to hear, so a recognizer's guessed punctuation is not scored; this is what the
    Whisper normalizer that Seamless and NeMo apply to both sides of ASR-BLEU does."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


def _streams(
    hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> list[list[str]]:
    """Normalize references to sacrebleu's list of streams and check their lengths.

    A flat list of strings is one stream (one reference per hypothesis); a list of lists is
    several streams, each holding one reference per hypothesis.
    """
    if all(isinstance(r, str) for r in references):
        streams = [[str(r) for r in references]] if references or not hypotheses else []
    elif any(isinstance(r, str) for r in references):
        raise ValueError("references mix strings and lists; give one kind")
    else:
        streams = [[str(r) for r in stream] for stream in references]
    if not streams:
        raise ValueError("no references given for a non-empty list of hypotheses")
    for stream in streams:
        if len(stream) != len(hypotheses):
            raise ValueError(
                f"each reference stream needs one reference per hypothesis: "
                f"{len(hypotheses)} hypotheses, a stream of {len(stream)}"
            )
    return streams


def bleu(
    hypotheses: list[str],
    references: list[str] | list[list[str]],
    target_lang: str,
) -> float:
    """Corpus BLEU (0-100) of the hypotheses against one or more reference streams.

    Args:
        hypotheses: one detokenized output per segment.
        references: one reference per hypothesis, or a list of such streams.
        target_lang: target language code; ``zh`` selects the ``zh`` tokenizer, anything
            else ``13a``.

    Returns:
        The raw (unrounded) BLEU score; 0.0 for an empty list of hypotheses.

    Raises:
        ValueError: when a reference stream's length differs from the hypotheses'.
    """
    streams = _streams(hypotheses, references)
    if not hypotheses:
        return 0.0
    result = sacrebleu.corpus_bleu(list(hypotheses), streams, tokenize=_tokenizer(target_lang))
    return float(result.score)


def chrf(
    hypotheses: list[str],
    references: list[str] | list[list[str]],
    target_lang: str = "en",
) -> float:
    """Corpus chrF (0-100, character 6-grams, beta = 2) against one or more reference streams.

    chrF works on characters with whitespace removed, so it needs no tokenizer; ``target_lang``
    is accepted for symmetry with :func:`bleu` and does not change the score.

    Args:
        hypotheses: one detokenized output per segment.
        references: one reference per hypothesis, or a list of such streams.
        target_lang: target language code (unused).

    Returns:
        The raw (unrounded) chrF score; 0.0 for an empty list of hypotheses.

    Raises:
        ValueError: when a reference stream's length differs from the hypotheses'.
    """
    streams = _streams(hypotheses, references)
    if not hypotheses:
        return 0.0
    return float(sacrebleu.corpus_chrf(list(hypotheses), streams).score)


def heard_bleu(
    hypotheses: list[str], references: list[str] | list[list[str]], target_lang: str
) -> float:
    """:func:`bleu` with both sides reduced to :func:`heard_text` (ASR-BLEU's convention)."""
    streams = _streams(hypotheses, references)
    return bleu(
        [heard_text(h) for h in hypotheses],
        [[heard_text(r) for r in stream] for stream in streams],
        target_lang,
    )
