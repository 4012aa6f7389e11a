"""Reading glossaries and term lists from files.

Two formats, told apart by the file name (``.tsv``; ``.jsonl`` or ``.json``) or else by the
first line (a ``[`` opens JSON lines):

* TSV, one ``source<TAB>target`` term per line (blank lines are skipped). A TSV is a glossary
  someone writes, so it is strict: a line without exactly one tab, an empty side, or a source
  that appears twice stops with the file and line named.
* JSON lines in the WMT terminology format: one JSON list per line,
  ``[{"zh": "郝仁", "en": "Hao Ren"}]``, the direction picking the keys. These are per-segment
  annotations of a test set, and the WMT 2023 zh-en set itself holds entries with an empty side
  (a required translation with no source span, or the reverse) and the same term twice, even
  with two translations, on one line. So: an entry with an empty side cannot be used as a
  glossary entry and is skipped with a warning naming the line; the same pair again is one
  entry; within a line, a term given two translations takes them in order of appearance (the
  first 国君 ``a monarch``, the next ``the monarch``: :attr:`Term.later`), and across lines of a
  glossary read as one (:func:`read_glossary`) two translations are an error naming both
  lines. Some of its entries keep the markup of nested named entities, half closed
  (``<PER,T,2>{池瑶`` for ``Empress <PER,T,2>{Chi Yao``); it is removed from both sides
  (:func:`without_markup`), since neither the source nor any translation holds it.

Missing files and text that is not UTF-8 are errors too (:class:`GlossaryError`).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from simulinterp.lang import check_pair
from simulinterp.translate.glossary import Glossary, GlossaryError, Term

logger = logging.getLogger(__name__)

_JSON_EXAMPLE = '[{"zh": "郝仁", "en": "Hao Ren"}]'
_MARKUP = re.compile(r"<[A-Z]+,T,\d+>\{|[{}]")


def without_markup(term: str) -> str:
    """``term`` without WMT 2023's nested-entity markup (``<PER,T,14>{`` and stray braces)."""
    return " ".join(_MARKUP.sub("", term).split())


