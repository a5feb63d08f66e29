"""Measure keraslab's training speed, start-up time and memory against Keras's fit.

In one process, the script times epochs of the lab's default run (100 points,
4 hidden layers of 10 tanh neurons, rmsprop, full batch) three ways:

- ``model.fit`` called as the handout calls it;
- keraslab's training (``keraslab_cli.core.training.train``, as ``approx`` runs it);
- a plain PyTorch loop of the same model, optimizer and data.

Each repetition runs every measurement once, in turn, so that load from other
processes affects them alike. The tables give medians over the repetitions
and the median of the per-repetition ratios. Then it times ``keraslab --help``,
``keraslab approx --epochs 1`` and the default ``keraslab approx`` as
subprocesses (before the training measurements), with their peak resident
memory. It also runs 20 short runs in one sweep worker and compares the
worker's resident memory after 2 runs and after 20, which shows whether a
long-lived worker leaks. Last, it appends a dated section to
``bench/RESULTS.md``.

Usage::

    .venv/bin/python bench/run.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/run.py --quick         # fewer epochs and repetitions
    .venv/bin/python bench/run.py --label "after the change"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
KERASLAB = Path(sys.executable).parent / "keraslab"
HEADER = """# Benchmark

Written by `bench/run.py` (see its docstring for what it measures); each run
appends one section. Times per epoch are for the lab's default run: 100 points,
4 hidden layers of 10 tanh neurons, rmsprop, full batch. Goals: keraslab's
training at most 0.25 × fit's time per epoch and at most 1.3 × the plain
PyTorch loop's, `keraslab --help` under 0.5 s. On a machine shared with other
processes, absolute times vary from run to run, so compare the ratios, which
come from the same repetitions.
"""


def lab_data():
    """Return the handout's X_train and Y_train: f on 100 evenly spaced points of [0, 5], as columns."""
    import numpy as np

    x = np.linspace(0, 5, 100)
    y = np.cos(2 * x) + x * np.sin(3 * x) + np.sqrt(x) - 2
    return x.reshape(-1, 1), y.reshape(-1, 1)


def time_fit(epochs: int) -> float:
    """Return ms per epoch of the handout's model trained with ``model.fit``."""
    from keraslab_cli.core.backend import keras

    x_train, y_train = lab_data()
    model = keras.Sequential(
        [keras.layers.Input(shape=(1,))]
        + [keras.layers.Dense(10, activation="tanh") for _layer in range(4)]
        + [keras.layers.Dense(1, activation="linear")]
    )
    model.compile(loss="mean_squared_error")
    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=len(x_train), verbose=0)
    return 1000 * (time.perf_counter() - started) / epochs


def time_keraslab(epochs: int) -> float:
    """Return ms per epoch of keraslab's training of the default run, as ``approx`` trains it."""
    from keraslab_cli.core.data import make_dataset
    from keraslab_cli.core.models import build_mlp
    from keraslab_cli.core.spec import ExperimentSpec
    from keraslab_cli.core.training import train

    spec = ExperimentSpec(epochs=epochs)
    data = make_dataset(spec)
    result = train(build_mlp(spec, data), spec, data)
    return 1000 * result.seconds / result.epochs_run


def time_plain_torch(epochs: int) -> float:
    """Return ms per epoch of a plain PyTorch loop: the same layers, RMSprop with Keras's defaults, rows shuffled each epoch."""
    from keraslab_cli.core.backend import torch

    x_train, y_train = (torch.tensor(array, dtype=torch.float32) for array in lab_data())
    layers: list[torch.nn.Module] = []
    inputs = 1
    for _layer in range(4):
        layers += [torch.nn.Linear(inputs, 10), torch.nn.Tanh()]
        inputs = 10
    model = torch.nn.Sequential(*layers, torch.nn.Linear(10, 1))
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    history = []
    started = time.perf_counter()
    for _epoch in range(epochs):
        rows = torch.randperm(len(x_train))
        optimizer.zero_grad()
        loss = torch.mean(torch.square(model(x_train[rows]) - y_train[rows]))
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return 1000 * (time.perf_counter() - started) / epochs


def with_threads(count: int, function, *args):
    """Call ``function(*args)`` with torch limited to ``count`` threads, then restore the count."""
    from keraslab_cli.core.backend import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        return function(*args)
    finally:
        torch.set_num_threads(previous)


