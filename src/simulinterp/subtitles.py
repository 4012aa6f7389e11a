"""Subtitles of an interpreted recording: SRT, WebVTT and a JSON transcript.

Cues are timed on the source audio (when the sentence was spoken, not when its translation
was emitted), so the files line up with the recording in any player; the JSON transcript also
keeps every commit with its emission times. Each cue carries the recognized source text of its
sentence too, for bilingual subtitles.

Timing of a cue (one translated sentence, i.e. the commits sharing a ``segment``):

* start = the segment's ``source_start_s`` (its first source word);
* end = the latest ``source_end_s`` of its commits, or start + ``min_duration_s`` when later;
* cues never overlap: an end past the next cue's start is cut to that start, even when that
  leaves less than 0.3 s (a short cue is better than two at once);
* a translation longer than ``max_chars`` becomes several cues cut between units (English
  words, Chinese characters), of about equal length, sharing the time in proportion to
  their lengths.

Files are written atomically (a temporary file, then :func:`os.replace`): an interrupted run
never leaves half a file, and a file written before stays whole.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from simulinterp.events import SourceWord, SpeechCommit
from simulinterp.lang import check_language, join_units, unit_spans

WORD_SLACK_S = 0.05  # source words this close outside a segment's time range still belong to it


@dataclass(frozen=True)
class Cue:
    """One subtitle.

    Attributes:
        start_s: when it appears, seconds of source audio.
        end_s: when it disappears, seconds of source audio.
        text: the translation shown.
        source: the recognized source text it translates ("" when unknown).
        speaker: the label of who said it (``S1``), "" where speakers are not tracked.
    """

    start_s: float
    end_s: float
    text: str
    source: str = ""
    speaker: str = ""


def _other(lang: str) -> str:
    return "en" if check_language(lang) == "zh" else "zh"


def _segments(commits: Sequence[SpeechCommit]) -> list[list[SpeechCommit]]:
    """Commits grouped by ``segment``, in order of first appearance."""
    groups: dict[int, list[SpeechCommit]] = {}
    for commit in commits:
        groups.setdefault(commit.segment, []).append(commit)
    return list(groups.values())


def cues_from_commits(
    commits: Sequence[SpeechCommit],
    source_words: Sequence[SourceWord],
    target_lang: str,
    *,
    min_duration_s: float = 1.0,
    max_chars: int = 84,
) -> list[Cue]:
    """Subtitle cues for a session's commits, timed on the source audio (module docstring).

    Args:
        commits: the session's commits, in order.
        source_words: the recognized source words, in order; a word belongs to the segment
            whose time range holds it (the later segment where two ranges overlap).
        target_lang: language of the translation (``"en"`` or ``"zh"``); the source is the other.
        min_duration_s: shortest cue, seconds, unless the next cue starts sooner.
        max_chars: longest cue text, characters; longer ones are split.

    Returns:
        Cues sorted by start, not overlapping; segments with no text give none.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    source_lang = _other(target_lang)
    spans: list[tuple[float, float, str]] = []  # start, end, text per segment
    speakers: dict[float, str] = {}  # start -> speaker label
    for parts in _segments(commits):
        text = "".join(p.text for p in parts).strip()
        if text:
            start = parts[0].source_start_s
            spans.append((start, max(max(p.source_end_s for p in parts), start), text))
            speakers[start] = _speaker_of(parts)
    spans.sort(key=lambda s: s[0])
    heard = _words_per_segment(spans, source_words)
    cues: list[Cue] = []
    for k, (start, end, text) in enumerate(spans):
        end = max(end, start + min_duration_s)
        if k + 1 < len(spans):
            end = max(start, min(end, spans[k + 1][0]))
        pieces = _split_text(text, target_lang, max_chars)
        cues += _timed(pieces, start, end, heard[k], source_lang, speakers[start])
    return cues


def _speaker_of(parts: Sequence[SpeechCommit]) -> str:
    """The label of the speaker most of a segment's commits translate ("" when untracked)."""
    ids = [p.speaker for p in parts if p.speaker is not None]
    if not ids:
        return ""
    return f"S{max(set(ids), key=ids.count) + 1}"


def _labelled(cues: Sequence[Cue]) -> bool:
    """Speaker labels are shown once two speakers or more have cues."""
    return len({c.speaker for c in cues if c.speaker}) >= 2


def _words_per_segment(
    spans: Sequence[tuple[float, float, str]], words: Sequence[SourceWord]
) -> list[list[SourceWord]]:
    """The source words heard in each segment's time range."""
    out: list[list[SourceWord]] = [[] for _ in spans]
    starts = [start - WORD_SLACK_S for start, _, _ in spans]
    for word in words:
        last = bisect_right(starts, word.start_s) - 1  # the latest segment started by then
        for k in range(last, max(last - 2, -1), -1):  # it, or the one before when they overlap
            if word.end_s <= spans[k][1] + WORD_SLACK_S:
                out[k].append(word)
                break
    return out


def _split_text(text: str, lang: str, max_chars: int) -> list[str]:
    """``text`` cut between units into the fewest pieces of at most ``max_chars`` (a unit
    longer than that is a piece of its own), as equal in length as that allows."""
    if len(text) <= max_chars:
        return [text]
    spans = unit_spans(text, check_language(lang))
    pieces = math.ceil(len(text) / max_chars)
    for limit in range(math.ceil(len(text) / pieces), max_chars + 1):
        parts = _pack(text, spans, limit)
        if len(parts) <= pieces:
            return parts
    return _pack(text, spans, max_chars)


