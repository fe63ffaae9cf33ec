"""``python -m livestream_compliance.prebuild DIRECTORY``: build the start-up state of the default
rule packs into DIRECTORY (the install's ``prebuilt/`` directory).

setup.py runs this while it builds the package (after the C extension), so that an installed
package carries the built state of its own default packs and :func:`~.loader.load_checker` starts
from it even in a fresh container with empty caches, instead of parsing, validating and building
(~3 s). It also writes the analyses of the packs' patterns (``patterns.memo``), which any other
build on the install reads (the default packs plus custom rules, say): only new patterns are
analysed then. The state is keyed exactly as the per-user cache is (rule files, package code, Python and
dependency versions): an install whose dependencies differ from the build's simply does not use it.

Exit codes: 0 written; 1 could not be built or written (the message says why; the install goes on
without a prebuilt state); 2 usage error.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def write_prebuilt(
    directory: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]] = (), *, defaults: bool = True
) -> Path:
    """Build the state for these rules (by default: the default packs) and write it into
    ``directory`` as the only state there; returns its path. Raises on any failure."""
    from .loader import _PATTERNS_FILE, _layers, _state_key, _write_patterns, _write_state, build_checker, build_rule_set, paraphrase_model

    layers = _layers(paths, defaults)
    key = _state_key(layers, defaults)
    files: list = []  # per file, its rules: the base of a delta build of custom rules on this install
    rule_set = build_rule_set(layers, files_out=files)
    with tempfile.TemporaryDirectory(prefix="lsc-prebuild-") as scratch:  # jieba's parsed dictionary: not shipped
        checker = build_checker(rule_set, jieba_cache_dir=scratch, model=paraphrase_model())
    out = Path(directory)
    out.mkdir(mode=0o755, parents=True, exist_ok=True)
    _write_state(os.fspath(out), key, checker, keep=1, strict=True, files=files)
    path = out / f"{key[:32]}.state"
    path.chmod(0o644)  # an install is read by every user (the per-user cache files are 0600)
    # the analyses of these packs' patterns, for any build on this install (custom rules added to
    # the default packs, an edited pack): only the patterns that are new get analysed
    memo = out / _PATTERNS_FILE
    memo.unlink(missing_ok=True)
    _write_patterns(os.fspath(out), rule_set)
    if not memo.is_file():
        raise OSError(f"could not write {memo}")
    memo.chmod(0o644)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: python -m livestream_compliance.prebuild DIRECTORY\n")
        return EXIT_USAGE
    try:
        path = write_prebuilt(args[0])
    except Exception as exc:  # noqa: BLE001 - reported; the install goes on without it
        sys.stderr.write(f"prebuild: no prebuilt state: {type(exc).__name__}: {exc}\n")
        return EXIT_ERROR
    sys.stdout.write(f"prebuild: wrote {path} ({path.stat().st_size / 1e6:.1f} MB)\n")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
