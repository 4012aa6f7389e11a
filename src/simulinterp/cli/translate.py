"""``simulinterp translate`` and ``simulinterp demo``: text in, committed translation out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path

from simulinterp.cli.common import (
    CliError,
    add_direction,
    add_glossary,
    add_model,
    add_policy,
    direction,
    glossary_from,
    load_backend,
    policy_from,
    read_lines,
    translator_config,
)
from simulinterp.defaults import speech_defaults
from simulinterp.eval.instances import DEFAULT_UNITS_PER_S, source_units
from simulinterp.events import TargetCommit
from simulinterp.translate import SimultaneousTranslator

OnCommit = Callable[[TargetCommit, list[str]], None]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "translate",
        help="translate text as it arrives, unit by unit",
        description="Read source text from FILE or stdin and translate it simultaneously: "
        "each committed increment is shown as it is decided (stderr), the translation is "
        "printed at the end (stdout).",
    )
    parser.add_argument("file", nargs="?", help="source text (UTF-8); stdin when omitted")
    add_direction(parser)
    add_policy(parser)
    add_model(parser, default=None)
    add_glossary(parser)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace the source at this many units/s (0: as fast as possible)",
    )
    parser.add_argument("--output", help="also write the translation to this file")
    parser.add_argument(
        "--jsonl", action="store_true", help="print every commit as a JSON line on stdout instead"
    )
    parser.set_defaults(run=run_translate)
    demo = sub.add_parser(
        "demo",
        help="interpret a bundled recording live (JFK's inaugural address, English to Chinese)",
        description="Interpret a bundled 11 s recording in real time with live subtitles, and "
        "write its SRT, WebVTT and JSON transcript. --text runs the earlier text-only demo "
        "(a Chinese talk into English).",
    )
    demo.add_argument(
        "--text", action="store_true", help="the text demo: a Chinese talk typed in, not spoken"
    )
    demo.add_argument("--fast", action="store_true", help="do not wait for real time")
    demo.add_argument("--output", help="folder for the subtitle files (default: a temp folder)")
    add_policy(demo, default=None)
    add_model(demo, default=None)
    from simulinterp.cli.speak import add_speech_output

    add_speech_output(demo)
    demo.set_defaults(run=run_demo, rate=DEFAULT_UNITS_PER_S["zh"])


def run_translate(args: argparse.Namespace) -> int:
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise CliError(f"source file not found: {args.file}")
        with path.open("rb") as stream:
            return _translate(args, read_lines(stream, str(path)))
    return _translate(args, read_lines(sys.stdin.buffer, "stdin"))


def run_demo(args: argparse.Namespace) -> int:
    if args.list_voices:
        from simulinterp.tts.voices import list_voices

        print(list_voices())
        return 0
    if args.text and args.speak:
        raise CliError("--speak speaks the speech demo; the text demo (--text) writes text only")
    if not args.text:  # speech: the defaults of interpret (bench/quality)
        from simulinterp.cli.interpret import run_speech_demo

        return run_speech_demo(args)
    args.source_lang, args.target_lang = "zh", "en"
    args.policy = args.policy or "clause"  # text: bench/t2t
    args.model = args.model or speech_defaults("zh", "en").model
    text = resources.files("simulinterp").joinpath("data/demo_zh.txt").read_text(encoding="utf-8")
    print(
        f"Interpreting a bundled Chinese talk into English at {args.rate:g} characters/s "
        f"(policy: {args.policy}).",
        file=sys.stderr,
    )
    args.jsonl, args.output = False, None
    return _translate(args, text.splitlines())


def _translate(args: argparse.Namespace, lines: Iterable[str]) -> int:
    if args.model is None:  # the direction's model, as interpret uses (simulinterp.defaults)
        args.model = speech_defaults(*direction(args)).model
    config = translator_config(args)
    policy = policy_from(args)
    glossary = glossary_from(args)
    llm = load_backend(args)
    translator = SimultaneousTranslator(llm, policy, config, glossary=glossary)
    view = _display(args)
    try:
        stream_lines(translator, lines, args.rate, view)
    except (KeyboardInterrupt, CliError) as stop:
        _finish_display(view)
        _save_partial(args, translator.text, interrupted=isinstance(stop, KeyboardInterrupt))
        if isinstance(stop, KeyboardInterrupt):
            return 130
        raise
    _finish_display(view)
    if not args.jsonl:
        print(translator.text.strip())
    if args.output:
        Path(args.output).write_text(translator.text.strip() + "\n", encoding="utf-8")
    return 0


def stream_lines(
    translator: SimultaneousTranslator, lines: Iterable[str], rate: float, on_commit: OnCommit
) -> None:
    """Feed each line unit by unit (paced at ``rate`` units/s when > 0) into one stream.

    Empty lines are skipped with a notice; each line ends with a flush.
    """
    cfg = translator.config
    origin = time.perf_counter()
    read: list[str] = []
    fed = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            print(f"(line {number} is empty; skipped)", file=sys.stderr)
            continue
        spu = 1.0 / rate if rate > 0 else 0.0
        for unit in source_units(line, cfg.source_lang, spu):
            fed += 1
            arrival = fed * spu if rate > 0 else time.perf_counter() - origin
            if rate > 0:
                time.sleep(max(0.0, origin + arrival - time.perf_counter()))
            read.append(unit.text)
            unit = type(unit)(unit.text, fed - 1, arrival, unit.sentence_end)
            for commit in translator.feed(unit):
                on_commit(commit, read)
        for commit in translator.finish():
            on_commit(commit, read)


class _Display:
    """Shows commits: a live panel on a terminal, one line per commit otherwise."""

    def __init__(self, jsonl: bool, target_lang: str):
        from rich.console import Console

        self.jsonl, self.target_lang = jsonl, target_lang
        self.console = Console(stderr=True)
        self.committed = ""
        self.live = None
        if self.console.is_terminal and not jsonl:
            from rich.live import Live

            self.live = Live(self._render([]), console=self.console, refresh_per_second=8)
            self.live.start()

    def __call__(self, commit: TargetCommit, read: list[str]) -> None:
        self.committed += commit.text
        if self.jsonl:
            print(json.dumps(commit.to_json(), ensure_ascii=False), flush=True)
        elif self.live is not None:
            self.live.update(self._render(read))
        else:
            print(
                f"[{commit.source_consumed:>4} read, {commit.elapsed_s:6.2f}s] "
                f"{commit.text.strip()}",
                file=sys.stderr,
                flush=True,
            )

    def _render(self, read: list[str]):
        from rich.text import Text

        source = "".join(read[-60:]) if self.target_lang == "en" else " ".join(read[-30:])
        out = Text()
        out.append("heard:  ", style="bold")
        out.append(source + "\n", style="dim")
        out.append("interp: ", style="bold")
        out.append(self.committed[-400:], style="bold bright_white")
        return out


def _display(args: argparse.Namespace) -> _Display:
    return _Display(args.jsonl, translator_config(args).target_lang)


def _finish_display(view: _Display) -> None:
    if view.live is not None:
        view.live.stop()


def _save_partial(args: argparse.Namespace, text: str, *, interrupted: bool) -> None:
    """Print and keep everything committed before a stop."""
    if not text.strip():
        return
    path = Path(args.output or f"simulinterp-partial-{datetime.now():%Y%m%d-%H%M%S}.txt")
    path.write_text(text.strip() + "\n", encoding="utf-8")
    reason = "interrupted" if interrupted else "stopped"
    print(
        f"\n{reason}: the translation committed so far is below and saved to {path}",
        file=sys.stderr,
    )
    print(text.strip())
