"""RL episodes from recordings: the source units are the words the streaming recognizer
committed, with the times they became readable.

A speech folder is laid out as the shared speech sets are: ``audio/`` and ``transcripts.tsv``
(file TAB transcript TAB translation). Each recording with a translation is recognized as
``interpret`` would hear it (whisper-base and silero by default, fed in 0.1 s chunks), so the
policy is trained on what it will read at inference: ASR words, with the recognizer's
punctuation and errors. A unit's time is the audio consumed when the recognizer committed it
(its SimulEval delay), from the start of the episode's first word.

The translation is aligned to the recognized words by the word aligner (the ``align``
schedule), and the recording is cut into episodes at the recognizer's sentence ends: each
reference unit goes to the sentence in which it becomes due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulinterp.alignment import align_corpus
from simulinterp.events import SourceWord
from simulinterp.lang import has_cjk, is_sentence_end, split_units
from simulinterp.train.rollout import Episode
from simulinterp.train.schedule import ScheduleSpec, schedule_reads

logger = logging.getLogger(__name__)

TRANSCRIPTS = "transcripts.tsv"
CHUNK_S = 0.1


@dataclass(frozen=True)
class Recording:
    """One recording of a speech folder with its translation."""

    audio: Path
    transcript: str
    translation: str


def is_speech_folder(path: str | Path) -> bool:
    """Whether ``path`` is a speech folder (``transcripts.tsv`` beside ``audio/``)."""
    folder = Path(path)
    return (folder / TRANSCRIPTS).is_file() and (folder / "audio").is_dir()


def read_recordings(folder: str | Path, limit: int = 0) -> list[Recording]:
    """The recordings of ``folder`` that have a translation (the third column), in file order.

    Raises:
        ValueError: no row has a translation, or a listed file is missing.
    """
    folder = Path(folder)
    rows = (folder / TRANSCRIPTS).read_text(encoding="utf-8").splitlines()
    out = []
    for number, row in enumerate(rows, 1):
        fields = row.split("\t")
        if len(fields) < 3 or not fields[2].strip():
            continue
        audio = folder / fields[0].strip()
        if not audio.is_file():
            raise ValueError(f"{folder / TRANSCRIPTS}, line {number}: {audio} does not exist")
        out.append(Recording(audio, fields[1].strip(), fields[2].strip()))
        if 0 < limit <= len(out):
            break
    if not out:
        raise ValueError(
            f"{folder / TRANSCRIPTS} has no translations: RL on speech needs rows of the form "
            "file TAB transcript TAB translation"
        )
    return out


def languages_of(recordings: Sequence[Recording]) -> tuple[str, str]:
    """(source, target) language of a speech folder, from its translations' script."""
    chinese = [has_cjk(r.translation) for r in recordings]
    if any(chinese) and not all(chinese):
        raise ValueError("a speech folder's translations must all be in one language")
    return ("en", "zh") if chinese[0] else ("zh", "en")


def recognized_words(
    recognizer: Any, audio: str | Path, chunk_s: float = CHUNK_S
) -> list[SourceWord]:
    """The words ``recognizer`` (a fresh-state :class:`~simulinterp.asr.StreamingRecognizer`)
    commits for the recording ``audio``, fed to it as a live stream."""
    from simulinterp.audio.io import stream_file

    recognizer.reset()
    words: list[SourceWord] = []
    for chunk in stream_file(audio, chunk_s):
        recognizer.insert_audio(chunk)
        words.extend(recognizer.process().committed)
    words.extend(recognizer.finish().committed)
    return words


def speech_episodes(
    words: Sequence[SourceWord],
    translation: str,
    source_lang: str,
    target_lang: str,
    max_source_units: int = 0,
) -> list[Episode]:
    """Episodes of one recognized recording and its translation, one per recognized sentence.

    The word alignment says where the reference is cut between two recognized sentences; the
    cut moves to a nearby sentence end of the reference (see :func:`_snapped`). A sentence that
    no reference unit falls due in joins the next one. Episodes longer than
    ``max_source_units`` (when > 0) are left out.
    """
    units = [w.text for w in words]
    reference = split_units(translation, target_lang)
    if not units or not reference:
        return []
    links = align_corpus([units], [reference])[0]
    reads = schedule_reads(ScheduleSpec.parse("align"), len(units), len(reference), links)
    ends = [i + 1 for i, w in enumerate(words) if w.sentence_end]
    if not ends or ends[-1] != len(units):
        ends.append(len(units))
    cuts = [j + 1 for j, unit in enumerate(reference) if is_sentence_end(unit)]
    langs = (source_lang, target_lang)
    episodes, start, first_ref = [], 0, 0
    for end in ends:
        last_ref = first_ref
        while last_ref < len(reference) and reads[last_ref] <= end:
            last_ref += 1
        if end == len(units):
            last_ref = len(reference)
        else:
            last_ref = _snapped(last_ref, first_ref, cuts)
        if last_ref == first_ref and end != len(units):
            continue  # nothing due yet: this sentence joins the next
        due = slice(first_ref, last_ref)
        episode = _episode(words[start:end], reference[due], reads[due], start, langs)
        if episode is not None and not 0 < max_source_units < len(episode.source_units):
            episodes.append(episode)
        start, first_ref = end, last_ref
    return episodes


