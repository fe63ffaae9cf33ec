"""Command line: ``compliance <command> ...``. See :func:`main`."""
from __future__ import annotations
import sys
def main(argv=None) -> int:  # placeholder replaced below
    return 0
def entry_point() -> None:
    sys.exit(main())
