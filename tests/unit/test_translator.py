"""The simultaneous translator with a word-for-word fake LLM: exact delays, flushing, guards,
chunking of long sources, the computation-aware clock and context carrying."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from fakes import EN_ZH, ZH_EN, DictionaryLLM
from simulinterp.eval.instances import run_instance, source_units
from simulinterp.events import SourceUnit
from simulinterp.llm.base import Continuation, Token
from simulinterp.policy import make_policy
from simulinterp.policy.base import Policy
from simulinterp.policy.rules import Clause, Confidence, Learned, LocalAgreement, Offline, WaitK
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from simulinterp.translate.guard import max_target_units
from simulinterp.translate.prompts import LAYOUTS

ZH_EN_CONFIG = TranslatorConfig("zh", "en")
EN_ZH_CONFIG = TranslatorConfig("en", "zh")

ALL_POLICIES: list[Policy] = [
    WaitK(k=1),
    WaitK(k=2),
    WaitK(k=3),
    WaitK(k=3, ratio=0.66),
    LocalAgreement(n=2),
    LocalAgreement(n=3),
    Confidence(threshold=-1.0),
    Clause(),
    Clause(max_wait=3),
    Clause(max_wait=3, agree=True),
    Learned(),
    Offline(),
]


def _ids(policies: Sequence[Policy]) -> list[str]:
    return [repr(p) for p in policies]


def _translate(
    policy: Policy,
    source: str,
    llm: DictionaryLLM | None = None,
    config: TranslatorConfig = ZH_EN_CONFIG,
    seconds_per_unit: float = 0.25,
) -> SimultaneousTranslator:
    translator = SimultaneousTranslator(llm or DictionaryLLM(), policy, config)
    run_instance(translator, 0, source, "", seconds_per_unit)
    return translator


class FickleLLM(DictionaryLLM):
    """Changes its mind: the first word is "You" while the translation has at most two words,
    "I" once more source arrives. Like a real model forced to continue a committed prefix, it
    keeps a committed "You" and continues with the rest of its current translation."""

    def translation(self, prompt: str) -> str:
        words = super().translation(prompt).split(" ")
        if len(words) <= 2:
            words[0] = "You"
        return " ".join(words)

    def continue_text(self, prompt: str, prefix: str = "", **kwargs) -> Continuation:
        full = self.translation(prompt)
        if prefix.startswith("You") and full.startswith("I "):
            self.script = "You" + full[1:]
        try:
            return super().continue_text(prompt, prefix, **kwargs)
        finally:
            self.script = None


class GuessingLLM(DictionaryLLM):
    """Guesses at the word the source has not settled: until a clause end, the last word of
    its translation is "maybe" (an untrained model completing a prefix)."""

    def translation(self, prompt: str) -> str:
        text = super().translation(prompt)
        if text.endswith((",", ".")):
            return text
        return " ".join([*text.split(" ")[:-1], "maybe"])


class RefusingLLM(DictionaryLLM):
    """Answers a segment of at most two source units with a refusal, translates longer ones."""

    def translation(self, prompt: str) -> str:
        text = super().translation(prompt)
        return "I'm sorry, I can't translate this." if len(text.split()) <= 2 else text


class ManualClock:
    """A clock that only moves when the fake model computes."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class SlowLLM(DictionaryLLM):
    """Every call takes ``cost_s`` seconds on ``clock``."""

    def __init__(self, clock: ManualClock, cost_s: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock, self.cost_s = clock, cost_s

    def continue_text(self, *args, **kwargs) -> Continuation:
        self.clock.now_s += self.cost_s
        return super().continue_text(*args, **kwargs)


# -- exact delays of wait-k -------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "commits", "delays"),
    [
        # 我们今天去公园。 = 8 units, read one by one. wait-k writes word j once j + k - 1
        # units are read; the flush at 。 adds "."; " park." ends in the flush commit, so
        # with k = 1 it counts at 8, not 7 (a unit belongs to the commit holding its end).
        (
            1,
            [("I", 1), (" we", 2), (" to", 3), (" day", 4), (" go", 5), (" the", 6)]
            + [(" park", 7), (".", 8)],
            [1, 2, 3, 4, 5, 6, 8],
        ),
        (
            2,
            [("I", 2), (" we", 3), (" to", 4), (" day", 5), (" go", 6), (" the", 7)]
            + [(" park.", 8)],
            [2, 3, 4, 5, 6, 7, 8],
        ),
        (
            3,
            [("I", 3), (" we", 4), (" to", 5), (" day", 6), (" go", 7), (" the park.", 8)],
            [3, 4, 5, 6, 7, 8, 8],
        ),
    ],
)
def test_wait_k_delays_zh_en(k: int, commits: list[tuple[str, int]], delays: list[int]) -> None:
    translator = SimultaneousTranslator(DictionaryLLM(), WaitK(k=k), ZH_EN_CONFIG)
    instance = run_instance(translator, 0, "我们今天去公园。", "we go to the park today.", 0.25)
    assert [(c.text, c.source_consumed) for c in translator.commits] == commits
    assert instance.prediction == "I we to day go the park."
    assert instance.delays == delays
    assert instance.source_length == 8
    assert instance.reference_length == 6
    assert instance.prediction_length == 7