def measure_training(epochs: int, default_thread_epochs: int, repeats: int) -> tuple[dict[str, list[float]], int]:
    """Time every training variant once per repetition and return the samples by name."""
    from keraslab_cli.core.backend import torch

    default_threads = torch.get_num_threads()
    variants = {
        "fit, 1 thread": lambda: with_threads(1, time_fit, epochs),
        "keraslab, as shipped": lambda: time_keraslab(epochs),
        "keraslab, 1 thread": lambda: with_threads(1, time_keraslab, epochs),
        "plain PyTorch, 1 thread": lambda: with_threads(1, time_plain_torch, epochs),
        f"fit, {default_threads} threads (torch default)": lambda: time_fit(default_thread_epochs),
        f"plain PyTorch, {default_threads} threads (torch default)": lambda: time_plain_torch(default_thread_epochs),
    }
    for function in variants.values():
        function()  # untimed: the first call pays one-time set-up costs
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for repetition in range(repeats):
        for name, function in variants.items():
            samples[name].append(function())
        print(f"repetition {repetition + 1}/{repeats}: " + ", ".join(f"{name} {values[-1]:.3f} ms" for name, values in samples.items()), flush=True)
    return samples, default_threads


def run_command(arguments: list[str], environment: dict[str, str]) -> tuple[float, float, int]:
    """Run a command and return its wall time in s, its peak resident memory in MiB and its exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode


def measure_commands(repeats: int, folder: Path) -> dict[str, dict]:
    """Time the start-up and the runs of keraslab as a student types them."""
    environment = {**os.environ, "KERASLAB_LANG": "en"}
    commands = {
        "import keras and torch": ([sys.executable, "-c", "import keraslab_cli.core.backend"], repeats),
        "keraslab --help": ([str(KERASLAB), "--help"], 2 * repeats),
        "keraslab approx --help": ([str(KERASLAB), "approx", "--help"], repeats),
        "keraslab approx --epochs 1": ([str(KERASLAB), "approx", "--epochs", "1", "--quiet", "--outputs", str(folder / "one")], repeats),
        "keraslab approx": ([str(KERASLAB), "approx", "--quiet", "--outputs", str(folder / "default")], repeats),
    }
    results = {}
    for name, (arguments, count) in commands.items():
        runs = [run_command(arguments, environment) for _run in range(count)]
        failed = [code for _seconds, _memory, code in runs if code != 0]
        results[name] = {"seconds": [run[0] for run in runs], "peak_mb": [run[1] for run in runs], "failed": failed}
        print(f"{name}: median {statistics.median(results[name]['seconds']):.2f} s", flush=True)
    run_json = json.loads(next((folder / "default").glob("approx/*/run.json")).read_text(encoding="utf-8"))
    results["keraslab approx"]["run_json"] = {key: run_json["metrics"].get(key) for key in ("ms_per_epoch", "peak_rss_mb", "train_seconds", "total_seconds")}
    results["keraslab approx"]["run_json"]["engine"] = run_json.get("engine")
    return results


def measure_worker_memory(runs: int, epochs: int, folder: Path) -> list[float]:
    """Run ``runs`` small specs in one sweep worker and return its RSS in MiB after each."""
    from keraslab_cli.core.spec import ExperimentSpec
    from keraslab_cli.core.sweep import run_specs_in_one_worker

    variants = [("rmsprop", False), ("adam", True), ("sgd", False), ("adam", False), ("rmsprop", True)]
    specs = [
        ExperimentSpec(epochs=epochs, optimizer=variants[index % len(variants)][0], normalize=variants[index % len(variants)][1], seed=index)
        for index in range(runs)
    ]
    return [outcome.rss_mb for outcome in run_specs_in_one_worker(specs, folder)]


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(numerator / denominator for numerator, denominator in zip(numerators, denominators))


def spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def format_section(label: str, training: dict[str, list[float]], default_threads: int, commands: dict[str, dict], settings: dict) -> str:
    """Format the Markdown section of one benchmark run."""
    load_start, load_end = settings["load"]
    lines = [
        f"## {settings['date']}{' · ' + label if label else ''}",
        "",
        f"Machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {platform.machine()}, "
        f"load average {load_start:.1f} at the start and {load_end:.1f} at the end. "
        f"Python {platform.python_version()}, keras {version('keras')}, torch {version('torch')}, "
        f"ml_dtypes {version('ml_dtypes')}, {settings['source']}. "
        f"{settings['epochs']} epochs per measurement ({settings['default_thread_epochs']} with torch's default "
        f"{default_threads} threads), {settings['repeats']} repetitions.",
        "",
        "| training | ms per epoch, median (min–max) |",
        "|---|---|",
    ]
    lines += [f"| {name} | {spread(values, 3)} |" for name, values in training.items()]
    keraslab = training["keraslab, as shipped"]
    fit_default = next(values for name, values in training.items() if name.startswith("fit,") and "default" in name)
    lines += [
        "",
        "| ratio (median of per-repetition ratios) | value | goal |",
        "|---|---|---|",
        f"| keraslab / fit, both on 1 thread | {median_ratio(training['keraslab, 1 thread'], training['fit, 1 thread']):.3f} | ≤ 0.25 |",
        f"| keraslab / plain PyTorch, both on 1 thread | {median_ratio(training['keraslab, 1 thread'], training['plain PyTorch, 1 thread']):.3f} | ≤ 1.3 |",
        f"| keraslab as shipped / fit with torch's default threads | {median_ratio(keraslab, fit_default):.3f} | ≤ 0.25 |",
        "",
        "| command | wall time in s, median (min–max) | peak memory in MiB, median |",
        "|---|---|---|",
    ]
    for name, result in commands.items():
        failures = f" ({len(result['failed'])} runs failed)" if result["failed"] else ""
        lines.append(f"| `{name}` | {spread(result['seconds'], 2)}{failures} | {statistics.median(result['peak_mb']):.0f} |")
    memory = settings.get("worker_rss")
    if memory:
        lines += [
            "",
            f"Sweep worker memory ({len(memory)} runs of {settings['worker_epochs']} epochs in one worker): "
            f"{memory[1]:.1f} MiB after 2 runs, {memory[-1]:.1f} MiB after {len(memory)}, "
            f"ratio {memory[-1] / memory[1]:.3f} (goal ≤ 1.10).",
        ]
    details = commands["keraslab approx"]["run_json"]
    lines += [
        "",
        f"The default `keraslab approx` run's run.json: engine {details['engine']}, "
        f"{details['ms_per_epoch']:.3f} ms per epoch, training {details['train_seconds']:.2f} s of "
        f"{details['total_seconds']:.2f} s, peak_rss_mb {details['peak_rss_mb']:.0f}.",
        "",
    ]
    return "\n".join(lines)


def keraslab_source() -> str:
    """Name the keraslab measured: this repository's commit, or the folder it was imported from."""
    import keraslab_cli

    package = Path(keraslab_cli.__file__).resolve().parent
    repository = Path(__file__).resolve().parent.parent
    if package.parent != repository:
        return f"keraslab from {package}"
    completed = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=repository)
    return f"keraslab at commit {completed.stdout.strip() or 'unknown'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=300, help="epochs per training measurement on 1 thread (default 300)")
    parser.add_argument("--default-thread-epochs", type=int, default=50, help="epochs per measurement on torch's default threads (default 50)")
    parser.add_argument("--repeats", type=int, default=7, help="repetitions of each training measurement (default 7)")
    parser.add_argument("--command-repeats", type=int, default=3, help="runs of each command, twice as many for --help (default 3)")
    parser.add_argument("--quick", action="store_true", help="100 epochs, 3 repetitions, 1 run per command: a smoke test")
    parser.add_argument("--label", default="", help="text added to the section title, for example 'before the change'")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Markdown file the section is appended to (default bench/RESULTS.md)")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.epochs, arguments.default_thread_epochs, arguments.repeats, arguments.command_repeats = 100, 20, 3, 1

    load_start = os.getloadavg()[0]
    # Commands run first: a child's peak resident memory counts the memory it
    # inherited from this process at fork time, which is small only until
    # this process imports keras and torch.
    with tempfile.TemporaryDirectory() as folder:
        commands = measure_commands(arguments.command_repeats, Path(folder))
    worker_epochs = 50 if arguments.quick else 200
    with tempfile.TemporaryDirectory() as folder:
        worker_rss = measure_worker_memory(20, worker_epochs, Path(folder))
    training, default_threads = measure_training(arguments.epochs, arguments.default_thread_epochs, arguments.repeats)
    settings = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": (load_start, os.getloadavg()[0]),
        "source": keraslab_source(),
        "epochs": arguments.epochs,
        "default_thread_epochs": arguments.default_thread_epochs,
        "repeats": arguments.repeats,
        "worker_rss": worker_rss,
        "worker_epochs": worker_epochs,
    }
    section = format_section(arguments.label, training, default_threads, commands, settings)
    print("\n" + section)
    existing = arguments.results.read_text(encoding="utf-8") if arguments.results.exists() else HEADER
    arguments.results.write_text(existing.rstrip("\n") + "\n\n" + section, encoding="utf-8")
    print(f"appended to {arguments.results}")


if __name__ == "__main__":
    main()
