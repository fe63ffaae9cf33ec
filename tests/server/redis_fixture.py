"""A real redis-server for the tests: installed when missing, on 127.0.0.1, a free port, a temp dir.

    server = RedisServer(tmp_dir).start()    # installs redis-server first if it is not on PATH
    ... server.url ...
    server.stop()

Nothing is persisted (``--save '' --appendonly no``) and nothing but loopback is bound.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from procutil import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
ENSURE = ROOT / "scripts" / "ensure-packages.sh"


def ensure_redis_server() -> str:
    """The path of redis-server, installing the Debian package (scripts/ensure-packages.sh) when missing."""
    exe = shutil.which("redis-server")
    if exe is None:
        proc = subprocess.run(["bash", str(ENSURE), "redis-server"], capture_output=True, text=True, timeout=900)
        exe = shutil.which("redis-server")
        if proc.returncode != 0 or exe is None:
            raise RuntimeError(f"cannot install redis-server (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return exe


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 5) -> RedisServer:
        exe = ensure_redis_server()
        self.dir.mkdir(parents=True, exist_ok=True)
        last = ""
        for _ in range(attempts):  # another process may take the free port first: try another
            self.port = free_port()
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.dir), "--daemonize", "no", "--protected-mode", "yes",
                 "--logfile", str(self.dir / f"redis-{self.port}.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent,
            )
            if self._wait_ready(10.0):
                return self
            last = self._log_tail()
            self.stop()
        raise RuntimeError(f"redis-server did not start: {last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        try:
            return (self.dir / f"redis-{self.port}.log").read_text(errors="replace")[-1000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # redis-server exits cleanly on SIGTERM (nothing to save)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