@pytest.mark.parametrize(
    ("k", "delays"),
    [
        # I we go the park . = 6 source words -> 我们去公园。 = 6 characters.
        (1, [1, 2, 3, 4, 5, 6]),
        (2, [2, 3, 4, 5, 6, 6]),
        (3, [3, 4, 5, 6, 6, 6]),
    ],
)
def test_wait_k_delays_en_zh(k: int, delays: list[int]) -> None:
    llm = DictionaryLLM(lexicon=EN_ZH, target_lang="zh")
    translator = SimultaneousTranslator(llm, WaitK(k=k), EN_ZH_CONFIG)
    instance = run_instance(translator, 0, "I we go the park .", "我们去公园。", 0.4)
    assert instance.prediction == "我们去公园。"
    assert instance.delays == delays
    assert instance.source_length_s == pytest.approx(6 * 0.4)


class SpacedLLM(DictionaryLLM):
    """Translates into Chinese, with a space before every second character, as a model's token
    boundary can put one inside a word ("什 么")."""

    def __init__(self) -> None:
        super().__init__(lexicon=EN_ZH, target_lang="zh")

    def continue_text(self, prompt: str, prefix: str = "", **kwargs) -> Continuation:
        cont = super().continue_text(prompt, prefix, **kwargs)
        tokens = tuple(
            Token(" " + t.text, t.logprob) if i % 2 else t for i, t in enumerate(cont.tokens)
        )
        return replace(cont, text="".join(t.text for t in tokens), tokens=tokens)


@pytest.mark.parametrize("policy", [WaitK(k=1), WaitK(k=3), Clause()], ids=repr)
def test_chinese_output_has_no_spaces_between_characters(policy: Policy) -> None:
    translator = _translate(policy, "I we go the park , he very good .", SpacedLLM(), EN_ZH_CONFIG)
    assert translator.text == "我们去公园，他很好。"
    assert translator.text == "".join(c.text for c in translator.commits)


def test_wait_k_ratio_paces_the_target() -> None:
    # ratio 0.5, k = 1: after t units floor(t / 2) words may be written.
    translator = _translate(WaitK(k=1, ratio=0.5), "我们今天去公园。")
    assert [(c.text, c.source_consumed) for c in translator.commits] == [
        ("I", 2),
        (" we", 4),
        (" to", 6),
        (" day go the park.", 8),
    ]


# -- committed text is never retracted --------------------------------------------------

STREAM = "我们今天去公园，他很好。我们去公园"


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=_ids(ALL_POLICIES))
@pytest.mark.parametrize("fake", [DictionaryLLM, FickleLLM])
def test_committed_text_only_grows(policy: Policy, fake: type[DictionaryLLM]) -> None:
    translator = SimultaneousTranslator(fake(), policy, ZH_EN_CONFIG)
    previous = ""
    for unit in source_units(STREAM, "zh", 0.25):
        new = translator.feed(unit)
        assert translator.text == previous + "".join(c.text for c in new)
        previous = translator.text
    translator.finish()
    assert translator.text.startswith(previous)
    assert translator.text == "".join(c.text for c in translator.commits)
    if fake is DictionaryLLM:
        # Every policy ends with the same word-for-word translation.
        assert translator.text == "I we to day go the park, he very good. I we go the park"


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        # wait-k 1 committed "You" on the first unit; the rest continues it.
        (WaitK(k=1), "You we to day go the park."),
        # LocalAgreement: "You" was agreed on by the first two hypotheses.
        (LocalAgreement(n=2), "You we to day go the park."),
        # wait-k 3 waits until the model has settled on "I".
        (WaitK(k=3), "I we to day go the park."),
        (Clause(), "I we to day go the park."),
    ],
    ids=["wait-1", "la-2", "wait-3", "clause"],
)
def test_a_fickle_model_never_rewrites_committed_words(policy: Policy, text: str) -> None:
    assert _translate(policy, "我们今天去公园。", FickleLLM()).text == text


