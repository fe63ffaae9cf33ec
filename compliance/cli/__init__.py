"""Command line: ``compliance <command> ...``.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Exit codes (documented in the README):

* 0 — nothing at or above the ``--fail-on`` threshold (or the command succeeded);
* 1 — findings at or above the threshold;
* 2 — usage error, unreadable input or invalid rules (a one-line error on stderr names the file).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import ComplianceError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

#: subcommand name -> module (relative to this package)
COMMANDS = {
    "check": ".check",
    "explain": ".explain",
    "rules": ".rules",
    "serve": ".serve",
    "report": ".report",
    "worker": ".worker",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line, as documented
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="compliance",
        description="Check Chinese livestream speech and chat against advertising law and platform rules.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in COMMANDS.items():
        try:
            module = importlib.import_module(modname, __name__)
        except ModuleNotFoundError as exc:  # a subcommand whose module is not there yet
            if exc.name and exc.name.endswith(modname.lstrip(".")):
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.run(args))
    except ComplianceError as exc:
        sys.stderr.write(f"compliance {args.command}: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def entry_point() -> None:
    sys.exit(main())
