"""SimulMask: schedules, examples, the mask (perturbation tests), cached-inference equivalence."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from simulinterp.train.examples import (  # noqa: E402
    ParallelPair,
    TokenizedExample,
    schedule_pairs,
    tokenize_example,
)
from simulinterp.train.incremental import simulmask_greedy  # noqa: E402
from simulinterp.train.mask import (  # noqa: E402
    IGNORE,
    layouts_for,
    pack,
    pad_batch,
    prefix_layouts,
    row_reads,
    simulmask_layout,
)
from simulinterp.train.modeling import to_tensors  # noqa: E402
from simulinterp.train.schedule import (  # noqa: E402
    ScheduleSpec,
    alignment_reads,
    wait_k_reads,
)
from simulinterp.translate.prompts import ASSISTANT_HEADER, build_prompt  # noqa: E402
from tiny_qwen import PAIRS, make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def model(request, tokenizer):
    return make_model(tokenizer, attn=request.param)


def _pairs() -> list[ParallelPair]:
    zh_en = [ParallelPair(a, b, "zh", "en") for a, b in PAIRS[:3]]
    return zh_en + [ParallelPair(b, a, "en", "zh") for a, b in PAIRS[3:6]]


def _examples(tokenizer, schedule: str) -> list[TokenizedExample]:
    scheduled = schedule_pairs(_pairs(), ScheduleSpec.parse(schedule))
    return [tokenize_example(tokenizer, pair, reads) for pair, reads in scheduled]


def _logits(model, layouts) -> np.ndarray:
    batch = pad_batch(layouts, pad_id=0)
    tensors = to_tensors(batch, model, "cpu")
    with torch.no_grad():
        out = model(
            input_ids=tensors["input_ids"],
            position_ids=tensors["position_ids"],
            attention_mask=tensors["attention_mask"],
        )
    return out.logits.numpy()


# -- schedules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n_src", "n_tgt", "expected"),
    [
        (3, 6, 5, [3, 4, 5, 6, 6]),
        (1, 3, 6, [1, 2, 3, 3, 3, 3]),
        (5, 3, 2, [3, 3]),
        (2, 8, 3, [2, 3, 8]),  # the last unit waits for the whole source
    ],
)
def test_wait_k_reads(k, n_src, n_tgt, expected):
    assert wait_k_reads(k, n_src, n_tgt) == expected


def test_alignment_reads_wait_for_linked_source_and_stay_monotone():
    links = [(0, 0), (3, 1), (1, 2), (4, 3)]
    assert alignment_reads(links, 6, 5) == [1, 4, 4, 5, 6]
    assert alignment_reads(links, 6, 5, slack=1) == [2, 5, 5, 6, 6]


@pytest.mark.parametrize("text", ["wait-k", "wait-k:0", "k3", "align:x", ""])
def test_bad_schedules_are_refused(text):
    with pytest.raises(ValueError, match="schedule|wait-k"):
        ScheduleSpec.parse(text)


def test_schedule_spec_round_trips():
    assert str(ScheduleSpec.parse("wait-k:3")) == "wait-k:3"
    assert ScheduleSpec.parse("align").needs_alignment
    assert ScheduleSpec.parse("align:2").k == 2


# -- examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["wait-k:3", "align"])
def test_examples_are_the_inference_prompt_plus_the_answer(tokenizer, schedule):
    for pair, example in zip(_pairs(), _examples(tokenizer, schedule), strict=True):
        prompt = build_prompt(pair.source_lang, pair.target_lang, pair.source, style="plain")
        assert tokenizer.decode(example.input_ids) == prompt + pair.target + "<|im_end|>"
        header = tokenizer.decode(
            example.input_ids[example.target_start - example.header_tokens : example.target_start]
        )
        assert header == ASSISTANT_HEADER
        n_src = example.source_needs[-1]
        assert example.target_reads[-1] == n_src
        assert 1 <= example.target_reads[0] <= n_src


def test_english_targets_get_ascii_quotes(tmp_path):
    from simulinterp.train.examples import read_parallel

    folder = tmp_path / "x_zh-en"
    folder.mkdir()
    (folder / "source.txt").write_text("他说：“好的。”\n\n空行\n", encoding="utf-8")
    (folder / "ref.txt").write_text(" He said: “It’s fine.” \n\n\n", encoding="utf-8")
    (pair,) = read_parallel(folder)  # pairs with an empty side are dropped
    assert pair.target == 'He said: "It\'s fine."'
    assert pair.source == "他说：“好的。”"  # sources are kept as written


# -- the mask ----------------------------------------------------------------------------


def test_rows_see_the_source_of_the_token_they_predict(tokenizer):
    example = _examples(tokenizer, "wait-k:3")[0]
    layout = simulmask_layout(example)
    fixed = example.prompt_tokens + example.source_tokens
    reads = row_reads(example)
    needs = np.array(example.source_needs)
    for offset, q in enumerate(range(fixed, len(example))):
        seen = layout.visible[q, example.prompt_tokens : fixed]
        assert list(seen) == list(needs <= reads[offset])
        assert layout.visible[q, : example.prompt_tokens].all()
        assert layout.visible[q, fixed : q + 1].all() and not layout.visible[q, q + 1 :].any()
        assert layout.positions[q] == example.prompt_tokens + seen.sum() + offset
    # source rows are causal and never see the answer
    assert not layout.visible[:fixed, fixed:].any()
    labelled = np.flatnonzero(layout.labels != IGNORE)
    assert labelled[0] == example.target_start - 1 and labelled[-1] == len(example) - 2
    assert list(layout.labels[labelled]) == list(example.input_ids[example.target_start :])


@pytest.mark.parametrize("schedule", ["wait-k:2", "align"])
def test_hidden_source_leaves_logits_unchanged_and_visible_source_changes_them(
    model, tokenizer, schedule
):
    for example in _examples(tokenizer, schedule):
        layout = simulmask_layout(example)
        base = _logits(model, [layout])[0]
        fixed = example.prompt_tokens + example.source_tokens
        reads, needs = row_reads(example), np.array(example.source_needs)
        hidden_somewhere = [t for t in range(example.source_tokens) if needs[t] > reads.min()]
        assert hidden_somewhere, "the schedule must hide some source from some row"
        for t in (hidden_somewhere[0], example.source_tokens - 1):
            ids = layout.input_ids.copy()
            ids[example.prompt_tokens + t] = (ids[example.prompt_tokens + t] + 7) % len(tokenizer)
            changed = _logits(model, [_replace_ids(layout, ids)])[0]
            for offset, q in enumerate(range(fixed, len(example))):
                same = np.allclose(base[q], changed[q], atol=1e-5)
                assert same == (needs[t] > reads[offset]), (schedule, q, t)


def test_packed_examples_do_not_see_each_other(model, tokenizer):
    layouts = layouts_for(_examples(tokenizer, "wait-k:3")[:2], "simulmask")
    row = pack(layouts, pack_tokens=1024)
    assert len(row) == 1 and len(row[0]) == len(layouts[0]) + len(layouts[1])
    alone = _logits(model, [layouts[1]])[0]
    packed = _logits(model, row)[0][len(layouts[0]) :]
    np.testing.assert_allclose(packed, alone, atol=1e-5)
    assert row[0].positions[len(layouts[0])] == 0


def test_prefix_layouts_are_one_causal_example_per_write(tokenizer):
    for example in _examples(tokenizer, "wait-k:3"):
        layouts = prefix_layouts(example)
        steps = len(set(example.target_reads))
        assert len(layouts) == steps
        assert sum(x.loss_tokens for x in layouts) == len(example.target_reads)
        for layout in layouts:
            n = len(layout)
            assert (layout.visible == np.tril(np.ones((n, n), dtype=bool))).all()
            assert layout.labels[-1] == IGNORE and layout.labels[-2] == layout.input_ids[-1]
        assert list(layouts[-1].input_ids) == list(example.input_ids)


# -- cached inference equals the masked training pass ---------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_cached_greedy_decoding_matches_the_masked_forward_pass(model, tokenizer, k):
    for source_example in _examples(tokenizer, "wait-k:3")[::2]:
        ids = source_example.input_ids
        prompt = ids[: source_example.prompt_tokens]
        fixed = source_example.prompt_tokens + source_example.source_tokens
        source = ids[source_example.prompt_tokens : fixed]
        header = ids[fixed : source_example.target_start]
        n_src = source_example.source_needs[-1]
        result = simulmask_greedy(
            model,
            prompt,
            source,
            source_example.source_needs,
            header,
            reads_for=lambda i, n=n_src: min(k + i, n),
            max_new_tokens=12,
        )
        generated, reads = result.tokens, result.reads
        assert len(generated) == 12 and reads[0] == min(k, n_src)
        example = TokenizedExample(
            input_ids=(*prompt, *source, *header, *generated),
            prompt_tokens=len(prompt),
            source_tokens=len(source),
            header_tokens=len(header),
            source_needs=source_example.source_needs,
            target_reads=tuple(reads),
        )
        logits = _logits(model, [simulmask_layout(example)])[0]
        start = example.target_start
        rows = torch.log_softmax(
            torch.from_numpy(logits[start - 1 : start - 1 + len(generated)]), -1
        )
        assert rows.argmax(-1).tolist() == generated
        chosen = rows[torch.arange(len(generated)), torch.tensor(generated)]
        np.testing.assert_allclose(chosen.numpy(), result.logprobs, atol=2e-5)


def _replace_ids(layout, ids):
    from dataclasses import replace

    return replace(layout, input_ids=ids)