def test_the_word_cap_with_agreement_does_not_commit_a_guess() -> None:
    source = "我们今天去公园。"
    guessed = _translate(Clause(max_wait=3, holdback=0), source, GuessingLLM()).text
    agreed = _translate(Clause(max_wait=3, holdback=0, agree=True), source, GuessingLLM())
    assert "maybe" in guessed
    assert agreed.text == "I we to day go the park."
    # and it still commits before the clause end: the cap holds
    assert len(agreed.commits) > 1


# -- flushing ---------------------------------------------------------------------------


def test_sentence_end_flushes_and_starts_a_new_segment() -> None:
    translator = _translate(WaitK(k=2), "我们今天。他很好。")
    assert [(c.text, c.source_consumed, c.segment, c.final) for c in translator.commits] == [
        ("I", 2, 0, False),
        (" we", 3, 0, False),
        (" to", 4, 0, False),
        (" day.", 5, 0, True),  # the flush at 。 commits the rest of the sentence
        (" he", 7, 1, False),  # wait-k counts again from the segment start
        (" very", 8, 1, False),
        (" good.", 9, 1, True),
    ]


def test_clause_policy_commits_whole_sentences_at_their_end() -> None:
    translator = _translate(Clause(), "我们今天去公园。他很好。")
    assert [(c.text, c.source_consumed, c.segment, c.final) for c in translator.commits] == [
        ("I we to day go the park.", 8, 0, True),
        (" he very good.", 12, 1, True),
    ]


def test_finish_flushes_the_end_of_the_stream() -> None:
    translator = SimultaneousTranslator(DictionaryLLM(), WaitK(k=2), ZH_EN_CONFIG)
    for unit in source_units("我们今天", "zh", 0.25):
        translator.feed(unit)
    assert translator.text == "I we to"
    [last] = translator.finish()
    assert (last.text, last.source_consumed, last.segment, last.final) == (" day", 4, 0, True)
    assert translator.finish() == []  # nothing left
    assert translator.text == "I we to day"


def test_finish_after_a_sentence_end_commits_nothing() -> None:
    translator = SimultaneousTranslator(DictionaryLLM(), Offline(), ZH_EN_CONFIG)
    commits = [c for u in source_units("我们。", "zh", 0.25) for c in translator.feed(u)]
    assert [c.text for c in commits] == ["I we."]
    assert translator.finish() == []


def test_reset_starts_a_fresh_stream() -> None:
    llm = DictionaryLLM()
    translator = SimultaneousTranslator(llm, Clause(), ZH_EN_CONFIG)
    first = run_instance(translator, 0, "我们今天。", "", 0.25)
    second = run_instance(translator, 1, "他很好。", "", 0.25)
    assert first.prediction == "I we to day."
    assert second.prediction == "he very good."  # no leading space, no context carried over
    assert translator.commits[0].segment == 0
    assert "我们今天" not in llm.calls[-1][0]


# -- guards -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        # Policies that see the whole candidate: "3D" once, the loop cut after it.
        (Clause(), "We are 3D"),
        (Offline(), "We are 3D"),
        (LocalAgreement(n=2), "We are 3D"),
        (Confidence(), "We are 3D"),
        (Learned(), "We are 3D"),
        # wait-k sees one unit of lookahead per step ("We are" -> "are 3D" -> "3D 3D"), so
        # two "3D" are committed before four in a row show the loop; then it is cut.
        (WaitK(k=1), "We are 3D 3D"),
        (WaitK(k=3), "We are 3D 3D"),
    ],
    ids=["clause", "offline", "la-2", "confidence", "learned", "wait-1", "wait-3"],
)
def test_a_hallucination_loop_is_cut(policy: Policy, text: str) -> None:
    llm = DictionaryLLM(script="We are 3D 3D 3D 3D 3D 3D 3D")
    assert _translate(policy, "我们今天去公园。", llm).text == text


