"""Speaker turns and their standard file form, RTTM (NIST Rich Transcription Time Marked).

One line per turn: ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``, times
in seconds. Pure: no model, no audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of speech by one speaker.

    Attributes:
        start_s: where it starts in the audio, seconds.
        end_s: where it ends, seconds.
        speaker: the speaker's label (``S1``, or a reference id such as ``MEE009``).
    """

    start_s: float
    end_s: float
    speaker: str

    def __post_init__(self) -> None:
        if not self.end_s >= self.start_s >= 0:
            raise ValueError(f"a turn needs 0 <= start_s <= end_s: {self.start_s}, {self.end_s}")
        if not self.speaker or any(c.isspace() for c in self.speaker):
            raise ValueError(f"a speaker label must be one word, got {self.speaker!r}")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def merge_turns(turns: Iterable[SpeakerTurn], *, gap_s: float = 0.0) -> list[SpeakerTurn]:
    """Turns sorted by start, each speaker's turns joined where they touch or are less than
    ``gap_s`` apart (turns of different speakers may overlap and stay apart)."""
    out: list[SpeakerTurn] = []
    last: dict[str, int] = {}  # speaker -> index in out of its latest turn
    for turn in sorted(turns, key=lambda t: (t.start_s, t.end_s)):
        i = last.get(turn.speaker)
        if i is not None and turn.start_s - out[i].end_s <= gap_s:
            prev = out[i]
            out[i] = SpeakerTurn(prev.start_s, max(prev.end_s, turn.end_s), turn.speaker)
            continue
        last[turn.speaker] = len(out)
        out.append(turn)
    return sorted(out, key=lambda t: (t.start_s, t.end_s))


def rttm_lines(name: str, turns: Sequence[SpeakerTurn]) -> list[str]:
    """The RTTM lines of one recording ``name`` (no spaces in it)."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"an RTTM file id must be one word, got {name!r}")
    return [
        f"SPEAKER {name} 1 {t.start_s:.3f} {t.duration_s:.3f} <NA> <NA> {t.speaker} <NA> <NA>"
        for t in turns
        if t.duration_s > 0
    ]


def write_rttm(path: Path, name: str, turns: Sequence[SpeakerTurn]) -> Path:
    """Write the turns of recording ``name`` to ``path`` (atomically); returns ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    lines = rttm_lines(name, turns)
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return path


def read_rttm(path: Path) -> dict[str, list[SpeakerTurn]]:
    """Turns per file id from an RTTM file (``SPEAKER`` lines only; comments with ``#``).

    Raises:
        ValueError: a malformed line (the message gives its number).
    """
    out: dict[str, list[SpeakerTurn]] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
            turn = SpeakerTurn(start, start + duration, fields[7])
        except (IndexError, ValueError) as err:
            raise ValueError(f"{path}:{number}: not an RTTM SPEAKER line: {line!r}") from err
        out.setdefault(fields[1], []).append(turn)
    return out
