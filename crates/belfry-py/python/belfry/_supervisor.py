"""The script supervisor: uncaught exceptions alert; `notify` sends an end-of-run summary."""

from __future__ import annotations

import os
import sys
import threading
import traceback
from types import TracebackType
from typing import Iterable, Optional, Tuple, Type, Union

from . import _belfry

Attachment = Union[str, "os.PathLike[str]", Tuple[str, bytes]]


class Supervisor:
    """Supervises a script: an uncaught exception, of the main thread or of any other thread,
    is recorded as crashed for `job` (default: the script's path) and alerts every channel;
    the previous hooks still run. `notify` sends a summary to the job's channels whatever
    the rules say. `close()` (or leaving a `with` block) puts the previous hooks back."""

    def __init__(self, job: Optional[str] = None) -> None:
        if job is None:
            main = sys.modules.get("__main__")
            job = getattr(main, "__file__", None) or "__main__"
        self.job: str = job
        self._previous = sys.excepthook
        self._previous_thread = threading.excepthook
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def _crashed(self, kind: Type[BaseException], value: BaseException, tb: Optional[TracebackType], where: str) -> None:
        text = "".join(traceback.format_exception(kind, value, tb)).rstrip()
        _belfry.record(self.job, "crashed", f"uncaught in {where}:\n{text}", None)

    def _excepthook(self, kind: Type[BaseException], value: BaseException, tb: Optional[TracebackType]) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            self._crashed(kind, value, tb, "the main thread")
        self._previous(kind, value, tb)

    def _thread_excepthook(self, args: "threading.ExceptHookArgs") -> None:
        if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
            where = f"thread {args.thread.name!r}" if args.thread is not None else "a thread"
            self._crashed(args.exc_type, args.exc_value, args.exc_traceback, where)
        self._previous_thread(args)

    def notify(
        self,
        subject: str,
        message: str,
        attachments: Iterable[Attachment] = (),
        gzip: bool = True,
    ) -> bool:
        """Queues a summary (files attached, gzipped unless `gzip=False`) for the job's
        channels and returns; the exit flush delivers it. False if belfry was not started."""
        files = [a if isinstance(a, tuple) else os.fspath(a) for a in attachments]
        return _belfry.notify(self.job, subject, message, files, gzip)

    def close(self) -> None:
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous
        if threading.excepthook == self._thread_excepthook:
            threading.excepthook = self._previous_thread

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if kind is not None and value is not None and not issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self._crashed(kind, value, tb, "the supervised block")
        self.close()
