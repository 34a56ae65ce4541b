"""The known, harmless noise of local runs, kept off the user's terminal.

Local multi-worker runs print three kinds of lines that say nothing is wrong: every worker's warning that it has
no `semi_persistent_directory` (relayed by the runner's log), gRPC core's `Got goaway` when the runner closes a
worker's streams, and Beam's logging client's `Logging client failed: ... resetting` when that happens to it.
A job that fails because it did not publish also logs its `NotPublished` traceback, where the launcher that
waits for it prints the one line that matters. Everything else a worker or the runner logs still shows.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

NOISE = ("No semi_persistent_directory found", "Logging client failed:", "NotPublished")
"""Texts that mark a record or a printed message as known noise."""


def is_noise(text: str) -> bool:
    return any(n in text for n in NOISE)


class DropNoise(logging.Filter):
    """A handler's filter that drops the known noise records."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (is_noise(record.getMessage()) or (exc is not None and is_noise(type(exc).__name__)))


class QuietStream:
    """A text stream that drops the writes holding a known noise text (and the newline `print` sends after one); a
    worker's stderr, where Beam prints its logging client's resets and the tracebacks of failed bundles."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._dropped = False

    def write(self, text: str) -> int:
        dropped, self._dropped = self._dropped, False
        if is_noise(text) or (dropped and text == "\n"):
            self._dropped = text != "\n"
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def quiet_launcher() -> None:
    """For the command line's process, before gRPC starts: gRPC core logs errors only (its workers, forked or
    spawned, inherit that), and the root logger's handlers drop the noise records."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, DropNoise) for f in handler.filters):
            handler.addFilter(DropNoise())


def quiet_worker() -> None:
    """For a forked worker: its stderr drops the logging client's resets."""
    if not isinstance(sys.stderr, QuietStream):
        sys.stderr = QuietStream(sys.stderr)
