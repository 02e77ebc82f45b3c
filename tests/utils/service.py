"""The real service in a child process: ``python -m api.cli serve`` (migrates, then uvicorn) on a
database of the test's choosing, for tests and benchmarks that kill it, restart its database or
load it from many clients. (``tests/utils/browser.py`` serves an app in a thread instead, which
cannot be killed.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
SECRET = "fault-test-secret-" + "x" * 32


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a service on ``database_url``: this worktree's code, no other
    MANGROVE_* setting inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANGROVE_")}
    env |= {
        "MANGROVE_DATABASE_URL": database_url,
        "MANGROVE_DATA_DIR": str(data_dir),
        "MANGROVE_AUTH_SECRET_KEY": SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


def cli(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 120):
    """``mangrove ARGS`` run as a child process on this worktree's code."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Service:
    """``mangrove serve`` on a free port. ``start()`` returns once /api/v1/health answers 200."""

    def __init__(
        self, database_url: str, data_dir: Path, *, serve_args: tuple[str, ...] = (), **extra_env: str
    ):
        self.serve_args = tuple(serve_args)  # e.g. ("--workers", "2")
        self.env = service_env(database_url, data_dir, **extra_env)
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / "service.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> float:
        """Start and wait until the service serves; returns the seconds that took."""
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "api.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--patrol-days",
                    "0",
                    *self.serve_args,
                ],  # fmt: skip
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - began < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the service did not serve within {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no goodbye — a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
