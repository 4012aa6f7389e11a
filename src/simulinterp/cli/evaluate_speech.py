"""``simulinterp eval --source-type speech``: recordings through streaming ASR and the LLM.

Writes ``DIR/instances.log`` (one JSON line per recording, or per reference sentence of a long
recording) and ``DIR/scores.json`` with ``BLEU``, ``chrF``, ``offline_BLEU``, ``StartOffset``,
``AL``, ``LAAL``, ``ATD`` and ``StartOffset_CA``, ``AL_CA``, ``LAAL_CA`` in milliseconds of
source audio, plus ``WER`` or ``CER`` with ``--transcripts``.
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
    print("\t".join(k for k in keys if k in scores))
    print("\t".join(f"{scores[k]:.2f}" for k in keys if k in scores))
    print(f"wrote {output}/scores.json and instances.log", file=sys.stderr)
    return 130 if interrupted else 0


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
