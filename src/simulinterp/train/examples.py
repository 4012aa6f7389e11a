"""Training examples: parallel text read from disk, scheduled and tokenized.

Every example is laid out as inference sees it, from the pieces of
:mod:`simulinterp.translate.prompts` (``plain`` style): ``[prompt head; source; assistant
header; target; <|im_end|>]``. Each source token records how many source units must have been
read for it to exist (all of its characters), and each target token how many were read when it
was written (the schedule's value for the unit holding its last character). The masks of
:mod:`simulinterp.train.mask` are built from those two lists alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulinterp.alignment import align_corpus
from simulinterp.lang import check_pair, split_units, unit_spans
from simulinterp.train.schedule import ScheduleSpec, schedule_reads
from simulinterp.translate.prompts import ASSISTANT_HEADER, END_OF_ANSWER, prompt_head

logger = logging.getLogger(__name__)

_DIRECTION_RE = re.compile(r"(?:^|[_.-])(zh|en)-(zh|en)(?:$|[_.-])")
TRAINING_PROMPT_STYLE = "plain"
_ASCII_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


@dataclass(frozen=True)
class ParallelPair:
    """One sentence and its translation."""

    source: str
    target: str
    source_lang: str
    target_lang: str


@dataclass(frozen=True)
class TokenizedExample:
    """One scheduled example as token ids.

    Attributes:
        input_ids: prompt head, source, assistant header, target (ending with ``<|im_end|>``).
        prompt_tokens: length of the prompt head.
        source_tokens: length of the source.
        header_tokens: length of the assistant header.
        source_needs: per source token, the source units that must be read for it to exist.
        target_reads: per target token, the source units read when it was written.
    """

    input_ids: tuple[int, ...]
    prompt_tokens: int
    source_tokens: int
    header_tokens: int
    source_needs: tuple[int, ...]
    target_reads: tuple[int, ...]

    def __post_init__(self) -> None:
        answer = len(self.input_ids) - self.prompt_tokens - self.source_tokens
        if len(self.source_needs) != self.source_tokens or len(self.target_reads) != (
            answer - self.header_tokens
        ):
            raise ValueError("source_needs and target_reads must have one entry per token")
        if self.header_tokens < 1 or not self.target_reads:
            raise ValueError("an example needs an assistant header and at least one target token")
        for values in (self.source_needs, self.target_reads):
            if any(b < a for a, b in zip(values, values[1:], strict=False)):
                raise ValueError("source_needs and target_reads must be non-decreasing")

    @property
    def target_start(self) -> int:
        return self.prompt_tokens + self.source_tokens + self.header_tokens

    def __len__(self) -> int:
        return len(self.input_ids)


def direction_of(path: Path) -> tuple[str, str] | None:
    """The language pair a data folder's name states (``..._zh-en...``), if any."""
    match = _DIRECTION_RE.search(path.name)
    return (match.group(1), match.group(2)) if match else None


