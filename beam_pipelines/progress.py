"""Progress while a command runs: tqdm's bar on a terminal, one log line every `LOG_EVERY_S` otherwise.

What is counted, by name: `records_planned` and `chunks_planned` (the job's plan of what to read), `records` and
`chunks` (records that reached their outcome, chunks whose outcomes all did). Work reports them two ways at once:
- to Beam's metrics (namespace `vgr_etl`), which a launcher waiting for a Dataflow or Flink job polls;
- to the launcher's `Listener` on 127.0.0.1 in datagrams (at most one per `SEND_EVERY_S` per worker), when the
  launcher set `ENV` (local runs: the in-process runner and the local workers, which inherit the environment).
A datagram lost or a metric late only makes the display lag; nothing here touches what a run writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

ENV = "VGR_ETL_PROGRESS"
"""`host:port` of the launcher's listener; set by the launcher around a local job, read by every worker."""
NAMESPACE = "vgr_etl"
MODES = ("auto", "bar", "log", "off")
SEND_EVERY_S = 0.5
DRAW_EVERY_S = 0.5
LOG_EVERY_S = 30.0
POLL_EVERY_S = 10.0
"""How often a remote job's metrics are read while the launcher waits."""

_LOGGER = logging.getLogger("vgr_etl.progress")


class Tally:
    """The counts so far, from any thread: added to by the listener, replaced by a metrics poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, counts: dict[str, int]) -> None:
        with self._lock:
            for name, n in counts.items():
                self._counts[name] = self._counts.get(name, 0) + n

    def set(self, counts: dict[str, int]) -> None:
        with self._lock:
            self._counts.update(counts)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)


def encode(counts: dict[str, int]) -> bytes:
    return " ".join(f"{name}={n}" for name, n in counts.items()).encode("ascii")


def decode(datagram: bytes) -> dict[str, int]:
    """A datagram's counts; anything malformed is ignored (the port is local, but not ours alone)."""
    counts: dict[str, int] = {}
    for item in datagram.decode("ascii", "replace").split():
        name, _, value = item.partition("=")
        if name.isidentifier() and value.isdigit():
            counts[name] = counts.get(name, 0) + int(value)
    return counts