@pytest.mark.parametrize("policy", [Offline(), Clause(), WaitK(k=1)], ids=["off", "cl", "w1"])
def test_a_runaway_continuation_is_cut_to_the_length_limit(policy: Policy) -> None:
    llm = DictionaryLLM(script=" ".join(f"w{i}" for i in range(200)))
    most = max_target_units(3, "zh", "en")
    assert most == 10  # ceil(1.2 * 3) + 6
    assert _translate(policy, "我们。", llm).text == " ".join(f"w{i}" for i in range(most))


class WaitingLLM(DictionaryLLM):
    """A model trained to decide itself: it translates all but the last source unit read, then
    writes the wait marker (and, like any model, would go on after it unless stopped)."""

    def translation(self, prompt: str) -> str:
        words = super().translation(prompt).split(" ")
        return " ".join([*words[:-1], "<wait>", *words[-1:]])

    def continue_text(self, prompt: str, prefix: str = "", **kwargs) -> Continuation:
        full = self.translation(prompt)
        ends = [
            full.find(s, len(prefix)) for s in kwargs.get("stop", ()) if s in full[len(prefix) :]
        ]
        self.script = full[: min(ends)].rstrip() if ends else full
        try:
            return super().continue_text(prompt, prefix, **kwargs)
        finally:
            self.script = None


def test_a_model_that_writes_the_wait_marker_reads() -> None:
    translator = SimultaneousTranslator(WaitingLLM(), Learned(), ZH_EN_CONFIG)
    units = list(source_units("我们去公园。", "zh", 0.25))
    assert translator.feed(units[0]) == []  # "<wait>" first: a READ, nothing committed
    committed = [c.text for u in units[1:] for c in translator.feed(u)]
    assert "".join(committed).split() == ["I", "we", "go", "the", "park."]
    assert "<wait>" not in translator.text


def test_without_its_stop_the_marker_would_be_committed() -> None:
    # what happened before policies supplied stop strings: the marker became text
    @dataclass(frozen=True)
    class Deaf(Learned):
        @property
        def stop_strings(self) -> tuple[str, ...]:
            return ()

    translator = _translate(Deaf(), "我们去公园。", WaitingLLM())
    assert "<wait>" in translator.text


@pytest.mark.parametrize(
    "policy", [WaitK(k=1), WaitK(k=3), LocalAgreement(n=2), Clause(), Offline()], ids=repr
)
def test_a_refusal_commits_nothing(policy: Policy) -> None:
    llm = DictionaryLLM(script="I'm sorry, I can't translate this.")
    translator = _translate(policy, "我们今天去公园。", llm)
    assert translator.commits == []
    assert translator.text == ""


def test_a_refusal_of_a_short_prefix_is_skipped_until_a_translation_comes() -> None:
    translator = SimultaneousTranslator(RefusingLLM(), WaitK(k=1), ZH_EN_CONFIG)
    instance = run_instance(translator, 0, "我们今天去公园。", "", 0.25)
    # Units 1 and 2 get refusals (nothing committed); at unit 3 wait-k may write 3 words.
    assert [(c.text, c.source_consumed) for c in translator.commits][:2] == [
        ("I we to", 3),
        (" day", 4),
    ]
    assert instance.prediction == "I we to day go the park."
    assert instance.delays == [3, 3, 3, 4, 5, 6, 8]


def test_a_chinese_refusal_is_dropped() -> None:
    llm = DictionaryLLM(lexicon=EN_ZH, target_lang="zh", script="抱歉，我无法翻译。")
    assert _translate(Clause(), "I we go the park .", llm, EN_ZH_CONFIG).text == ""


# -- a source longer than the model's context -------------------------------------------

PATTERN = "我们今天去公园很好他喜欢"  # 12 characters, 12 distinct words


@pytest.mark.parametrize("policy", [Clause(), WaitK(k=3)], ids=["clause", "wait-3"])
def test_a_long_line_is_translated_in_chunks(policy: Policy) -> None:
    source = PATTERN * 250  # 3,000 characters, no punctuation
    llm = DictionaryLLM(context_tokens=1500)
    translator = SimultaneousTranslator(llm, policy, ZH_EN_CONFIG)
    instance = run_instance(translator, 0, source, "", 0.25)  # would raise LLMError on overflow
    # Every source character is translated, in order, exactly once.
    assert instance.prediction == " ".join(ZH_EN[ch] for ch in source)
    assert instance.source_length == 3000
    # Split into several segments, each prompt within the context.
    finals = [c for c in translator.commits if c.final]
    assert len(finals) >= 3000 // 120
    assert [c.segment for c in finals] == list(range(len(finals)))
    assert max(len(prompt) + len(prefix) + n for prompt, prefix, n in llm.calls) <= 1500


