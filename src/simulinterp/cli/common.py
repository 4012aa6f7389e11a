"""Options and helpers shared by the subcommands (argparse never leaves the CLI)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from simulinterp.lang import LanguageError, check_pair
from simulinterp.llm.adapter_info import adapter_metadata, prompt_style_for
from simulinterp.llm.base import LLMBackend, LLMError
from simulinterp.llm.factory import BACKENDS, ModelConfig, build_backend
from simulinterp.llm.models import ModelNotFoundError, cache_dir
from simulinterp.policy import POLICIES, Policy, make_policy
from simulinterp.policy.rules import Clause, Learned
from simulinterp.translate import TranslatorConfig
from simulinterp.translate.glossary import GLOSSARY_METHODS, Glossary, GlossaryError
from simulinterp.translate.prompts import LAYOUTS, PROMPT_STYLES

EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one clear line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def add_direction(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source_lang", default="zh", help="source language (zh, en)")
    parser.add_argument("--to", dest="target_lang", default="en", help="target language (zh, en)")


def add_policy(parser: argparse.ArgumentParser, default: str | None = "clause") -> None:
    group = parser.add_argument_group("policy (the latency knob is the option the policy takes)")
    names = ", ".join(f"{n} ({s.help})" for n, s in POLICIES.items())
    group.add_argument(
        "--policy", default=default, choices=list(POLICIES), metavar="NAME", help=names
    )
    group.add_argument("--k", type=int, help="wait-k: source units to wait")
    group.add_argument("--n", type=int, help="local-agreement: hypotheses that must agree")
    group.add_argument("--threshold", type=float, help="confidence: lowest token log-probability")
    group.add_argument("--max-wait", type=int, help="clause: most units without a commit (0: none)")
    group.add_argument(
        "--agree",
        action="store_true",
        help="clause: after --max-wait units, commit only what two hypotheses in a row agree "
        "on, not the model's guess (more faithful, later, more computing; see the README)",
    )
    group.add_argument(
        "--min-clause",
        type=int,
        help="clause: a clause end fewer than this many source units after the last commit is "
        "read past, so a clause of a word or two is translated with the next (0: none)",
    )


def add_model(parser: argparse.ArgumentParser, default: str | None = "fast") -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--backend", default="llamacpp", choices=BACKENDS)
    chosen = default or "per direction, from bench/quality.py (see the README)"
    group.add_argument(
        "--model",
        default=default,
        help="packaged preset (fast: Qwen2.5 0.5B, also called default; quality: 1.5B) or a "
        f"path (GGUF / checkpoint); default: {chosen}",
    )
    group.add_argument(
        "--adapter",
        help="LoRA adapter: a directory from 'train sft' (transformers backend) or its GGUF "
        "from 'train export-gguf' (llamacpp backend)",
    )
    group.add_argument(
        "--prompt-style",
        default="auto",
        choices=["auto", *PROMPT_STYLES],
        help="few-shot examples (untrained models) or plain (adapters trained here); auto: "
        "what the adapter's simulinterp.json says, else few-shot",
    )
    group.add_argument("--base-url", help="OpenAI-compatible server (openai backend)")
    group.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads of the LLM (0: all cores; 1 with --speak)",
    )
    group.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        help="prompt layout: sentence (the committed target re-read at each step) or "
        "exchanges (one exchange per stretch translated to its end: cheaper steps)",
    )
    group.add_argument(
        "--context", type=int, help="earlier sentence pairs of the talk kept in the prompt"
    )
    group.add_argument(
        "--max-duty",
        type=float,
        help="largest share of time spent on translation decisions (1: a decision at every unit)",
    )


def add_glossary(parser: argparse.ArgumentParser, *, per_line: bool = False) -> None:
    group = parser.add_argument_group("glossary")
    lines = (
        " (JSON lines are line-aligned with the source: each line's terms apply to it)"
        if per_line
        else ""
    )
    group.add_argument(
        "--glossary",
        metavar="FILE",
        help="terms to translate as given: a TSV of source<TAB>target, or JSON lines in the "
        f'WMT format, [{{"zh": "郝仁", "en": "Hao Ren"}}] per line{lines}',
    )
    group.add_argument(
        "--glossary-method",
        default=TranslatorConfig.glossary_method,
        choices=GLOSSARY_METHODS,
        help="how a term found in the source reaches the model: replace it by its target, "
        "annotate it with its target in brackets, or a hint line after the source "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--no-term-repair",
        "--no-article-repair",
        dest="repair_terms",
        action="store_false",
        help="keep the model's near misses of an English glossary target (by default 'the "
        "institute' becomes the glossary's 'an institute', 'Mr. Hao' becomes 'Hao Ren')",
    )


def glossary_from(args: argparse.Namespace) -> Glossary | None:
    """The ``--glossary`` file as one glossary (JSON lines merged), or None."""
    from simulinterp.translate.glossary_files import read_glossary

    if not getattr(args, "glossary", None):
        return None
    src, tgt = direction(args)
    try:
        return read_glossary(args.glossary, src, tgt)
    except GlossaryError as err:
        raise CliError(str(err)) from err


def direction(args: argparse.Namespace) -> tuple[str, str]:
    try:
        return check_pair(args.source_lang, args.target_lang)
    except LanguageError as err:
        raise CliError(str(err)) from err


def knob_of(args: argparse.Namespace, policy: str) -> float | None:
    name = POLICIES[policy].knob
    return None if name is None else getattr(args, name, None)


def policy_from(args: argparse.Namespace, knob: float | None = None) -> Policy:
    try:
        src, tgt = direction(args)
        value = knob if knob is not None else knob_of(args, args.policy)
        policy = make_policy(args.policy, value, src, tgt)
        marker = adapter_metadata(getattr(args, "adapter", None)).get("marker")
        if isinstance(policy, Learned) and marker:
            policy = Learned(marker=str(marker))  # the marker the adapter was trained with
        if getattr(args, "agree", False):
            if not isinstance(policy, Clause):
                raise ValueError(f"--agree is for the clause policy, not {args.policy!r}")
            policy = replace(policy, agree=True)
        min_clause = getattr(args, "min_clause", None)
        if min_clause is not None:
            if not isinstance(policy, Clause):
                raise ValueError(f"--min-clause is for the clause policy, not {args.policy!r}")
            policy = replace(policy, min_clause=min_clause)
        return policy
    except ValueError as err:
        raise CliError(str(err)) from err


def translator_config(args: argparse.Namespace) -> TranslatorConfig:
    src, tgt = direction(args)
    adapter = getattr(args, "adapter", None)
    try:
        style = prompt_style_for(adapter, getattr(args, "prompt_style", "auto"))
    except ValueError as err:
        raise CliError(str(err)) from err
    settings = {
        key: value
        for key, value in (
            ("layout", getattr(args, "layout", None)),
            ("context_sentences", getattr(args, "context", None)),
            ("max_duty", getattr(args, "max_duty", None)),
            ("glossary_method", getattr(args, "glossary_method", None)),
            ("repair_terms", getattr(args, "repair_terms", None)),
        )
        if value is not None
    }
    try:
        return TranslatorConfig(source_lang=src, target_lang=tgt, prompt_style=style, **settings)
    except ValueError as err:
        raise CliError(str(err)) from err


def apply_speech_defaults(args: argparse.Namespace) -> None:
    """Fill the options left unset with the direction's speech defaults (defaults.py)."""
    from simulinterp.defaults import speech_defaults

    src, tgt = direction(args)
    chosen = speech_defaults(src, tgt)
    if args.model is None:
        args.model = chosen.model
    if args.policy is None:
        args.policy = chosen.policy
        knob = POLICIES[chosen.policy].knob
        if knob is not None and getattr(args, knob, None) is None and chosen.knob is not None:
            setattr(args, knob, chosen.knob)
    speaking = getattr(args, "speak", False) or getattr(args, "target_type", "text") == "speech"
    for option, value in (
        ("layout", chosen.layout),
        ("context", chosen.context_sentences),
        ("max_duty", chosen.speaking_max_duty if speaking else chosen.max_duty),
    ):
        if getattr(args, option, None) is None:
            setattr(args, option, value)
    _thread_defaults(args)


