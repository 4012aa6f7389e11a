"""Subtitles of an interpreted recording: SRT, WebVTT and a JSON transcript.

Cues are timed on the source audio (when the sentence was spoken), so the files line up with
the recording in any player; the JSON transcript also keeps when each piece of translation was
emitted live. Files are written atomically: an interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from simulinterp.events import SourceWord, SpeechCommit
from simulinterp.lang import join_units


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``text`` shown from ``start_s`` to ``end_s``; ``source`` is what was heard."""

    start_s: float
    end_s: float
    text: str
    source: str = ""


def cues_from_commits(
    commits: Sequence[SpeechCommit],
    source_words: Sequence[SourceWord],
    target_lang: str,
    *,
    min_duration_s: float = 1.0,
    max_chars: int = 84,
) -> list[Cue]:
    """One cue per translated sentence (split when longer than ``max_chars``), never
    overlapping the next."""
    source_lang = "en" if target_lang == "zh" else "zh"
    segments: dict[int, list[SpeechCommit]] = {}
    for c in commits:
        segments.setdefault(c.segment, []).append(c)
    cues: list[Cue] = []
    for parts in segments.values():
        text = "".join(p.text for p in parts).strip()
        if not text:
            continue
        start = parts[0].source_start_s
        end = max(max(p.source_end_s for p in parts), start + min_duration_s)
        heard = [w.text for w in source_words if start - 0.05 <= w.start_s < end]
        cues += _split(Cue(start, end, text, join_units(heard, source_lang)), max_chars)
    cues.sort(key=lambda c: c.start_s)
    for i in range(len(cues) - 1):
        if cues[i].end_s > cues[i + 1].start_s:
            cues[i] = Cue(
                cues[i].start_s,
                max(cues[i + 1].start_s, cues[i].start_s + 0.01),
                cues[i].text,
                cues[i].source,
            )
    return cues


def _split(cue: Cue, max_chars: int) -> list[Cue]:
    """A long cue as several, cut at spaces (or anywhere in Chinese), time shared by length."""
    if len(cue.text) <= max_chars:
        return [cue]
    pieces, rest = [], cue.text
    while len(rest) > max_chars:
        cut = rest.rfind(" ", 0, max_chars + 1)
        cut = cut if cut > max_chars // 3 else max_chars
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    total = sum(len(p) for p in pieces)
    span, t, out = cue.end_s - cue.start_s, cue.start_s, []
    for i, piece in enumerate(pieces):
        end = cue.end_s if i == len(pieces) - 1 else t + span * len(piece) / total
        out.append(Cue(t, end, piece, cue.source if i == 0 else ""))
        t = end
    return out


def _stamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def srt_text(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{i}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def vtt_text(cues: Sequence[Cue]) -> str:
    blocks = [f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_srt(path: Path, cues: Sequence[Cue]) -> None:
    _write_atomically(path, srt_text(cues))


def write_vtt(path: Path, cues: Sequence[Cue]) -> None:
    _write_atomically(path, vtt_text(cues))


def write_transcript_json(
    path: Path,
    *,
    source_lang: str,
    target_lang: str,
    audio: str,
    commits: Sequence[SpeechCommit],
    source_words: Sequence[SourceWord],
    cues: Sequence[Cue],
    interrupted: bool = False,
) -> None:
    """Everything committed: full texts, timed segments, every commit and every source word."""
    document = {
        "source_lang": source_lang,
        "target_lang": target_lang,
        "audio": audio,
        "interrupted": interrupted,
        "translation": "".join(c.text for c in commits).strip(),
        "transcript": join_units([w.text for w in source_words], source_lang),
        "segments": [asdict(c) for c in cues],
        "commits": [c.to_json() for c in commits],
        "words": [asdict(w) for w in source_words],
    }
    _write_atomically(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
