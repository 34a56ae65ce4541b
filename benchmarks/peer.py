"""The peer: img2dataset on the same local JPEGs as the pipeline, the comparison a user choosing a tool makes.

img2dataset is not a dependency of vgr-etl: the benchmark installs its pinned release into a virtual environment
of its own (kept under `~/.cache/vgr-etl-bench/`, reused), from the package registry. It reads a list of URLs;
`file://` URLs make it read local files through urllib with no network. Its work per image: read, decode, resize
to 256 (border), encode JPEG, write WebDataset shards. The pipeline's on the same images: a VGR record with two
boxes per image, the record and image suites, a full decode, two crops, replay geometry, Parquet and WebDataset
shards, dead letters, report and pages. Both run with the same number of processes and are timed as whole
processes, from the command to its exit, one after the other in the same rounds; the fastest of each is kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.data import photo

VERSION = "1.47.0"
CACHE = Path.home() / ".cache" / "vgr-etl-bench" / f"img2dataset-{VERSION}"
SIZES = ((640, 480), (800, 600))
THREADS = 8
WORK = {
    "img2dataset": "read, decode, resize to 256 (border), encode JPEG, write WebDataset",
    "vgr-etl": "parse, record and image suites, decode, 2 crops, replay, Parquet + WebDataset, dead letters, pages",
}


@dataclass(frozen=True)
class PeerData:
    image_root: Path
    records: Path
    images: list[Path]

    def argv(self, output: str) -> list[str]:
        root = str(self.image_root)
        return ["--source", "vgr", "--input", str(self.records), "--image_root", root, "--output", output]


def generate(root: Path, n_images: int, seed: int = 1) -> PeerData:
    """`n_images` photo JPEGs (quality 90, half 640×480, half 800×600), reused if present, and one VGR record with
    two boxes per image."""
    image_root = root / "images"
    image_root.mkdir(parents=True, exist_ok=True)
    rng, prng = np.random.default_rng(seed), random.Random(seed)
    paths, rows = [], []
    for i in range(n_images):
        path = image_root / f"{i:06d}.jpg"
        if not path.exists():
            photo(rng, *SIZES[i % 2]).save(path, format="JPEG", quality=90)
        paths.append(path)
        boxes = []
        for _ in range(2):
            w, h = prng.uniform(0.1, 0.5), prng.uniform(0.1, 0.5)
            x, y = prng.uniform(0, 1 - w), prng.uniform(0, 1 - h)
            boxes.append([round(x, 3), round(y, 3), round(x + w, 3), round(y + h, 3)])
        steps = " ".join(f"Region {j}: <SOT>{json.dumps(b)}<EOT><image> shows part {j}." for j, b in enumerate(boxes))
        rows.append(
            {
                "image": path.name,
                "conversations": [
                    {"from": "human", "value": f"<image>\nWhat does photo {i} show?"},
                    {"from": "gpt", "value": f"<think> {steps} </think> Final answer: {i % 7}"},
                ],
            }
        )
    records = root / "peer_vgr.parquet"
    pq.write_table(pa.Table.from_pylist(rows), records, row_group_size=1000)
    return PeerData(image_root, records, paths)


def installed(cache: Path = CACHE, install: bool = True) -> tuple[Path | None, str]:
    """The img2dataset executable of the benchmark's own environment, installing it first if `install`; None and
    the reason when it is not there and cannot be made (offline, no registry)."""
    exe = cache / "bin" / "img2dataset"
    if (cache / ".installed").exists() and exe.exists():
        return exe, ""
    if not install:
        return None, f"img2dataset {VERSION} is not installed in {cache} (the full benchmark installs it)"
    shutil.rmtree(cache, ignore_errors=True)
    steps = (
        [sys.executable, "-m", "venv", str(cache)],
        [str(cache / "bin" / "pip"), "install", "--quiet", f"img2dataset=={VERSION}"],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            shutil.rmtree(cache, ignore_errors=True)
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"img2dataset {VERSION} could not be installed ({' '.join(step[:3])}: {tail})"
    (cache / ".installed").touch()
    return exe, ""


def command(exe: Path, url_list: Path, output: Path, processes: int, per_shard: int) -> list[str]:
    return [
        str(exe),
        f"--url_list={url_list}",
        "--input_format=txt",
        f"--output_folder={output}",
        "--output_format=webdataset",
        "--image_size=256",
        "--resize_mode=border",
        "--encode_format=jpg",
        f"--processes_count={processes}",
        f"--thread_count={THREADS}",
        f"--number_sample_per_shard={per_shard}",
        "--distributor=multiprocessing",
        "--disallowed_header_directives=[]",
        "--enable_wandb=False",
        "--retries=0",
    ]


def successes(output: Path) -> tuple[int, dict[str, int]]:
    """Images img2dataset wrote, summed from its per-shard `*_stats.json`, and its failures by reason."""
    ok, failed = 0, {}
    for path in sorted(output.glob("*_stats.json")):
        stats = json.loads(path.read_text())
        ok += stats["successes"]
        for reason, n in stats.get("status_dict", {}).items():
            if reason != "success":
                failed[reason] = failed.get(reason, 0) + n
    return ok, failed


PR_SET_CHILD_SUBREAPER = 36


def whole_tree(cmd: list[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess, float, dict[str, float]]:
    """Run `cmd` to its exit: the completed process, its wall seconds (from the call to the exit), and the CPU
    seconds, user and system, of every process it started. The kernel counts a process's CPU into its parent's
    children when it is reaped; this process makes itself the subreaper of the tree while it runs, so workers that
    outlive their parent are adopted, waited for and counted too (Linux; elsewhere only reaped children count)."""
    libc = ctypes.CDLL(None, use_errno=True)
    subreaper = hasattr(libc, "prctl") and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    earlier = _children(os.getpid())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        seconds = time.perf_counter() - started
        if subreaper:
            _reap_adopted(earlier, deadline=time.monotonic() + 60)
    finally:
        if subreaper:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {"user": round(after.ru_utime - before.ru_utime, 3), "system": round(after.ru_stime - before.ru_stime, 3)}
    return done, seconds, cpu


def _children(parent: int) -> set[int]:
    """Pids whose parent is `parent`, zombies included (from /proc; empty where there is none)."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            kids.add(int(stat.parent.name))
    return kids