def test_a_context_too_small_for_the_prompt_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold the prompt"):
        SimultaneousTranslator(DictionaryLLM(context_tokens=600), Clause(), ZH_EN_CONFIG)


# -- times ------------------------------------------------------------------------------


def test_computation_aware_times_by_hand() -> None:
    # Units arrive every 0.25 s; each model call takes 0.1 s: wait-k 1 commits 0.1 s after
    # each arrival.
    clock = ManualClock()
    llm = SlowLLM(clock, 0.1)
    translator = SimultaneousTranslator(llm, WaitK(k=1), ZH_EN_CONFIG, clock=clock)
    instance = run_instance(translator, 0, "我们今天。", "", 0.25)
    assert [c.elapsed_s for c in translator.commits] == pytest.approx([0.35, 0.6, 0.85, 1.1, 1.35])
    assert instance.elapsed == pytest.approx([0.35, 0.6, 0.85, 1.35])  # " day." ends at 。


def test_computation_of_read_steps_delays_later_commits() -> None:
    # Each call takes 1 s, longer than the 0.25 s between units. LocalAgreement-2 calls the
    # model at unit 1 and reads: busy until 1.25. Unit 2 (arrived at 0.5) is processed from
    # 1.25 and committed at 2.25; every later step starts when the previous one ends.
    clock = ManualClock()
    llm = SlowLLM(clock, 1.0)
    translator = SimultaneousTranslator(llm, LocalAgreement(n=2), ZH_EN_CONFIG, clock=clock)
    run_instance(translator, 0, "我们今天。", "", 0.25)
    commits = translator.commits
    assert [(c.text, c.source_consumed) for c in commits] == [
        ("I", 2),
        (" we", 3),
        (" to", 4),
        (" day.", 5),
    ]
    assert [c.elapsed_s for c in commits] == pytest.approx([2.25, 3.25, 4.25, 5.25])
    assert [c.wall_s for c in commits] == pytest.approx([2.0, 3.0, 4.0, 5.0])


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=_ids(ALL_POLICIES))
@pytest.mark.parametrize("cost_s", [0.05, 0.6])
def test_times_are_causal_and_ordered(policy: Policy, cost_s: float) -> None:
    clock = ManualClock()
    translator = SimultaneousTranslator(SlowLLM(clock, cost_s), policy, ZH_EN_CONFIG, clock=clock)
    spu = 0.25
    run_instance(translator, 0, STREAM + "。", "", spu)
    commits = translator.commits
    assert commits
    for commit in commits:
        # Not before the unit that triggered it arrived (unit j arrives at (j + 1) * spu) ...
        assert commit.elapsed_s >= commit.source_consumed * spu - 1e-9
        # ... and not before all the computation done so far (one model, one thread).
        assert commit.elapsed_s >= commit.wall_s - 1e-9
    for a, b in zip(commits, commits[1:], strict=False):
        assert b.elapsed_s >= a.elapsed_s
        assert b.wall_s >= a.wall_s
        assert b.source_consumed >= a.source_consumed
        assert b.segment >= a.segment


def test_feed_uses_the_arrival_time_given() -> None:
    translator = SimultaneousTranslator(DictionaryLLM(), WaitK(k=1), ZH_EN_CONFIG)
    [commit] = translator.feed(SourceUnit("我", 0, arrival_s=7.5))
    assert commit.elapsed_s >= 7.5
    assert commit.source_consumed == 1


# -- context ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentences", "pairs"),
    [
        (0, []),
        (1, [("去公园。", "go the park.")]),
        (2, [("我们。", "I we."), ("今天。", "to day."), ("去公园。", "go the park.")]),
        (3, [("我们。", "I we."), ("今天。", "to day."), ("去公园。", "go the park.")]),
        (5, [("我们。", "I we."), ("今天。", "to day."), ("去公园。", "go the park.")]),
    ],
)
def test_context_carries_the_last_sentences(sentences: int, pairs: list[tuple[str, str]]) -> None:
    llm = DictionaryLLM()
    config = TranslatorConfig(context_sentences=sentences)
    _translate(Clause(), "我们。今天。去公园。很好。", llm, config)
    last_prompt = llm.calls[-1][0]
    assert last_prompt.rsplit("<|im_start|>user\n", 1)[1].startswith("很好。")
    context = "".join(
        f"<|im_start|>user\n{src}<|im_end|>\n<|im_start|>assistant\n{tgt}<|im_end|>\n"
        for src, tgt in pairs
    )
    assert context + "<|im_start|>user\n很好。<|im_end|>\n" in last_prompt
    for src in ("我们。", "今天。", "去公园。"):
        assert (src in last_prompt) is any(src == s for s, _ in pairs)


