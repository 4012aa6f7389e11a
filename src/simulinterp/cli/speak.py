"""``--speak``: the options and the speech sink of ``interpret`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulinterp.cli.common import CliError


def add_speech_output(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech output")
    group.add_argument(
        "--speak",
        action="store_true",
        help="speak the interpretation: play it live and write NAME.interp.wav (on the input's "
        "timeline) and NAME.review.wav (source left, interpretation right)",
    )
    add_voice_options(group)
    group.add_argument(
        "--output-device", help="audio output device for --speak (name or index; default: system)"
    )
    group.add_argument(
        "--no-play", action="store_true", help="with --speak: write the WAVs, play nothing"
    )
    group.add_argument(
        "--list-voices", action="store_true", help="list the voice backends and voices, and exit"
    )


def add_voice_options(group: argparse._ArgumentGroup) -> None:
    """``--tts``, ``--voice`` and ``--tts-threads`` (for ``--speak`` and ``--target-type
    speech``)."""
    group.add_argument(
        "--tts", default="kokoro", help="voice backend: kokoro (default), piper (en), espeak"
    )
    group.add_argument("--voice", help="voice name (default: the backend's best for the language)")
    group.add_argument(
        "--tts-threads", type=int, default=1, help="CPU threads of the synthesizer (default 1)"
    )


def playback_problem(args: argparse.Namespace) -> str | None:
    """Why ``--speak`` cannot play (it then writes the files only), or None."""
    if not getattr(args, "speak", False) or args.no_play:
        return None
    from simulinterp.audio.output import output_device_problem

    return output_device_problem(_device(args.output_device))


def speech_sink(args: argparse.Namespace, folder: Path, stem: str, lang: str, *, play: bool):
    """The speech sink for ``--speak`` (files ``STEM.interp.wav`` and ``STEM.review.wav``)."""
    from simulinterp.tts.output import SpeechOutput

    try:
        synth, voice = load_voice(args.tts, args.voice, lang, threads=args.tts_threads)
    except (ValueError, RuntimeError) as err:
        raise CliError(str(err)) from err
    factory = None
    if play:
        from simulinterp.audio.output import Player

        device = _device(args.output_device)
        factory = lambda rate, clock: Player(rate, clock, device)  # noqa: E731
    return SpeechOutput(
        synth,
        voice,
        lang,
        wav_path=folder / f"{stem}.interp.wav",
        review_path=folder / f"{stem}.review.wav",
        player_factory=factory,
    )


def load_voice(backend: str, voice: str | None, lang: str, *, threads: int = 1):
    """The synthesizer ``backend`` and its ``voice`` for ``lang`` (default: its best).

    Raises:
        ValueError: no such backend, language or voice.
    """
    from simulinterp.tts.voices import default_voice, load_synthesizer

    synth = load_synthesizer(backend, threads=threads)
    chosen = voice or default_voice(synth, lang)
    if chosen not in synth.voices(lang):
        raise ValueError(
            f"{backend} has no {lang} voice {chosen!r}; choose from "
            + ", ".join(synth.voices(lang))
        )
    return synth, chosen


def announce_fallback(problem: str, folder: Path, stem: str) -> None:
    print(
        f"--speak: {problem}; writing the interpretation to {folder / (stem + '.interp.wav')} "
        "instead of playing it",
        file=sys.stderr,
    )


def _device(value: str | None) -> int | str | None:
    return int(value) if value and value.isdigit() else value
