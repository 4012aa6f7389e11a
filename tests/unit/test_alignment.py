"""Behaviour of the unsupervised aligner and of oracle delays."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from simulinterp.alignment import align_corpus, oracle_delays

Links = set[tuple[int, int]]
Corpus = tuple[list[list[str]], list[list[str]], list[Links]]


def _monotone(n: int, rng: random.Random) -> list[int]:
    return list(range(n))


def _swap_pairs(n: int, rng: random.Random) -> list[int]:
    """Adjacent words swap (adjective-noun order): the diagonal prior alone gets these wrong."""
    order = list(range(n))
    for k in range(0, n - 1, 2):
        order[k], order[k + 1] = order[k + 1], order[k]
    return order


def _reverse_first_half(n: int, rng: random.Random) -> list[int]:
    half = n // 2
    return list(range(half))[::-1] + list(range(half, n))


def _shuffle(n: int, rng: random.Random) -> list[int]:
    order = list(range(n))
    rng.shuffle(order)
    return order


def _synthetic(
    reorder: Callable[[int, random.Random], list[int]],
    pairs: int = 200,
    split: bool = False,
    fillers: bool = False,
    synonyms: bool = False,
    seed: int = 0,
) -> Corpus:
    """Word-for-word translations over a fixed 40-word dictionary with known links.

    Args:
        reorder: target order of the source positions (a known permutation per sentence).
        pairs: number of sentence pairs.
        split: every source word becomes two target units (like a Chinese word's characters).
        fillers: insert an unaligned target word ("the") at random places.
        synonyms: every source word has two translations, picked at random.
        seed: random seed.
    """
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(40)]
    sources, targets, truth = [], [], []
    for _ in range(pairs):
        src = rng.sample(vocab, rng.randint(4, 10))
        tgt: list[str] = []
        gold: Links = set()
        for i in reorder(len(src), rng):
            if fillers and rng.random() < 0.2:
                tgt.append("the")
            variant = rng.choice("pq") if synonyms else ""
            for piece in ("a", "b") if split else ("",):
                gold.add((i, len(tgt)))
                tgt.append(f"T{src[i][1:]}{variant}{piece}")
        sources.append(src)
        targets.append(tgt)
        truth.append(gold)
    return sources, targets, truth


def _precision_recall(
    links: list[list[tuple[int, int]]], truth: list[Links]
) -> tuple[float, float]:
    found = sum(len(set(pair) & gold) for pair, gold in zip(links, truth, strict=True))
    return found / max(1, sum(map(len, links))), found / sum(map(len, truth))


_HARD = [
    pytest.param(_swap_pairs, False, True, True, id="swap-fillers-synonyms"),
    pytest.param(_reverse_first_half, True, True, False, id="reverse-split-fillers"),
    pytest.param(_shuffle, False, False, False, id="shuffle"),
    pytest.param(_shuffle, False, True, True, id="shuffle-fillers-synonyms"),
    pytest.param(_shuffle, True, True, True, id="shuffle-split-fillers-synonyms"),
]


@pytest.mark.parametrize(
    ("reorder", "split", "fillers", "synonyms"),
    [pytest.param(_monotone, True, True, False, id="monotone-split-fillers"), *_HARD],
)
def test_recovers_known_links(reorder, split, fillers, synonyms):
    sources, targets, truth = _synthetic(reorder, split=split, fillers=fillers, synonyms=synonyms)
    precision, recall = _precision_recall(align_corpus(sources, targets), truth)
    assert recall >= 0.9
    assert precision >= 0.9


@pytest.mark.parametrize(("reorder", "split", "fillers", "synonyms"), _HARD)
def test_the_diagonal_prior_alone_is_not_enough(reorder, split, fillers, synonyms):
    """Without EM the aligner follows the diagonal: the corpora above need learning."""
    sources, targets, truth = _synthetic(reorder, split=split, fillers=fillers, synonyms=synonyms)
    _, recall = _precision_recall(align_corpus(sources, targets, iterations=0), truth)
    assert recall < 0.7


def test_links_stay_inside_the_sentences_and_are_sorted():
    sources, targets, _ = _synthetic(_shuffle, pairs=50, fillers=True, seed=1)
    for pair, src, tgt in zip(align_corpus(sources, targets), sources, targets, strict=True):
        assert pair == sorted(set(pair))
        assert all(0 <= s < len(src) and 0 <= t < len(tgt) for s, t in pair)


def test_is_deterministic():
    sources, targets, _ = _synthetic(_swap_pairs, pairs=30, seed=2)
    assert align_corpus(sources, targets) == align_corpus(sources, targets)


def test_extra_training_pairs_inform_but_are_not_returned():
    # Alone, one crossing pair is ambiguous and the diagonal prior links a-y, b-x.
    assert align_corpus([["a", "b"]], [["y", "x"]]) == [[(0, 0), (1, 1)]]
    extra_src = [["a", "c"], ["d", "a"], ["b", "e"], ["f", "b"]] * 3
    extra_tgt = [["x", "z"], ["u", "x"], ["y", "v"], ["s", "y"]] * 3
    links = align_corpus(
        [["a", "b"]], [["y", "x"]], train_sources=extra_src, train_targets=extra_tgt
    )
    assert links == [[(0, 1), (1, 0)]]


def test_case_and_punctuation_share_statistics():
    sources, targets, truth = _synthetic(_swap_pairs, pairs=200, seed=3)
    targets = [[w.upper() + "," if k % 2 else w for k, w in enumerate(t)] for t in targets]
    _, recall = _precision_recall(align_corpus(sources, targets), truth)
    assert recall >= 0.9


def test_empty_inputs_and_mismatch():
    assert align_corpus([], []) == []
    assert align_corpus([[]], [["a"]]) == [[]]
    assert align_corpus([["a"]], [[]]) == [[]]
    assert align_corpus([[], ["a"]], [[], ["x"]]) == [[], [(0, 0)]]
    with pytest.raises(ValueError):
        align_corpus([["a"]], [])
    with pytest.raises(ValueError):
        align_corpus([["a"]], [["x"]], train_sources=[["a"]])
    with pytest.raises(ValueError):
        align_corpus([["a"]], [["x"]], null_probability=0.0)


@pytest.mark.parametrize(
    ("links", "n_src", "n_tgt", "expected"),
    [
        # monotone one-to-one: target j waits for source j
        ([(0, 0), (1, 1), (2, 2)], 3, 3, [1, 2, 3]),
        # target 0 translates the last source word: everything waits for it
        ([(2, 0), (0, 1), (1, 2)], 3, 3, [3, 3, 3]),
        # two source units (characters) make one target word: wait for the later one
        ([(0, 0), (1, 0), (2, 1), (3, 1)], 4, 2, [2, 4]),
        # unaligned target 1 inherits target 0's delay
        ([(1, 0), (2, 2)], 4, 3, [2, 2, 3]),
        # unaligned first target waits for one source unit
        ([(3, 1)], 4, 2, [1, 4]),
        # a target linked to two far-apart sources waits for the later one
        ([(0, 0), (3, 0), (1, 1)], 4, 2, [4, 4]),
        # an early link after a late one cannot make the delay go down
        ([(4, 0), (0, 1), (5, 2)], 6, 3, [5, 5, 6]),
        # nothing aligned
        ([], 5, 2, [1, 1]),
        # links beyond the source are clamped, beyond the target ignored
        ([(9, 0), (0, 7)], 3, 2, [3, 3]),
        # no target, no source
        ([(0, 0)], 3, 0, []),
        ([], 0, 2, [0, 0]),
    ],
)
def test_oracle_delays(links, n_src, n_tgt, expected):
    assert oracle_delays(links, n_src, n_tgt) == expected


@pytest.mark.parametrize("seed", range(20))
def test_oracle_delays_are_monotone_and_bounded(seed):
    rng = random.Random(seed)
    n_src, n_tgt = rng.randint(1, 15), rng.randint(1, 15)
    links = [(rng.randrange(n_src), rng.randrange(n_tgt)) for _ in range(rng.randint(0, 2 * n_tgt))]
    delays = oracle_delays(links, n_src, n_tgt)
    assert len(delays) == n_tgt
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))
    assert all(1 <= d <= n_src for d in delays)
    for s, t in links:
        assert delays[t] >= s + 1
