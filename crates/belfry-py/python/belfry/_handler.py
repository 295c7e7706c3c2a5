"""The logging handler: records at ERROR and above become alerts."""

from __future__ import annotations

import logging
import traceback
from typing import Optional

from . import _belfry

_record = _belfry.record


class Handler(logging.Handler):
    """A `logging.Handler` whose records at `level` (default ERROR) and above are recorded as
    failures of the job `job` (default: the logger's name), with the traceback of `exc_info`.
    Recording hands the record to belfry's worker and returns; no formatter runs unless one
    is set."""

    def __init__(self, level: int = logging.ERROR, *, job: Optional[str] = None) -> None:
        super().__init__(level)
        self.job = job

    def handle(self, record: logging.LogRecord) -> bool:
        # belfry's queue is safe to push from any thread: the handler's lock is not needed.
        if record.levelno < self.level:
            return False
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):
            record = rv
        if rv:
            self.emit(record)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.formatter is not None:
                text = self.format(record)
            else:
                text = record.getMessage()
                if record.exc_info and record.exc_info[1] is not None:
                    text = text + "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
                elif record.exc_text:
                    text = text + "\n" + record.exc_text
            _record(self.job or record.name, "failed", text, None)
        except Exception:
            self.handleError(record)