def test_context_grows_by_appending_and_is_cut_back_to_its_minimum() -> None:
    llm = DictionaryLLM()
    _translate(
        Clause(), "我们。今天。去公园。很好。他。", llm, TranslatorConfig(context_sentences=1)
    )
    heads = {}
    for prompt, _, _ in llm.calls:
        head, _, current = prompt.rpartition("<|im_start|>user\n")
        heads.setdefault(current.split("<|im_end|>")[0], head)
    firsts = [heads[s] for s in ("今天。", "去公园。", "很好。", "他。")]
    # 1 pair, then 2 (the first one kept: the cache survives), then back to 1, then 2 again
    assert [h.count("<|im_start|>assistant\n") for h in firsts] == [4, 5, 4, 5]
    assert firsts[1].startswith(firsts[0]) and firsts[3].startswith(firsts[2])
    assert "去公园。" in firsts[2] and "我们。" not in firsts[2]


def test_context_of_the_second_sentence() -> None:
    llm = DictionaryLLM()
    _translate(WaitK(k=2), "我们今天。他很好。", llm, TranslatorConfig(context_sentences=1))
    second = [prompt for prompt, _, _ in llm.calls if "user\n他" in prompt]
    assert second
    pair = "user\n我们今天。<|im_end|>\n<|im_start|>assistant\nI we to day.<|im_end|>"
    assert all(pair in prompt for prompt in second)

    llm = DictionaryLLM()
    _translate(WaitK(k=2), "我们今天。他很好。", llm, TranslatorConfig(context_sentences=0))
    second = [prompt for prompt, _, _ in llm.calls if "user\n他" in prompt]
    assert second
    assert not any("我们今天" in prompt or "I we to day" in prompt for prompt in second)


# -- configuration ----------------------------------------------------------------------


def test_config_normalizes_the_direction() -> None:
    config = TranslatorConfig("zh-CN", "EN")
    assert (config.source_lang, config.target_lang) == ("zh", "en")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source_lang": "zh", "target_lang": "zh"},
        {"source_lang": "fr", "target_lang": "en"},
        {"max_segment_units": 3},
        {"context_sentences": -1},
        {"max_step_tokens": 0},
    ],
)
def test_config_rejects_invalid_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TranslatorConfig(**kwargs)


def test_units_read_without_a_decision_cost_no_model_call():
    llm = DictionaryLLM(EN_ZH, target_lang="zh")
    translator = SimultaneousTranslator(
        llm, make_policy("wait-k", 1, "en", "zh"), TranslatorConfig("en", "zh")
    )
    words = ["we", "go", "to", "the"]
    for i, word in enumerate(words):
        translator.feed(SourceUnit(word, i), decide=i == len(words) - 1)
    assert len(llm.calls) == 1
    assert translator.text  # the one decision wrote for all four units
    translator.feed(SourceUnit("park.", 4, sentence_end=True), decide=False)
    assert translator.commits[-1].final  # a sentence end is flushed all the same


# -- computing time: the duty cap and live batching ---------------------------------------


def _units(n: int, every_s: float) -> list[SourceUnit]:
    text = "我们今天去公园很好他喜欢"
    return [SourceUnit(text[i], i, arrival_s=(i + 1) * every_s) for i in range(n)]


@pytest.mark.parametrize(("duty", "decisions"), [(1.0, 12), (0.5, 3), (0.25, 2)])
def test_max_duty_spaces_the_decisions(duty: float, decisions: int) -> None:
    clock = ManualClock()
    llm = SlowLLM(clock, 0.5)
    config = TranslatorConfig(max_duty=duty)
    translator = SimultaneousTranslator(llm, LocalAgreement(n=2), config, clock=clock)
    asked_at = []
    for unit in _units(12, 0.25):
        before = len(llm.calls)
        translator.feed(unit)
        if len(llm.calls) > before:
            asked_at.append(unit.arrival_s)
    # each decision costs 0.5 s; the next may come 0.5 * (1 / duty - 1) s after it ends
    assert len(asked_at) == decisions
    if duty < 1:
        gaps = [b - a for a, b in zip(asked_at, asked_at[1:], strict=False)]
        assert all(gap >= 0.5 / duty - 1e-9 for gap in gaps)


