"""`vgr-etl demo`: generate the demo dataset and run every source on it with the local runner."""

from __future__ import annotations

import os

from beam_pipelines.cli import RunFailed, run_pipeline, summary
from beam_pipelines.demo.generate import generate


def run_demo(output: str, beam_args: list[str]) -> int:
    data = os.path.join(output, "data")
    print(f"generating the demo dataset under {data}")
    runs = generate(data)
    status = 0
    for source, demo_run in runs.items():
        out = os.path.join(output, "out", source)
        try:
            report = run_pipeline([*demo_run.argv(out), *beam_args])
        except RunFailed as exc:
            print(f"{source}: run failed: {exc}")
            status = 1
            continue
        assert report is not None
        print(summary(report, out))
    print(f"\ndone: outputs under {os.path.join(output, 'out')}/<source>/, each with report.json")
    return status