SPEAKING_THREADS = (1, 1)  # recognizer, LLM: bench/s2s measured 1/1/1 best beside synthesis


def _thread_defaults(args: argparse.Namespace) -> None:
    """Threads per stage. Alone, recognition and translation alternate and each takes both
    cores; beside synthesis (``--speak``, ``--target-type speech``) each stage gets one
    (bench/s2s: lower lag, less drift, same BLEU)."""
    speaking = getattr(args, "speak", False) or getattr(args, "target_type", "text") == "speech"
    if getattr(args, "asr_threads", 0) is None:
        args.asr_threads = SPEAKING_THREADS[0] if speaking else 2
    if speaking and getattr(args, "threads", None) == 0:
        args.threads = SPEAKING_THREADS[1]


def load_backend(args: argparse.Namespace) -> LLMBackend:
    """Build the backend, turning every setup failure into one clear line."""
    try:
        config = ModelConfig(
            backend=args.backend,
            model=args.model,
            adapter=args.adapter,
            base_url=args.base_url,
            threads=args.threads,
            parallel=getattr(args, "parallel", 1),
            prompt_cache_mib=getattr(args, "prompt_cache_mib", None),
        )
        if config.backend != "llamacpp":
            return build_backend(config)
        with native_logs_to(cache_dir().parent / "llama.log"):
            return build_backend(config)
    except (ModelNotFoundError, LLMError, ValueError) as err:
        raise CliError(str(err)) from err


@contextmanager
def native_logs_to(path: Path) -> Iterator[None]:
    """Send what native libraries write to file descriptor 2 into ``path`` for good.

    llama.cpp logs every request to stderr. Python's own ``sys.stderr`` is moved to a duplicate
    of the terminal, so messages and live displays still reach the user.
    """
    if os.environ.get("SIMULINTERP_NATIVE_LOGS") == "stderr" or sys.stderr is not sys.__stderr__:
        yield  # asked to keep them, or stderr is already captured (a test, a host program)
        return
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError):  # pytest's capture, or no real stderr
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    keep = os.dup(fd)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, fd)
    os.close(log)
    sys.stderr = os.fdopen(keep, "w", buffering=1, encoding="utf-8", errors="replace")
    yield


def read_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Decode ``stream`` as UTF-8 line by line; a bad line stops with a clear error.

    Lines before the bad one have already been yielded (and translated).
    """
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise CliError(
                f"{name}, line {number}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at "
                f"column {err.start + 1}); convert it first, e.g. iconv -f GB18030 -t UTF-8"
            ) from err


def read_text_file(path: str, what: str) -> list[str]:
    """All lines of a UTF-8 file, with clear errors for missing or undecodable files."""
    file = Path(path)
    if not file.is_file():
        raise CliError(f"{what} file not found: {path}")
    with file.open("rb") as stream:
        return list(read_lines(stream, str(file)))
