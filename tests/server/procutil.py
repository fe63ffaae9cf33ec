"""Processes the tests start die with the test process.

Fixtures stop what they start on teardown; when pytest itself is killed (a CI timeout, Ctrl-C
twice), teardown never runs. Linux's parent-death signal makes each server the tests start
(redis-server, prometheus, chromium, worker processes) receive SIGKILL when the test process
exits, so nothing is left listening on 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: SIGKILL this child when its parent exits (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
