"""`vgr-etl demo`: generate the demo dataset and run every source on it with the local runner."""

from __future__ import annotations

import os

from beam_pipelines import launcher
from beam_pipelines.demo.generate import generate


def run_demo(output: str, beam_args: list[str]) -> int:
    data = os.path.join(output, "data")
    print(f"generating the demo dataset under {data}")
    runs = generate(data)
    status = 0
    for source, demo_run in runs.items():
        out = os.path.join(output, "out", source)
        try:
            report = launcher.run(launcher.parse([*demo_run.argv(out), *beam_args]))
        except Exception as exc:
            print(f"{source}: run failed: {exc}")
            status = 1
            continue
        assert report is not None
        print(report.summary(out))
        if report.failure():
            print(f"{source}: {report.failure()}")
            status = 1
    print(f"\ndone: outputs under {os.path.join(output, 'out')}/<source>/, each with report.json")
    return status
