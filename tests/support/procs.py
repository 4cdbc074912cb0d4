"""Real `guidebot` processes for CLI tests: started with the test's Python, output in files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the variables that would point guidebot elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GUIDEBOT_") or k == "GUIDEBOT_TEST_DATABASE_URL"}
    env.pop("GUIDEBOT_TEST_DATABASE_URL", None)
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`guidebot ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "guidebot", *args], cwd=cwd,
                          env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def _ctrl_c_reaches_it() -> None:
    """A shell that starts a job in the background without job control (a CI script, `cmd &`
    in a script) makes it ignore SIGINT, and that is inherited: the child then never sees
    `stop()`'s Ctrl-C. Give the child the terminal's default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Server:
    """A long-running `guidebot` command (serve, sandbox, demo --serve)."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @classmethod
    def start(cls, args: list[str], cwd: Path, env: dict[str, str] | None = None,
              name: str = "server", stdin: int = subprocess.DEVNULL) -> Server:
        out, err = cwd / f"{name}.out", cwd / f"{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen([sys.executable, "-m", "guidebot", *args], cwd=cwd,
                                    env=env or clean_env(), stdin=stdin, stdout=o, stderr=e,
                                    preexec_fn=_ctrl_c_reaches_it)
        return cls(proc, out, err)

    def wait_http(self, url: str, limit_s: float = 120) -> bytes:
        """The body of GET url once the process answers it; fails if the process exits."""
        deadline = time.monotonic() + limit_s
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return bytes(resp.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} never answered: {self.output()}") from None
                time.sleep(0.2)

    def wait_output(self, text: str, limit_s: float = 300) -> str:
        """Stdout once it contains `text`; fails if the process exits first."""
        deadline = time.monotonic() + limit_s
        while text not in (out := self.out.read_text("utf-8", "replace")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never printed: {self.output()}")
            time.sleep(0.2)
        return out

    def stop(self) -> int:
        """Ctrl-C, as an operator would; returns the exit status."""
        return self._signal(signal.SIGINT)

    def terminate(self) -> int:
        """SIGTERM, as docker stop or systemd would; returns the exit status."""
        return self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def output(self) -> str:
        return (self.out.read_text("utf-8", "replace") + "\n"
                + self.err.read_text("utf-8", "replace"))
