"""The package README's examples, each run as it is written, in a process of its own, with
`ALERT_URL` naming a real receiver: each must exit 0 and alert through it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_its_examples():
    # The decorator, the handler, the supervisor, a task, and sending by hand.
    assert len(EXAMPLES) == 5, len(EXAMPLES)


@pytest.mark.parametrize("n", range(len(EXAMPLES)))
def test_a_readme_example_runs_and_alerts(n, receiver, tmp_path):
    script = tmp_path / f"example{n}.py"
    script.write_text(EXAMPLES[n])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BELFRY_", "APPRISE_"))}
    env.update(
        ALERT_URL=receiver.url,
        BELFRY_HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    p = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    try:
        bodies = receiver.wait_for(lambda b: len(b) >= 1)
    except AssertionError as e:
        raise AssertionError(f"{e}\nstderr:\n{p.stderr}") from None
    assert all(b.get("title") for b in bodies), bodies
