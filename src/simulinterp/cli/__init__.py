"""The ``simulinterp`` console script: one parser, one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import sys

from simulinterp import __version__
from simulinterp.cli import evaluate, install, interpret, serve, speakers, train, translate
from simulinterp.cli.common import EXIT_USAGE, CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simulinterp",
        description="Simultaneous interpretation between Chinese and English.",
    )
    parser.add_argument("--version", action="version", version=f"simulinterp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    translate.add_parsers(sub)
    interpret.add_parsers(sub)
    evaluate.add_parser(sub)
    train.add_parser(sub)
    install.add_parser(sub)
    serve.add_parsers(sub)
    speakers.add_diarize_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except CliError as err:
        print(f"simulinterp: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("simulinterp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["EXIT_USAGE", "build_parser", "main"]