def _pack(text: str, spans: Sequence, limit: int) -> list[str]:
    """Greedy: as many units per piece as fit in ``limit`` characters."""
    parts: list[str] = []
    first = 0  # start offset of the current piece
    for k, span in enumerate(spans):
        if k and len(text[first : span.end].strip()) > limit:
            parts.append(text[first : spans[k - 1].end].strip())
            first = span.start
    parts.append(text[first:].strip())
    return parts


def _timed(
    pieces: Sequence[str],
    start: float,
    end: float,
    words: Sequence[SourceWord],
    source_lang: str,
    speaker: str = "",
) -> list[Cue]:
    """Cues for the pieces of one segment, sharing [start, end] in proportion to their
    lengths; each source word goes to the piece on screen at its midpoint."""
    total = sum(len(p) for p in pieces)
    bounds = [start]
    for piece in pieces:
        bounds.append(bounds[-1] + (end - start) * len(piece) / total)
    bounds[-1] = end
    heard: list[list[str]] = [[] for _ in pieces]
    for word in words:
        middle = (word.start_s + word.end_s) / 2
        k = min(max(bisect_right(bounds, middle) - 1, 0), len(pieces) - 1)
        heard[k].append(word.text)
    return [
        Cue(bounds[k], bounds[k + 1], piece, join_units(heard[k], source_lang), speaker)
        for k, piece in enumerate(pieces)
    ]


def _stamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, separator ``,``) or ``HH:MM:SS.mmm`` (WebVTT, ``.``)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _lines(cue: Cue, bilingual: bool) -> list[str]:
    """The cue's text lines, without blank lines (a blank line ends a cue)."""
    texts = [cue.source, cue.text] if bilingual and cue.source else [cue.text]
    return [line.strip() for t in texts for line in t.splitlines() if line.strip()]


def srt_text(cues: Sequence[Cue], *, bilingual: bool = False) -> str:
    """SubRip text: 1-based index, ``00:00:01,234 --> 00:00:02,000``, text, blank line.

    Where two speakers or more have cues, each cue's first line starts with its speaker's
    label in brackets (``[S2] ...``).

    Args:
        cues: the cues, in order.
        bilingual: show the source line above the translation.
    """
    blocks = []
    labelled = _labelled(cues)
    for i, cue in enumerate(cues, 1):
        timing = f"{_stamp(cue.start_s, ',')} --> {_stamp(cue.end_s, ',')}"
        lines = _lines(cue, bilingual)
        if labelled and cue.speaker and lines:
            lines[0] = f"[{cue.speaker}] {lines[0]}"
        blocks.append("\n".join([str(i), timing, *lines]) + "\n")
    return "\n".join(blocks)


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_text(cues: Sequence[Cue], *, bilingual: bool = False) -> str:
    """WebVTT text: the ``WEBVTT`` header, then ``00:00:01.234 --> 00:00:02.000`` and text
    per cue (``&``, ``<`` and ``>`` escaped). Where two speakers or more have cues, each line
    is a voice span of its speaker (``<v S2>...``), which players show and style per voice.

    Args:
        cues: the cues, in order.
        bilingual: show the source line above the translation.
    """
    blocks = ["WEBVTT\n"]
    labelled = _labelled(cues)
    for cue in cues:
        timing = f"{_stamp(cue.start_s, '.')} --> {_stamp(cue.end_s, '.')}"
        lines = [_vtt_escape(line) for line in _lines(cue, bilingual)]
        if labelled and cue.speaker:
            lines = [f"<v {cue.speaker}>{line}" for line in lines]
        blocks.append("\n".join([timing, *lines]) + "\n")
    return "\n".join(blocks)


def _write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to a temporary file beside ``path``, then move it into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_srt(
    path: str | os.PathLike[str], cues: Sequence[Cue], *, bilingual: bool = False
) -> None:
    """Write the cues as a UTF-8 SubRip (``.srt``) file, atomically."""
    _write_atomically(path, srt_text(cues, bilingual=bilingual))


def write_vtt(
    path: str | os.PathLike[str], cues: Sequence[Cue], *, bilingual: bool = False
) -> None:
    """Write the cues as a UTF-8 WebVTT (``.vtt``) file, atomically."""
    _write_atomically(path, vtt_text(cues, bilingual=bilingual))


def write_transcript_json(path: str | os.PathLike[str], document: dict) -> None:
    """Write a :func:`transcript_document` as a UTF-8 JSON file, atomically."""
    _write_atomically(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def transcript_document(
    *,
    source_lang: str,
    target_lang: str,
    audio: str,
    commits: Sequence[SpeechCommit],
    source_words: Sequence[SourceWord],
    cues: Sequence[Cue],
    interrupted: bool = False,
) -> dict:
    """Everything committed as one JSON document.

    Keys: ``source_lang``, ``target_lang``, ``audio``, ``interrupted``, ``translation`` (the
    full translation), ``transcript`` (the full recognized source), ``segments`` (per cue:
    ``start_s``, ``end_s``, ``source``, ``text``, ``speaker``: its label or null),
    ``commits`` (:class:`SpeechCommit` fields, with their emission times and ``speaker``)
    and ``words`` (:class:`SourceWord` fields, with ``speaker``: the 0-based id, or null where
    speakers are not tracked).
    """
    return {
        "source_lang": source_lang,
        "target_lang": target_lang,
        "audio": audio,
        "interrupted": interrupted,
        "translation": "".join(c.text for c in commits).strip(),
        "transcript": join_units([w.text for w in source_words], check_language(source_lang)),
        "segments": [
            {
                "start_s": c.start_s,
                "end_s": c.end_s,
                "source": c.source,
                "text": c.text,
                "speaker": c.speaker or None,
            }
            for c in cues
        ],
        "commits": [c.to_json() for c in commits],
        "words": [asdict(w) for w in source_words],
    }
