"""Running recordings through a speech session for ``eval --source-type speech`` and bench/s2t.

Each recording is streamed as fast as possible on the computation-aware clock (see
:mod:`simulinterp.pipeline`), so the ``_CA`` latencies are what a live run on this machine would
show. Delays are milliseconds of source audio, as SimulEval measures speech input.

Long-form input: a reference line may hold several reference sentences separated by tabs. The
recording's output is then re-segmented to them by edit-distance alignment (mwerSegmenter-like,
as StreamLAAL does) and each sentence is scored as an instance; when the list gives the start
of each sentence in the audio (``file.wav<TAB>0.0,4.2,9.8``), its delays count from that start.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from simulinterp.asr.text import normalize
from simulinterp.audio import FileSource, load_file
from simulinterp.eval.resegment import resegment_instance
from simulinterp.eval.speech import SpeechInstance, speech_instance
from simulinterp.eval.speech_output import SpokenRecording
from simulinterp.events import SourceUnit
from simulinterp.lang import is_sentence_end, join_units, split_units
from simulinterp.pipeline import SpeechEngine, run
from simulinterp.policy.base import Policy
from simulinterp.policy.registry import make_policy
from simulinterp.sinks import Collector
from simulinterp.translate.glossary import Glossary
from simulinterp.translate.translator import SimultaneousTranslator, TranslatorConfig

if TYPE_CHECKING:
    from simulinterp.tts.output import SpeechOutput

logger = logging.getLogger(__name__)


@dataclass
class SpeakerRun:
    """Speaker tracking in an evaluation run.

    Attributes:
        tracker: the tracker settings of every session.
        attach: ``(speech sink, session) -> None``: gives the sink a voice per speaker.
        turns: recording path -> the tracker's turns (filled as the run goes).
    """

    tracker: object
    attach: Callable[[object, object], None]
    turns: dict[str, list] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeechItem:
    """One recording to evaluate.

    Attributes:
        audio: the recording.
        references: its reference translation, one entry per sentence (one for short clips).
        transcript: the gold transcript, when known (for WER/CER).
        sentence_starts_s: where each reference sentence starts in the audio, when known.
    """

    audio: Path
    references: tuple[str, ...]
    transcript: str | None = None
    sentence_starts_s: tuple[float, ...] | None = None


def read_items(
    list_lines: Sequence[str],
    reference_lines: Sequence[str],
    transcripts: Sequence[str] | None,
    base: Path,
) -> list[SpeechItem]:
    """Items from LIST (a path per line, optionally a tab and sentence starts), REF and
    optional transcripts, all line-aligned. Relative paths are taken from ``base``."""
    if len(list_lines) != len(reference_lines):
        raise ValueError(
            f"the list names {len(list_lines)} recordings but the reference has "
            f"{len(reference_lines)} lines; they must be line-aligned"
        )
    if transcripts is not None and len(transcripts) != len(list_lines):
        raise ValueError(f"the transcripts have {len(transcripts)} lines, not {len(list_lines)}")
    items = []
    for i, (line, ref) in enumerate(zip(list_lines, reference_lines, strict=True)):
        path_text, _, starts = line.partition("\t")
        path = Path(path_text.strip())
        path = path if path.is_absolute() else base / path
        references = tuple(r.strip() for r in ref.split("\t") if r.strip())
        starts_s = tuple(float(x) for x in starts.split(",")) if starts.strip() else None
        if starts_s is not None and len(starts_s) != len(references):
            raise ValueError(
                f"line {i + 1}: {len(starts_s)} sentence starts for {len(references)} references"
            )
        transcript = transcripts[i] if transcripts is not None else None
        items.append(SpeechItem(path, references, transcript, starts_s))
    return items


def run_item(
    engine: SpeechEngine,
    item: SpeechItem,
    index: int,
    policy: Policy,
    config: TranslatorConfig,
    glossary: Glossary | None = None,
    speech: SpeechOutput | None = None,
    busy_s: dict[str, float] | None = None,
    realtime: bool = False,
    speakers: SpeakerRun | None = None,
) -> list[SpeechInstance]:
    """Interpret one recording; one instance, or one per reference sentence (long form).

    With ``speech`` (a fresh speech sink), the interpretation is also spoken (see
    :mod:`simulinterp.eval.speech_output`); ``busy_s`` receives the seconds recognition and
    translation spent computing. ``realtime`` plays the file at the speaker's pace through the
    live (duplex, wall-clock) pipeline instead of the computation-aware simulation. With
    ``speakers``, the session tracks speakers (its turns are kept in ``speakers.turns``) and the
    speech sink gets a voice per speaker.
    """
    tracker = speakers.tracker if speakers is not None else None
    session = engine.session(policy, config, glossary=glossary, realtime=realtime, speakers=tracker)
    if speakers is not None and speech is not None and session.tracker is not None:
        speakers.attach(speech, session)
    record = Collector()
    result = run(
        FileSource(str(item.audio), realtime=realtime),
        session,
        [record] if speech is None else [record, speech],
        audio_name=str(item.audio),
    )
    if result.failure is not None:
        raise result.failure
    if result.interrupted:
        raise KeyboardInterrupt
    if busy_s is not None:
        busy_s.update(session.busy_s)
    if speakers is not None and session.tracker is not None:
        speakers.turns[str(item.audio)] = session.tracker.turns()
    transcript = join_units([w.text for w in record.words], config.source_lang)
    whole = speech_instance(
        index,
        str(item.audio),
        record.commits,
        transcript,
        join_units(list(item.references), config.target_lang),
        session.recognizer.audio_s * 1000,
        config.target_lang,
        source_transcript=item.transcript,
    )
    if len(item.references) == 1:
        return [whole]
    starts = [s * 1000 for s in item.sentence_starts_s] if item.sentence_starts_s else None
    return resegment_instance(whole, list(item.references), starts, config.target_lang)


def run_items(
    engine: SpeechEngine,
    items: Sequence[SpeechItem],
    policy: Policy,
    config: TranslatorConfig,
    log_path: Path | None = None,
    advance: Callable[[int], None] | None = None,
    glossaries: Sequence[Glossary] | None = None,
    speech: Callable[[int, SpeechItem], SpeechOutput] | None = None,
    spoken: list[SpokenRecording] | None = None,
    speakers: SpeakerRun | None = None,
) -> Iterator[SpeechInstance]:
    """Interpret every item (with its glossary), appending each instance to ``log_path``.

    With ``speech`` (a factory of one speech sink per recording), each recording's speech
    output is appended to ``spoken``.
    """
    log = log_path.open("w", encoding="utf-8") if log_path else None
    try:
        for index, item in enumerate(items):
            glossary = glossaries[index] if glossaries is not None else None
            sink = speech(index, item) if speech is not None else None
            instances = run_item(
                engine, item, index, policy, config, glossary, sink, speakers=speakers
            )
            if sink is not None and spoken is not None:
                spoken.append(
                    SpokenRecording(
                        index,
                        tuple(sink.spoken),
                        sink.source_s * 1000.0,
                        join_units(list(item.references), config.target_lang),
                        join_units([i.prediction for i in instances], config.target_lang),
                        str(sink.wav_path or ""),
                    )
                )
            for instance in instances:
                if log:
                    log.write(json.dumps(instance.to_json(), ensure_ascii=False) + "\n")
                    log.flush()
                yield instance
            if advance:
                advance(1)
    finally:
        if log:
            log.close()


def offline_translations(
    engine: SpeechEngine, items: Sequence[SpeechItem], config: TranslatorConfig
) -> list[str]:
    """The reference cascade: each whole recording transcribed (beam search, 30 s windows),
    then translated sentence by sentence with the whole sentence at hand."""
    translator = SimultaneousTranslator(engine.llm, make_policy("offline"), config)
    outputs = []
    for item in items:
        started = time.perf_counter()
        text = engine.whisper.transcribe(
            load_file(str(item.audio), max_s=4 * 3600), config.source_lang
        )
        translator.reset()
        units = split_units(normalize(text, config.source_lang), config.source_lang)
        for i, unit in enumerate(units):
            translator.feed(SourceUnit(unit, i, sentence_end=is_sentence_end(unit)))
        translator.finish()
        outputs.append(translator.text.strip())
        logger.debug("offline cascade on %s took %.1f s", item.audio, time.perf_counter() - started)
    return outputs
