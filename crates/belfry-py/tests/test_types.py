"""The type stubs: the native module's stubs match it (mypy's stubtest), and the package and a
program using it type-check strictly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "belfry"


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", *args], capture_output=True, text=True, timeout=300)


def test_the_native_module_matches_its_stubs():
    p = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "belfry._belfry"], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_program_using_the_package_type_checks_and_a_wrong_use_does_not(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "import logging\n"
        "from typing import Any\n"
        "import belfry\n"
        "belfry.init(urls=['json://127.0.0.1:1/x'], flush_timeout=2.0)\n"
        "@belfry.watch(errors=(OSError,), name='load')\n"
        "def load(n: int) -> int:\n"
        "    return n * 2\n"
        "x: int = load(3)\n"
        "logging.getLogger('app').addHandler(belfry.Handler(job='app'))\n"
        "def on_change(task: belfry.Task[Any], old: belfry.State, new: belfry.State) -> None: ...\n"
        "@belfry.task(retries=2, retry_delay=1.0, timeout=5.0, state_handlers=[on_change])\n"
        "def export() -> str:\n"
        "    return 'ok'\n"
        "s: belfry.Supervisor = belfry.Supervisor('nightly')\n"
        "ok: bool = s.notify('done', 'all good', attachments=['run.log'], gzip=True)\n"
        "complete, report = belfry.flush(1.0)\n"
    )
    p = mypy("--strict", str(good))
    assert p.returncode == 0, p.stdout + p.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("import belfry\nbelfry.init(flush_timeout='soon')\n")
    p = mypy("--strict", str(bad))
    assert p.returncode != 0 and "flush_timeout" in p.stdout, p.stdout


def test_the_package_type_checks_strictly():
    p = mypy("--strict", "-p", "belfry")
    assert p.returncode == 0, p.stdout + p.stderr