def _reap_adopted(earlier: set[int], deadline: float) -> None:
    """Wait, up to `deadline`, until no child is left but those of `earlier`: the tree's orphans come to this
    process one by one as their parents exit, so the tree is done when none is left."""
    while time.monotonic() < deadline and (adopted := _children(os.getpid()) - earlier):
        for pid in adopted:
            with contextlib.suppress(ChildProcessError):  # reaped already, or no longer ours
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.01)


def bytes_under(folder: Path) -> int:
    """Bytes of every file under `folder`: what a tool wrote."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_img2dataset(exe: Path, data: PeerData, output: Path, processes: int) -> dict[str, Any]:
    """One whole img2dataset process on the images (three shards per process, so every process has work)."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    urls = output.with_name(output.name + "-urls.txt")
    urls.write_text("".join(p.resolve().as_uri() + "\n" for p in data.images))
    per_shard = max(1, -(-len(data.images) // (processes * 3)))
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    done, seconds, cpu = whole_tree(command(exe, urls, output, processes, per_shard), env=env)
    if done.returncode:
        raise RuntimeError(f"img2dataset exited {done.returncode}: {done.stderr.strip()[-500:]}")
    ok, failed = successes(output)
    return {"images": ok, "failed": failed, "seconds": round(seconds, 3), "cpu_s": cpu, "bytes": bytes_under(output)}


def run_pipeline(data: PeerData, output: Path, workers: int, chunk: int) -> dict[str, Any]:
    """One whole `vgr-etl run` process on the same images, with `workers` local workers."""
    shutil.rmtree(output, ignore_errors=True)
    argv = [*data.argv(str(output)), f"--chunk_rows={chunk}", "--runner=FnApiRunner", "--progress=off"]
    if workers > 1:
        argv += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    done, seconds, cpu = whole_tree(
        [sys.executable, "-m", "beam_pipelines", "run", *argv], cwd=Path(__file__).parent.parent
    )
    if done.returncode:
        raise RuntimeError(f"vgr-etl exited {done.returncode}: {done.stderr.strip()[-500:]}")
    report = json.loads((output / "report.json").read_text())
    images, written = sum(report["image_resolution"].values()), bytes_under(output)
    return {"images": images, "samples": report["accepted"], "seconds": seconds, "cpu_s": cpu, "bytes": written}


def compare(
    root: Path, work: Path, n_images: int, processes: int, chunk: int, rounds: int, install: bool
) -> dict[str, Any]:
    """Both tools on the same images, interleaved rounds, fastest of each kept; or why the peer was skipped."""
    exe, reason = installed(install=install)
    if exe is None:
        print(f"benchmark: peer skipped: {reason}", file=sys.stderr)
        return {"peer_img2dataset": {"skipped": reason}}
    data = generate(root, n_images)
    peer, ours = [], []
    for _ in range(rounds):
        peer.append(run_img2dataset(exe, data, work / "img2dataset", processes))
        ours.append(run_pipeline(data, work / "vgr-etl-peer", processes, chunk))
    best_peer, best_ours = min(peer, key=lambda r: r["seconds"]), min(ours, key=lambda r: r["seconds"])
    if best_peer["images"] != n_images or best_ours["images"] != n_images:
        raise RuntimeError(f"not every image was processed: img2dataset {best_peer}, vgr-etl {best_ours}")
    peer_rate, our_rate = n_images / best_peer["seconds"], n_images / best_ours["seconds"]
    return {
        "peer_img2dataset_images_per_s": round(peer_rate, 2),
        "pipeline_images_per_s_same_images": round(our_rate, 2),
        "ratio_to_img2dataset": round(our_rate / peer_rate, 3),
        "peer_img2dataset": {
            "version": VERSION,
            "images": n_images,
            "image_sizes": [list(size) for size in SIZES],
            "processes": processes,
            "threads_per_process": THREADS,
            "work": WORK,
            "seconds": {"img2dataset": best_peer["seconds"], "vgr-etl": round(best_ours["seconds"], 3)},
            "seconds_every_round": {
                "img2dataset": [r["seconds"] for r in peer],
                "vgr-etl": [round(r["seconds"], 3) for r in ours],
            },
            "cpu_s": {"img2dataset": best_peer["cpu_s"], "vgr-etl": best_ours["cpu_s"]},
            "bytes_written": {"img2dataset": best_peer["bytes"], "vgr-etl": best_ours["bytes"]},
        },
    }
