"""The native module (Rust, PyO3). Not a public API: use the `belfry` package's functions."""

from typing import List, Optional, Sequence, Tuple, Union

__all__ = [
    "init",
    "record",
    "notify",
    "send_now",
    "flush",
    "stats",
    "_before_fork",
    "_after_fork_in_parent",
    "_after_fork",
]

_Attachment = Union[str, Tuple[str, bytes]]

def init(
    config: Optional[str] = None,
    urls: Sequence[str] = ...,
    home: Optional[str] = None,
    flush_timeout: Optional[float] = None,
    quiet: bool = False,
) -> str: ...
def record(job: str, state: str, error: Optional[str] = None, duration: Optional[float] = None) -> bool:
    """Queues one event; False (and a RuntimeWarning, once) before init."""
def notify(
    job: str, subject: str, body: str, attachments: Sequence[_Attachment] = ..., gzip: bool = True
) -> bool: ...
def send_now(
    title: str, body: str, urls: Sequence[str], attach: Sequence[_Attachment] = ..., timeout: float = 10.0
) -> List[Tuple[str, str, bool, str]]: ...
def flush(timeout: Optional[float] = None) -> Tuple[bool, str]: ...
def stats() -> Optional[Tuple[int, int, int, int, int]]: ...
def _before_fork() -> None: ...
def _after_fork_in_parent() -> None: ...
def _after_fork() -> None: ...
