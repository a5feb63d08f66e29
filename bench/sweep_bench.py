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
    "The sweep saves two costs of the one-by-one runs: each `keraslab approx` process "
    "imports Keras and torch (seconds each) where a sweep worker imports them once, and "
    "the runs go one at a time where the sweep trains two at once. Both sides train "
    "these small networks on one torch thread. "
    "`load before` is the 1-minute load average when the script started: on a machine "
    "shared with other jobs both times grow, and the ratio moves with the load.\n\n"
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
    elapsed = time.perf_counter() - started
    check_runs(outputs, study)
    return elapsed


def check_runs(outputs: Path, study: dict[str, list[str]]) -> None:
    """Stop unless every run of the study wrote its run.json (a crash also exits with 1)."""
    expected = 1
    for values in study.values():
        expected *= len(values)
    written = len(list((outputs / "approx").glob("*/run.json")))
    if written != expected:
        raise SystemExit(f"{written} run.json files in {outputs}, expected {expected}: some runs failed")


def as_sweep(study: dict[str, list[str]], outputs: Path, jobs: int) -> float:
    """Run the whole study as one keraslab sweep; return the wall time."""
    started = time.perf_counter()
    arguments = ["sweep", "approx", *study_flags(study), "--jobs", str(jobs), "--outputs", str(outputs), "--quiet"]
    completed = subprocess.run(keraslab(*arguments), check=False)
    if completed.returncode != 0:
        raise SystemExit(f"keraslab sweep failed with exit code {completed.returncode}")
    elapsed = time.perf_counter() - started
    check_runs(outputs, study)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="epochs 100,400 instead of 1000,4000")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the sweep (default 2)")
    parser.add_argument("--keep", type=Path, help="an empty folder that keeps the runs and figures (default: a temporary folder, deleted)")
    arguments = parser.parse_args()

    study = dict(STUDY, epochs=QUICK_EPOCHS) if arguments.quick else dict(STUDY)
    runs = len(list(itertools.product(*study.values())))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="keraslab-bench-") as temporary:
        folder = arguments.keep or Path(temporary)
        if any(folder.glob("*")):
            raise SystemExit(f"{folder} is not empty: earlier runs would be reused and the timing would be wrong")
        serial = one_by_one(study, folder / "serial")
        swept = as_sweep(study, folder / "sweep", arguments.jobs)
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