class Listener:
    """A UDP socket on 127.0.0.1 whose datagrams add to a tally, read by a daemon thread from `listen` to `close`.
    The socket is bound at once (its address goes into `ENV`) and the thread starts later: the local runner forks
    its workers' zygote only from a process with no other Python thread; datagrams wait in the socket meanwhile.
    `close` ends the thread with an empty datagram of its own, queued behind every datagram that arrived before:
    the tally then holds all of them (a worker's last flush precedes the end of its bundle), without a wait."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="vgr-etl-progress", daemon=True)

    def listen(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                datagram = self._socket.recv(4096)
            except TimeoutError:
                if self._stop.is_set():  # the empty datagram was lost
                    return
                continue
            except OSError:
                return
            if not datagram and self._stop.is_set():
                return
            self._tally.add(decode(datagram))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._socket.sendto(b"", self._socket.getsockname())
            self._thread.join()
        self._socket.close()


class Sender:
    """A worker's side: counts accumulate and leave in one datagram at most every `SEND_EVERY_S`, and on `flush`.
    Without `ENV` (a remote worker), nothing is sent."""

    def __init__(self, address: str | None) -> None:
        self._target: tuple[str, int] | None = None
        if address:
            host, _, port = address.rpartition(":")
            self._target = (host, int(port))
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._pending: dict[str, int] = {}
        self._sent_at = 0.0
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        if self._target is None:
            return
        with self._lock:
            self._pending[name] = self._pending.get(name, 0) + n
            if time.monotonic() - self._sent_at >= SEND_EVERY_S:
                self._send()

    def flush(self) -> None:
        if self._target is not None:
            with self._lock:
                self._send()

    def _send(self) -> None:
        if self._pending:
            with contextlib.suppress(OSError):
                self._socket.sendto(encode(self._pending), self._target)
            self._pending = {}
        self._sent_at = time.monotonic()


_senders: dict[str, Sender] = {}


def sender() -> Sender:
    """This process's sender to the address in `ENV` now (a forked worker has its own, since the address is read
    per process)."""
    address = os.environ.get(ENV)
    key = f"{os.getpid()}@{address}"
    if key not in _senders:
        _senders[key] = Sender(address)
    return _senders[key]


def line(label: str, tally: Tally, elapsed_s: float, unit: str = "records", part: str = "chunks") -> str:
    """`run SOURCE: 1,200/4,000 records (30%), 3/8 chunks, 150 records/s, ETA 0:00:18`; the parts not yet known are
    left out (a tar's members are known only once read: then the ETA follows the parts)."""
    done, total = tally.get("records"), tally.get("records_planned")
    parts = [f"{done:,}/{total:,} {unit} ({done / total:.0%})" if total else f"{done:,} {unit}"]
    chunks, planned = tally.get("chunks"), tally.get("chunks_planned")
    if planned:
        parts.append(f"{min(chunks, planned)}/{planned} {part}")
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    parts.append(f"{rate:,.0f} {unit}/s")
    if total and rate > 0 and done < total:
        parts.append(f"ETA {_clock((total - done) / rate)}")
    elif not total and planned and 0 < chunks < planned and elapsed_s > 0:
        parts.append(f"ETA {_clock((planned - chunks) * elapsed_s / chunks)}")
    return f"{label}: " + ", ".join(parts)


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def resolve(mode: str, stream: TextIO) -> str:
    """`auto` is `bar` on a terminal and `log` elsewhere."""
    if mode != "auto":
        return mode
    return "bar" if stream.isatty() else "log"


class Display:
    """Draws a tally from a daemon thread until `close`: tqdm's bar (mode `bar`) or a log line (mode `log`); a
    `poll` (a remote job's metrics) refreshes the tally every `POLL_EVERY_S` first."""

    def __init__(
        self, label: str, tally: Tally, mode: str, stream: TextIO, unit: str = "records", part: str = "chunks"
    ) -> None:
        self.label, self.tally, self.mode, self.unit, self.part, self._stream = label, tally, mode, unit, part, stream
        self.poll: Callable[[], dict[str, int]] | None = None
        self.listener: Listener | None = None
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._bar = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start listening and drawing (once the launch checks passed, so a launch error shows no bar before its line,
        and after the local runner started its zygote)."""
        if self.mode == "off" or self._thread is not None:
            return
        if self.listener is not None:
            self.listener.listen()
        self._started = time.monotonic()
        if self.mode == "bar":
            from tqdm import tqdm

            unit = self.unit[:-1] if self.unit.endswith("s") else self.unit
            self._bar = tqdm(desc=self.label, unit=unit, file=self._stream, leave=True, dynamic_ncols=True)
        self._thread = threading.Thread(target=self._draw_until_closed, name="vgr-etl-display", daemon=True)
        self._thread.start()

    def _draw_until_closed(self) -> None:
        polled_at = logged_at = self._started
        while not self._stop.wait(DRAW_EVERY_S):
            now = time.monotonic()
            if self.poll is not None and now - polled_at >= POLL_EVERY_S:
                polled_at = now
                with contextlib.suppress(Exception):  # a metrics call that fails is tried again next time
                    self.tally.set(self.poll())
            if self._bar is not None:
                self._draw_bar()
            elif now - logged_at >= LOG_EVERY_S:
                logged_at = now
                self._log()

    def final_poll(self) -> None:
        """The job's own final counts, where its runner has them (a datagram may have been lost)."""
        if self.poll is not None:
            with contextlib.suppress(Exception):
                self.tally.set(self.poll())

    def _draw_bar(self) -> None:
        bar = self._bar
        total = self.tally.get("records_planned") or None
        if bar.total != total:
            bar.total = total
        planned = self.tally.get("chunks_planned")
        if planned:
            bar.set_postfix_str(f"{min(self.tally.get('chunks'), planned)}/{planned} {self.part}", refresh=False)
        bar.update(self.tally.get("records") - bar.n)

    def _log(self) -> None:
        text = line(self.label, self.tally, time.monotonic() - self._started, self.unit, self.part)
        print(f"vgr-etl: {text}", file=self._stream, flush=True)

    def close(self, completed: bool) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            if completed:
                self._draw_bar()
            self._bar.close()
        elif completed and time.monotonic() - self._started >= LOG_EVERY_S:
            self._log()


@contextlib.contextmanager
def shown(
    label: str, mode: str = "auto", stream: TextIO | None = None, unit: str = "records", part: str = "chunks"
) -> Iterator[Display]:
    """Progress of the work done inside: a listener whose address is in `ENV` meanwhile (set before any local
    worker starts, so they all inherit it), and a display of what it hears, or of what `display.poll` reads,
    drawn from `display.start()` on. Mode `off` shows nothing and sets nothing."""
    stream = stream or sys.stderr
    mode = resolve(mode, stream)
    tally = Tally()
    if mode == "off":
        yield Display(label, tally, "off", stream, unit, part)
        return
    listener = Listener(tally)
    previous = os.environ.get(ENV)
    os.environ[ENV] = listener.address
    display = Display(label, tally, mode, stream, unit, part)
    display.listener = listener
    completed = False
    try:
        yield display
        completed = True
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        listener.close()
        display.close(completed)
