"""Glossaries: matching terms as the source arrives, marking them in the prompt, files with
bad input, and the translator keeping the key/value cache while it uses them."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from fakes import ZH_EN, DictionaryLLM
from simulinterp.eval.instances import run_instance, source_units
from simulinterp.policy.rules import Clause, WaitK
from simulinterp.translate import SimultaneousTranslator, TranslatorConfig
from simulinterp.translate.glossary import Glossary, GlossaryError, Term, prompt_source
from simulinterp.translate.glossary_files import (
    glossary_format,
    read_glossary,
    read_line_glossaries,
    read_required_terms,
)
from simulinterp.translate.prompts import prompt_head

ZH = Glossary((Term("郝仁", "Hao Ren"), Term("武宗学府", "the institute"), Term("学府", "school")))
EN = Glossary((Term("Kepler", "开普勒"), Term("space telescope", "太空望远镜")), "en")


# -- matching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glossary", "text", "found"),
    [
        (ZH, "郝仁，人如其名", [("郝仁", 0, 2)]),
        (ZH, "郝", []),  # the first character of a two-character name: no match yet
        (ZH, "他在武宗学府", [("武宗学府", 2, 6)]),  # the longest term wins
        (ZH, "学府和武宗学", [("学府", 0, 2)]),
        (ZH, "郝仁郝仁", [("郝仁", 0, 2), ("郝仁", 2, 4)]),
        (EN, "kepler is a Space  telescope", [("Kepler", 0, 6)]),  # any case, exact spacing
        (EN, "KEPLER's space telescope", [("Kepler", 0, 6), ("space telescope", 9, 24)]),
        (EN, "Keplerian", []),  # whole words only
        (Glossary(), "郝仁", []),
    ],
)
def test_find(glossary: Glossary, text: str, found: list[tuple[str, int, int]]) -> None:
    assert [(m.term.source, m.start, m.end) for m in glossary.find(text)] == found


@pytest.mark.parametrize(
    ("method", "glossary", "text", "shown"),
    [
        ("replace", ZH, "郝仁，人如其名", "Hao Ren，人如其名"),
        ("annotate", ZH, "郝仁，人如其名", "郝仁(Hao Ren)，人如其名"),
        ("hint", ZH, "郝仁见郝仁", "郝仁见郝仁\nTerms: 郝仁 = Hao Ren"),
        ("replace", EN, "Kepler is a space telescope", "开普勒 is a 太空望远镜"),
        ("annotate", EN, "see Kepler", "see Kepler (开普勒)"),
        ("hint", ZH, "郝", "郝"),  # nothing matched: the text as it is
    ],
)
def test_prompt_source(method: str, glossary: Glossary, text: str, shown: str) -> None:
    assert prompt_source(text, glossary.find(text), method, glossary.source_lang) == shown


@pytest.mark.parametrize(
    ("terms", "lang", "message"),
    [
        ((Term("", "x"),), "zh", "empty term"),
        ((Term("郝仁", " "),), "zh", "empty term"),
        ((Term("郝仁", "Hao Ren"), Term("郝仁", "Hao Jen")), "zh", "duplicate term '郝仁'"),
        ((Term("Kepler", "开普勒"), Term("kepler", "刻卜勒")), "en", "duplicate term 'kepler'"),
    ],
)
def test_a_glossary_refuses_empty_and_duplicate_terms(terms, lang, message) -> None:
    with pytest.raises(GlossaryError, match=message):
        Glossary(terms, lang)


# -- files ------------------------------------------------------------------------------


def _file(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_read_a_tsv(tmp_path: Path) -> None:
    path = _file(tmp_path, "g.tsv", "郝仁\tHao Ren\n\n武宗学府\t the institute \n")
    glossary = read_glossary(path, "zh", "en")
    assert glossary.terms == (Term("郝仁", "Hao Ren"), Term("武宗学府", "the institute"))


def test_read_json_lines_in_either_direction(tmp_path: Path) -> None:
    lines = '[{"zh": "郝仁", "en": "Hao Ren"}]\n[]\n\n[{"zh": "郝仁", "en": "Hao Ren"}, ' + (
        '{"zh": "苏羽", "en": "Su Yu"}]\n'
    )
    path = _file(tmp_path, "terms.jsonl", lines)
    assert read_glossary(path, "zh", "en").terms == (Term("郝仁", "Hao Ren"), Term("苏羽", "Su Yu"))
    assert read_glossary(path, "en", "zh").terms == (Term("Hao Ren", "郝仁"), Term("Su Yu", "苏羽"))
    per_line = read_line_glossaries(path, "zh", "en")
    assert [g.targets for g in per_line] == [("Hao Ren",), (), (), ("Hao Ren", "Su Yu")]
    assert read_required_terms(path, "zh", "en") == [["Hao Ren"], [], [], ["Hao Ren", "Su Yu"]]


def test_the_format_is_told_by_name_or_first_line(tmp_path: Path) -> None:
    assert glossary_format(_file(tmp_path, "a.txt", '\n[{"zh": "a", "en": "b"}]\n')) == "jsonl"
    assert glossary_format(_file(tmp_path, "b.txt", "a\tb\n")) == "tsv"
    assert glossary_format(_file(tmp_path, "c.json", "")) == "jsonl"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "g.tsv",
            "郝仁\tHao Ren\n苏羽 Su Yu\n",
            "g.tsv, line 2: expected source<TAB>target, found no tab",
        ),
        ("g.tsv", "a\tb\tc\n", "g.tsv, line 1: expected source<TAB>target, found 3 columns"),
        ("g.tsv", "郝仁\tHao Ren\n\t Su Yu\n", "g.tsv, line 2: the source term is empty"),
        ("g.tsv", "郝仁\t\n", "g.tsv, line 1: the target term is empty"),
        (
            "g.tsv",
            "郝仁\tHao Ren\n\n郝仁\tHao Ren\n",
            "line 3: duplicate term '郝仁' (already on line 1)",
        ),
        (
            "g.jsonl",
            '[{"zh": "郝仁", "en": "Hao Ren"}]\n[{"zh": "郝仁"',
            "g.jsonl, line 2: not valid JSON",
        ),
        ("g.jsonl", '{"zh": "郝仁", "en": "Hao Ren"}\n', "g.jsonl, line 1: expected a JSON list"),
        ("g.jsonl", '[{"zh": "郝仁", "fr": "Hao Ren"}]\n', "line 1, term 1: no 'en' key"),
        ("g.jsonl", '[{"zh": "郝仁", "en": 7}]\n', "line 1, term 1: 'en' is not a string"),
        (
            "g.jsonl",
            '[{"zh": "郝仁", "en": "Hao Ren"}]\n[{"zh": "郝仁", "en": "Hao Jen"}]\n',
            "g.jsonl, line 2: duplicate term '郝仁' -> 'Hao Jen'; line 1 gives 'Hao Ren'",
        ),
        ("g.tsv", b"\xba\xc2\xc8\xca\tHao Ren\n", "g.tsv, line 1: not valid UTF-8 (byte 0xba"),
    ],
)
def test_bad_glossary_files(tmp_path: Path, name: str, data: str, message: str) -> None:
    path = _file(tmp_path, name, data)
    with pytest.raises(GlossaryError, match=re.escape(message)):
        read_glossary(path, "zh", "en")


def test_a_missing_glossary_file(tmp_path: Path) -> None:
    with pytest.raises(GlossaryError, match="glossary file not found: .*nope.tsv"):
        read_glossary(tmp_path / "nope.tsv", "zh", "en")
    with pytest.raises(GlossaryError, match="terms file not found"):
        read_required_terms(tmp_path / "nope.jsonl", "zh", "en")


def test_wmt_entries_with_an_empty_side_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    # As in the WMT 2023 set: a required translation without a source span, and the reverse.
    line = (
        '[{"zh": "苏羽", "en": "Su Yu"}, {"zh": "", "en": "A visitor"}, {"zh": "李村", "en": ""}]'
    )
    path = _file(tmp_path, "terms.jsonl", line + "\n")
    with caplog.at_level(logging.WARNING):
        assert read_glossary(path, "zh", "en").terms == (Term("苏羽", "Su Yu"),)
    assert "terms.jsonl, line 1, term 2: the source side is empty; skipped" in caplog.text
    assert "line 1, term 3: the target side is empty; skipped" in caplog.text
    # the required terms keep the translation without a source span (the reference has it)
    assert read_required_terms(path, "zh", "en") == [["Su Yu", "A visitor"]]


def test_wmt_nested_entity_markup_is_removed_from_both_sides(tmp_path: Path) -> None:
    # As in the WMT 2023 set: the markup of a nested entity, its closing brace lost.
    line = (
        '[{"zh": "<PER,T,2>{池瑶", "en": "Empress <PER,T,2>{Chi Yao"},'
        ' {"zh": "八王子<PER,T,14>{张济", "en": "Eighth Prince <PER,T,14>{Zhang Ji"},'
        ' {"zh": "{九连城", "en": "Nine Links City"}]'
    )
    path = _file(tmp_path, "terms.jsonl", line + "\n")
    [glossary] = read_line_glossaries(path, "zh", "en")
    assert glossary.terms == (
        Term("池瑶", "Empress Chi Yao"),
        Term("八王子张济", "Eighth Prince Zhang Ji"),
        Term("九连城", "Nine Links City"),
    )
    assert [m.target for m in glossary.find("池瑶见了八王子张济。")] == [
        "Empress Chi Yao",
        "Eighth Prince Zhang Ji",
    ]
    assert read_required_terms(path, "zh", "en") == [
        ["Empress Chi Yao", "Eighth Prince Zhang Ji", "Nine Links City"]
    ]


def test_a_second_translation_on_the_same_line_takes_the_next_occurrence(
    tmp_path: Path, caplog
) -> None:
    line = [("国君", "a monarch"), ("苏羽", "Su Yu"), ("国君", "the monarch")]
    line += [("国君", "the monarch"), ("苏羽", "Su Yu")]
    text = json.dumps([{"zh": zh, "en": en} for zh, en in line], ensure_ascii=False)
    path = _file(tmp_path, "t.jsonl", text + "\n")
    with caplog.at_level(logging.INFO):
        [glossary] = read_line_glossaries(path, "zh", "en")
    assert glossary.terms == (
        Term("国君", "a monarch", ("the monarch",)),
        Term("苏羽", "Su Yu"),
    )
    assert "1 terms have another translation at a later occurrence" in caplog.text
    assert glossary.targets == ("a monarch", "the monarch", "Su Yu")
    matches = glossary.find("国君说，苏羽见国君，国君走了。")
    assert [(m.occurrence, m.target) for m in matches] == [
        (0, "a monarch"),
        (0, "Su Yu"),
        (1, "the monarch"),
        (2, "the monarch"),
    ]
    assert prompt_source(
        "国君说，国君走了。", glossary.find("国君说，国君走了。"), "replace", "zh"
    ) == ("a monarch说，the monarch走了。")


def test_per_line_glossaries_need_json_lines(tmp_path: Path) -> None:
    with pytest.raises(GlossaryError, match="is a TSV glossary"):
        read_line_glossaries(_file(tmp_path, "g.tsv", "a\tb\n"), "zh", "en")


# -- the translator with a glossary -----------------------------------------------------

LEXICON = ZH_EN | {"郝": "Hao", "仁": "Jen", "见": "met"}


def test_replace_puts_the_target_in_the_translation() -> None:
    llm = DictionaryLLM(LEXICON)
    glossary = Glossary((Term("郝仁", "Hao Ren"),))
    translator = SimultaneousTranslator(llm, Clause(), TranslatorConfig(), glossary=glossary)
    instance = run_instance(translator, 0, "我见郝仁。", "", 0.25)
    assert instance.prediction == "I met Hao Ren."  # not the lexicon's "Hao Jen"
    translator.glossary = None
    assert run_instance(translator, 0, "我见郝仁。", "", 0.25).prediction == "I met Hao Jen."


def test_later_occurrences_take_their_own_translation_across_sentences() -> None:
    # WMT annotates the first 郝仁 as "Hao Ren" and the next as "Mr Hao": the second sentence
    # of the same line numbers its occurrence after the first sentence's
    glossary = Glossary((Term("郝仁", "Hao Ren", ("Mr Hao",)),))
    llm = DictionaryLLM(LEXICON)
    translator = SimultaneousTranslator(llm, Clause(), TranslatorConfig(), glossary=glossary)
    instance = run_instance(translator, 0, "我见郝仁。郝仁见我。", "", 0.25)
    assert instance.prediction == "I met Hao Ren. Mr Hao met I."  # the fake is word for word
    # the first sentence stays in the context as the model saw it (so its cache holds)
    last_prompt = llm.calls[-1][0]
    assert "我见Hao Ren。" in last_prompt and "Mr Hao见我。" in last_prompt
    # a new stream numbers from the start again
    assert run_instance(translator, 1, "郝仁见我。", "", 0.25).prediction == "Hao Ren met I."


@pytest.mark.parametrize("method", ["replace", "annotate", "hint"])
def test_a_term_arriving_keeps_the_cache_of_everything_before_it(method: str) -> None:
    llm = DictionaryLLM(LEXICON)
    glossary = Glossary((Term("郝仁", "Hao Ren"),))
    config = TranslatorConfig(glossary_method=method)
    translator = SimultaneousTranslator(llm, WaitK(k=1), config, glossary=glossary)
    units = source_units("我见郝仁。", "zh", 0.25)
    shown = []
    for unit in units:
        translator.feed(unit)
        prompt = llm.calls[-1][0]
        shown.append(prompt.rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>")[0])
    head = prompt_head("zh", "en")
    assert all(prompt.startswith(head) for prompt, _, _ in llm.calls)
    marked = prompt_source("郝仁", glossary.find("郝仁"), method, "zh")
    # the half-arrived name is shown as it is; once whole, it is marked
    assert shown[2] == "我见郝"
    assert shown[3] == "我见" + marked
    # each step's source only extends the last one from the term on
    for before, after in zip(shown, shown[1:], strict=False):
        common = next(
            (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), len(before)
        )
        assert common >= min(len(before), 2)


def test_a_chinese_target_may_spell_its_glossary_targets_in_latin() -> None:
    # the model copies "internet"; the glossary keeps it in Latin on purpose
    llm = DictionaryLLM(
        lexicon={"we": "我们", "use": "用", "internet": "internet"}, target_lang="zh"
    )
    glossary = Glossary((Term("internet", "internet"),), "en")
    config = TranslatorConfig("en", "zh")
    translator = SimultaneousTranslator(llm, Clause(), config, glossary=glossary)
    assert run_instance(translator, 0, "we use internet", "", 0.4).prediction == "我们用internet"
    assert llm.allow_latin[-1] == {"internet"}
    translator.glossary = None  # without it, the copied word is a leak
    assert run_instance(translator, 0, "we use internet", "", 0.4).prediction == "我们用"


def test_the_glossary_article_replaces_the_models() -> None:
    # The model copies the replaced term but says "the" where the glossary says "a".
    llm = DictionaryLLM(LEXICON | {"进": "joined", "a": "the"})
    glossary = Glossary((Term("武校", "a martial arts school"),))
    translator = SimultaneousTranslator(llm, Clause(), TranslatorConfig(), glossary=glossary)
    assert run_instance(translator, 0, "我进武校。", "", 0.25).prediction == (
        "I joined a martial arts school."
    )
    config = TranslatorConfig(repair_terms=False)
    translator = SimultaneousTranslator(llm, Clause(), config, glossary=glossary)
    assert run_instance(translator, 0, "我进武校。", "", 0.25).prediction == (
        "I joined the martial arts school."
    )
