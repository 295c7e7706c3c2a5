"""The decorator: `@belfry.watch` records each call of a function or coroutine."""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from time import perf_counter
from typing import Any, Callable, Optional, Tuple, Type, TypeVar, Union, overload

from . import _belfry

F = TypeVar("F", bound=Callable[..., Any])

_record = _belfry.record


def job_name(fn: Callable[..., Any]) -> str:
    """`module.qualname`, or the script's path for `__main__`."""
    module = getattr(fn, "__module__", None) or "__main__"
    if module == "__main__":
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        module = path if path else "__main__"
        return f"{module}:{fn.__qualname__}"
    return f"{module}.{fn.__qualname__}"


def describe(e: BaseException) -> str:
    """The exception's line first (an alert's summary is its first line), then its traceback
    as Python prints it."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()
    return f"{''.join(traceback.format_exception_only(type(e), e)).rstrip()}\n\n{tb}"


@overload
def watch(fn: F) -> F: ...


@overload
def watch(
    *,
    errors: Tuple[Type[BaseException], ...] = ...,
    name: Optional[str] = ...,
) -> Callable[[F], F]: ...


def watch(
    fn: Optional[F] = None,
    *,
    errors: Tuple[Type[BaseException], ...] = (Exception,),
    name: Optional[str] = None,
) -> Union[F, Callable[[F], F]]:
    """Records each call as OK, or as failed when it raises one of `errors` (default any
    `Exception`; others are recorded OK, as part of normal operation). The exception is always
    re-raised. The job is `module.qualname` (the script's path for `__main__`) or `name`.
    Works on plain functions and on coroutine functions."""
    if not isinstance(errors, tuple) or not all(
        isinstance(e, type) and issubclass(e, BaseException) for e in errors
    ):
        raise TypeError(f"belfry.watch: errors must be a tuple of exception classes, not {errors!r}")

    def decorate(f: F) -> F:
        job = name if name is not None else job_name(f)
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                started = perf_counter()
                try:
                    result = await f(*args, **kwargs)
                except errors as e:
                    _record(job, "failed", describe(e), perf_counter() - started)
                    raise
                except BaseException:
                    _record(job, "ok", None, perf_counter() - started)
                    raise
                _record(job, "ok", None, perf_counter() - started)
                return result

            return awrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = perf_counter()
            try:
                result = f(*args, **kwargs)
            except errors as e:
                _record(job, "failed", describe(e), perf_counter() - started)
                raise
            except BaseException:
                _record(job, "ok", None, perf_counter() - started)
                raise
            _record(job, "ok", None, perf_counter() - started)
            return result

        return wrapper  # type: ignore[return-value]

    if fn is not None:
        return decorate(fn)
    return decorate
