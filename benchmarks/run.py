"""`python -m benchmarks.run [--quick] [--vgr N] [--prm N]`: the pipeline against a bare loop, same data.

Measures, on one generated dataset (`benchmarks.data`): the full pipeline on the local runner with 1 and
2 workers, the floor loop (`benchmarks.floor`), decode-only time, the pipeline's per-stage work time (its
Beam counters), and the peak resident memory of a 1-worker run at 1× and 10× the records (and the 2-worker
throughput there). Every run is a fresh process, timed from the same point; floor and pipeline runs are
repeated in interleaved rounds and the fastest kept. The same runs on a tiny input measure each one's
start-up, so steady-state rates (extra samples over extra seconds) separate the per-sample cost from the
per-run cost. Two floor loops run at once give the machine's own 2-process scaling, the ceiling of the 2-worker
figure. Side by side, img2dataset and the pipeline on the same JPEGs (`benchmarks.peer`). Ratios are what to
compare across machines. Writes `benchmarks/results/latest.json` and prints a
table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import apache_beam

from benchmarks import peer
from benchmarks.data import BenchData, generate
from benchmarks.floor import decode_only

RESULTS = Path(__file__).parent / "results"
SOURCES = (("vgr", "vgr_input"), ("visualprm_raw", "prm_input"))
TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def machine() -> dict[str, Any]:
    model = ""
    if os.path.exists("/proc/cpuinfo"):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "apache_beam": apache_beam.__version__,
        "platform": platform.platform(),
    }


def _in_fresh_interpreters(code: str, argvs: list[list[str]]) -> list[dict[str, Any]]:
    """Run `code` in new Python processes, one per argv and all at once (so every run pays its own imports and
    start-up alike), and return the JSON each prints last, with the peak RSS of the process and its children."""
    code += (
        "import json, resource\n"
        "peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(json.dumps({'result': result, 'peak_rss_kib': peak}))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        for argv in argvs
    ]
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, stdout, stderr)
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outputs


def _in_fresh_interpreter(code: str, argv: list[str]) -> dict[str, Any]:
    return _in_fresh_interpreters(code, [argv])[0]


def pipeline_run(argv: list[str]) -> dict[str, Any]:
    """One pipeline run: samples, images, seconds (the launcher's call, from planning to the report read back),
    per-stage seconds and peak RSS."""
    code = (
        "import dataclasses, sys, time\nfrom beam_pipelines import launcher\n"
        "options = launcher.parse(sys.argv[1:])\nstarted = time.perf_counter()\n"
        "report = launcher.run(options)\n"
        "result = {**dataclasses.asdict(report), 'seconds': time.perf_counter() - started}\n"
    )
    out = _in_fresh_interpreter(code, [*argv, "--runner=FnApiRunner"])
    report = out["result"]
    return {
        "samples": report["accepted"],
        "images": sum(report["image_resolution"].values()),
        "seconds": round(report["seconds"], 3),
        "stages": report["stage_time_s"],
        "peak_rss_kib": out["peak_rss_kib"],
    }


FLOOR_CODE = (
    "import sys\nfrom benchmarks.floor import run_floor\n"
    "result = run_floor(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))\n"
)


def floor_run(source: str, input_path: str, image_root: str, output: str, chunk: int) -> dict[str, Any]:
    """One floor run, timed inside its own process from the same point as the pipeline's wall time."""
    out = _in_fresh_interpreter(FLOOR_CODE, [source, input_path, image_root, output, str(chunk)])
    return {**out["result"], "stages": {}, "peak_rss_kib": out["peak_rss_kib"]}


def concurrent_floor_seconds(source: str, input_path: str, image_root: str, outputs: list[str], chunk: int) -> float:
    """Seconds until the last of several floor runs started together (each on all the data) finishes: what the
    machine itself gives to that many processes doing this work (shared caches, memory bandwidth, neighbours)."""
    argvs = [[source, input_path, image_root, output, str(chunk)] for output in outputs]
    return max(out["result"]["seconds"] for out in _in_fresh_interpreters(FLOOR_CODE, argvs))


def _total(runs: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, float] = {}
    for run in runs:
        for stage, value in run["stages"].items():
            stages[stage] = round(stages.get(stage, 0.0) + value, 3)
    return {
        "samples": sum(r["samples"] for r in runs),
        "images": sum(r["images"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 3),
        "stages": stages,
        "peak_rss_kib": max(r["peak_rss_kib"] for r in runs),
    }


def _best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of repeated measurements: noise on a shared machine only ever adds time."""
    return min(rounds, key=lambda r: r["seconds"])


def _steady(full: dict[str, Any], small: dict[str, Any]) -> float:
    """Samples/s once running: the extra samples of the full run over its extra seconds (start-up cancels out)."""
    return (full["samples"] - small["samples"]) / max(full["seconds"] - small["seconds"], 1e-9)


def measure(
    n_vgr: int, n_prm: int, work: Path, data_dir: Path, chunk: int, sources, rounds: int, startup: int
) -> dict[str, Any]:
    data = generate(data_dir, n_vgr, n_prm)
    small = generate(data_dir.with_name(f"{data_dir.name}-startup"), startup, startup) if startup else None
    chunking = [f"--chunk_rows={chunk}"]

    def out(name: str, source: str) -> str:
        path = work / f"{name}-{source}"
        shutil.rmtree(path, ignore_errors=True)
        return str(path)

    def run(kind: str, bench: BenchData) -> dict[str, Any]:
        runs = []
        for source, attr in sources:
            if kind == "floor":
                runs.append(floor_run(source, getattr(bench, attr), bench.image_root, out(kind, source), chunk))
            else:
                argv = [*bench.argv(source, out(kind, source)), *chunking, *(TWO_WORKERS if kind == "p2" else [])]
                runs.append(pipeline_run(argv))
        return _total(runs)

    kinds = ("floor", "p1", "p2")
    measured: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    startups: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}

    def two_floors() -> float:
        pairs = ([out("floor-a", source), out("floor-b", source)] for source, _ in sources)
        return sum(
            concurrent_floor_seconds(source, getattr(data, attr), data.image_root, pair, chunk)
            for (source, attr), pair in zip(sources, pairs, strict=True)
        )

    together: list[float] = []
    for _ in range(rounds):  # interleaved, so a slow spell of the machine hits every measure alike
        for kind in kinds:
            measured[kind].append(run(kind, data))
            if small is not None:
                startups[kind].append(run(kind, small))
        together.append(two_floors())
    base, one, two = (_best(measured[k]) for k in kinds)
    decode = [decode_only(source, getattr(data, attr), data.image_root) for source, attr in sources]
    decode_images = sum(d["images"] for d in decode)
    decode_seconds = sum(d["seconds"] for d in decode)
    pillow_seconds = sum(
        decode_only(source, getattr(data, attr), data.image_root, fast=False)["seconds"] for source, attr in sources
    )
    tenfold = generate(data_dir, n_vgr, n_prm, scale=10)
    big, big_two = run("p1", tenfold), run("p2", tenfold)
    stage_total = sum(one["stages"].values()) or 1.0
    validation = sum(v for k, v in one["stages"].items() if k.startswith("validate"))
    rate = lambda r: r["samples"] / r["seconds"]  # noqa: E731
    steady: dict[str, Any] = {}
    if small is not None:
        tiny = {k: _best(startups[k]) for k in kinds}
        floor_s, one_s, two_s = (_steady(full, tiny[k]) for k, full in zip(kinds, (base, one, two), strict=True))
        steady = {
            "startup_samples": tiny["floor"]["samples"],
            "startup_seconds": {
                "floor": tiny["floor"]["seconds"],
                "pipeline_1w": tiny["p1"]["seconds"],
                "pipeline_2w": tiny["p2"]["seconds"],
            },
            "steady_floor_samples_per_s": round(floor_s, 2),
            "steady_pipeline_1w_samples_per_s": round(one_s, 2),
            "steady_pipeline_2w_samples_per_s": round(two_s, 2),
            "steady_ratio_pipeline_to_floor": round(one_s / floor_s, 3),
            "steady_scaling_2w_over_1w": round(two_s / one_s, 3),
        }
    return {
        "dataset": {
            "sources": [s for s, _ in sources],
            "vgr_samples": data.n_vgr,
            "prm_samples": data.n_prm if len(sources) > 1 else 0,
            "images": data.images,
            "chunk_rows": chunk,
        },
        "floor_samples_per_s": round(rate(base), 2),
        "floor_images_per_s": round(base["images"] / base["seconds"], 2),
        "decode_only_images_per_s": round(decode_images / decode_seconds, 2),
        "decode_only_pillow_images_per_s": round(decode_images / pillow_seconds, 2),
        "pipeline_1w_samples_per_s": round(rate(one), 2),
        "pipeline_1w_images_per_s": round(one["images"] / one["seconds"], 2),
        "pipeline_2w_samples_per_s": round(rate(two), 2),
        "pipeline_2w_images_per_s": round(two["images"] / two["seconds"], 2),
        "ratio_pipeline_to_floor": round(rate(one) / rate(base), 3),
        "scaling_2w_over_1w": round(rate(two) / rate(one), 3),
        "machine_scaling_2_floors": round(2 * base["seconds"] / min(together), 3),
        **steady,
        "peak_rss_1x_mib": round(one["peak_rss_kib"] / 1024, 1),
        "peak_rss_10x_mib": round(big["peak_rss_kib"] / 1024, 1),
        "peak_rss_ratio_10x": round(big["peak_rss_kib"] / one["peak_rss_kib"], 3),
        "pipeline_10x_samples_per_s": round(rate(big), 2),
        "pipeline_10x_2w_samples_per_s": round(rate(big_two), 2),
        "scaling_2w_over_1w_10x": round(rate(big_two) / rate(big), 3),
        "stage_seconds_1w": one["stages"],
        "stage_share_of_wall_1w": {k: round(v / one["seconds"], 3) for k, v in one["stages"].items()},
        "validation_share_of_wall_1w": round(validation / one["seconds"], 3),
        "validation_share_of_stage_work_1w": round(validation / stage_total, 3),
        "seconds": {
            "floor": base["seconds"],
            "decode_only": round(decode_seconds, 3),
            "decode_only_pillow": round(pillow_seconds, 3),
            "pipeline_1w": one["seconds"],
            "pipeline_2w": two["seconds"],
            "pipeline_10x": big["seconds"],
            "pipeline_10x_2w": big_two["seconds"],
        },
        "rounds": rounds,
        "seconds_every_round": {k: [r["seconds"] for r in v] for k, v in measured.items()},
        "machine": machine(),
    }


def table(result: dict[str, Any]) -> str:
    steady = "steady_floor_samples_per_s" in result
    rows = [
        ("floor loop", "floor", "floor"),
        ("pipeline, 1 worker", "pipeline_1w", "pipeline_1w"),
        ("pipeline, 2 workers", "pipeline_2w", "pipeline_2w"),
    ]
    lines = [f"{'':22}{'samples/s':>11}{'images/s':>11}" + (f"{'steady':>11}{'start-up s':>12}" if steady else "")]
    for name, key, seconds in rows:
        line = f"{name:22}{result[key + '_samples_per_s']!s:>11}{result[key + '_images_per_s']!s:>11}"
        if steady:
            line += f"{result['steady_' + key + '_samples_per_s']!s:>11}{result['startup_seconds'][seconds]!s:>12}"
        lines.append(line)
    lines.append(f"{'decode only':22}{'':>11}{result['decode_only_images_per_s']!s:>11}")
    lines.append(f"{'  with Pillow alone':22}{'':>11}{result['decode_only_pillow_images_per_s']!s:>11}")
    ratio, scaling = result["ratio_pipeline_to_floor"], result["scaling_2w_over_1w"]
    if steady:
        ratio = f"{ratio} whole run, {result['steady_ratio_pipeline_to_floor']} steady"
        scaling = f"{scaling} whole run, {result['steady_scaling_2w_over_1w']} steady"
    lines += [
        f"pipeline / floor          {ratio}  (target >= 0.95 whole run)",
        f"2 workers / 1 worker      {scaling}  (target >= 1.75 whole run on 2 cores)",
        f"  the machine's own       {result['machine_scaling_2_floors']}  (two floor loops at once / one)\n"
        f"  on 10x the records      {result['scaling_2w_over_1w_10x']} whole run "
        f"({result['pipeline_10x_samples_per_s']} -> {result['pipeline_10x_2w_samples_per_s']} samples/s)",
        f"peak RSS 10x / 1x         {result['peak_rss_ratio_10x']}  ({result['peak_rss_1x_mib']} -> "
        f"{result['peak_rss_10x_mib']} MiB; target <= 1.3)",
        f"validation share of wall  {result['validation_share_of_wall_1w']}  (target < 0.15)",
        "stage seconds (1 worker): " + ", ".join(f"{k} {v}" for k, v in result["stage_seconds_1w"].items()),
    ]
    lines.append(_peer_line(result))
    return "\n".join(lines)


def _peer_line(result: dict[str, Any]) -> str:
    about = result.get("peer_img2dataset", {})
    if "skipped" in about or not about:
        return f"vs img2dataset            skipped: {about.get('skipped', 'not run')}"
    return (
        f"vs img2dataset {about['version']}     {result['ratio_to_img2dataset']}  (target >= 1.3; "
        f"{result['pipeline_images_per_s_same_images']} vs {result['peer_img2dataset_images_per_s']} images/s on the "
        f"same {about['images']:,} JPEGs, {about['processes']} processes each, whole processes; CPU "
        f"{_cpu(about, 'vgr-etl')} vs {_cpu(about, 'img2dataset')} s user + system; "
        f"writes {_mb(about, 'vgr-etl')} vs {_mb(about, 'img2dataset')} MB)"
    )


def _cpu(about: dict[str, Any], tool: str) -> str:
    cpu = about["cpu_s"][tool]
    return f"{cpu['user']:.1f} + {cpu['system']:.1f}"


def _mb(about: dict[str, Any], tool: str) -> str:
    return f"{about['bytes_written'][tool] / 1e6:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="40 VGR samples only: a smoke check in under a minute (ratios meaningless)"
    )
    parser.add_argument("--vgr", type=int, default=1200, help="VGR samples (default 1200)")
    parser.add_argument("--prm", type=int, default=1200, help="VisualPRM400K-Raw samples (default 1200)")
    parser.add_argument(
        "--chunk",
        type=int,
        default=100,
        help="--chunk_rows for the runs (input rows per chunk; default 100: 12 chunks per source, an equal "
        "share for each of 2 workers)",
    )
    parser.add_argument(
        "--startup",
        type=int,
        default=24,
        help="records per source of the start-up runs that steady-state rates subtract (default 24; 0: none)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="repeat floor, 1-worker and 2-worker runs, keep each one's fastest (default 2)",
    )
    parser.add_argument(
        "--peer_images",
        type=int,
        default=3000,
        help="JPEGs of the side-by-side run with img2dataset (installed into its own environment on first use; "
        "0: no peer; --quick runs it on 60 images only if it is installed already)",
    )
    parser.add_argument("--data", default=None, help="where to keep the generated data (reused across runs)")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"), help="result JSON path")
    args = parser.parse_args(argv)
    n_vgr, n_prm = (40, 12) if args.quick else (args.vgr, args.prm)
    sources = SOURCES[:1] if args.quick else SOURCES
    chunk = 10 if args.quick else args.chunk
    data_dir = Path(args.data or Path(tempfile.gettempdir()) / f"vgr-etl-bench-{n_vgr}-{n_prm}")
    work = Path(tempfile.mkdtemp(prefix="vgr-etl-bench-out-"))
    try:
        result = {
            "quick": args.quick,
            **measure(
                n_vgr,
                n_prm,
                work,
                data_dir,
                chunk,
                sources,
                1 if args.quick else args.rounds,
                0 if args.quick else args.startup,
            ),
        }
        if args.peer_images:
            result.update(
                peer.compare(
                    data_dir.with_name(f"{data_dir.name}-peer-{60 if args.quick else args.peer_images}"),
                    work,
                    60 if args.quick else args.peer_images,
                    processes=2,
                    chunk=chunk,
                    rounds=1 if args.quick else args.rounds,
                    install=not args.quick,
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
