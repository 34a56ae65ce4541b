"""One writer per output: an exclusive lease, `<output>/_lease.json`, taken before a command touches the output.

The lease names its owner (a random id), what it does and where it runs, and when it expires. It is created
atomically (locally a hard link of the whole file, which fails if the lease exists; on `gs://` an upload with the
precondition "no such object", `ifGenerationMatch=0`), so of two launches exactly one gets it and the other fails
in one line naming the holder. The job renews it while it works (`renew_if_due`, from its element stream); its
last step checks it still holds the lease before it publishes, and releases it. A lease past its expiry, or held
by a process of this host that is gone (a crashed or killed run), is taken over: the stale lease is moved aside
(locally an atomic rename; on `gs://` a delete with the precondition of the generation read), so only one of two
takers wins. The files of an unfinished attempt are cleaned only by the run that holds the lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from beam_pipelines.files import is_remote, join

LEASE = "_lease.json"
TTL_S = 1800.0
"""How long a lease lasts without renewal: what a crashed run blocks its output for."""
RENEW_EVERY_S = 120.0


class OutputLocked(RuntimeError):
    """Another command holds the output's lease."""


class LeaseLost(RuntimeError):
    """This command's lease expired and was taken over: it must not publish."""


@dataclass(frozen=True)
class Lease:
    owner: str
    command: str
    version: str
    host: str
    pid: int
    acquired_at: str
    expires_at: float

    @property
    def holder(self) -> str:
        return f"{self.host} pid {self.pid}"

    def stale(self) -> bool:
        """Expired, or held by a process of this host that is gone (a killed local run need not be waited for)."""
        return self.expires_at <= time.time() or (self.host == socket.gethostname() and not _alive(self.pid))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Lease:
        return cls(**json.loads(text))

    def describe(self) -> str:
        left = self.expires_at - time.time()
        expiry = f"expires in {left:.0f} s" if left > 0 else "expired"
        return f"{self.holder} ({self.command} of {self.version}, since {self.acquired_at}; the lease {expiry})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def lease_path(output: str) -> str:
    return join(output, LEASE)


