"""belfry for Python: records what functions, loggers, scripts and tasks do, and alerts by
belfry's rules over the channels configured for the `belfry` command.

Every call hands a record to belfry's Rust worker and returns: nothing on the caller's thread
touches the disk or the network. At exit, what is queued is recorded and delivered within a
deadline; what is left stays in the outbox (and is said on standard error).
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Iterable, Optional, Sequence, Tuple, Union

from . import _belfry
from ._handler import Handler
from ._supervisor import Supervisor
from ._task import (
    Cancelled,
    Failed,
    Pending,
    Retrying,
    Running,
    State,
    Success,
    Task,
    TimedOut,
    callback_factory,
    task,
)
from ._watch import watch

__all__ = [
    "Cancelled",
    "Failed",
    "Handler",
    "Pending",
    "Retrying",
    "Running",
    "SendResult",
    "State",
    "Success",
    "Supervisor",
    "Task",
    "TimedOut",
    "callback_factory",
    "flush",
    "init",
    "send",
    "stats",
    "task",
    "watch",
]

PathLike = Union[str, "os.PathLike[str]"]
Attachment = Union[PathLike, Tuple[str, bytes]]


def init(
    config: Optional[PathLike] = None,
    urls: Sequence[str] = (),
    *,
    home: Optional[PathLike] = None,
    flush_timeout: Optional[float] = None,
    quiet: bool = False,
) -> str:
    """Starts belfry for this process and returns its state directory.

    With neither `config` nor `urls`, the configuration is found as the `belfry` command finds
    it ($BELFRY_CONFIG, ./belfry.toml, ~/.config/belfry/belfry.toml, $BELFRY_URLS; with
    nothing, the console). `urls` adds channels (Apprise syntax, e.g. ``json://host/path``).
    `home` is the state directory (default $BELFRY_HOME, …), shared with ``belfry status``.
    At exit, belfry flushes for at most `flush_timeout` seconds (default the configuration's
    ``[delivery] wait``).
    """
    return _belfry.init(
        os.fspath(config) if config is not None else None,
        list(urls),
        os.fspath(home) if home is not None else None,
        flush_timeout,
        quiet,
    )


def flush(timeout: Optional[float] = None) -> Tuple[bool, str]:
    """Records what is queued and delivers it, for at most `timeout` seconds. Returns whether
    everything went, and a report saying what is left (it stays in the outbox)."""
    return _belfry.flush(timeout)


def stats() -> Optional[Tuple[int, int, int, int, int]]:
    """(received, collapsed, recorded, notifications, lost) so far; None before `init`."""
    return _belfry.stats()


class SendResult(Tuple[str, str, bool, str]):
    """One URL's outcome: (label, destination redacted, delivered, reason)."""


def send(
    title: str,
    body: str,
    urls: Optional[Iterable[str]] = None,
    attach: Iterable[Attachment] = (),
    *,
    timeout: float = 10.0,
) -> Union[bool, list[Tuple[str, str, bool, str]]]:
    """Sends a message.

    Without `urls`, it goes to the configured channels through the outbox: queued, and this
    returns at once (True; False if belfry was not started). With `urls`, it is sent to those
    now, and this waits for the answers (at most `timeout` seconds per request) and returns
    one (label, destination, delivered, reason) per URL; the GIL is released meanwhile.
    """
    if urls is None:
        return _belfry.notify("belfry.send", title, body, [_attachment(a) for a in attach], False)
    return _belfry.send_now(title, body, list(urls), [_attachment(a) for a in attach], timeout)


def _attachment(a: Attachment) -> Union[str, Tuple[str, bytes]]:
    if isinstance(a, tuple):
        return a
    return os.fspath(a)


def _exit_flush() -> None:
    complete, report = _belfry.flush(None)
    if not complete:
        print(f"belfry: {report}", file=sys.stderr)


atexit.register(_exit_flush)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_belfry._before_fork,
        after_in_parent=_belfry._after_fork_in_parent,
        after_in_child=_belfry._after_fork,
    )
