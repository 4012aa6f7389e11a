"""Streaming recognition: VAD-gated short windows, LocalAgreement commits, endpoint finals.

Audio goes in with :meth:`StreamingRecognizer.insert_audio`. The VAD marks utterances. While
one is open, :meth:`process` re-decodes the utterance's audio (only the audio present, plus a
little silence) every ``step_s``, with the words committed so far forced as the decoder's
prefix, and commits what two consecutive hypotheses agree on. When the VAD hears the speaker
pause, the utterance is decoded once more and everything left is committed. A pause is not a
sentence end by itself: the utterance stays open, and when the speaker goes on, the next
window holds the words before the pause (as the forced prefix) and the pause, so whisper's own
punctuation after them ("," or ".") decides, and casing continues. Only a long silence
(``sentence_pause_s``) or sentence punctuation ends the sentence. Even then the words before
stay in the window as context for what follows (recognition is markedly better with them); the
audio is dropped only after ``release_s`` of silence, and long utterances are trimmed after
early committed words, so buffers stay short.

The step adapts to the machine: the next decode waits until the last decode's cost is at most
``max_duty`` of the audio since, which keeps the recognizer's real-time factor bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from simulinterp.asr.agreement import (
    LocalAgreement,
    comparable,
    continuation,
    cut_restart,
    strip_repeat,
)
from simulinterp.asr.base import SpeechModel, VadModel
from simulinterp.asr.text import units_of, whisper_spelling
from simulinterp.asr.vad import SpeechEnd, SpeechStart, VadConfig, VadStream
from simulinterp.asr.whisper import ZH_PROMPT
from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.events import SourceWord, Transcript
from simulinterp.lang import (
    check_language,
    is_clause_end,
    is_sentence_end,
    join_units,
    repetition_cut,
)

logger = logging.getLogger(__name__)

_TOKENS_PER_S = {"en": 6, "zh": 9}
_REPEAT_UNITS = {"en": 3, "zh": 4}  # a shorter copy of earlier text may be genuine
_RESTART_UNITS = {"en": 6, "zh": 8}  # a repeated opening this long is a loop even when it fits
_MAX_UNITS_PER_S = {"en": 4.0, "zh": 8.0}  # faster speech than this is a decoder's invention
_COMMA = {"en": ",", "zh": "，"}
_LOW_LOGPROB = -1.0  # whisper's own threshold for a failed decode
_STUCK_S = 1.5  # this much audio after the last commit and nothing new: the prefix is wrong
_KEEP_S = 1.0  # audio kept before the window's end when trimming (context for the decoder)
_STUCK_FINAL_S = 0.6  # the same at an endpoint, where nothing else will decode it


@dataclass(frozen=True)
class RecognizerConfig:
    """Settings of a streaming recognizer.

    Attributes:
        lang: the spoken language (``en`` or ``zh``).
        step_s: least new audio between two decodes of an open utterance, seconds.
        max_duty: the largest share of time spent decoding (adaptive step); 1.0 turns it off.
        agreement: how many consecutive hypotheses must agree before a word is committed.
        pad_s: silence appended to each window (keeps the decoder from looping at a cut word).
        preroll_s: audio kept before the VAD's speech start, seconds.
        context_chars: earlier committed text given to the decoder as its prompt, characters.
        trim_s: an utterance longer than this is cut after an early committed word (a clause
            end if there is one; found by aligning the committed words to the audio), so
            windows stay short in long speech.
        sentence_pause_s: silence after which the sentence ends even without punctuation,
            seconds from the end of speech. Shorter pauses leave it open.
        release_s: silence after which the audio before it is dropped (no longer context).
        pause_comma: a pause inside a sentence that whisper marks with no punctuation becomes
            a comma, as an interpreter hears it: a clause end for the translator.
        endpoint_beam: beam size of the decode at each pause (where the words left are
            committed at once, with no later hypothesis to correct them); 1 is greedy.
        detect_language: warn when the speech sounds like another language than ``lang``.
        vad: speech start and endpoint settings.
    """

    lang: str = "en"
    step_s: float = 0.5
    max_duty: float = 0.2
    agreement: int = 2
    pad_s: float = 1.5
    preroll_s: float = 0.5
    context_chars: int = 120
    trim_s: float = 4.0
    sentence_pause_s: float = 1.2
    release_s: float = 6.0
    pause_comma: bool = True
    endpoint_beam: int = 5
    detect_language: bool = True
    vad: VadConfig = field(default_factory=VadConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lang", check_language(self.lang))
        if self.step_s <= 0 or not 0 < self.max_duty <= 1 or self.agreement < 1:
            raise ValueError("step_s > 0, 0 < max_duty <= 1 and agreement >= 1 are required")
        if self.pad_s < 0 or self.preroll_s < 0 or self.context_chars < 0:
            raise ValueError("pad_s, preroll_s and context_chars must not be negative")
        if self.sentence_pause_s <= 0 or self.endpoint_beam < 1:
            raise ValueError("sentence_pause_s > 0 and endpoint_beam >= 1 are required")
        if self.release_s < self.sentence_pause_s:
            raise ValueError("release_s must be at least sentence_pause_s")


@dataclass
class _Utterance:
    """The open utterance: where its audio starts and what of it is committed.

    Attributes:
        paused_s: where the speaker paused (the VAD's end of speech), while they are silent.
        sentence_closed: a long pause ended the sentence after the committed words; the
            punctuation whisper writes after them when speech resumes is then dropped.
        run_start_s: where the current stretch of speech began (after the last pause).
        run_index: how many committed units came before it (their times are the pauses').
    """

    start_s: float
    committed: list[str] = field(default_factory=list)
    last_commit_s: float = 0.0
    paused_s: float | None = None
    sentence_closed: bool = False
    run_start_s: float = 0.0
    run_index: int = 0


class StreamingRecognizer:
    """One speaker's stream through a shared recognizer model and VAD model.

    Args:
        engine: the loaded recognizer model (whisper-base by default).
        vad: the loaded VAD model (silero).
        config: language and timing.
        clock: seconds, to measure computation (injectable for tests).
    """

    def __init__(
        self,
        engine: SpeechModel,
        vad: VadModel,
        config: RecognizerConfig,
        clock: Callable[[], float] = time.perf_counter,
    ):
        languages = getattr(engine, "languages", (config.lang,))
        if config.lang not in languages:
            raise ValueError(
                f"the recognizer {engine.name!r} does not transcribe {config.lang!r} "
                f"(only {', '.join(languages)})"
            )
        self.engine, self.config, self._clock = engine, config, clock
        self._vad = VadStream(vad, config.vad)
        self.reset()

    def reset(self) -> None:
        """Forget the stream; the next audio starts at time zero."""
        self._vad.reset()
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start_s = 0.0
        self._events: list[SpeechStart | SpeechEnd] = []
        self._utterance: _Utterance | None = None
        self._agreement = LocalAgreement(self.config.agreement)
        self._context = ZH_PROMPT if self.config.lang == "zh" else ""
        self._previous: list[str] = []
        self._next_decode_s = 0.0
        self._checked_language = not self.config.detect_language
        self._boundary = False
        self.words: list[SourceWord] = []
        self.warnings: list[str] = []
        self.compute_s = 0.0

    @property
    def buffered_s(self) -> float:
        """Audio held in memory, seconds (bounded by the utterance length)."""
        return len(self._buffer) / SAMPLE_RATE

    @property
    def audio_s(self) -> float:
        """Source audio received so far, seconds."""
        return self._buffer_start_s + len(self._buffer) / SAMPLE_RATE

    def insert_audio(self, samples: np.ndarray) -> None:
        """Append float32 mono 16 kHz samples (cheap: only the VAD runs here)."""
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        started = self._clock()
        self._events.extend(self._vad.feed(samples))
        self.compute_s += self._clock() - started
        if self._utterance is None and not self._events:
            self._drop_before(self.audio_s - self.config.preroll_s)

    def process(self, at_s: float | None = None) -> Transcript:
        """Handle what the VAD found and decode if a step is due.

        Args:
            at_s: computation-aware time when this step starts (defaults to the audio received);
                committed words are stamped with it plus the computation spent.
        """
        started = self._clock()
        at = self.audio_s if at_s is None else at_s
        committed: list[SourceWord] = []
        while self._events:
            event = self._events.pop(0)
            if isinstance(event, SpeechStart):
                self._open(event.start_s)
            else:
                committed += self._endpoint(event.end_s, at, started)
        utt = self._utterance
        if utt is not None and utt.paused_s is not None:
            silence = self.audio_s - utt.paused_s
            if silence >= self.config.sentence_pause_s:
                self._end_sentence(utt)
            if silence >= self.config.release_s:
                self._release()
        elif utt is not None and self.audio_s >= self._next_decode_s:
            committed += self._partial(at, started)
        self.compute_s += self._clock() - started
        return self._transcript(committed)

    def _transcript(self, committed: list[SourceWord]) -> Transcript:
        boundary, self._boundary = self._boundary, False
        return Transcript(tuple(committed), self.tentative, self.audio_s, boundary=boundary)

    def finish(self, at_s: float | None = None) -> Transcript:
        """The audio has ended: close the open utterance and commit everything."""
        self._events.extend(self._vad.finish())
        result = self.process(at_s)
        if self._utterance is None:
            return result
        started = self._clock()
        at = self.audio_s if at_s is None else at_s
        words = []
        if self._utterance.paused_s is None:
            words = self._endpoint(self.audio_s, at, started)
        self._end_sentence(self._utterance)
        self._release()
        self.compute_s += self._clock() - started
        final = self._transcript(words)
        return Transcript(
            result.committed + final.committed,
            "",
            self.audio_s,
            boundary=result.boundary or final.boundary,
        )

    @property
    def tentative(self) -> str:
        """The open utterance's uncommitted words, for display."""
        return join_units(self._agreement.tentative(), self.config.lang)

    # -- utterances ----------------------------------------------------------------------

    def _open(self, start_s: float) -> None:
        utt = self._utterance
        if utt is not None:
            if utt.paused_s is not None:  # the speaker goes on after a short pause
                utt.paused_s = None
                utt.last_commit_s = max(utt.last_commit_s, start_s)
                utt.run_start_s, utt.run_index = start_s, len(utt.committed)
                self._agreement.reset()
                self._next_decode_s = max(start_s, self.audio_s) + self.config.step_s
            return
        start = max(start_s, self._buffer_start_s)
        self._drop_before(start)
        self._utterance = _Utterance(start_s=start, last_commit_s=start, run_start_s=start)
        self._agreement.reset()
        self._next_decode_s = start + self.config.step_s

    def _partial(self, at: float, started: float) -> list[SourceWord]:
        utt = self._utterance
        assert utt is not None
        end_s = self.audio_s
        tail, _, encoded = self._decode(utt, end_s, final=False)
        new = self._agreement.insert(tail)
        words = self._commit(utt, new, end_s, at + self._clock() - started)
        if encoded is not None and end_s - utt.start_s > self.config.trim_s:
            self._trim(utt, encoded, end_s)
        cost = self._clock() - started
        self._next_decode_s = end_s + max(self.config.step_s, cost / self.config.max_duty)
        return words

    def _trim(self, utt: _Utterance, encoded: object, end_s: float) -> None:
        """Start the utterance anew after an early committed word, so windows stay short.

        The cut goes after the last committed clause end that lies at least ``_KEEP_S`` before
        the window's end, or else after the last committed word that ends ``2 * _KEEP_S``
        before it. Word ends come from aligning the committed text to the window.
        """
        lang = self.config.lang
        if not utt.committed:
            return
        words = self.engine.word_times(
            encoded, lang, _prefix(utt.committed, lang), end_s - utt.start_s
        )
        ends = _unit_ends(utt.committed, words)
        if not ends:
            return
        window = end_s - utt.start_s
        clauses = [
            i
            for i, u in enumerate(utt.committed)
            if is_clause_end(u) and ends[i] <= window - _KEEP_S
        ]
        early = [i for i in range(len(ends)) if ends[i] <= window - 2 * _KEEP_S]
        cut = clauses[-1] if clauses else (early[-1] if early else None)
        if cut is None or ends[cut] < 1.0:
            return
        cut_s = utt.start_s + ends[cut]
        head = utt.committed[: cut + 1]
        logger.debug("trimming the utterance at %.2f s after %r", cut_s, head[-1])
        self._remember(head)
        utt.committed = utt.committed[len(head) :]
        utt.run_index = max(0, utt.run_index - len(head))
        utt.start_s = cut_s
        self._drop_before(cut_s)

    def _remember(self, units: list[str]) -> None:
        """Committed text becomes the decoder's context for what follows."""
        text = join_units(units, self.config.lang)
        if units:
            self._previous = list(units)
        if text:
            self._context = (self._context + " " + text).strip()[-self.config.context_chars :]

    def _endpoint(self, end_s: float, at: float, started: float) -> list[SourceWord]:
        """The speaker paused: decode once more and commit every word left.

        The full stop whisper puts at the end of a window that ends in silence is no evidence
        of a sentence end and is dropped; what follows the pause decides (see the module doc).
        """
        utt = self._utterance
        if utt is None or utt.paused_s is not None:
            return []
        tail, confident, _ = self._decode(utt, end_s, final=True)
        if not utt.committed and not confident:
            tail = []  # noise or a filler decoded as words
        if tail:
            last = _without_final_stop(tail[-1])
            tail = [*tail[:-1], last] if comparable(last) else tail[:-1]
        words = self._commit(utt, tail, end_s, at + self._clock() - started)
        utt.paused_s = end_s
        self._agreement.reset()
        return words

    def _after_silent_break(self, utt: _Utterance, first: str) -> bool:
        """The first words after a pause, where whisper wrote no punctuation on either side
        (a clause break the speaker marked with silence only)."""
        if utt.run_index != len(utt.committed) or not utt.run_index or not comparable(first):
            return False
        before = utt.committed[-1]
        return bool(comparable(before)) and not is_clause_end(before)

    def _end_sentence(self, utt: _Utterance) -> None:
        """A long silence (or the end of the audio) ends the sentence of the words sent."""
        if utt.sentence_closed or not utt.committed:
            return
        utt.sentence_closed = True
        if self.words and not self.words[-1].sentence_end:
            self._boundary = True

    def _release(self) -> None:
        """Silence long enough that what came before is no context: drop the audio."""
        utt = self._utterance
        if utt is None:
            return
        end_s = utt.paused_s if utt.paused_s is not None else self.audio_s
        self._remember(utt.committed)
        self._utterance = None
        self._agreement.reset()
        self._drop_before(end_s)

    def _decode(
        self, utt: _Utterance, end_s: float, *, final: bool
    ) -> tuple[list[str], bool, object | None]:
        """Units after the committed ones, whether the decode looks confident, the window."""
        lang = self.config.lang
        audio = self._slice(utt.start_s, end_s)
        if len(audio) < SAMPLE_RATE // 10:
            return [], False, None
        encoded = self.engine.encode(audio, pad_s=self.config.pad_s)
        if not self._checked_language and len(audio) >= 2 * SAMPLE_RATE:
            self._check_language(encoded)
        budget = int((end_s - utt.start_s) * _TOKENS_PER_S[lang]) - len(utt.committed)
        decoded = self.engine.decode(
            encoded,
            lang,
            prompt=self._context,
            prefix=_prefix(utt.committed, lang),
            max_new_tokens=max(budget, 0) + 8,
            beam_size=self.config.endpoint_beam if final else 1,
        )
        tail = units_of(decoded.text, lang)
        stuck = end_s - utt.last_commit_s > (_STUCK_FINAL_S if final else _STUCK_S)
        if not tail and utt.committed and stuck:
            # the forced prefix does not fit the audio (a filler heard as a word, say) and the
            # decoder stops at once: decode freely and keep what follows the committed words
            free = self.engine.decode(
                encoded,
                lang,
                prompt=self._context,
                max_new_tokens=int((end_s - utt.start_s) * _TOKENS_PER_S[lang]) + 8,
            )
            tail = continuation(utt.committed, units_of(free.text, lang))
            decoded = free
        if not final:
            if not decoded.finished:
                tail = tail[:-1]  # a cut-off last unit may be half a word
            elif tail:
                # the silence padding makes whisper close every window with a full stop:
                # at the window's edge it is no evidence of a sentence end
                tail[-1] = _without_final_stop(tail[-1])
        too_long = len(utt.committed) + len(tail) > (end_s - utt.start_s) * _MAX_UNITS_PER_S[lang]
        if too_long:  # more words than the audio can hold: the decoder copied its prompt
            tail = strip_repeat(tail, self._previous, _REPEAT_UNITS[lang])
        whole = [*utt.committed, *tail]
        restart = _RESTART_UNITS[lang] if not too_long else _REPEAT_UNITS[lang]
        keep = min(
            cut_restart(whole, restart, after_stop=_REPEAT_UNITS[lang]),
            repetition_cut(whole),
        )  # loops over the commits
        tail = whole[len(utt.committed) : max(len(utt.committed), keep)]
        return tail, decoded.avg_logprob >= _LOW_LOGPROB, encoded

    def _commit(
        self,
        utt: _Utterance,
        units: list[str],
        end_s: float,
        committed_s: float,
    ) -> list[SourceWord]:
        if utt.sentence_closed:
            # the sentence was ended by the pause: whisper's "." or "," after it is not a unit
            skip = 0
            while skip < len(units) and not comparable(units[skip]):
                skip += 1
            utt.committed.extend(units[:skip])
            units = units[skip:]
            if units:
                utt.sentence_closed = False
        elif units and self.config.pause_comma and self._after_silent_break(utt, units[0]):
            units = [_COMMA[self.config.lang], *units]
        if not units:
            return []
        floor = self.words[-1].end_s if self.words else 0.0
        times = [
            (max(a, floor), max(b, floor))
            for a, b in _unit_times(
                utt.committed[utt.run_index :], units, max(utt.run_start_s, utt.start_s), end_s
            )
        ]
        words = []
        for unit, (start, end) in zip(units, times, strict=True):
            words.append(
                SourceWord(
                    text=unit,
                    start_s=start,
                    end_s=end,
                    audio_s=self.audio_s,  # all audio received counts as read
                    committed_s=committed_s,
                    sentence_end=is_sentence_end(unit),
                )
            )
        utt.committed.extend(units)
        utt.last_commit_s = end_s
        self.words.extend(words)
        return words

    def _check_language(self, encoded: object) -> None:
        self._checked_language = True
        best, prob = self.engine.detect_language(encoded)[0]
        if best != self.config.lang and prob >= 0.5:
            message = (
                f"the speech sounds like {best!r} ({prob:.0%} sure), not {self.config.lang!r}: "
                f"check --from"
            )
            logger.warning(message)
            self.warnings.append(message)

    # -- audio buffer --------------------------------------------------------------------

    def _slice(self, start_s: float, end_s: float) -> np.ndarray:
        a = max(0, round((start_s - self._buffer_start_s) * SAMPLE_RATE))
        b = max(a, round((end_s - self._buffer_start_s) * SAMPLE_RATE))
        return self._buffer[a:b]

    def _drop_before(self, time_s: float) -> None:
        cut = round((time_s - self._buffer_start_s) * SAMPLE_RATE)
        if cut > 0:
            cut = min(cut, len(self._buffer))
            self._buffer = self._buffer[cut:]
            self._buffer_start_s += cut / SAMPLE_RATE


def _unit_ends(units: list[str], words: list[tuple[str, float, float]]) -> list[float]:
    """End time of each unit, matching units to aligned words by character counts."""
    if not words:
        return []
    word_ends, position = [], 0
    for text, _, end in words:
        position += len(text.replace(" ", ""))
        word_ends.append((position, end))
    ends, position, k = [], 0, 0
    for unit in units:
        position += len(unit.replace(" ", ""))
        while k < len(word_ends) - 1 and word_ends[k][0] < position:
            k += 1
        ends.append(word_ends[k][1])
    return ends


def _without_final_stop(unit: str) -> str:
    """``unit`` without a trailing full stop (kept when nothing else is left)."""
    stripped = unit.rstrip(".。")
    return stripped or unit


def _prefix(committed: list[str], lang: str) -> str:
    """The committed units as whisper writes them (English words after a space)."""
    text = join_units(committed, lang)
    return " " + text if text and lang == "en" else whisper_spelling(text)


def _unit_times(
    before: list[str], units: list[str], start_s: float, end_s: float
) -> list[tuple[float, float]]:
    """Approximate times of ``units``: the utterance's span shared out by characters.

    Whisper gives no word times without an extra alignment pass; for subtitles and display,
    spreading the utterance over its characters is close enough.
    """
    lengths = [len(u) + 1 for u in [*before, *units]]
    total = sum(lengths) or 1
    span = max(end_s - start_s, 0.0)
    position = sum(lengths[: len(before)])
    times = []
    for length in lengths[len(before) :]:
        start = start_s + span * position / total
        position += length
        times.append((start, start_s + span * position / total))
    return times
