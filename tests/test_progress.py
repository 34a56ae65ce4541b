"""Progress while a command runs: the counts' wire format, the line, real datagrams over 127.0.0.1, the bar and the
log line drawn to a stream, and whole runs and compactions whose progress ends at the counts of what they wrote,
with the same files as a run that shows nothing."""

from __future__ import annotations

import glob
import io
import os
import re
import time

import pyarrow.parquet as pq
import pytest

from beam_pipelines import progress
from beam_pipelines.cli import main
from tests.conftest import RUNNER
from tests.helpers.outputs import digest_tree


def test_counts_survive_the_wire_and_junk_is_ignored():
    counts = {"records": 1200, "chunks_planned": 8}
    assert progress.decode(progress.encode(counts)) == counts
    assert progress.decode(b"records=3 records=4 bad=-1 =5 x.y=2 \xff=1 chunks=two") == {"records": 7}


def test_the_line_says_done_of_planned_rate_and_eta():
    tally = progress.Tally()
    tally.set({"records_planned": 4000, "records": 1200, "chunks_planned": 8, "chunks": 3})
    assert progress.line("run vgr", tally, 8.0) == (
        "run vgr: 1,200/4,000 records (30%), 3/8 chunks, 150 records/s, ETA 0:00:19"
    )
    tally.set({"records": 4000, "chunks": 9})  # a chunk split over bundles counts twice: capped at the plan
    assert progress.line("run vgr", tally, 20.0) == "run vgr: 4,000/4,000 records (100%), 8/8 chunks, 200 records/s"
    tars = progress.Tally()
    tars.set({"chunks_planned": 4, "chunks": 1, "records": 500})
    assert progress.line("stage-images", tars, 60.0, "members", "tasks") == (
        "stage-images: 500 members, 1/4 tasks, 8 members/s, ETA 0:03:00"
    )
    assert progress.line("compact", progress.Tally(), 0.0, "samples") == "compact: 0 samples, 0 samples/s"


def test_datagrams_from_workers_add_up_in_the_listener(monkeypatch):
    tally = progress.Tally()
    listener = progress.Listener(tally)
    listener.listen()
    try:
        monkeypatch.setenv(progress.ENV, listener.address)
        sender = progress.sender()
        for _ in range(1000):
            sender.add("records")
        sender.add("chunks", 2)
        sender.flush()
        deadline = time.monotonic() + 5
        while tally.get("records") < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        listener.close()
    assert (tally.get("records"), tally.get("chunks")) == (1000, 2)


def test_closing_the_listener_first_counts_every_datagram_already_sent(monkeypatch):
    for _ in range(20):
        tally = progress.Tally()
        listener = progress.Listener(tally)
        listener.listen()
        monkeypatch.setenv(progress.ENV, listener.address)
        sender = progress.sender()
        for n in range(1, 51):
            sender.add("records", n)
            sender.flush()
        listener.close()
        assert tally.get("records") == 50 * 51 // 2
        assert not listener._thread.is_alive()


def test_without_a_listener_a_worker_sends_nothing(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    sender = progress.sender()
    sender.add("records", 5)
    sender.flush()
    assert sender._target is None and not sender._pending


def test_the_log_mode_prints_lines_and_the_last_one_at_the_end(monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(progress, "DRAW_EVERY_S", 0.01)
    stream = io.StringIO()
    with progress.shown("run vgr", "log", stream) as display:
        assert os.environ[progress.ENV] == display_address(display)
        display.tally.set({"records_planned": 10, "chunks_planned": 1})
        display.start()
        display.tally.add({"records": 10, "chunks": 1})
        time.sleep(0.05)
    assert progress.ENV not in os.environ
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("vgr-etl: run vgr: ") for line in lines)
    assert lines[-1].startswith("vgr-etl: run vgr: 10/10 records (100%), 1/1 chunks")


def display_address(display: progress.Display) -> str:
    return os.environ[progress.ENV] if display.mode != "off" else ""


def test_the_bar_mode_draws_tqdm_to_the_stream():
    stream = io.StringIO()
    with progress.shown("run vgr", "bar", stream) as display:
        display.tally.set({"records_planned": 40, "chunks_planned": 2, "records": 40, "chunks": 2})
        display.start()
    text = stream.getvalue()
    assert "run vgr" in text and "40/40" in text and "100%" in text and "2/2 chunks" in text


def test_off_shows_nothing_and_sets_nothing():
    stream = io.StringIO()
    with progress.shown("run vgr", "off", stream) as display:
        display.start()
        assert progress.ENV not in os.environ
    assert stream.getvalue() == ""
    assert progress.resolve("auto", io.StringIO()) == "log"


def _rows(path: str) -> int:
    if path.endswith(".parquet"):
        return pq.read_metadata(path).num_rows
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _samples(out) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (out / "parquet" / "samples").glob("*.parquet"))


def _last_line(text: str, label: str) -> str:
    return [line for line in text.splitlines() if line.startswith(f"vgr-etl: {label}: ")][-1]


@pytest.mark.slow
def test_a_run_and_a_compaction_report_what_they_wrote_and_change_nothing(demo, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    quiet, shown = tmp_path / "quiet", tmp_path / "shown"
    flags = ["--max_reject_fraction=0.5", "--chunk_rows=8", RUNNER]
    assert main(["run", *demo["vgr"].argv(str(quiet)), *flags, "--progress=off"]) == 0
    assert "vgr-etl: run vgr:" not in capfd.readouterr().err
    assert main(["run", *demo["vgr"].argv(str(shown)), *flags, "--progress=log"]) == 0
    rows = [_rows(path) for pattern in demo["vgr"].inputs for path in glob.glob(pattern)]
    records, chunks = sum(rows), sum(-(-n // 8) for n in rows)
    last = _last_line(capfd.readouterr().err, "run vgr")
    assert last.startswith(f"vgr-etl: run vgr: {records}/{records} records (100%), {chunks}/{chunks} chunks, ")
    assert digest_tree(shown) == digest_tree(quiet)

    samples = _samples(shown)
    assert main(["compact", f"--output={shown}", "--shard_max_samples=1000", "--progress=log", RUNNER]) == 0
    last = _last_line(capfd.readouterr().err, "compact")
    assert re.match(rf"vgr-etl: compact: {samples}/{samples} samples \(100%\), 1/1 groups, ", last), last