def _snapped(cut: int, first: int, sentence_ends: Sequence[int]) -> int:
    """The reference sentence end nearest to ``cut`` (where the word alignment splits the
    reference), when one is within half the piece cut off (at least 2 units): a recognized
    sentence then gets whole reference sentences. Else ``cut`` itself (the recognizer ended a
    sentence that the translation goes on with)."""
    near = [c for c in sentence_ends if c > first and abs(c - cut) <= max(2, (cut - first) // 2)]
    return min(near, key=lambda c: (abs(c - cut), c)) if near else cut


def _episode(
    words: Sequence[SourceWord],
    reference: Sequence[str],
    reads: Sequence[int],
    offset: int,
    langs: tuple[str, str],
) -> Episode | None:
    if not words or not reference:
        return None
    n = len(words)
    rebased = [min(max(1, r - offset), n) for r in reads]
    rebased[-1] = n  # the sentence is finished once it has all been read
    origin = words[0].start_s
    return Episode(
        tuple(w.text for w in words),
        tuple(reference),
        tuple(rebased),
        *langs,
        unit_times=tuple(max(0.0, w.audio_s - origin) for w in words),
    )


def default_recognizer(lang: str) -> Any:
    """The recognizer ``interpret`` uses by default (whisper-base, silero), for ``lang``."""
    from simulinterp.asr.models import load_speech_model
    from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
    from simulinterp.asr.vad import SileroVAD

    return StreamingRecognizer(load_speech_model(), SileroVAD(), RecognizerConfig(lang=lang))


def episodes_from_speech(
    folder: str | Path,
    *,
    limit: int = 0,
    max_source_units: int = 0,
    direction: str = "both",
    recognizer: Callable[[str], Any] | None = None,
    on_recording: Callable[[int, int], None] | None = None,
) -> list[Episode]:
    """Episodes of every translated recording of the speech folder ``folder``.

    Args:
        folder: ``audio/`` and ``transcripts.tsv`` with a translation column.
        limit: at most this many recordings (0: all).
        max_source_units: longer episodes are left out (0: none).
        direction: ``both`` (the folder's own), or the direction asked for, which must be the
            folder's.
        recognizer: makes the streaming recognizer for a source language (default:
            :func:`default_recognizer`).
        on_recording: called with (recordings done, total) after each one.

    A recording that cannot be read is left out with a warning.

    Raises:
        ValueError: the folder has no translations, is in another direction, or none of its
            recordings can be read.
    """
    recordings = read_recordings(folder, limit)
    source_lang, target_lang = languages_of(recordings)
    if direction not in ("both", f"{source_lang}-{target_lang}"):
        raise ValueError(
            f"{folder} is {source_lang}-{target_lang} speech, not {direction}: choose "
            "--direction both or the folder's direction"
        )
    from simulinterp.audio.io import AudioError

    stream = (recognizer or default_recognizer)(source_lang)
    episodes: list[Episode] = []
    broken = []
    for done, recording in enumerate(recordings, 1):
        try:
            words = recognized_words(stream, recording.audio)
        except AudioError as err:  # one bad file costs its own episodes, not the others'
            logger.warning("%s is left out: %s", recording.audio, err)
            broken.append(recording.audio.name)
            continue
        found = speech_episodes(
            words, recording.translation, source_lang, target_lang, max_source_units
        )
        logger.info("%s: %d words -> %d episodes", recording.audio.name, len(words), len(found))
        episodes.extend(found)
        if on_recording is not None:
            on_recording(done, len(recordings))
    if broken and not episodes:
        raise ValueError(f"no recording of {folder} could be read ({', '.join(broken)})")
    return episodes
