"""Live subtitles on the terminal: tentative source dimmed, committed translation bright."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

from simulinterp.lang import join_units


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


class LiveSubtitles:
    """Renders session steps: a live panel on a terminal, plain lines or JSON otherwise."""

    def __init__(self, target_lang: str, *, jsonl: bool = False, max_lines: int = 8):
        from rich.console import Console

        self.target_lang, self.jsonl, self.max_lines = target_lang, jsonl, max_lines
        self.console = Console(stderr=True)
        self.live: Any = None
        self._lines: dict[int, tuple[float, str]] = {}
        self._source = ""
        self._tentative = ""
        self._source_lang = "en" if target_lang == "zh" else "zh"
        self._warned = 0

    def __enter__(self) -> LiveSubtitles:
        if self.console.is_terminal and not self.jsonl:
            from rich.live import Live

            self.live = Live(self._render(), console=self.console, refresh_per_second=10)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()

    def update(self, step: Any, session: Any) -> None:
        """Show one :class:`SessionStep`."""
        for warning in session.warnings[self._warned :]:
            self.console.print(f"[yellow]warning:[/] {warning}")
        self._warned = len(session.warnings)
        words = [w.text for w in step.transcript.committed]
        if words:
            recent = [w.text for w in session.words[-40:]]
            self._source = join_units(recent, self._source_lang)
        self._tentative = step.transcript.tentative
        for commit in step.commits:
            start, text = self._lines.get(commit.segment, (commit.source_start_s, ""))
            self._lines[commit.segment] = (start, (text + commit.text).strip())
        if self.jsonl:
            for word in step.transcript.committed:
                print(json.dumps({"type": "source", **asdict(word)}, ensure_ascii=False))
            for commit in step.commits:
                print(json.dumps({"type": "translation", **commit.to_json()}, ensure_ascii=False))
            sys.stdout.flush()
        elif self.live is not None:
            self.live.update(self._render())
        else:
            for commit in step.commits:
                print(
                    f"[{_clock(commit.source_start_s)} heard, {commit.elapsed_s:6.2f}s] "
                    f"{commit.text.strip()}",
                    file=sys.stderr,
                    flush=True,
                )

    def _render(self) -> Any:
        from rich.text import Text

        out = Text()
        for segment in sorted(self._lines)[-self.max_lines :]:
            start, text = self._lines[segment]
            out.append(f"[{_clock(start)}] ", style="cyan")
            out.append(text + "\n", style="bold bright_white")
        out.append("heard: ", style="bold")
        out.append(self._source[-160:])
        if self._tentative:
            out.append(" " + self._tentative, style="dim italic")
        return out
