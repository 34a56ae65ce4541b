"""The output's lease on a real file system: of many processes racing for it exactly one gets it, a holder is
named to whoever is refused, an expired (crashed) lease is taken over and its old owner can neither renew, nor
publish, nor release the new one; on the GCS emulator the same protocol, less the preconditions it ignores."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from beam_pipelines.versioning import lease


def _expire(output: str) -> None:
    path = Path(output, lease.LEASE)
    path.write_text(json.dumps({**json.loads(path.read_text()), "expires_at": time.time() - 1}))


def test_a_held_lease_refuses_a_second_writer_and_names_the_holder(tmp_path):
    held = lease.acquire(str(tmp_path), "run", "v000002")
    with pytest.raises(lease.OutputLocked) as refused:
        lease.acquire(str(tmp_path), "refresh", "v000002")
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "run of v000002" in message and "expires in" in message
    assert lease.holds(str(tmp_path), held.owner)
    lease.release(str(tmp_path), held.owner)
    assert not (tmp_path / lease.LEASE).exists()
    again = lease.acquire(str(tmp_path), "run", "v000002")
    assert again.owner != held.owner


def _race(output: str, barrier, results) -> None:
    barrier.wait()
    try:
        results.put(lease.acquire(output, "run", "v000001").owner)
    except lease.OutputLocked:
        results.put(None)


def test_of_many_racing_processes_exactly_one_gets_the_lease(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(8), context.Queue()
    workers = [context.Process(target=_race, args=(str(tmp_path), barrier, results)) for _ in range(8)]
    for w in workers:
        w.start()
    owners = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    winners = [o for o in owners if o is not None]
    assert len(winners) == 1 and lease.holds(str(tmp_path), winners[0])


def test_an_expired_lease_is_taken_over_and_its_old_owner_locked_out(tmp_path):
    out = str(tmp_path)
    crashed = lease.acquire(out, "run", "v000003")
    _expire(out)
    taker = lease.acquire(out, "refresh", "v000003")
    assert lease.holds(out, taker.owner) and not lease.holds(out, crashed.owner)
    with pytest.raises(lease.LeaseLost, match="now held by"):
        lease.renew(out, crashed.owner)
    with pytest.raises(lease.LeaseLost, match="not published"):
        lease.check(out, crashed.owner)
    lease.release(out, crashed.owner)  # a late release of the old owner leaves the new lease alone
    assert lease.holds(out, taker.owner)
    lease.check(out, taker.owner)


def test_a_lease_cut_short_by_a_crash_counts_as_expired(tmp_path):
    (tmp_path / lease.LEASE).write_text('{"owner": "abc", "comm')
    taker = lease.acquire(str(tmp_path), "run", "v000001")
    assert lease.holds(str(tmp_path), taker.owner)


def test_renewing_pushes_the_expiry_on(tmp_path, monkeypatch):
    out = str(tmp_path)
    held = lease.acquire(out, "run", "v000001")
    _expire(out)
    lease.renew(out, held.owner)
    assert json.loads((tmp_path / lease.LEASE).read_text())["expires_at"] > time.time() + lease.TTL_S - 60
    monkeypatch.setattr(lease, "RENEW_EVERY_S", 3600.0)
    lease.renew_if_due(out, held.owner)  # the first call in a process renews
    _expire(out)
    lease.renew_if_due(out, held.owner)  # the next ones wait RENEW_EVERY_S
    assert json.loads((tmp_path / lease.LEASE).read_text())["expires_at"] < time.time()


def _renew_many(output: str, owner: str, barrier, results) -> None:
    barrier.wait()
    try:
        for _ in range(200):
            lease.renew(output, owner)
        results.put("kept")
    except lease.LeaseLost as lost:
        results.put(str(lost))


def test_workers_of_one_job_renewing_at_once_all_keep_the_lease(tmp_path):
    out = str(tmp_path)
    held = lease.acquire(out, "run", "v000001")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_renew_many, args=(out, held.owner, barrier, results)) for _ in range(4)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert outcomes == ["kept"] * 4 and lease.holds(out, held.owner)


def test_a_renewal_crossing_another_workers_renewal_of_the_same_lease_keeps_it(tmp_path, monkeypatch):
    out = str(tmp_path)
    held = lease.acquire(out, "run", "v000001")
    real_read, crossed = lease._read, []

    def read_then_cross(output: str):
        found = real_read(output)
        if not crossed:  # another worker of the same job renews between this read and this write
            crossed.append(True)
            lease.renew(output, held.owner)
        return found

    monkeypatch.setattr(lease, "_read", read_then_cross)
    _expire(out)
    lease.renew(out, held.owner)
    assert crossed and lease.holds(out, held.owner)
    assert json.loads((tmp_path / lease.LEASE).read_text())["expires_at"] > time.time() + lease.TTL_S - 60


def test_a_renewal_crossing_a_takeover_is_a_loss(tmp_path, monkeypatch):
    out = str(tmp_path)
    held = lease.acquire(out, "run", "v000001")
    real_read, taken = lease._read, {}

    def read_then_taken_over(output: str):
        found = real_read(output)
        if not taken:  # the lease expires and another command takes it between this read and this write
            taken["by"] = None
            _expire(output)
            taken["by"] = lease.acquire(output, "refresh", "v000001").owner
        return found

    monkeypatch.setattr(lease, "_read", read_then_taken_over)
    with pytest.raises(lease.LeaseLost, match="now held by"):
        lease.renew(out, held.owner)
    assert lease.holds(out, taken["by"])


def test_an_empty_owner_releases_nothing_and_reads_nothing():
    lease.release("gs://no-such-bucket-anywhere/out", "")  # a build-only run: no lease, no storage call


@pytest.mark.slow
def test_the_lease_on_gcs(gcs):
    out = f"{gcs.bucket('lease-bucket')}/out"
    held = lease.acquire(out, "run", "v000001")
    with pytest.raises(lease.OutputLocked, match="run of v000001"):
        lease.acquire(out, "run", "v000001")
    lease.renew(out, held.owner)
    lease.check(out, held.owner)
    lease.release(out, held.owner)
    assert gcs.names(out) == []
    assert lease.holds(out, lease.acquire(out, "gc", "v000001").owner)


def _take_and_die(output: str) -> None:
    lease.acquire(output, "run", "v000001")
    os._exit(0)  # killed: no release


def test_a_lease_of_a_process_of_this_host_that_is_gone_is_taken_over_at_once(tmp_path, capsys):
    context = multiprocessing.get_context("spawn")
    dead = context.Process(target=_take_and_die, args=(str(tmp_path),))
    dead.start()
    dead.join(timeout=60)
    held = json.loads((tmp_path / lease.LEASE).read_text())
    assert held["pid"] == dead.pid and held["expires_at"] > time.time(), "its lease stays, unexpired"
    assert lease.holds(str(tmp_path), lease.acquire(str(tmp_path), "run", "v000001").owner)
    assert f"took over the lease of {held['host']} pid {dead.pid}" in capsys.readouterr().err, "said, in one line"
