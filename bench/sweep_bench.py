"""Time the lab's exercise-2 study as one sweep against the same runs made one by one.

The study is ``--p 2,5,10 --epochs 1000,4000 --optimizer sgd,adam
--normalize both`` (24 runs). The script first runs each configuration as a
separate ``keraslab approx`` process, then the whole study as one
``keraslab sweep approx --jobs 2``, each into a fresh outputs folder so that
nothing is reused. It prints both wall times and their ratio and appends a
row to ``bench/SWEEP_RESULTS.md``.

Usage::

    .venv/bin/python bench/sweep_bench.py            # the full study (long)
    .venv/bin/python bench/sweep_bench.py --quick    # epochs 100,400: a smoke test
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "SWEEP_RESULTS.md"
STUDY = {"p": ["2", "5", "10"], "epochs": ["1000", "4000"], "optimizer": ["sgd", "adam"], "normalize": ["false", "true"]}
QUICK_EPOCHS = ["100", "400"]
TARGET_RATIO = 0.4
HEADER = (
    "# sweep benchmark\n\n"
    "Wall time of the lab's exercise-2 study run as one `keraslab sweep approx --jobs 2` "
    "against the same runs made one by one as separate `keraslab approx` processes, "
    f"measured by `bench/sweep_bench.py` in one invocation. Target: ratio ≤ {TARGET_RATIO}.\n\n"
    "| date (UTC) | study | runs | cores | load before | one by one (s) | sweep (s) | ratio | machine |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def keraslab(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "keraslab_cli", *arguments]


def study_flags(study: dict[str, list[str]]) -> list[str]:
    flags = []
    for name, values in study.items():
        flags += [f"--{name}", ",".join(values)]
    return flags


def one_by_one(study: dict[str, list[str]], outputs: Path) -> float:
    """Run every configuration as its own keraslab approx process; return the wall time."""
    started = time.perf_counter()
    for values in itertools.product(*study.values()):
        arguments = ["approx", "--outputs", str(outputs), "--quiet"]
        for name, value in zip(study, values):
            if name == "normalize":
                arguments.append("--normalize" if value == "true" else "--no-normalize")
            else:
                arguments += [f"--{name}", value]
        # Exit code 1 is a diverged run, which is one of the study's results.
        completed = subprocess.run(keraslab(*arguments), check=False)
        if completed.returncode not in (0, 1):
            raise SystemExit(f"keraslab approx failed with exit code {completed.returncode}: {' '.join(arguments)}")
    return time.perf_counter() - started


def as_sweep(study: dict[str, list[str]], outputs: Path, jobs: int) -> float:
    """Run the whole study as one keraslab sweep; return the wall time."""
    started = time.perf_counter()
    arguments = ["sweep", "approx", *study_flags(study), "--jobs", str(jobs), "--outputs", str(outputs), "--quiet"]
    completed = subprocess.run(keraslab(*arguments), check=False)
    if completed.returncode != 0:
        raise SystemExit(f"keraslab sweep failed with exit code {completed.returncode}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="epochs 100,400 instead of 1000,4000")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the sweep (default 2)")
    arguments = parser.parse_args()

    study = dict(STUDY, epochs=QUICK_EPOCHS) if arguments.quick else dict(STUDY)
    runs = 1
    for values in study.values():
        runs *= len(values)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="keraslab-bench-") as folder:
        serial = one_by_one(study, Path(folder) / "serial")
        swept = as_sweep(study, Path(folder) / "sweep", arguments.jobs)
    ratio = swept / serial
    description = " ".join(study_flags(study))
    print(f"study: {description} ({runs} runs), {cores} cores, load average before {load_before:.1f}")
    print(f"one by one: {serial:.1f} s, sweep --jobs {arguments.jobs}: {swept:.1f} s, ratio {ratio:.3f} (target ≤ {TARGET_RATIO})")

    if not RESULTS.exists():
        RESULTS.write_text(HEADER, encoding="utf-8")
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    row = f"| {date} | `{description}` | {runs} | {cores} | {load_before:.1f} | {serial:.1f} | {swept:.1f} | {ratio:.3f} | {platform.machine()}, Python {platform.python_version()} |\n"
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(row)


if __name__ == "__main__":
    main()
