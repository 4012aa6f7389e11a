"""``simulinterp eval``: quality and latency of a policy on a parallel text set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from simulinterp.cli.common import (
    CliError,
    add_direction,
    add_glossary,
    add_model,
    add_policy,
    apply_speech_defaults,
    knob_of,
    load_backend,
    policy_from,
    read_text_file,
    translator_config,
)
from simulinterp.cli.interpret import add_speech_options
from simulinterp.cli.speak import add_voice_options
from simulinterp.eval.instances import DEFAULT_UNITS_PER_S
from simulinterp.eval.runner import EvalData, evaluate, oracle_al, plot_curve, write_scores
from simulinterp.policy import POLICIES, make_policy
from simulinterp.translate import SimultaneousTranslator


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eval",
        help="score a policy: BLEU, chrF, AL, LAAL, DAL, AP, ATD, computation-aware",
        description="Stream each source line through the translator at a speaking rate and "
        "write DIR/instances.log and DIR/scores.json (SimulEval-compatible).",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="source text, one segment per line; with --source-type speech, a list of "
        "recordings, one path per line (relative to the list's folder)",
    )
    parser.add_argument(
        "--reference",
        required=True,
        help="reference translations, line-aligned (speech: tabs separate the sentences of a "
        "long recording, which is then re-segmented to them)",
    )
    parser.add_argument(
        "--source-type",
        choices=["text", "speech"],
        default="text",
        help="text lines paced at --rate, or recordings through streaming ASR",
    )
    parser.add_argument(
        "--target-type",
        choices=["text", "speech"],
        default="text",
        help="speech: also speak the interpretation (with --source-type speech) and score it "
        "as heard: StartOffset, EndOffset, AL, LAAL, ATD on the output audio, ASR_BLEU, "
        "lag_drift_s; the WAVs go to DIR/speech/",
    )
    parser.add_argument(
        "--transcripts", help="speech: gold transcripts, line-aligned, to add WER or CER"
    )
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument(
        "--terms",
        metavar="FILE",
        help="required target terms, one JSON list per line, line-aligned with the source "
        '([{"zh": "郝仁", "en": "Hao Ren"}], the WMT format): adds term_accuracy',
    )
    add_direction(parser)
    add_policy(parser, default=None)
    add_model(parser, default=None)
    add_glossary(parser, per_line=True)
    parser.add_argument("--sweep", help="comma-separated knob values: one run each, plus curve.png")
    parser.add_argument(
        "--rate",
        type=float,
        help="speaking rate in source units/s "
        "(default 2.5 English words/s, 4 Chinese characters/s)",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N lines")
    parser.add_argument(
        "--docids",
        help="the document of each line (first column, line-aligned, e.g. the TED sets' "
        "docids.txt): lines of one document are one talk, each seeing the earlier ones as context",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="units that arrive while the model is still computing are read in one batch "
        "with one decision, as in a live run (default: a decision at every unit)",
    )
    parser.add_argument("--no-offline", action="store_true", help="skip offline_BLEU")
    parser.add_argument("--no-oracle", action="store_true", help="skip oracle_AL")
    add_speech_options(parser)
    voice = parser.add_argument_group("speech output (--target-type speech)")
    add_voice_options(voice)
    voice.add_argument(
        "--asr-bleu-model",
        help="the recognizer that transcribes the spoken output for ASR_BLEU: a whisper preset "
        "(base, small) or directory (default: --asr-model's); the key asr_bleu_model says which",
    )
    group = parser.add_argument_group("speakers (--source-type speech)")
    group.add_argument(
        "--speakers",
        default="1",
        help="1 (default: one speaker, untracked), auto (track up to 8) or N: with tracking, "
        "DER and JER against --rttm, and with --target-type speech a voice per speaker and "
        "speaker_similarity against the plain voices",
    )
    group.add_argument(
        "--rttm",
        help="folder of reference RTTM files, NAME.rttm per recording (default: rttm/ beside "
        "the recording list, when it exists)",
    )
    group.add_argument(
        "--no-adapt", action="store_true", help="plain packaged voices, one per speaker"
    )
    parser.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    if args.target_type == "speech" and args.source_type != "speech":
        raise CliError("--target-type speech needs --source-type speech (recordings in)")
    if args.source_type == "speech":
        from simulinterp.cli.evaluate_speech import run_speech_eval

        apply_speech_defaults(args)  # score what interpret does
        return run_speech_eval(args)
    args.policy = args.policy or "clause"
    args.model = args.model or "fast"
    config = translator_config(args)
    data = _load_data(args, config.source_lang, config.target_lang)
    knobs = _sweep_values(args)
    rate = args.rate or DEFAULT_UNITS_PER_S[config.source_lang]
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    llm = load_backend(args)
    oracle = None if args.no_oracle else oracle_al(data)
    offline = None
    if not args.no_offline:
        translator = SimultaneousTranslator(llm, make_policy("offline"), config)
        offline_scores = _run(translator, data, rate, output / "offline", "offline")
        write_scores(output / "offline", offline_scores)
        offline = offline_scores["BLEU"]
    points = []
    for knob in knobs:
        translator = SimultaneousTranslator(llm, policy_from(args, knob), config)
        where = output if len(knobs) == 1 else output / f"{args.policy}-{knob:g}"
        label = f"{args.policy}" + (
            "" if knob is None else f" {POLICIES[args.policy].knob}={knob:g}"
        )
        scores = _run(translator, data, rate, where, label, live=args.live)
        scores.update(
            policy=args.policy,
            knob=knob,
            offline_BLEU=offline,
            oracle_AL=oracle,
            rate_units_per_s=rate,
            source_lang=config.source_lang,
            target_lang=config.target_lang,
        )
        write_scores(where, scores)
        points.append(scores)
    if len(knobs) > 1:
        summary = {"offline_BLEU": offline, "oracle_AL": oracle, "points": points}
        write_scores(output, summary)
        plot_curve(
            points,
            output / "curve.png",
            offline_bleu=offline,
            oracle=oracle,
            title=f"{config.source_lang}→{config.target_lang}, {len(data.sources)} segments",
        )
    _print_table(points, offline, oracle)
    print(
        f"wrote {output}/scores.json" + (" and curve.png" if len(knobs) > 1 else ""),
        file=sys.stderr,
    )
    return 0


def _run(
    translator: SimultaneousTranslator,
    data: EvalData,
    rate: float,
    where: Path,
    label: str,
    *,
    live: bool = False,
) -> dict[str, Any]:
    from rich.progress import Progress

    where.mkdir(parents=True, exist_ok=True)
    with Progress(transient=False) as bar:
        task = bar.add_task(label, total=len(data.sources))
        try:
            scores, _ = evaluate(
                translator,
                data,
                1.0 / rate,
                where,
                lambda n: bar.advance(task, n),
                scheduled=live,
            )
        except KeyboardInterrupt:
            print(
                f"interrupted: finished instances are in {where}/instances.log and scored in "
                f"{where}/scores.json",
                file=sys.stderr,
            )
            raise
    return scores


def _load_data(args: argparse.Namespace, source_lang: str, target_lang: str) -> EvalData:
    sources = read_text_file(args.source, "source")
    references = read_text_file(args.reference, "reference")
    if len(sources) != len(references):
        raise CliError(
            f"{args.source} has {len(sources)} lines but {args.reference} has "
            f"{len(references)}; they must be line-aligned"
        )
    docs = None
    if args.docids:
        docs = [line.split("\t")[0].strip() for line in read_text_file(args.docids, "docids")]
        _check_aligned(args.docids, len(docs), args.source, len(sources))
    terms, glossaries = terms_and_glossaries(args, len(sources), source_lang, target_lang)
    if args.limit:
        sources, references = sources[: args.limit], references[: args.limit]
        docs = docs[: args.limit] if docs else None
        terms = terms[: args.limit] if terms is not None else None
        glossaries = glossaries[: args.limit] if glossaries is not None else None
    if not sources:
        raise CliError(f"{args.source} is empty")
    return EvalData(
        sources,
        references,
        source_lang,
        target_lang,
        docs=docs,
        terms=terms,
        glossaries=glossaries,
    )


def terms_and_glossaries(
    args: argparse.Namespace, lines: int, source_lang: str, target_lang: str
) -> tuple[list | None, list | None]:
    """``--terms`` (per line) and ``--glossary`` (per line for JSON lines, else one for all)."""
    from simulinterp.translate.glossary import GlossaryError
    from simulinterp.translate.glossary_files import (
        glossary_format,
        read_glossary,
        read_line_glossaries,
        read_required_terms,
    )

    terms = glossaries = None
    try:
        if args.terms:
            terms = read_required_terms(args.terms, source_lang, target_lang)
            _check_aligned(args.terms, len(terms), args.source, lines)
        if args.glossary and glossary_format(args.glossary) == "jsonl":
            glossaries = read_line_glossaries(args.glossary, source_lang, target_lang)
            _check_aligned(args.glossary, len(glossaries), args.source, lines)
        elif args.glossary:
            glossaries = [read_glossary(args.glossary, source_lang, target_lang)] * lines
    except GlossaryError as err:
        raise CliError(str(err)) from err
    return terms, glossaries


def _check_aligned(path: str, count: int, source: str, lines: int) -> None:
    if count != lines:
        raise CliError(
            f"{path} has {count} lines but {source} has {lines}; they must be line-aligned"
        )


def _sweep_values(args: argparse.Namespace) -> list[float | None]:
    if not args.sweep:
        return [knob_of(args, args.policy)]
    if POLICIES[args.policy].knob is None:
        raise CliError(f"policy {args.policy!r} has no knob to sweep")
    try:
        return [float(v) for v in args.sweep.split(",") if v.strip()]
    except ValueError as err:
        raise CliError(f"--sweep takes numbers separated by commas, got {args.sweep!r}") from err


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _print_table(points: list[dict[str, Any]], offline: float | None, oracle: float | None) -> None:
    keys = ["BLEU", "chrF", "LAAL", "AL", "AL_CA", "StartOffset", "ms_per_unit", "leak_rate"]
    if any(p.get("term_accuracy") is not None for p in points):
        keys.append("term_accuracy")
    print("policy\tknob\t" + "\t".join(keys))
    for p in points:
        values = (p.get(k) for k in keys)
        print(f"{p['policy']}\t{p['knob']}\t" + "\t".join(_cell(v) for v in values))
    print(json.dumps({"offline_BLEU": offline, "oracle_AL": oracle}))
