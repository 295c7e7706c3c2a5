"""Real receivers on loopback, and a way to run a script in a process of its own (belfry is
one client per process, and its exit flush only happens when a process ends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: List[Dict[str, Any]] = []
        self.cond = threading.Condition()
        receiver = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with receiver.cond:
                    receiver.bodies.append(body)
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, pred: Callable[[List[Dict[str, Any]]], bool], timeout: float = 15.0) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.bodies):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not received within {timeout}s; got {self.bodies!r}")
                self.cond.wait(left)
            return list(self.bodies)

    def of(self, job: str) -> List[Dict[str, Any]]:
        with self.cond:
            return [b for b in self.bodies if b.get("job") == job]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def run_script(tmp_path: Path) -> Callable[..., "subprocess.CompletedProcess[str]"]:
    """Runs `code` as a script in a new Python process, with a state directory and a working
    directory of its own and none of the caller's belfry settings."""

    def run(code: str, *, check: bool = True, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
        script = tmp_path / "job.py"
        script.write_text(textwrap.dedent(code))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BELFRY_", "APPRISE_"))}
        env["BELFRY_HOME"] = str(tmp_path / "home")
        env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
        p = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and p.returncode != 0:
            raise AssertionError(f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    return run
