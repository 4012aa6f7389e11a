"""``simulinterp eval --source-type speech``: recordings through streaming ASR and the LLM.

Writes ``DIR/instances.log`` (one JSON line per recording, or per reference sentence of a long
recording) and ``DIR/scores.json`` with ``BLEU``, ``chrF``, ``offline_BLEU``, ``StartOffset``,
``AL``, ``LAAL``, ``ATD`` and ``StartOffset_CA``, ``AL_CA``, ``LAAL_CA`` in milliseconds of
source audio, plus ``WER`` or ``CER`` with ``--transcripts``.

With ``--target-type speech`` the interpretation is spoken too (``DIR/speech/*.interp.wav``),
and the latency keys describe the output as heard (:mod:`simulinterp.eval.speech_output`):
``StartOffset``, ``EndOffset``, ``AL``, ``LAAL``, ``ATD`` and their ``_CA`` variants, plus
``ASR_BLEU`` (the output audio transcribed by the packaged recognizer), ``lag_drift_s``, and the
text output's latency as ``text_*``. ``BLEU`` stays the BLEU of the same run's text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulinterp.cli.common import (
    CliError,
    load_backend,
    policy_from,
    read_text_file,
    translator_config,
)


def run_speech_eval(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from simulinterp.audio import AudioError
    from simulinterp.cli.evaluate import terms_and_glossaries
    from simulinterp.eval.quality import bleu
    from simulinterp.eval.runner import write_scores
    from simulinterp.eval.speech import score_speech
    from simulinterp.eval.speech_run import offline_translations, run_items
    from simulinterp.lang import join_units
    from simulinterp.llm.models import ModelNotFoundError
    from simulinterp.pipeline import SpeechEngine

    config = translator_config(args)
    items, listed = _items(args)
    terms, glossaries = terms_and_glossaries(args, listed, config.source_lang, config.target_lang)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    policy = policy_from(args)
    llm = load_backend(args)
    try:
        engine = SpeechEngine(llm, asr_model=args.asr_model, threads=args.asr_threads)
    except (ModelNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    instances = []
    interrupted = False
    speech = _speech_factory(args, output, config.target_lang)
    hearer = _output_recognizer(args, engine) if speech is not None else None  # before the run
    spoken: list = []
    speakers = _speaker_run(args, engine)
    try:
        with Progress() as bar:
            task = bar.add_task(f"{args.policy} on speech", total=len(items))
            for instance in run_items(
                engine,
                items,
                policy,
                config,
                output / "instances.log",
                lambda n: bar.advance(task, n),
                glossaries,
                speech,
                spoken,
                speakers,
            ):
                instances.append(instance)
    except KeyboardInterrupt:
        interrupted = True
    except AudioError as err:
        raise CliError(f"{err} (finished recordings are in {output}/instances.log)") from err
    allowed = [
        (*(glossaries[k].targets if glossaries else ()), *(terms[k] if terms else ()))
        for k in range(len(items))
    ]
    scores = score_speech(instances, config.target_lang, config.source_lang, terms, allowed)
    scores.update(
        policy=args.policy,
        source_lang=config.source_lang,
        target_lang=config.target_lang,
        latency_unit="ms",
    )
    if speech is not None:
        scores.update(_speech_scores(hearer, scores, spoken, config))
    if speakers is not None:
        scores.update(_diarization_scores(args, speakers, items))
        if speech is not None:
            scores.update(_similarity_scores(args, engine, speakers, items, spoken))
    if interrupted:
        scores["interrupted"] = True
    elif not args.no_offline:
        with Progress() as bar:
            bar.add_task("offline cascade", total=None)
            offline = offline_translations(engine, items, config)
        refs = [join_units(list(i.references), config.target_lang) for i in items]
        scores["offline_BLEU"] = bleu(offline, refs, config.target_lang)
    write_scores(output, scores)
    keys = ["BLEU", "chrF", "offline_BLEU", "StartOffset_CA", "LAAL_CA", "LAAL", "WER", "CER"]
    if speech is not None:
        keys = ["BLEU", "ASR_BLEU", "StartOffset_CA", "EndOffset_CA", "LAAL_CA", "lag_drift_s"]
        keys = [k for k in keys if scores.get(k) is not None]
    print("\t".join(k for k in keys if k in scores))
    print("\t".join(f"{scores[k]:.2f}" for k in keys if k in scores))
    print(f"wrote {output}/scores.json and instances.log", file=sys.stderr)
    return 130 if interrupted else 0


def _speaker_run(args: argparse.Namespace, engine):
    """Speaker tracking for ``--speakers auto|N``, or None."""
    if args.speakers == "1":
        return None
    from simulinterp.cli.speakers import attach_voices, tracker_config
    from simulinterp.eval.speech_run import SpeakerRun

    config = tracker_config(args, engine)
    if config is None:
        return None
    return SpeakerRun(config, lambda sink, session: attach_voices(args, sink, session))


def _diarization_scores(args: argparse.Namespace, speakers, items) -> dict:
    """``DER``, ``JER`` and their parts against the reference RTTM files, where there are any."""
    from simulinterp.audio import probe
    from simulinterp.eval.diarization import diarization_scores
    from simulinterp.speakers.rttm import read_rttm

    folder = Path(args.rttm) if args.rttm else Path(args.source).parent / "rttm"
    refs, hyps, lengths = {}, {}, {}
    for item in items:
        path = folder / f"{item.audio.stem}.rttm"
        if not path.is_file():
            continue
        turns = [t for ts in read_rttm(path).values() for t in ts]
        key = item.audio.stem
        refs[key], hyps[key] = turns, speakers.turns.get(str(item.audio), [])
        lengths[key] = probe(item.audio).duration_s or max((t.end_s for t in turns), default=0)
    if not refs:
        if args.rttm:
            raise CliError(f"no reference RTTM in {folder} for these recordings")
        return {}
    return diarization_scores(refs, hyps, lengths).to_json() | {"DER_files": len(refs)}


def _similarity_scores(args: argparse.Namespace, engine, speakers, items, spoken) -> dict:
    """``speaker_similarity`` and its twins (:mod:`simulinterp.eval.speaker_similarity`)."""
    import soundfile

    from simulinterp.audio import load_file
    from simulinterp.cli.speak import load_voice
    from simulinterp.eval.speaker_similarity import similarity_scores, speaker_samples

    recordings = [r for r in spoken if r.wav and Path(r.wav).is_file()]
    if not recordings:
        return {}
    synth, voice = load_voice(args.tts, args.voice, args.target_lang, threads=1)
    plain_voice = _plain_voice(synth, voice, args.target_lang)
    samples = []
    for recording in recordings:
        item = items[recording.index]
        output, rate = soundfile.read(recording.wav, dtype="float32")
        samples += speaker_samples(
            load_file(str(item.audio), max_s=4 * 3600),
            speakers.turns.get(str(item.audio), []),
            output if output.ndim == 1 else output.mean(axis=1),
            rate,
            recording.spoken,
            plain_voice,
        )
    return similarity_scores(samples, engine.speaker_encoder)


def _plain_voice(synth, voice: str, lang: str):
    """``(speaker, texts) -> 16 kHz audio`` in the voice ``--no-adapt`` gives that speaker."""
    import numpy as np
    import soxr

    from simulinterp.speakers.voices import SpeakerVoices, VoiceBank
    from simulinterp.tts.base import OUTPUT_RATE, to_output_rate

    plain = SpeakerVoices(VoiceBank(synth, lang), adapt=False, default=voice)

    def speak(speaker: int, texts: list[str]) -> np.ndarray:
        name = plain.voice_for(speaker).name
        clips = [to_output_rate(c) for t in texts for c in synth.synthesize(t, name, lang)]
        if not clips:
            return np.zeros(0, np.float32)
        return soxr.resample(np.concatenate(clips), OUTPUT_RATE, 16_000).astype(np.float32)

    return speak


def _speech_factory(args: argparse.Namespace, output: Path, lang: str):
    """One speech sink per recording (``--target-type speech``), or None."""
    if args.target_type != "speech":
        return None
    from simulinterp.cli.speak import load_voice
    from simulinterp.tts.output import SpeechOutput

    try:
        synth, voice = load_voice(args.tts, args.voice, lang, threads=args.tts_threads)
    except (ValueError, RuntimeError) as err:
        raise CliError(str(err)) from err
    folder = output / "speech"
    folder.mkdir(parents=True, exist_ok=True)
    return lambda index, item: SpeechOutput(
        synth, voice, lang, wav_path=folder / f"{index:03d}-{item.audio.stem}.interp.wav"
    )


def _output_recognizer(args: argparse.Namespace, engine):
    """The recognizer that hears the spoken output: ``--asr-bleu-model``, else the run's."""
    from simulinterp.asr.models import load_speech_model
    from simulinterp.llm.models import ModelNotFoundError

    name = args.asr_bleu_model or args.asr_model
    if name == args.asr_model:
        return name, engine.whisper
    try:
        return name, load_speech_model(name, threads=2)
    except (ModelNotFoundError, ValueError) as err:
        raise CliError(f"--asr-bleu-model: {err}") from err