def test_feed_scheduled_decides_only_at_the_newest_arrived_unit() -> None:
    clock = ManualClock()
    llm = SlowLLM(clock, 0.6)
    translator = SimultaneousTranslator(llm, LocalAgreement(n=2), ZH_EN_CONFIG, clock=clock)
    units = _units(8, 0.25)
    translator.feed_scheduled(units)
    # decide at 0.25 (busy until 0.85; the unit of 0.5 has arrived by then, but the one of
    # 0.75 is the newest), at 0.75 (busy until 1.45), at 1.25 (busy until 2.05), and at the
    # last unit: 4 decisions instead of 8
    assert len(llm.calls) == 4
    reference = SimultaneousTranslator(DictionaryLLM(), LocalAgreement(n=2), ZH_EN_CONFIG)
    for unit in units:
        reference.feed(unit)
    assert len(reference.llm.calls) == len(units)


def test_feed_batch_decides_at_the_last_unit_and_at_clause_ends() -> None:
    llm = DictionaryLLM()
    translator = SimultaneousTranslator(llm, LocalAgreement(n=2), ZH_EN_CONFIG)
    text = "我们，今天去"
    translator.feed_batch([SourceUnit(c, i, arrival_s=1.0) for i, c in enumerate(text)])
    assert [len(p.rsplit("user\n", 1)[1].split("<|im_end|>")[0]) for p, _, _ in llm.calls] == [
        3,
        6,
    ]


# -- the exchanges layout -------------------------------------------------------------------