class _Local:
    """The lease file on a local file system. The token of a read is the text read: a write or delete goes ahead
    only while the file still holds it (an inode number would not do: a deleted lease's is soon reused by the
    next one, which a stale token would then match)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def create(self, text: str) -> bool:
        """Written whole to a scratch file, then hard-linked into place: the link fails if the lease exists, and a
        reader never sees a lease half written (which it would take for a crashed one)."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        scratch = f"{self.path}.{uuid.uuid4().hex}.new"
        with open(scratch, "x", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(scratch, self.path)
        except FileExistsError:
            return False
        finally:
            os.remove(scratch)
        return True

    def read(self) -> tuple[str, object] | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return text, text

    def replace(self, text: str, token: object) -> bool:
        current = self.read()
        if current is None or current[1] != token:
            return False
        scratch = f"{self.path}.{uuid.uuid4().hex}"
        with open(scratch, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(scratch, self.path)
        return True

    def delete(self, token: object) -> bool:
        """Move the lease aside atomically (only one of two deleters gets it), then remove it if it is the one read
        (`token`); a newer one, moved aside by mistake, is put back."""
        aside = f"{self.path}.{uuid.uuid4().hex}.gone"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        with open(aside, encoding="utf-8") as f:
            moved = f.read()
        if moved != token:
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            os.remove(aside)
            return False
        os.remove(aside)
        return True


class _Gcs:
    """The lease object on Cloud Storage, every write under a generation precondition."""

    def __init__(self, path: str) -> None:
        from google.cloud import storage

        bucket, _, name = path[len("gs://") :].partition("/")
        self._bucket = lambda: storage.Client().bucket(bucket)
        self._name = name

    def _blob(self):
        return self._bucket().blob(self._name)

    def create(self, text: str) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._blob().upload_from_string(text, content_type="application/json", if_generation_match=0)
        except PreconditionFailed:
            return False
        return True

    def read(self) -> tuple[str, object] | None:
        from google.api_core.exceptions import NotFound

        try:
            blob = self._bucket().get_blob(self._name)
            if blob is None:
                return None
            return blob.download_as_text(if_generation_match=blob.generation), blob.generation
        except NotFound:
            return None

    def replace(self, text: str, token: object) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self._blob().upload_from_string(text, content_type="application/json", if_generation_match=token)
        except (PreconditionFailed, NotFound):
            return False
        return True

    def delete(self, token: object) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self._blob().delete(if_generation_match=token)
        except (PreconditionFailed, NotFound):
            return False
        return True


def _store(output: str) -> _Local | _Gcs:
    path = lease_path(output)
    if path.startswith("gs://"):
        return _Gcs(path)
    if is_remote(path):
        raise ValueError(f"{output}: leases are implemented for local and gs:// outputs only")
    return _Local(path)


def _read(output: str) -> tuple[Lease, object] | None:
    found = _store(output).read()
    if found is None:
        return None
    text, token = found
    try:
        return Lease.from_json(text), token
    except (ValueError, TypeError, KeyError):  # a lease cut short by a crash: treat as expired
        return Lease("", "?", "?", "an unreadable lease", 0, "?", 0.0), token


def acquire(output: str, command: str, version: str) -> Lease:
    """Take the output's lease, or raise `OutputLocked` naming the holder. An expired lease is taken over."""
    store = _store(output)
    lease = Lease(
        owner=uuid.uuid4().hex,
        command=command,
        version=version,
        host=socket.gethostname(),
        pid=os.getpid(),
        acquired_at=datetime.now(UTC).isoformat(timespec="seconds"),
        expires_at=time.time() + TTL_S,
    )
    for _ in range(3):
        found = _read(output)
        if found is not None:
            held, token = found
            if not held.stale():
                raise OutputLocked(
                    f"{output} is being written by {held.describe()}: one writer per output; wait for it to end, "
                    f"or, if it crashed, for its lease to expire (or remove {lease_path(output)} once sure it is gone)"
                )
            store.delete(token)  # expired or its process gone: whoever moves it aside first takes over
        if store.create(lease.to_json()):  # atomic: of two creators after the read, one wins
            if found is not None:
                ended = f"{found[0].describe()}: it had expired or its process was gone"
                print(f"vgr-etl: note: took over the lease of {ended}", file=sys.stderr)
            return lease
    raise OutputLocked(f"{output}: could not take the lease ({lease_path(output)}), another command contends for it")


def holds(output: str, owner: str) -> bool:
    found = _read(output)
    return found is not None and found[0].owner == owner


def renew(output: str, owner: str) -> None:
    """Push this owner's lease expiry on; `LeaseLost` if it is not this owner's any more.

    Every worker of a job renews the one lease, so renewals of the same owner cross: a write refused because the
    lease changed since it was read is no loss while the lease is still this owner's (another of its renewals
    changed it); only another owner, or no lease, is."""
    found = _read(output)
    if found is None or found[0].owner != owner:
        raise LeaseLost(f"{output}: the lease of this command ({owner}) was lost: {_holder(found)}")
    held, token = found
    renewed = Lease(**{**asdict(held), "expires_at": time.time() + TTL_S})
    if _store(output).replace(renewed.to_json(), token):
        return
    found = _read(output)
    if found is None or found[0].owner != owner:
        raise LeaseLost(
            f"{output}: the lease of this command ({owner}) changed hands while being renewed: {_holder(found)}"
        )


def _holder(found: tuple[Lease, object] | None) -> str:
    return "nobody holds it now" if found is None else f"now held by {found[0].describe()}"


def check(output: str, owner: str) -> None:
    """Raise `LeaseLost` unless `owner` holds the lease (the last step, before it publishes)."""
    found = _read(output)
    if found is None or found[0].owner != owner:
        raise LeaseLost(f"{output}: this command's lease expired and was lost ({_holder(found)}); not published")


def release(output: str, owner: str) -> None:
    """Give the lease up, if this owner still holds it (releasing twice, or after a takeover, does nothing; so
    does an empty owner: a build-only run that took none)."""
    if not owner:
        return
    found = _read(output)
    if found is not None and found[0].owner == owner:
        _store(output).delete(found[1])


_renewed_at: dict[str, float] = {}


def renew_if_due(output: str, owner: str) -> None:
    """From inside the job, per element: renew at most every `RENEW_EVERY_S` per process."""
    key = f"{output}@{owner}"
    now = time.monotonic()
    if now - _renewed_at.get(key, -RENEW_EVERY_S) >= RENEW_EVERY_S:
        _renewed_at[key] = now
        renew(output, owner)