def glossary_format(path: str | Path) -> str:
    """``tsv`` or ``jsonl``: by the file name, else by whether the first line opens a list."""
    file = Path(path)
    if file.suffix.lower() == ".tsv":
        return "tsv"
    if file.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    first = next((line for line in _lines(file) if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("[") else "tsv"


def read_glossary(path: str | Path, source_lang: str, target_lang: str) -> Glossary:
    """One glossary from a TSV, or from every line of a JSON-lines file together.

    Raises:
        GlossaryError: a missing or undecodable file, a malformed line, an empty term in a
            TSV, a duplicate term (with the lines named).
    """
    src, tgt = check_pair(source_lang, target_lang)
    if glossary_format(path) == "tsv":
        return _read_tsv(Path(path), src)
    terms: dict[str, tuple[Term, int]] = {}
    for number, pairs in enumerate(_json_lines(Path(path), src, tgt), 1):
        for source, target in pairs:
            key = source.lower() if src == "en" else source
            if key in terms and terms[key][0].target != target:
                term, first = terms[key]
                raise GlossaryError(
                    f"{path}, line {number}: duplicate term {source!r} -> {target!r}; line "
                    f"{first} gives {term.target!r}"
                )
            terms.setdefault(key, (Term(source, target), number))
    return Glossary(tuple(term for term, _ in terms.values()), src)


def read_line_glossaries(path: str | Path, source_lang: str, target_lang: str) -> list[Glossary]:
    """One glossary per line of a JSON-lines file (a blank line or ``[]``: none).

    Raises:
        GlossaryError: as :func:`read_glossary`; also for a TSV (it has no lines to align).
    """
    src, tgt = check_pair(source_lang, target_lang)
    if glossary_format(path) == "tsv":
        raise GlossaryError(f"{path} is a TSV glossary; per-line terms need JSON lines")
    glossaries = []
    conflicts = 0
    for pairs in _json_lines(Path(path), src, tgt):
        sources: dict[str, str] = {}
        targets: dict[str, list[str]] = {}
        for source, target in pairs:
            key = source.lower() if src == "en" else source
            sources.setdefault(key, source)
            targets.setdefault(key, []).append(target)
        terms = []
        for key, order in targets.items():
            later = list(order[1:])
            while later and later[-1] == (later[-2] if len(later) > 1 else order[0]):
                later.pop()  # the last translation given holds for the rest
            conflicts += bool(later)
            terms.append(Term(sources[key], order[0], tuple(later)))
        glossaries.append(Glossary(tuple(terms), src))
    if conflicts:
        logger.info(
            "%s: %d terms have another translation at a later occurrence on the same line; "
            "each occurrence takes its own, in order",
            path,
            conflicts,
        )
    return glossaries


def read_required_terms(path: str | Path, source_lang: str, target_lang: str) -> list[list[str]]:
    """The target terms each line requires, from a JSON-lines terms file (for ``--terms``).

    Every entry with a non-empty target counts, once per entry, whether or not its source side
    is empty: the reference translation holds it.
    """
    src, tgt = check_pair(source_lang, target_lang)
    lines = _json_lines(Path(path), src, tgt, skip_empty_sources=False, what="terms")
    return [[target for _, target in pairs] for pairs in lines]


def _read_tsv(path: Path, source_lang: str) -> Glossary:
    terms: list[Term] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            found = "no tab" if len(columns) == 1 else f"{len(columns)} columns"
            raise GlossaryError(f"{path}, line {number}: expected source<TAB>target, found {found}")
        source, target = (c.strip() for c in columns)
        if not source or not target:
            side = "source" if not source else "target"
            raise GlossaryError(f"{path}, line {number}: the {side} term is empty")
        key = source.lower() if source_lang == "en" else source
        if key in seen:
            raise GlossaryError(
                f"{path}, line {number}: duplicate term {source!r} (already on line {seen[key]})"
            )
        seen[key] = number
        terms.append(Term(source, target))
    return Glossary(tuple(terms), source_lang)


def _json_lines(
    path: Path,
    source_lang: str,
    target_lang: str,
    *,
    skip_empty_sources: bool = True,
    what: str = "glossary",
) -> list[list[tuple[str, str]]]:
    """The (source, target) pairs of each line; entries with an empty side are left out
    (with a warning), except that ``skip_empty_sources=False`` keeps an empty source."""
    out = []
    for number, line in enumerate(_lines(path, what), 1):
        pairs = []
        found = _json_terms(line, path, number, source_lang, target_lang)
        for index, (source, target) in enumerate(found):
            if not target or (not source and skip_empty_sources):
                if skip_empty_sources:
                    logger.warning(
                        "%s, line %d, term %d: %s side is empty; skipped",
                        path,
                        number,
                        index + 1,
                        "the source" if not source else "the target",
                    )
                continue
            pairs.append((source, target))
        out.append(pairs)
    return out


def _json_terms(
    line: str, path: Path, number: int, source_lang: str, target_lang: str
) -> list[tuple[str, str]]:
    """The raw (source, target) pairs of one JSON line, stripped (possibly empty)."""
    if not line.strip():
        return []
    where = f"{path}, line {number}"
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise GlossaryError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise GlossaryError(f"{where}: expected a JSON list of terms like {_JSON_EXAMPLE}")
    pairs = []
    for index, entry in enumerate(value, 1):
        sides = [entry.get(source_lang), entry.get(target_lang)]
        for lang, side in zip((source_lang, target_lang), sides, strict=True):
            if not isinstance(side, str):
                problem = f"no {lang!r} key" if side is None else f"{lang!r} is not a string"
                raise GlossaryError(f"{where}, term {index}: {problem} (e.g. {_JSON_EXAMPLE})")
        pairs.append((without_markup(sides[0]), without_markup(sides[1])))
    return pairs


def _lines(path: Path, what: str = "glossary") -> list[str]:
    """The lines of a UTF-8 file, with clear errors for a missing or undecodable one."""
    if not path.is_file():
        raise GlossaryError(f"{what} file not found: {path}")
    lines = []
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, 1):
            try:
                lines.append(raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as err:
                raise GlossaryError(
                    f"{path}, line {number}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at "
                    f"column {err.start + 1}); convert it first, e.g. iconv -f GB18030 -t UTF-8"
                ) from err
    return lines
