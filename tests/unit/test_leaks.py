"""Leaked source words (simulinterp.leaks), as hand-written tables."""

from __future__ import annotations

import pytest

from simulinterp.leaks import (
    allowed_latin,
    latin_cut,
    leaked_words,
    source_names,
    spells_allowed,
)

LEAK_CASES = [
    # translation, source, target, allowed, leaks
    # -- English targets: any Chinese character is a leak ---------------------------------
    ("He went home.", "他回家了。", "en", (), []),
    ("He went 回家 today.", "他今天回家了。", "en", (), ["回家"]),
    ("He met 郝仁 and 苏羽.", "他见了郝仁和苏羽。", "en", (), ["郝仁", "苏羽"]),
    # CJK punctuation alone is sloppy, not an untranslated word
    ("He went home，today.", "他今天回家了。", "en", (), []),
    # a glossary target is never a leak, even in Chinese
    ("He studied at 武宗学府.", "他在武宗学府学习。", "en", ("武宗学府",), []),
    # -- Chinese targets: Latin words --------------------------------------------------
    ("他擦掉了栅栏。", "He wiped off the fence.", "zh", (), []),
    ("他擦掉了 fence。", "He wiped off the fence.", "zh", (), ["fence"]),
    # a whole sentence left untranslated
    ("We are here.", "We are here.", "zh", (), ["We", "are", "here"]),
    # acronyms, mixed case, numbers from the source
    ("NASA的开普勒任务", "NASA's Kepler mission", "zh", (), []),
    ("NASA's 任务", "NASA's mission", "zh", (), []),
    ("我的iPhone", "my iPhone", "zh", (), []),
    ("2016年", "in 2016", "zh", (), []),
    # a number is never a leak, even when the source spells it out
    ("3D打印和5G", "three-dimensional printing and the fifth generation", "zh", (), []),
    # a name in the middle of a sentence; case does not matter in the translation
    ("他遇见了Hao Ren", "He met Hao Ren yesterday.", "zh", (), []),
    ("他遇见了hao ren", "He met Hao Ren yesterday.", "zh", (), []),
    # a sentence-initial capital is not a name by itself ...
    ("Today我们", "Today we talk.", "zh", (), ["Today"]),
    ("The问题", "The problem is hard.", "zh", (), ["The"]),
    # ... but it is when a name follows it, unless it is a function word
    ("Hao Ren回家了", "Hao Ren went home.", "zh", (), []),
    ("In中国", "In China we eat.", "zh", (), ["In"]),
    ("在China", "In China we eat.", "zh", (), []),
    # after a sentence end inside the line, a capital starts a sentence again
    ("Then他", "It ended. Then he left.", "zh", (), ["Then"]),
    # a colon does not start a sentence; a capitalized function word is no name anywhere
    ("Fermi的悖论", "a final thought: Fermi's paradox.", "zh", (), []),
    ("This很好", "Note: This is good.", "zh", (), ["This"]),
    # an abbreviation does not end a sentence: Smith is a name
    ("Smith先生", "We met Mr. Smith.", "zh", (), []),
    # the pronoun I is never a name; nor is A
    ("I 认为", "Yes, I think so.", "zh", (), ["I"]),
    ("I'm 在", "and I'm here", "zh", (), ["I'm"]),
    ("A 人", "a man", "zh", (), ["A"]),
    # other lone capitals are Chinese words (T恤, X光)
    ("白色T恤和X光", "a white shirt and an x-ray", "zh", (), []),
    # a Latin word the source does not have is a leak, even an acronym
    ("OK，我们走", "Fine, let's go.", "zh", (), ["OK"]),
    ("OK，我们走", "OK, let's go.", "zh", (), []),
    # glossary targets are never leaks
    ("他在Galaxy Media工作", "He works at the agency.", "zh", ("Galaxy Media",), []),
    ("", "Anything.", "zh", (), []),
    ("", "", "en", (), []),
]


@pytest.mark.parametrize(("translation", "source", "target", "allowed", "leaks"), LEAK_CASES)
def test_leaked_words(translation, source, target, allowed, leaks) -> None:
    assert leaked_words(translation, source, target, allowed) == leaks


NAME_CASES = [
    ("NASA's Kepler mission has found planets.", {"nasa", "kepler"}),
    ("Hao Ren, being true to his name, was a good man.", {"hao", "ren"}),
    ("We met Hao Ren.", {"hao", "ren"}),
    ("Today we talk about TED and the iPhone 12.", {"ted", "iphone", "12"}),
    ("The Beatles played.", {"beatles"}),  # "The" is a function word
    ('He said, "Hello there."', set()),  # a quoted sentence starts with a capital
    ("I think I'm right.", set()),
    ("", set()),
]


@pytest.mark.parametrize(("source", "names"), NAME_CASES)
def test_source_names(source: str, names: set[str]) -> None:
    assert source_names(source) == names


def test_allowed_latin_adds_the_allowed_strings_words() -> None:
    assert allowed_latin("We met Hao Ren.", ["Galaxy Media Co.", "武宗学府"]) == {
        "hao",
        "ren",
        "galaxy",
        "media",
        "co",
    }


@pytest.mark.parametrize(
    ("letters", "ok"),
    [
        ("Kep", True),  # a piece of "kepler"
        ("ler", True),
        ("KEPLER", True),  # case-insensitive
        ("Kepler", True),
        ("Keplers", False),
        ("fence", False),
        ("T", True),  # lone capital
        ("A", True),  # not a lone capital that passes, but a piece of "nasa"
        ("I", False),
        ("e", True),  # a substring: the constraint lets names be spelled letter by letter
    ],
)
def test_spells_allowed(letters: str, ok: bool) -> None:
    assert spells_allowed(letters, {"kepler", "nasa"}) is ok


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("开普勒任务", 5),
        ("Kepler任务", 8),
        ("任务 fence 好", 3),  # cut before the leaked word (the space stays)
        ("任务Kep", 5),  # an unfinished allowed word at the end is kept
        ("任务Kex", 2),  # one that cannot become an allowed word is not
        ("2016年的3D", 8),
    ],
)
def test_latin_cut(text: str, cut: int) -> None:
    assert latin_cut(text, {"kepler"}) == cut
