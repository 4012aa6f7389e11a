"""Live subtitles on the terminal: tentative source dimmed, committed translation bright, and
once two speakers are heard, each line labelled and coloured by its speaker."""

from __future__ import annotations

import sys
from typing import Any

from simulinterp.events import SessionStep, SpokenSegment
from simulinterp.lang import join_units
from simulinterp.sinks import RunEnd, RunInfo, Sink

SPEAKER_STYLES = ("bright_green", "bright_magenta", "bright_yellow", "bright_blue", "bright_red")
SPEAKER_STYLES += ("green", "magenta", "yellow", "blue", "red")


def speaker_style(speaker: int) -> str:
    """The colour of speaker ``speaker`` (0-based) on the terminal."""
    return SPEAKER_STYLES[speaker % len(SPEAKER_STYLES)]


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


class LiveSubtitles(Sink):
    """Renders session steps: a live panel on a terminal, plain lines otherwise; with
    ``quiet`` (JSON lines on stdout) only warnings, on stderr."""

    name = "display"

    def __init__(self, target_lang: str, *, quiet: bool = False, max_lines: int = 8):
        from rich.console import Console

        self.target_lang, self.quiet, self.max_lines = target_lang, quiet, max_lines
        self.console = Console(stderr=True)
        self.live: Any = None
        self._lines: dict[int, tuple[float, str]] = {}
        self._speakers: dict[int, int] = {}  # segment -> speaker
        self._source = ""
        self._tentative = ""
        self._source_lang = "en" if target_lang == "zh" else "zh"
        self._recent: list[str] = []
        self._spoken = 0

    def open(self, info: RunInfo) -> None:
        if self.console.is_terminal and not self.quiet:
            from rich.live import Live

            self.live = Live(self._render(), console=self.console, refresh_per_second=10)
            self.live.start()

    def close(self, end: RunEnd) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()
            self.live = None

    def warn(self, message: str) -> None:
        """Show a warning above the live panel."""
        self.console.print(f"[yellow]warning:[/] {message}")

    def spoken(self, segment: SpokenSegment) -> None:
        """Count a spoken clause (shown in the panel's status line)."""
        self._spoken += 1

    def step(self, step: SessionStep) -> None:
        """Show one step."""
        for warning in step.warnings:
            self.warn(warning)
        words = [w.text for w in step.transcript.committed]
        if words:
            self._recent = (self._recent + words)[-40:]
            self._source = join_units(self._recent, self._source_lang)
        self._tentative = step.transcript.tentative
        for commit in step.commits:
            start, text = self._lines.get(commit.segment, (commit.source_start_s, ""))
            self._lines[commit.segment] = (start, (text + commit.text).strip())
            if commit.speaker is not None:
                self._speakers.setdefault(commit.segment, commit.speaker)
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self._render())
        else:
            for commit in step.commits:
                who = (
                    f"S{commit.speaker + 1}: "
                    if self._labelled and commit.speaker is not None
                    else ""
                )
                print(
                    f"[{_clock(commit.source_start_s)} heard, {commit.elapsed_s:6.2f}s] "
                    f"{who}{commit.text.strip()}",
                    file=sys.stderr,
                    flush=True,
                )

    @property
    def _labelled(self) -> bool:
        """Speaker labels show once two speakers have spoken."""
        return len(set(self._speakers.values())) >= 2

    def _render(self) -> Any:
        from rich.text import Text

        out = Text()
        for segment in sorted(self._lines)[-self.max_lines :]:
            start, text = self._lines[segment]
            out.append(f"[{_clock(start)}] ", style="cyan")
            speaker = self._speakers.get(segment)
            if self._labelled and speaker is not None:
                style = speaker_style(speaker)
                out.append(f"S{speaker + 1} ", style=f"bold {style}")
                out.append(text + "\n", style=f"bold {style}")
            else:
                out.append(text + "\n", style="bold bright_white")
        out.append("heard: ", style="bold")
        out.append(self._source[-160:])
        if self._tentative:
            out.append(" " + self._tentative, style="dim italic")
        if self._spoken:
            out.append(f"\nspoken: {self._spoken} clauses", style="dim")
        return out
