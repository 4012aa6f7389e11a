"""The simultaneous translator: feed source units, get committed target text.

At each new source unit the policy may ask for the model's candidate: the LLM continues
``prompt(source read so far) + committed target`` for a bounded number of tokens. The policy
then commits some leading units of it, or reads on. At a sentence end, at the end of the stream,
or when a sentence grows past what the context can hold, the segment is flushed: the model
finishes the translation and all of it is committed. Committed text is never retracted.
"""

from __future__ import annotations

import logging
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from simulinterp.events import SourceUnit, TargetCommit
from simulinterp.lang import (
    check_pair,
    chinese_spacing,
    has_cjk,
    is_clause_end,
    is_sentence_end,
    join_units,
    unit_spans,
)
from simulinterp.leaks import allowed_latin
from simulinterp.llm.base import Continuation, LLMBackend
from simulinterp.policy.base import (
    CandidateUnit,
    Policy,
    PolicyView,
    Write,
    policy_stop_strings,
)
from simulinterp.translate.glossary import (
    GLOSSARY_METHODS,
    HINT_LABEL,
    Glossary,
    contains_term,
    prompt_source,
)
from simulinterp.translate.guard import (
    allowed_new_units,
    leak_free_units,
    leaking_units,
    max_target_units,
)
from simulinterp.translate.prompts import LAYOUTS, PROMPT_STYLES, STOP_STRINGS, build_prompt
from simulinterp.translate.term_repair import repaired

logger = logging.getLogger(__name__)

_TOKENS_PER_UNIT = {"en": 2, "zh": 1}
_FLUSH_TOKENS_PER_UNIT = {"en": 3, "zh": 2}
_SOURCE_TOKENS_PER_UNIT = 2  # generous: an English word or a Chinese character
_MAX_STEP_TOKENS = 64  # the longest candidate of a policy that sets no bound (a clause)


