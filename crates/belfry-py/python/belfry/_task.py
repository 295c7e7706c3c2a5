"""Tasks: retries, a time limit, and state handlers called on every change of state."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, cast, Generic, List, Optional, Sequence, Tuple, Type, TypeVar, Union, overload

from . import _belfry
from ._watch import describe, job_name

T = TypeVar("T")
StateHandler = Callable[["Task[Any]", "State", "State"], Any]


class State:
    """A task's state. `message` says why; a finished state may carry `result` or `exception`."""

    def __init__(self, message: str = "", *, result: Any = None, exception: Optional[BaseException] = None) -> None:
        self.message = message
        self.result = result
        self.exception = exception

    @property
    def name(self) -> str:
        return type(self).__name__

    def is_finished(self) -> bool:
        return isinstance(self, (Success, Failed, Cancelled))

    def is_failed(self) -> bool:
        return isinstance(self, Failed)

    def __repr__(self) -> str:
        return f"<{self.name}: {self.message!r}>" if self.message else f"<{self.name}>"


class Pending(State):
    """Not started."""


class Running(State):
    """An attempt is running."""


class Success(State):
    """Finished; `result` is the return value."""


class Failed(State):
    """Finished with an error; `exception` is it."""


class TimedOut(Failed):
    """An attempt ran past the task's timeout."""


class Cancelled(State):
    """Stopped before it finished (KeyboardInterrupt, asyncio cancellation)."""


class Retrying(State):
    """An attempt failed; attempt number `attempt` starts at `next_start` (UTC)."""

    def __init__(self, attempt: int, next_start: datetime, message: str = "", *, exception: Optional[BaseException] = None) -> None:
        super().__init__(message, exception=exception)
        self.attempt = attempt
        self.next_start = next_start

    def __repr__(self) -> str:
        return f"<Retrying: attempt {self.attempt} at {self.next_start.isoformat()}>"


def callback_factory(check: Callable[[State], bool], action: Callable[["Task[Any]", State], Any]) -> StateHandler:
    """A state handler that calls `action(task, new)` when `check(new)` is true."""

    def handler(task: "Task[Any]", old: State, new: State) -> None:
        if check(new):
            action(task, new)

    return handler


