import random

import pytest

from simulinterp.eval.alignment import align_corpus, oracle_delays


def _synthetic_corpus(pairs: int, seed: int = 0):
    """Sentences over a 30-word vocabulary translated word for word, with the target order
    reversed inside each sentence half, so the true links are known and not all diagonal."""
    rng = random.Random(seed)
    vocab = [f"s{i}" for i in range(30)]
    sources, targets, truth = [], [], []
    for _ in range(pairs):
        src = rng.sample(vocab, rng.randint(4, 8))
        half = len(src) // 2
        order = list(range(half))[::-1] + list(range(half, len(src)))
        sources.append(src)
        targets.append(["t" + src[i][1:] for i in order])
        truth.append({(i, j) for j, i in enumerate(order)})
    return sources, targets, truth


def test_recovers_known_links():
    sources, targets, truth = _synthetic_corpus(300)
    links = align_corpus(sources, targets, iterations=6)
    found = sum(len(set(pair) & gold) for pair, gold in zip(links, truth, strict=True))
    total = sum(len(gold) for gold in truth)
    assert found / total >= 0.9


def test_links_stay_inside_the_sentences():
    sources, targets, _ = _synthetic_corpus(50, seed=1)
    for pair, src, tgt in zip(align_corpus(sources, targets), sources, targets, strict=True):
        assert all(0 <= s < len(src) and 0 <= t < len(tgt) for s, t in pair)


@pytest.mark.parametrize(
    ("links", "n_src", "n_tgt", "expected"),
    [
        # monotone one-to-one: target j waits for source j
        ([(0, 0), (1, 1), (2, 2)], 3, 3, [1, 2, 3]),
        # target 0 translates the last source word: everything waits for it
        ([(2, 0), (0, 1), (1, 2)], 3, 3, [3, 3, 3]),
        # unaligned target 1 inherits target 0's delay; unaligned first target waits 1
        ([(1, 0), (2, 2)], 4, 3, [2, 2, 3]),
        ([(3, 1)], 4, 2, [1, 4]),
        # a target linked to two sources waits for the later one
        ([(0, 0), (3, 0), (1, 1)], 4, 2, [4, 4]),
        # nothing aligned
        ([], 5, 2, [1, 1]),
        # no target
        ([(0, 0)], 3, 0, []),
    ],
)
def test_oracle_delays(links, n_src, n_tgt, expected):
    assert oracle_delays(links, n_src, n_tgt) == expected


def test_empty_corpus_and_mismatch():
    assert align_corpus([], []) == []
    assert align_corpus([[]], [["a"]]) == [[]]
    with pytest.raises(ValueError):
        align_corpus([["a"]], [])
