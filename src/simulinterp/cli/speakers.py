"""Speakers on the command line: ``--speakers``/``--no-adapt`` of ``interpret``, and
``simulinterp diarize``, which runs the online tracker alone and writes RTTM."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from simulinterp.cli.common import CliError

logger = logging.getLogger(__name__)

DEFAULT_CAP = 8


def add_speaker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speakers")
    group.add_argument(
        "--speakers",
        default="auto",
        help="who is talking: auto (track up to 8 speakers, the default), 1 (one speaker, no "
        "tracking) or N (at most N)",
    )
    group.add_argument(
        "--no-adapt",
        action="store_true",
        help="with --speak: plain packaged voices, one per speaker, not fitted to them",
    )


def speaker_cap(value: str) -> int:
    """The cap on speakers that ``--speakers`` asks for (1: no tracking).

    Raises:
        CliError: not ``auto`` nor a whole number from 1 to 32.
    """
    if value == "auto":
        return DEFAULT_CAP
    if value.isdigit() and 1 <= int(value) <= 32:
        return int(value)
    raise CliError(f"--speakers takes auto or a number from 1 to 32, not {value!r}")


def tracker_config(args: argparse.Namespace, engine):
    """The tracker settings for a session, or None for one untracked speaker.

    With ``--speakers auto`` and no speaker encoder installed, a warning says how to install
    it and the run goes on with one speaker; with an explicit number it is an error.
    """
    from simulinterp.packaged import ModelNotFoundError
    from simulinterp.speakers.tracker import TrackerConfig

    value = getattr(args, "speakers", "1")
    cap = speaker_cap(value)
    if cap == 1:
        return None
    try:
        engine.speaker_encoder  # noqa: B018 - loads it now, so a missing one is reported here
    except (ModelNotFoundError, ValueError) as err:
        if value != "auto":
            raise CliError(str(err)) from err
        print(f"speakers: {err}; going on with one speaker", file=sys.stderr)
        return None
    return TrackerConfig(max_speakers=cap)


def attach_voices(args: argparse.Namespace, speech, session) -> None:
    """Give ``speech`` a voice per speaker of ``session`` (unless ``--voice`` forces one)."""
    from simulinterp.speakers.voices import SpeakerVoices, VoiceBank, profile_cache

    if speech is None or session.tracker is None or getattr(args, "voice", None):
        return
    bank = VoiceBank(
        speech.synthesizer,
        speech.lang,
        cache=profile_cache(speech.synthesizer, speech.lang),
    )
    adapt = not getattr(args, "no_adapt", False)
    if adapt and not bank.blendable:
        print(
            f"speakers: the {speech.synthesizer.name} voices cannot be adapted; each speaker "
            "gets a plain voice (--tts kokoro adapts them)",
            file=sys.stderr,
        )
    if len(bank.voices) < session.tracker.config.max_speakers and not (adapt and bank.blendable):
        print(
            f"speakers: {speech.synthesizer.name} has {len(bank.voices)} {speech.lang} voice(s) "
            f"for up to {session.tracker.config.max_speakers} speakers: past that, voices are "
            "reused in turn",
            file=sys.stderr,
        )
    speech.voices = SpeakerVoices(bank, adapt=adapt, default=speech.voice)
    speech.profiles = session.tracker.profile


def add_diarize_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "diarize",
        help="who spoke when: run the online speaker tracker and write RTTM",
        description="Run the online speaker tracker over recordings, as it runs live (audio in "
        "0.1 s chunks, decisions as they come), and write NAME.rttm per recording.",
    )
    parser.add_argument("audio", nargs="+", help="recordings (wav, flac, ogg, mp3, ...)")
    parser.add_argument("--output", help="folder for the RTTM files (default: beside each input)")
    parser.add_argument(
        "--speakers", default="auto", help="auto (up to 8, the default) or the most to find"
    )
    parser.set_defaults(run=run_diarize)


def run_diarize(args: argparse.Namespace) -> int:
    from simulinterp.asr.vad import SileroVAD
    from simulinterp.audio import AudioError
    from simulinterp.audio.io import stream_file
    from simulinterp.packaged import ModelNotFoundError
    from simulinterp.speakers.encoder import GE2EEncoder
    from simulinterp.speakers.rttm import write_rttm
    from simulinterp.speakers.tracker import SpeakerTracker, TrackerConfig

    cap = speaker_cap(args.speakers)
    try:
        encoder = GE2EEncoder()
    except (ModelNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    vad = SileroVAD()
    failed = 0
    for name in args.audio:
        path = Path(name)
        tracker = SpeakerTracker(encoder, vad, TrackerConfig(max_speakers=cap))
        problem = None
        try:
            for chunk in stream_file(path, chunk_s=0.1):
                tracker.insert_audio(chunk)
                tracker.process()
        except AudioError as err:  # what was heard before the damage is still written
            problem = err
        tracker.finish()
        if problem is not None:
            failed += 1
            print(str(problem), file=sys.stderr)
            if tracker.audio_s == 0:
                continue
        folder = Path(args.output) if args.output else path.parent
        folder.mkdir(parents=True, exist_ok=True)
        turns = tracker.turns()
        out = write_rttm(folder / f"{path.stem}.rttm", _file_id(path.stem), turns)
        speakers = len({t.speaker for t in turns})
        print(
            f"{path.name}: {speakers} speaker{'s' * (speakers != 1)}, {len(turns)} turns "
            f"in {tracker.audio_s:.1f} s -> {out}",
            file=sys.stderr,
        )
    if failed:
        raise CliError(f"{failed} of {len(args.audio)} recordings could not be read (whole)")
    return 0


def _file_id(stem: str) -> str:
    """An RTTM file id: the stem with spaces replaced."""
    return "_".join(stem.split()) or "audio"