class Task(Generic[T]):
    """Runs `fn` with `retries` more attempts after a failure (`retry_delay` seconds apart),
    each limited to `timeout` seconds, and calls every state handler `fn(task, old, new)` in
    order on every change of state. `on_failure(task, state)` is called when it ends failed.
    A handler that raises never changes the outcome: its error is kept in `handler_errors`
    and recorded under the job `<job>:state-handler`. The outcome is recorded under `name`
    (default `module.qualname`): OK, failed or timed out.

    A sync attempt with a timeout runs on a thread of its own (a Python thread; Python cannot
    stop it, so after the timeout it is left to finish in the background)."""

    def __init__(
        self,
        fn: Callable[..., T],
        *,
        name: Optional[str] = None,
        retries: int = 0,
        retry_delay: float = 0.0,
        timeout: Optional[float] = None,
        state_handlers: Sequence[StateHandler] = (),
        on_failure: Optional[Callable[["Task[Any]", State], Any]] = None,
        errors: Tuple[Type[BaseException], ...] = (Exception,),
    ) -> None:
        if retries < 0:
            raise ValueError(f"belfry.Task: retries must be ≥ 0, not {retries}")
        if retry_delay < 0:
            raise ValueError(f"belfry.Task: retry_delay must be ≥ 0 seconds, not {retry_delay}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"belfry.Task: timeout must be > 0 seconds, not {timeout}")
        self.fn = fn
        self.name = name if name is not None else job_name(fn)
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.state_handlers: List[StateHandler] = list(state_handlers)
        if on_failure is not None:
            self.state_handlers.append(callback_factory(lambda s: s.is_failed(), on_failure))
        self.errors = errors
        self.state: State = Pending()
        self.handler_errors: List[str] = []
        functools.update_wrapper(self, fn)

    # -- states -----------------------------------------------------------------------------

    def _set(self, new: State) -> None:
        old, self.state = self.state, new
        for h in self.state_handlers:
            try:
                h(self, old, new)
            except Exception as e:  # a handler never changes the outcome
                text = f"state handler {getattr(h, '__qualname__', h)!r} on {old.name} → {new.name}: {describe(e)}"
                self.handler_errors.append(text)
                _belfry.record(f"{self.name}:state-handler", "failed", text, None)

    def _finish(self, state: State, started: float) -> None:
        self._set(state)
        took = time.perf_counter() - started
        if isinstance(state, TimedOut):
            _belfry.record(self.name, "timed_out", state.message, took)
        elif isinstance(state, Failed):
            _belfry.record(self.name, "failed", state.message, took)
        elif isinstance(state, Success):
            _belfry.record(self.name, "ok", None, took)

    def _retry_or_fail(self, attempt: int, state: Failed) -> Optional[float]:
        """After a failed attempt: the delay before the next one, or None when it is over."""
        if attempt <= self.retries:
            at = datetime.now(timezone.utc) + timedelta(seconds=self.retry_delay)
            self._set(Retrying(attempt + 1, at, state.message, exception=state.exception))
            return self.retry_delay
        return None

    # -- running ----------------------------------------------------------------------------

    def _attempt_sync(self, args: Any, kwargs: Any) -> Any:
        if self.timeout is None:
            return self.fn(*args, **kwargs)
        box: List[Any] = []

        def run() -> None:
            try:
                box.append((True, self.fn(*args, **kwargs)))
            except BaseException as e:  # handed back to the caller's thread
                box.append((False, e))

        t = threading.Thread(target=run, name=f"belfry-task {self.name}", daemon=True)
        t.start()
        t.join(self.timeout)
        if not box:
            raise _Timeout(self.timeout)
        ok, value = box[0]
        if ok:
            return value
        raise value

    def run(self, *args: Any, **kwargs: Any) -> T:
        """Runs the task (sync functions); returns the result or raises the last error
        (`TimeoutError` for a time-out)."""
        started = time.perf_counter()
        self.handler_errors = []
        attempt = 1
        while True:
            self._set(Running(f"attempt {attempt}"))
            try:
                result = self._attempt_sync(args, kwargs)
            except _Timeout as t:
                state: Failed = TimedOut(f"attempt {attempt} ran past {t.seconds:g}s", exception=TimeoutError(str(t)))
            except self.errors as e:
                state = Failed(describe(e), exception=e)
            except KeyboardInterrupt as e:
                self._set(Cancelled("interrupted", exception=e))
                raise
            else:
                self._finish(Success(result=result), started)
                return result  # type: ignore[no-any-return]
            delay = self._retry_or_fail(attempt, state)
            if delay is None:
                self._finish(state, started)
                assert state.exception is not None
                raise state.exception
            time.sleep(delay)
            attempt += 1

    async def run_async(self, *args: Any, **kwargs: Any) -> T:
        """Runs the task (coroutine functions)."""
        started = time.perf_counter()
        self.handler_errors = []
        attempt = 1
        while True:
            self._set(Running(f"attempt {attempt}"))
            try:
                coro = cast("Awaitable[T]", self.fn(*args, **kwargs))
                result: T = await asyncio.wait_for(coro, self.timeout)
            except asyncio.TimeoutError as e:
                if self.timeout is None:
                    raise
                state: Failed = TimedOut(f"attempt {attempt} ran past {self.timeout:g}s", exception=e)
            except asyncio.CancelledError as e:
                self._set(Cancelled("cancelled", exception=e))
                raise
            except self.errors as e:
                state = Failed(describe(e), exception=e)
            else:
                self._finish(Success(result=result), started)
                return result
            delay = self._retry_or_fail(attempt, state)
            if delay is None:
                self._finish(state, started)
                assert state.exception is not None
                raise state.exception
            await asyncio.sleep(delay)
            attempt += 1

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return self.run_async(*args, **kwargs)
        return self.run(*args, **kwargs)


class _Timeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"ran past {seconds:g}s")
        self.seconds = seconds


@overload
def task(fn: Callable[..., T]) -> Task[T]: ...


@overload
def task(
    *,
    name: Optional[str] = ...,
    retries: int = ...,
    retry_delay: float = ...,
    timeout: Optional[float] = ...,
    state_handlers: Sequence[StateHandler] = ...,
    on_failure: Optional[Callable[[Task[Any], State], Any]] = ...,
    errors: Tuple[Type[BaseException], ...] = ...,
) -> Callable[[Callable[..., T]], Task[T]]: ...


def task(fn: Optional[Callable[..., T]] = None, **options: Any) -> Union[Task[T], Callable[[Callable[..., T]], Task[T]]]:
    """`@belfry.task` or `@belfry.task(retries=2, …)`: the function as a `Task`."""
    if fn is not None:
        return Task(fn, **options)
    return lambda f: Task(f, **options)