def _speech_scores(recognizer, text_scores: dict, spoken: list, config) -> dict:
    """The speech-output keys: latency as heard, ASR_BLEU (``recognizer``: its name and the
    model), lag_drift_s; text_* keep the text output's latency."""
    from rich.progress import Progress

    from simulinterp.asr.text import normalize
    from simulinterp.audio import load_file
    from simulinterp.eval.speech import LATENCY_KEYS
    from simulinterp.eval.speech_output import score_speech_output

    name, model = recognizer
    lang = config.target_lang
    transcripts = []
    with Progress() as bar:
        task = bar.add_task("ASR of the speech output", total=len(spoken))
        for recording in spoken:
            audio = load_file(recording.wav, max_s=4 * 3600) if recording.spoken else None
            text = model.transcribe(audio, lang) if audio is not None else ""
            transcripts.append(normalize(text, lang))
            bar.advance(task)
    out = {f"text_{k}": text_scores[k] for k in LATENCY_KEYS if k in text_scores}
    out.update(score_speech_output(spoken, lang, transcripts))
    out["asr_transcripts"] = transcripts
    out["asr_bleu_model"] = name
    out["target_type"] = "speech"
    return out


def _items(args: argparse.Namespace) -> tuple[list, int]:
    """The recordings to evaluate (``--limit`` applied) and how many the list names."""
    from simulinterp.eval.speech_run import read_items

    listing = read_text_file(args.source, "recording list")
    references = read_text_file(args.reference, "reference")
    transcripts = read_text_file(args.transcripts, "transcripts") if args.transcripts else None
    try:
        items = read_items(listing, references, transcripts, Path(args.source).parent)
    except ValueError as err:
        raise CliError(str(err)) from err
    if args.limit:
        items = items[: args.limit]
    missing = [str(i.audio) for i in items if not i.audio.is_file()]
    if missing:
        raise CliError(f"{len(missing)} recordings not found, e.g. {missing[0]}")
    if not items:
        raise CliError(f"{args.source} lists no recordings")
    return items, len(listing)