def read_parallel(
    path: str | Path,
    *,
    direction: tuple[str, str] | None = None,
    limit: int = 0,
) -> list[ParallelPair]:
    """Read ``source.txt``/``ref.txt`` pairs from a folder, or from every folder below it.

    Args:
        path: a folder with ``source.txt`` and ``ref.txt``, or a folder of such folders
            (``../shared/data/text/train``); each folder's name gives its direction
            (``wmt22_general_en-zh``) unless ``direction`` is given for a single folder.
        direction: keep only this ``(source_lang, target_lang)``.
        limit: at most this many pairs per folder (0: all).

    Raises:
        FileNotFoundError: no such folder, or no parallel text in it.
        ValueError: a folder's direction is unknown, or its files differ in line count.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no such data folder: {root}")
    folders = (
        [root]
        if (root / "source.txt").is_file()
        else sorted(p.parent for p in root.glob("*/source.txt"))
    )
    if not folders:
        raise FileNotFoundError(f"no source.txt/ref.txt in {root} or its sub-folders")
    pairs: list[ParallelPair] = []
    for folder in folders:
        pair = direction_of(folder) or (direction if len(folders) == 1 else None)
        if pair is None:
            raise ValueError(
                f"cannot tell the direction of {folder}: "
                "name it like 'mydata_zh-en' or pass --from/--to"
            )
        src_lang, tgt_lang = check_pair(*pair)
        if direction is not None and (src_lang, tgt_lang) != tuple(direction):
            continue
        sources = _lines(folder / "source.txt")
        targets = _lines(folder / "ref.txt")
        if len(sources) != len(targets):
            raise ValueError(f"{folder}: source.txt and ref.txt differ in line count")
        kept = [
            ParallelPair(s.strip(), clean_target(t, tgt_lang), src_lang, tgt_lang)
            for s, t in zip(sources, targets, strict=True)
            if s.strip() and t.strip()
        ]
        pairs.extend(kept[:limit] if limit else kept)
        logger.info("%s: %d pairs (%s-%s)", folder.name, len(kept), src_lang, tgt_lang)
    if not pairs:
        raise FileNotFoundError(
            f"no {'-'.join(direction or ())} pairs in {root}".replace("  ", " ")
        )
    return pairs


def clean_target(text: str, lang: str) -> str:
    """A reference as the translator should write it: English gets ASCII quotes.

    WMT's English references use typographic quotes (``’``, ``“``); TED's and most subtitles
    use ASCII ones, and an adapter trained on the former loses BLEU on every "it's".
    """
    text = text.strip()
    return text.translate(_ASCII_QUOTES) if lang == "en" else text


def schedule_pairs(
    pairs: Sequence[ParallelPair], spec: ScheduleSpec
) -> list[tuple[ParallelPair, list[int]]]:
    """Each pair with its schedule (reads per target unit); alignments per direction."""
    links: list[list[tuple[int, int]] | None] = [None] * len(pairs)
    if spec.needs_alignment:
        for direction in sorted({(p.source_lang, p.target_lang) for p in pairs}):
            index = [i for i, p in enumerate(pairs) if (p.source_lang, p.target_lang) == direction]
            sources = [split_units(pairs[i].source, direction[0]) for i in index]
            targets = [split_units(pairs[i].target, direction[1]) for i in index]
            for i, pair_links in zip(index, align_corpus(sources, targets), strict=True):
                links[i] = pair_links
    out = []
    for pair, pair_links in zip(pairs, links, strict=True):
        n_src = len(unit_spans(pair.source, pair.source_lang))
        n_tgt = len(unit_spans(pair.target, pair.target_lang))
        out.append((pair, schedule_reads(spec, n_src, n_tgt, pair_links)))
    return out


def tokenize_example(tokenizer: Any, pair: ParallelPair, reads: Sequence[int]) -> TokenizedExample:
    """Lay one scheduled pair out as tokens (see the module docstring).

    Args:
        tokenizer: a Hugging Face fast tokenizer (offsets are needed).
        pair: the sentence pair.
        reads: source units read before each target unit of ``pair.target``.
    """
    head = _ids(
        tokenizer, prompt_head(pair.source_lang, pair.target_lang, (), TRAINING_PROMPT_STYLE)
    )
    header = _ids(tokenizer, ASSISTANT_HEADER)
    end = _ids(tokenizer, END_OF_ANSWER)
    source_ids, source_units = _ids_with_units(tokenizer, pair.source, pair.source_lang)
    target_ids, target_units = _ids_with_units(tokenizer, pair.target, pair.target_lang)
    if len(reads) != (max(target_units) + 1 if target_units else 0):
        raise ValueError("reads must have one entry per target unit")
    n_src = max(source_units) + 1 if source_units else 0
    needs = [u + 1 for u in source_units]
    target_reads = [reads[u] for u in target_units] + [n_src] * len(end)
    return TokenizedExample(
        input_ids=(*head, *source_ids, *header, *target_ids, *end),
        prompt_tokens=len(head),
        source_tokens=len(source_ids),
        header_tokens=len(header),
        source_needs=tuple(_running_max(needs)),
        target_reads=tuple(_running_max(target_reads)),
    )


def tokenize_all(
    tokenizer: Any,
    scheduled: Iterable[tuple[ParallelPair, list[int]]],
    max_tokens: int,
) -> tuple[list[TokenizedExample], int]:
    """Tokenize every scheduled pair; returns the examples and how many were too long."""
    examples, skipped = [], 0
    for pair, reads in scheduled:
        example = tokenize_example(tokenizer, pair, reads)
        if len(example) > max_tokens:
            skipped += 1
            continue
        examples.append(example)
    return examples, skipped


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _ids_with_units(tokenizer: Any, text: str, lang: str) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` and, per token, the unit holding its last character."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = unit_spans(text, lang)
    char_unit = [0] * len(text)
    for index, span in enumerate(spans):
        for c in range(span.start, len(text) if index == len(spans) - 1 else span.end):
            char_unit[c] = index
    units = []
    for start, stop in encoded["offset_mapping"]:
        last = max(start, stop - 1)
        units.append(char_unit[min(last, len(text) - 1)] if text else 0)
    return list(encoded["input_ids"]), units


def _running_max(values: list[int]) -> list[int]:
    out, top = [], 0
    for v in values:
        top = max(top, v)
        out.append(top)
    return out


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}")
    return path.read_text(encoding="utf-8").splitlines()
