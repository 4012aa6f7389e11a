"""``simulinterp interpret``: speech in (file or microphone), live subtitles (and, with
``--speak``, speech) out.

Writes ``NAME.LANG.srt``, ``NAME.LANG.vtt``, ``NAME.LANG.json`` and the event log
``NAME.LANG.jsonl`` next to the input (or into ``--output``) as the run goes; ``--speak`` adds
``NAME.interp.wav`` and ``NAME.review.wav``. Ctrl-C stops the stream, and everything committed
so far is still written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from simulinterp.cli.common import (
    CliError,
    add_direction,
    add_glossary,
    add_model,
    add_policy,
    apply_speech_defaults,
    direction,
    glossary_from,
    load_backend,
    policy_from,
    translator_config,
)
from simulinterp.cli.speak import (
    add_speech_output,
    announce_fallback,
    playback_problem,
    speech_sink,
)
from simulinterp.cli.speakers import add_speaker_options, attach_voices, tracker_config

if TYPE_CHECKING:
    from simulinterp.sinks import Sink
    from simulinterp.tts.output import SpeechOutput

logger = logging.getLogger(__name__)

DEMO_AUDIO = "data/jfk_inaugural_en.flac"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "interpret",
        help="interpret speech (a recording or the microphone) with live subtitles",
        description="Recognize speech as it is spoken and translate it simultaneously. "
        "Shows live subtitles and writes SRT, WebVTT and a JSON transcript.",
    )
    parser.add_argument("audio", nargs="?", help="recording (wav, flac, ogg, mp3, m4a, ...)")
    parser.add_argument("--mic", action="store_true", help="interpret the microphone live")
    parser.add_argument("--device", help="microphone device (name or index; see --list-devices)")
    parser.add_argument(
        "--list-devices", action="store_true", help="list audio input devices and exit"
    )
    add_direction(parser)
    add_policy(parser, default=None)
    add_model(parser, default=None)
    add_glossary(parser)
    add_speech_options(parser)
    add_speaker_options(parser)
    add_speech_output(parser)
    parser.add_argument("--output", help="folder for the subtitle files (default: beside input)")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="play a file in real time, as if live (default: as fast as possible, with "
        "latencies simulated on a computation-aware clock)",
    )
    parser.add_argument("--jsonl", action="store_true", help="print events as JSON lines on stdout")
    parser.set_defaults(run=run_interpret)


def add_speech_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech recognition")
    group.add_argument(
        "--asr-model",
        default="base",
        help="whisper preset: base (packaged), small (better, slower; first run 'simulinterp "
        "install whisper-small'), tiny.en; or a model directory",
    )
    group.add_argument(
        "--asr-step", type=float, default=0.5, help="seconds of new audio between decodes"
    )
    group.add_argument(
        "--asr-threads",
        type=int,
        help="CPU threads of the recognizer (default 2; 1 with --speak, beside the synthesizer)",
    )


def run_interpret(args: argparse.Namespace) -> int:
    if args.list_voices:
        from simulinterp.tts.voices import list_voices

        print(list_voices())
        return 0
    if args.list_devices:
        from simulinterp.audio import AudioError, list_input_devices

        try:
            print(list_input_devices())
        except AudioError as err:
            raise CliError(str(err)) from err
        return 0
    if bool(args.audio) == bool(args.mic):
        raise CliError("give a recording to interpret, or --mic for the microphone (not both)")
    apply_speech_defaults(args)
    out = _output_base(args)
    speech = None
    if args.speak:
        problem = playback_problem(args)
        if problem:
            announce_fallback(problem, out.parent, out.stem)
        elif not args.no_play:
            args.realtime = True  # playing live: the file is heard at the speaker's pace
        speech = speech_sink(
            args, out.parent, out.stem, direction(args)[1], play=not problem and not args.no_play
        )
    source = _open_source(args)
    session = build_session(args, realtime=args.mic or args.realtime)
    attach_voices(args, speech, session)
    return interpret(
        session, source, out, jsonl=args.jsonl, audio_name=args.audio or "mic", speech=speech
    )


def build_session(args: argparse.Namespace, *, realtime: bool):
    """The engine and one session, from the CLI options."""
    from simulinterp.asr.stream import RecognizerConfig
    from simulinterp.llm.models import ModelNotFoundError
    from simulinterp.pipeline import SpeechEngine

    src, _ = direction(args)
    glossary = glossary_from(args)
    llm = load_backend(args)
    try:
        engine = SpeechEngine(llm, asr_model=args.asr_model, threads=args.asr_threads)
        rec = RecognizerConfig(lang=src, step_s=args.asr_step)
    except (ModelNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    return engine.session(
        policy_from(args),
        translator_config(args),
        rec,
        realtime=realtime,
        glossary=glossary,
        speakers=tracker_config(args, engine),
    )


def _open_source(args: argparse.Namespace) -> Iterable:
    from simulinterp.audio import AudioError, FileSource, MicrophoneSource

    try:
        if args.mic:
            device = int(args.device) if args.device and args.device.isdigit() else args.device
            return MicrophoneSource(device)
        return FileSource(args.audio, realtime=args.realtime)
    except AudioError as err:
        raise CliError(str(err)) from err


def _output_base(args: argparse.Namespace) -> Path:
    """``talk.wav`` → ``talk.zh`` beside it or in ``--output``; the mic gets a timestamp."""
    from datetime import datetime

    _, tgt = direction(args)
    stem = Path(args.audio).stem if args.audio else f"mic-{datetime.now():%Y%m%d-%H%M%S}"
    folder = (
        Path(args.output)
        if args.output
        else (Path(args.audio).parent if args.audio else Path.cwd())
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}.{tgt}"


def interpret(
    session,
    source: Iterable,
    out: Path,
    *,
    jsonl: bool,
    audio_name: str,
    speech: SpeechOutput | None = None,
) -> int:
    """Run ``source`` through ``session`` with a live display; the files grow as it goes."""
    from simulinterp.cli.live import LiveSubtitles
    from simulinterp.pipeline import run
    from simulinterp.sinks import JsonLines, SubtitleFiles

    view = LiveSubtitles(session.translator.config.target_lang, quiet=jsonl)
    files = SubtitleFiles(out)
    sinks: list[Sink] = [files, view]
    if jsonl:
        sinks.append(JsonLines(sys.stdout))
    if speech is not None:
        from simulinterp.events import spoken_event

        speech.listeners += [lambda s: files.log_event(spoken_event(s)), view.spoken]
        sinks.append(speech)
    result = run(source, session, sinks, audio_name=audio_name, warn=view.warn)
    print(files.translation.strip())
    paths = files.paths[:3] + [p for p in speech_paths(speech) if p.exists()]
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    if result.failure is not None:
        raise CliError(f"{result.failure} (what was interpreted before it is saved)")
    return 130 if result.interrupted else 0


def speech_paths(speech: SpeechOutput | None) -> list[Path]:
    """The WAVs a speech sink writes."""
    if speech is None:
        return []
    return [p for p in (speech.wav_path, speech.review_path) if p is not None]


def demo_audio() -> Path:
    """The bundled recording used by ``simulinterp demo``."""
    return Path(str(resources.files("simulinterp").joinpath(DEMO_AUDIO)))


def run_speech_demo(args: argparse.Namespace) -> int:
    """``simulinterp demo``: the bundled JFK recording, English into Chinese, in real time."""
    import tempfile

    from simulinterp.audio import AudioError, FileSource

    args.source_lang, args.target_lang = "en", "zh"
    args.asr_model, args.asr_step, args.asr_threads = "base", 0.5, None
    apply_speech_defaults(args)
    audio = demo_audio()
    folder = Path(args.output or tempfile.mkdtemp(prefix="simulinterp-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    speech = None
    if args.speak:
        problem = playback_problem(args)
        if problem:
            announce_fallback(problem, folder, audio.stem)
        if problem or args.no_play:
            args.fast = True  # nothing to hear: as fast as possible, on the simulated clock
        speech = speech_sink(args, folder, audio.stem, "zh", play=not problem and not args.no_play)
    print(
        f"Interpreting {audio.name} (JFK, 1961, public domain) from English into Chinese "
        f"{'as fast as possible' if args.fast else 'in real time'} (policy: {args.policy}).",
        file=sys.stderr,
    )
    try:
        source = FileSource(str(audio), realtime=not args.fast)
    except AudioError as err:
        raise CliError(str(err)) from err
    session = build_session(args, realtime=not args.fast)
    return interpret(
        session,
        source,
        folder / f"{audio.stem}.zh",
        jsonl=False,
        audio_name=str(audio),
        speech=speech,
    )
