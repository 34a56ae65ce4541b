"""The known noise of local runs is dropped, and nothing else: records by their text or exception, a worker's
stderr by what it writes."""

from __future__ import annotations

import io
import logging

from beam_pipelines.quiet import DropNoise, QuietStream


def _record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("apache_beam.runners.common", logging.ERROR, __file__, 1, message, None, info)


class NotPublished(RuntimeError):
    pass


def test_noise_records_are_dropped_and_the_rest_kept():
    keep = DropNoise().filter
    assert not keep(_record('Worker: severity: WARN message: "No semi_persistent_directory found: ..."'))
    assert not keep(_record("rejected 7 of 91 [while running 'PublishVersion/WriteReport']", NotPublished("x")))
    assert keep(_record("Worker: severity: ERROR message: ZeroDivisionError in ParseRecords"))
    assert keep(_record("a real failure", ValueError("bad")))


def test_a_quiet_stream_drops_the_logging_client_resets_and_their_newline():
    out = io.StringIO()
    stream = QuietStream(out)
    print("Logging client failed: <_MultiThreadedRendezvous ...>... resetting", file=stream)
    print("Traceback (most recent call last):\n  ...\nbeam_pipelines.x.NotPublished: not published", file=stream)
    print("a worker's own line", file=stream)
    stream.write("\n")
    assert out.getvalue() == "a worker's own line\n\n"
    assert stream.getvalue() == out.getvalue(), "everything else is the wrapped stream's"