def test_exchanges_layout_reads_only_the_open_stretch() -> None:
    llm = DictionaryLLM()
    config = TranslatorConfig(layout="exchanges", context_sentences=1)
    translator = _translate(Clause(), "我们，今天去公园。他很好。", llm, config)
    assert translator.text == "I we, to day go the park. he very good."
    users = [p.rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>")[0] for p, _, _ in llm.calls]
    assert users == ["我们，", "今天去公园。", "他很好。"]
    # the closed exchange stays in front of the open stretch, as its own turns
    second = llm.calls[1][0]
    assert "user\n我们，<|im_end|>\n<|im_start|>assistant\nI we,<|im_end|>" in second
    # and the whole sentence is the context of the next one, exchange by exchange
    assert second[: second.rindex("<|im_start|>user")] in llm.calls[2][0]


def test_exchanges_layout_matches_the_sentence_layout_word_for_word() -> None:
    for policy in (Clause(), WaitK(k=2), LocalAgreement(n=2)):
        outputs = []
        for layout in LAYOUTS:
            config = TranslatorConfig(layout=layout)
            outputs.append(_translate(policy, "我们今天，去公园。他喜欢。", config=config).text)
        assert outputs[0] == outputs[1], policy


def test_a_partial_commit_keeps_the_exchange_open() -> None:
    llm = DictionaryLLM()
    config = TranslatorConfig(layout="exchanges")
    _translate(WaitK(k=1, ratio=0.5), "我们今天", llm, config)
    # half a word per character: each step commits less than the model wrote, so the
    # exchange stays open and its committed words are the prefix
    prompts = [
        (p.rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>")[0], pre)
        for p, pre, _ in llm.calls
    ]
    assert prompts[-1] == ("我们今天", "I we")
    assert all(user.startswith("我") for user, _ in prompts)


def test_few_shot_examples_follow_the_layout() -> None:
    from simulinterp.translate.prompts import build_prompt

    sentence = build_prompt("zh", "en", "你好")
    exchanges = build_prompt("zh", "en", "你好", layout="exchanges")
    assert "user\n虽然天气很冷，但是" in sentence
    assert "user\n虽然天气很冷，<|im_end|>" in exchanges
    with pytest.raises(ValueError, match="layout"):
        TranslatorConfig(layout="chat")


def test_a_chinese_candidate_cut_by_the_token_limit_keeps_its_last_character() -> None:
    script = "你的国家能为你做什么，而你能为你的国家做什么。" * 2
    llm = DictionaryLLM(target_lang="zh", script=script)
    config = TranslatorConfig("en", "zh", max_step_tokens=12)
    translator = SimultaneousTranslator(llm, Confidence(threshold=-5.0), config)
    for i, word in enumerate("ask not what your country".split()):
        commits = translator.feed(SourceUnit(word, i, arrival_s=0.4 * i), decide=i == 4)
    # five words read: the candidate may hold what they need (23 tokens, one per character
    # here), and every character of it is whole
    budget = max_target_units(5, "en", "zh")
    assert "".join(c.text for c in commits) == script[:budget]


@pytest.mark.parametrize(
    ("unit", "lang", "may"),
    [("home", "en", True), ("么", "zh", False), ("NASA", "zh", True), ("\ufffd", "zh", True)],
)
def test_which_last_units_a_next_token_could_extend(unit: str, lang: str, may: bool) -> None:
    from simulinterp.translate.translator import _may_continue

    assert _may_continue(unit, lang) is may


# -- leaked source words ----------------------------------------------------------------

EN_ZH_LEAKY = {
    "he": "他",
    "wiped": "擦掉了",
    "the": "",
    "fence": "fence",
    ".": "。",
    "NASA": "NASA",
}


class LeakyLLM(DictionaryLLM):
    """Translates English into Chinese but leaves "fence" in English, as the 0.5B does."""

    def __init__(self, **kwargs) -> None:
        super().__init__(lexicon=EN_ZH_LEAKY, target_lang="zh", **kwargs)


@pytest.mark.parametrize("policy", [WaitK(k=1), WaitK(k=3), Clause(), Offline()], ids=repr)
def test_a_leaked_word_is_never_committed(policy: Policy) -> None:
    translator = _translate(policy, "he wiped the fence.", LeakyLLM(), EN_ZH_CONFIG)
    # At a flush the leaked word is dropped and the rest of the sentence kept.
    assert translator.text == "他擦掉了。"


def test_a_candidate_is_cut_before_its_leak() -> None:
    llm = DictionaryLLM(lexicon=EN_ZH, target_lang="zh", script="我们 park 去了")
    translator = SimultaneousTranslator(llm, Confidence(), EN_ZH_CONFIG)
    commits = [c for u in source_units("I we go the", "en", 0.4) for c in translator.feed(u)]
    assert [c.text for c in commits] == ["我们"]  # "park" and what follows it wait
    assert not any(c.final for c in commits)


def test_names_of_the_source_may_stay_in_latin() -> None:
    llm = DictionaryLLM(script="NASA的任务")
    translator = _translate(Clause(), "NASA mission .", llm, EN_ZH_CONFIG)
    assert translator.text == "NASA的任务"
    # ... and the backend is told which Latin words it may write: the source's names
    assert llm.allow_latin[-1] == {"nasa"}


def test_latin_is_left_alone_for_an_english_target_and_when_switched_off() -> None:
    llm = DictionaryLLM()
    _translate(Clause(), "我们。", llm)
    assert llm.allow_latin == [None]
    llm = LeakyLLM()
    config = TranslatorConfig("en", "zh", ban_latin_in_chinese=False)
    _translate(Clause(), "he wiped the fence.", llm, config)
    assert set(llm.allow_latin) == {None}


def test_chinese_left_in_an_english_translation_is_dropped() -> None:
    llm = DictionaryLLM(script="I went 公园 today.")
    assert _translate(Offline(), "我们今天去公园。", llm).text == "I went today."


@pytest.mark.parametrize(
    ("target", "lexicon", "source", "expected"),
    [
        ("zh", EN_ZH | {",": "。"}, "we go , he likes .", "们去，他喜。"),
        ("en", ZH_EN | {"，": "."}, "我们去，他喜欢。", "I we go, he likes it."),
    ],
)
def test_a_clause_commit_the_model_closed_with_a_full_stop_keeps_the_sentence_open(
    target: str, lexicon: dict, source: str, expected: str
) -> None:
    # the model wrote a full stop after a clause ("And so my fellow Americans," ->
    # "所以我的美国同胞。"): the commit ends with a comma, as the source does
    llm = DictionaryLLM(lexicon=lexicon, target_lang=target)
    config = TranslatorConfig("en", "zh") if target == "zh" else TranslatorConfig("zh", "en")
    translator = _translate(Clause(), source, llm, config)
    assert translator.text.strip() == expected