@dataclass(frozen=True)
class TranslatorConfig:
    """Settings of one translation direction.

    Attributes:
        source_lang: ``zh`` or ``en``.
        target_lang: the other one.
        max_segment_units: a sentence longer than this (in source units) is flushed and the
            rest translated as a new segment with the previous part as context.
        context_sentences: earlier (source, translation) pairs of the stream carried into the
            prompt: at least this many (once the stream has them) and at most twice as many.
            The context grows by appending the finished sentence, which keeps the key/value
            cache of everything before it; once it holds twice this many pairs it is cut back
            to the last ``context_sentences``, so the cache is rebuilt only every few sentences.
        max_step_tokens: token limit of one candidate when the policy sets none.
        max_duty: the largest share of time spent on candidate decisions (computation-aware
            clock): after a decision that took ``c`` seconds, the policy is next consulted
            ``c * (1 / max_duty - 1)`` seconds later, and units arriving meanwhile are read
            without a decision. 1.0 consults it at every unit. Sentence ends always flush.
        ban_cjk_in_english: forbid Chinese tokens when the target is English.
        ban_latin_in_chinese: forbid Latin tokens when the target is Chinese, except those
            that spell the names, acronyms and numbers of the current source sentence and the
            targets of its glossary terms (see :mod:`simulinterp.leaks`).
        prompt_style: ``few-shot`` (untrained models) or ``plain`` (what adapters trained by
            ``simulinterp train sft`` expect; their ``simulinterp.json`` says which).
        layout: how the current sentence sits in the prompt (see
            :data:`simulinterp.translate.prompts.LAYOUTS`): ``sentence`` re-reads the committed
            target whenever the source grows; ``exchanges`` closes a user/assistant exchange
            each time a candidate is committed to its end, so a step re-reads only the open
            stretch of source and what is committed of it.
        glossary_method: how glossary terms found in the source reach the model (one of
            :data:`~simulinterp.translate.glossary.GLOSSARY_METHODS`).
        repair_terms: put right a near miss of an English glossary target (another article,
            a title for a name, one word off: :mod:`~simulinterp.translate.term_repair`).
    """

    source_lang: str = "zh"
    target_lang: str = "en"
    max_segment_units: int = 120
    context_sentences: int = 1
    max_step_tokens: int = 12
    max_duty: float = 1.0
    ban_cjk_in_english: bool = True
    ban_latin_in_chinese: bool = True
    prompt_style: str = "few-shot"
    layout: str = "sentence"
    glossary_method: str = "replace"
    repair_terms: bool = True

    def __post_init__(self) -> None:
        src, tgt = check_pair(self.source_lang, self.target_lang)
        object.__setattr__(self, "source_lang", src)
        object.__setattr__(self, "target_lang", tgt)
        if self.max_segment_units < 4:
            raise ValueError("max_segment_units must be at least 4")
        if self.context_sentences < 0 or self.max_step_tokens < 1:
            raise ValueError("context_sentences >= 0 and max_step_tokens >= 1 are required")
        if not 0 < self.max_duty <= 1:
            raise ValueError(f"max_duty must be in (0, 1], got {self.max_duty}")
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of: {', '.join(PROMPT_STYLES)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of: {', '.join(LAYOUTS)}")
        if self.glossary_method not in GLOSSARY_METHODS:
            raise ValueError(f"glossary_method must be one of: {', '.join(GLOSSARY_METHODS)}")


@dataclass
class _Segment:
    """Per-sentence state (reset at every flush).

    Attributes:
        exchanges: the ``exchanges`` layout's closed (source stretch, translation) pairs.
        open_start: where the open stretch of source starts (``exchanges`` layout).
        open_text: what is committed of the open stretch (``exchanges`` layout).
    """

    source: list[str] = field(default_factory=list)
    committed_units: list[str] = field(default_factory=list)
    committed_text: str = ""
    hypotheses: list[tuple[str, ...]] = field(default_factory=list)
    units_since_write: int = 0
    exchanges: list[tuple[str, str]] = field(default_factory=list)
    open_start: int = 0
    open_text: str = ""


class SimultaneousTranslator:
    """Turns a stream of source units into committed target text.

    Args:
        llm: any :class:`LLMBackend`.
        policy: the READ/WRITE policy.
        config: the direction and limits.
        clock: wall clock in seconds (injectable for tests).
        glossary: terms to translate as the glossary says. The attribute may be replaced
            between streams (the evaluator gives each line its own terms).
    """

    def __init__(
        self,
        llm: LLMBackend,
        policy: Policy,
        config: TranslatorConfig,
        clock: Callable[[], float] = time.perf_counter,
        glossary: Glossary | None = None,
    ):
        self.llm, self.policy, self.config, self._clock = llm, policy, config, clock
        self.glossary = glossary
        self._segment_limit = self._fit_segment_limit()
        self.reset()

    def reset(self, *, keep_context: bool = False) -> None:
        """Forget the stream: a new one starts at time zero.

        Args:
            keep_context: keep the earlier sentence pairs as context (the next stream continues
                the same talk, e.g. the next line of one document).
        """
        self._segment = _Segment()
        self._segment_index = 0
        if not keep_context or not hasattr(self, "_context"):
            self._context: list[list[tuple[str, str]]] = []  # per earlier sentence
        self._consumed = 0
        self._term_counts: Counter[str] = Counter()  # glossary terms in finished segments
        self._ca_s = 0.0
        self._next_decision_s = 0.0
        self._started = self._clock()
        self.commits: list[TargetCommit] = []
        self.segment_starts: list[int] = [0]
        """Source units read before each segment began (index: the segment)."""

    @property
    def ca_s(self) -> float:
        """The computation-aware clock: when the last step finished, seconds."""
        return self._ca_s

    @property
    def text(self) -> str:
        """Everything committed so far in this stream."""
        return "".join(c.text for c in self.commits)

    def feed(self, unit: SourceUnit, *, decide: bool = True) -> list[TargetCommit]:
        """Read one source unit; return what got committed because of it.

        Args:
            unit: the source unit.
            decide: ask the policy now. False reads the unit without a decision, for units that
                arrive together (a recognizer commits several words at once): deciding once,
                at the last of them, costs one model call instead of one per unit. A sentence
                end is flushed either way.
        """
        started = self._clock()
        self._ca_s = max(self._ca_s, unit.arrival_s)
        self._consumed += 1
        seg = self._segment
        seg.source.append(unit.text)
        seg.units_since_write += 1
        if unit.sentence_end or len(seg.source) >= self._segment_limit:
            commits = self._flush(started)
        elif decide:
            commits = self._step(started)
        else:
            commits = []
        self._ca_s += self._clock() - started  # a READ step's computation counts too
        return commits

    def feed_batch(self, units: Sequence[SourceUnit]) -> list[TargetCommit]:
        """Read units that became available together (a recognizer's commit, or units that
        arrived while the translator was busy): the policy decides once, at the last of them,
        and at every clause end among them."""
        commits: list[TargetCommit] = []
        for i, unit in enumerate(units):
            decide = i == len(units) - 1 or is_clause_end(unit.text)
            commits += self.feed(unit, decide=decide)
        return commits

    def feed_scheduled(self, units: Sequence[SourceUnit]) -> list[TargetCommit]:
        """Read units with known arrival times as a live translator would: a unit that has
        already arrived when the translator gets to it is read in one batch with the units
        before it (one decision at the newest, on the computation-aware clock)."""
        commits: list[TargetCommit] = []
        for i, unit in enumerate(units):
            later = units[i + 1].arrival_s if i + 1 < len(units) else math.inf
            free_at = max(self._ca_s, unit.arrival_s)
            decide = later > free_at or is_clause_end(unit.text)
            commits += self.feed(unit, decide=decide)
        return commits

    def end_sentence(self) -> list[TargetCommit]:
        """The source sentence has ended (e.g. the speaker paused): translate it to the end."""
        if not self._segment.source:
            return []
        started = self._clock()
        commits = self._flush(started)
        self._ca_s += self._clock() - started
        return commits

    def finish(self) -> list[TargetCommit]:
        """The source has ended: translate what remains and commit it."""
        return self.end_sentence()

    # -- one READ/WRITE decision -------------------------------------------------------

    def _step(self, started: float) -> list[TargetCommit]:
        seg = self._segment
        view = PolicyView(
            source=tuple(seg.source),
            committed=tuple(seg.committed_units),
            hypotheses=tuple(seg.hypotheses),
            units_since_write=seg.units_since_write,
        )
        if not self.policy.wants_candidate(view) or self._ca_s < self._next_decision_s:
            return []
        max_units = self.policy.max_units(view)
        asked = self._clock()
        units, finished = self._candidate(max_units)
        cost = self._clock() - asked
        duty = self.config.max_duty
        self._next_decision_s = self._ca_s + (self._clock() - started) + cost * (1 / duty - 1)
        view = replace(view, candidate=units, candidate_finished=finished)
        seg.hypotheses.append(tuple(seg.committed_units) + tuple(u.text.strip() for u in units))
        action = self.policy.decide(view)
        if not isinstance(action, Write):
            return []
        whole = finished and action.units >= len(units)
        return self._commit(units[: action.units], started, final=False, whole=whole)

    def _candidate(self, max_units: int | None) -> tuple[tuple[CandidateUnit, ...], bool]:
        seg, cfg = self._segment, self.config
        per_unit = _TOKENS_PER_UNIT[cfg.target_lang]
        if max_units is None:
            # room for what the source read since the last commit may need (a whole clause)
            owed = max_target_units(seg.units_since_write, cfg.source_lang, cfg.target_lang)
            max_tokens = min(max(cfg.max_step_tokens, owed * per_unit), _MAX_STEP_TOKENS)
        else:
            max_tokens = min(cfg.max_step_tokens, max_units * per_unit + 1)
        cont = self._continue(max_tokens)
        units = _units_of(cont, cfg.target_lang)
        if not cont.finished and units and _may_continue(units[-1].text, cfg.target_lang):
            units = units[:-1]  # the last unit may be cut mid-word
        elif units and cont.finished:
            units = _open_ended(units)
        keep = allowed_new_units(
            seg.committed_units,
            [u.text for u in units],
            len(seg.source),
            cfg.source_lang,
            cfg.target_lang,
        )
        keep = leak_free_units([u.text for u in units[:keep]], *self._leak_context())
        return tuple(units[:keep]), cont.finished and keep == len(units)

    # -- flushing a segment ------------------------------------------------------------

    def _flush(self, started: float) -> list[TargetCommit]:
        seg, cfg = self._segment, self.config
        room = max_target_units(len(seg.source), cfg.source_lang, cfg.target_lang)
        room -= len(seg.committed_units)
        units: tuple[CandidateUnit, ...] = ()
        untranslated = cfg.layout != "exchanges" or seg.open_start < len(seg.source)
        if room > 0 and untranslated:
            cont = self._continue(room * _FLUSH_TOKENS_PER_UNIT[cfg.target_lang], flush=True)
            found = _units_of(cont, cfg.target_lang)
            keep = allowed_new_units(
                seg.committed_units,
                [u.text for u in found],
                len(seg.source),
                cfg.source_lang,
                cfg.target_lang,
            )
            # the last chance to commit this sentence: drop leaked words, keep the rest
            leaks = leaking_units([u.text for u in found[:keep]], *self._leak_context())
            units = tuple(u for u, leak in zip(found[:keep], leaks, strict=True) if not leak)
        commits = self._commit(units, started, final=True, whole=True)
        if cfg.layout == "exchanges":
            sentence = seg.exchanges
        else:  # as the model saw it (the occurrences numbered before this sentence's own)
            sentence = [(self._prompt_source(), seg.committed_text)]
        if self.glossary:
            matches = self.glossary.find(join_units(seg.source, cfg.source_lang))
            self._term_counts.update(m.term.source for m in matches)
        pairs = [*self._context, sentence]
        if len(pairs) > 2 * cfg.context_sentences:
            pairs = pairs[-cfg.context_sentences :] if cfg.context_sentences else []
        self._context = pairs
        self._segment = _Segment()
        self._segment_index += 1
        self.segment_starts.append(self._consumed)
        return commits

    # -- shared helpers ----------------------------------------------------------------

    def _continue(self, max_tokens: int, *, flush: bool = False) -> Continuation:
        """The model's continuation of the committed text. A policy's stop strings (a wait
        marker) end it; at a flush, where no more source will come, they are dropped from the
        text instead."""
        seg, cfg = self._segment, self.config
        context = [pair for sentence in self._context for pair in sentence]
        if cfg.layout == "exchanges":
            context += seg.exchanges
            start, prefix = seg.open_start, seg.open_text
        else:
            start, prefix = 0, seg.committed_text
        prompt = build_prompt(
            cfg.source_lang,
            cfg.target_lang,
            self._prompt_source(start),
            context,
            cfg.prompt_style,
            cfg.layout,
        )
        options: dict = {}
        markers = policy_stop_strings(self.policy)
        stop = STOP_STRINGS if flush else (*STOP_STRINGS, *markers)
        if self.glossary and cfg.glossary_method == "hint":
            stop = (*stop, HINT_LABEL)
        if cfg.ban_latin_in_chinese and cfg.target_lang == "zh":
            source, _, targets = self._leak_context()
            options["allow_latin"] = allowed_latin(source, targets)
        cont = self.llm.continue_text(
            prompt,
            prefix,
            max_tokens=max(1, max_tokens),
            stop=stop,
            ban_cjk=cfg.ban_cjk_in_english and cfg.target_lang == "en",
            **options,
        )
        if flush and markers:
            cont = _without(cont, markers)
        if self.glossary and cfg.repair_terms and cfg.target_lang == "en":
            targets = self._leak_context()[2]
            done = seg.committed_text
            cont = repaired(cont, [t for t in targets if not contains_term(done, t, "en")])
        return cont

    def _prompt_source(self, start: int = 0) -> str:
        """The segment's source from unit ``start`` on, as the prompt shows it, with its
        glossary terms marked (numbered from the stream's start: :attr:`Term.later`)."""
        cfg, seg = self.config, self._segment
        text = join_units(seg.source[start:], cfg.source_lang)
        if not self.glossary:
            return text
        earlier = self._term_counts
        if start:
            before = self.glossary.find(join_units(seg.source[:start], cfg.source_lang))
            earlier = earlier + Counter(m.term.source for m in before)
        matches = self.glossary.find(text, earlier)
        return prompt_source(text, matches, cfg.glossary_method, cfg.source_lang)

    def _leak_context(self) -> tuple[str, str, tuple[str, ...]]:
        """(source so far, target language, targets of the glossary terms found in it)."""
        cfg = self.config
        text = join_units(self._segment.source, cfg.source_lang)
        found = self.glossary.find(text, self._term_counts) if self.glossary else []
        return text, cfg.target_lang, tuple(m.target for m in found)

    def _commit(
        self, units: tuple[CandidateUnit, ...], started: float, *, final: bool, whole: bool
    ) -> list[TargetCommit]:
        """Commit ``units``; ``whole``: they are the candidate to its end (the model had
        finished), so the ``exchanges`` layout closes the open exchange."""
        seg, cfg = self._segment, self.config
        now = self._clock()
        exchanges = cfg.layout == "exchanges"
        if not final:
            units = _clause_not_sentence(units, seg.source, cfg.target_lang)
        units = _leading_stop(units, seg.committed_text, cfg.target_lang)
        text = "".join(u.text for u in units)
        if cfg.target_lang == "zh":
            text = chinese_spacing(text, seg.committed_text)
        if not (seg.open_text if exchanges else seg.committed_text):
            text = text.lstrip()  # an answer starts without a space
        if not text and not final:
            return []
        english = cfg.target_lang == "en"
        # a new exchange's answer starts without a space: put one between words
        joint = ""
        if exchanges and english and seg.committed_text and not seg.open_text and text:
            joint = "" if unicodedata.category(text[0]).startswith("P") else " "
        seg.committed_text += joint + text
        seg.open_text += text
        seg.committed_units.extend(u.text.strip() for u in units)
        seg.units_since_write = 0
        if exchanges and whole:
            self._close_exchange()
        if not text and not (final and seg.committed_text):
            return []  # an empty final commit only closes a segment that has text
        text = joint + text
        if seg.committed_text == text and self.text and english:
            text = " " + text  # a new sentence after an earlier one
        commit = TargetCommit(
            text=text,
            source_consumed=self._consumed,
            elapsed_s=self._ca_s + (now - started),
            wall_s=now - self._started,
            segment=self._segment_index,
            final=final,
        )
        self.commits.append(commit)
        return [commit]

    def _close_exchange(self) -> None:
        """The open stretch of source is translated to its end: it becomes an exchange."""
        seg = self._segment
        stretch = self._prompt_source(seg.open_start)
        if seg.open_text:
            seg.exchanges.append((stretch, seg.open_text))
        elif seg.exchanges and stretch:  # nothing came of it: it joins the exchange before
            source, target = seg.exchanges[-1]
            joined = join_units([source, stretch], self.config.source_lang)
            seg.exchanges[-1] = (joined, target)
        seg.open_start, seg.open_text = len(seg.source), ""

    def _fit_segment_limit(self) -> int:
        """Cap the segment length so prompt, context and translation fit the context."""
        cfg = self.config
        base = build_prompt(
            cfg.source_lang, cfg.target_lang, "", style=cfg.prompt_style, layout=cfg.layout
        )
        budget = self.llm.context_tokens - self.llm.count_tokens(base) - 64
        ratio = max_target_units(100, cfg.source_lang, cfg.target_lang) / 100
        target_per_unit = ratio * _FLUSH_TOKENS_PER_UNIT[cfg.target_lang]
        per_unit = (_SOURCE_TOKENS_PER_UNIT + target_per_unit) * (1 + 2 * cfg.context_sentences)
        fitted = int(budget // per_unit)
        if fitted < 4:
            raise ValueError(
                f"the model's context ({self.llm.context_tokens} tokens) cannot hold the prompt"
            )
        return min(cfg.max_segment_units, fitted)


def _clause_not_sentence(
    units: tuple[CandidateUnit, ...], source: Sequence[str], target_lang: str
) -> tuple[CandidateUnit, ...]:
    """A full stop in a commit made at a clause end of the source becomes a comma: the source
    sentence goes on, so the model has split it ("And so my fellow Americans," -> "所以我的美国
    同胞。"; 不要问… would then read as a new sentence). English: only a "." after a lowercase
    letter (not "U.S." or "3.5")."""
    if not source or is_sentence_end(source[-1]) or not is_clause_end(source[-1]):
        return units
    out = []
    for unit in units:
        text = unit.text
        if target_lang == "zh" and text.endswith("。"):
            unit = replace(unit, text=text[:-1] + "，")
        elif target_lang == "en" and text.endswith(".") and text[-2:-1].islower():
            unit = replace(unit, text=text[:-1] + ",")
        out.append(unit)
    return tuple(out)


def _leading_stop(
    units: tuple[CandidateUnit, ...], committed: str, target_lang: str
) -> tuple[CandidateUnit, ...]:
    """A commit that opens with a full stop and goes on (the model closed the clause committed
    before it, then wrote the rest of the sentence: "。不要问") opens with a comma instead."""
    if len(units) < 2 or not committed:
        return units
    stop, comma = ("。", "，") if target_lang == "zh" else (".", ",")
    after_word = target_lang == "zh" or committed[-1:].islower()
    if units[0].text != stop or not after_word:
        return units
    return (replace(units[0], text=comma), *units[1:])


def _may_continue(unit: str, lang: str) -> bool:
    """Whether the next token could still extend ``unit``: an English word or a Latin run may
    go on, a Chinese character is whole (unless its bytes were cut)."""
    return lang == "en" or "\ufffd" in unit or not has_cjk(unit)


def _open_ended(units: list[CandidateUnit]) -> list[CandidateUnit]:
    """Drop the full stop a model puts after a translated prefix: the sentence goes on.

    Called on finished candidates before the source reaches its sentence end, so "We are
    thinking." is committed as "We are thinking" and the next words can continue it.
    """
    last = units[-1]
    stripped = last.text.rstrip("。.!?！？")
    if stripped == last.text:
        return units
    if not stripped.strip():
        return units[:-1]
    return [*units[:-1], CandidateUnit(stripped, last.logprob)]


def _without(cont: Continuation, markers: Sequence[str]) -> Continuation:
    """``cont`` with every occurrence of ``markers`` cut out of its text and tokens."""
    cut = [
        range(m.start(), m.end())
        for marker in markers
        for m in re.finditer(re.escape(marker), cont.text)
    ]
    if not cut:
        return cont
    tokens, offset = [], 0
    for token in cont.tokens:
        kept = "".join(
            ch for i, ch in enumerate(token.text, offset) if not any(i in span for span in cut)
        )
        offset += len(token.text)
        if kept:
            tokens.append(replace(token, text=kept))
    return replace(cont, text="".join(t.text for t in tokens), tokens=tuple(tokens))


def _units_of(cont: Continuation, lang: str) -> list[CandidateUnit]:
    """Split a continuation into target units, each with its lowest token log-probability."""
    text = cont.text
    bounds, offset = [], 0
    for token in cont.tokens:
        bounds.append((offset, offset + len(token.text), token.logprob))
        offset += len(token.text)
    units = []
    for span in unit_spans(text, lang):
        logprobs = [lp for start, end, lp in bounds if start < span.end and end > span.start]
        units.append(CandidateUnit(text[span.start : span.end], min(logprobs, default=0.0)))
    return units
