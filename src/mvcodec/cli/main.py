"""``mvcodec`` entry point: parses the command line and turns user-facing errors into one line and status 2.

Subcommands live in one module each (``encode``, ``decode``, ``info``, ``codecs``, ``eval``, ``demo``, ``data``,
``train``); each
module has ``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from mvcodec import __version__
from mvcodec.errors import MvcodecError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from mvcodec.cli import codecs_cmd, data_cmd, decode, demo, encode, eval_cmd, info, train_cmd

    parser = OneLineParser(prog="mvcodec", description="Compress synchronized multi-camera video into .mvc files.")
    parser.add_argument("--version", action="version", version=f"mvcodec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in (encode, decode, info, codecs_cmd, eval_cmd, demo, data_cmd, train_cmd):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or EXIT_OK)
    except MvcodecError as exc:
        print(f"mvcodec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mvcodec: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILURE


def entry_point() -> None:
    sys.exit(main())
