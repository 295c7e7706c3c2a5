"""`belfry.Task`: retries, time limits, state handlers in order, handlers that raise."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any, List, Tuple

import pytest

import belfry


def test_state_handlers_see_every_change_in_order_with_retrying_and_its_next_start():
    seen: List[Tuple[str, str, str]] = []
    calls = []

    def first(task: belfry.Task[Any], old: belfry.State, new: belfry.State) -> None:
        seen.append(("first", old.name, new.name))

    def second(task: belfry.Task[Any], old: belfry.State, new: belfry.State) -> None:
        seen.append(("second", old.name, new.name))

    @belfry.task(retries=2, retry_delay=0.05, state_handlers=[first, second])
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)} refused")
        return "done"

    before = datetime.now(timezone.utc)
    retrying: List[belfry.Retrying] = []
    flaky.state_handlers.append(lambda t, o, n: retrying.append(n) if isinstance(n, belfry.Retrying) else None)
    assert flaky() == "done"
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.05 and calls[2] - calls[1] >= 0.05
    names = [n for who, _, n in seen if who == "first"]
    assert names == ["Running", "Retrying", "Running", "Retrying", "Running", "Success"]
    # Each change goes to the handlers in the order given.
    assert [who for who, _, _ in seen[:2]] == ["first", "second"]
    assert [r.attempt for r in retrying] == [2, 3]
    assert all(r.next_start > before for r in retrying)
    assert isinstance(flaky.state, belfry.Success) and flaky.state.result == "done"


def test_a_handler_that_raises_does_not_change_the_outcome_and_is_kept():
    def broken(task: Any, old: belfry.State, new: belfry.State) -> None:
        raise RuntimeError("handler bug")

    t = belfry.Task(lambda: 42, name="answer", state_handlers=[broken])
    assert t.run() == 42
    assert isinstance(t.state, belfry.Success)
    assert len(t.handler_errors) == 2  # Pending → Running, Running → Success
    assert "RuntimeError: handler bug" in t.handler_errors[0]


def test_the_last_error_is_raised_after_the_retries_and_on_failure_is_called():
    failures: List[belfry.State] = []

    @belfry.task(retries=1, on_failure=lambda task, state: failures.append(state))
    def always() -> None:
        raise ValueError("still broken")

    with pytest.raises(ValueError, match="still broken"):
        always()
    assert len(failures) == 1 and isinstance(failures[0], belfry.Failed)
    assert "ValueError: still broken" in failures[0].message


def test_an_attempt_past_its_timeout_is_timed_out():
    @belfry.task(timeout=0.1)
    def slow() -> None:
        time.sleep(2)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        slow()
    assert time.monotonic() - started < 1.5
    assert isinstance(slow.state, belfry.TimedOut)


def test_a_coroutine_task_retries_and_times_out():
    attempts = []

    @belfry.task(retries=1, timeout=0.1)
    async def hang() -> None:
        attempts.append(1)
        await asyncio.sleep(5)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(hang())
    assert len(attempts) == 2
    assert isinstance(hang.state, belfry.TimedOut)


def test_callback_factory_acts_only_when_its_check_passes():
    acted: List[str] = []
    h = belfry.callback_factory(lambda s: isinstance(s, belfry.Failed), lambda task, s: acted.append(s.name))
    t = belfry.Task(lambda: 1, state_handlers=[h])
    t.run()
    assert acted == []
    t2 = belfry.Task(lambda: 1 / 0, state_handlers=[h])
    with pytest.raises(ZeroDivisionError):
        t2.run()
    assert acted == ["Failed"]


def test_bad_options_are_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="retries must be ≥ 0"):
        belfry.Task(lambda: 1, retries=-1)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        belfry.Task(lambda: 1, timeout=0)


def test_a_failed_task_alerts_through_the_channel(receiver, run_script):
    run_script(
        f"""
        import belfry
        belfry.init(urls=[{receiver.url!r}])

        def log_change(task, old, new):
            print(task.name, old.name, "->", new.name)

        @belfry.task(name="nightly-export", retries=1, state_handlers=[log_change])
        def export():
            raise OSError("bucket unreachable")

        try:
            export()
        except OSError:
            pass
        """
    )
    [alert] = receiver.wait_for(lambda b: len(b) >= 1)
    assert alert["job"] == "nightly-export" and alert["state"] == "failed"
    assert alert["error"].startswith("OSError: bucket unreachable")
