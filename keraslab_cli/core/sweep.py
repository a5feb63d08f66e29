"""Parameter studies: many runs of approx or noisy from lists of flag values.

A sweep expands each flag's text (``2,5,10``, ``2:10:2``, ``both``) into
values, takes the cartesian product, and runs every configuration, ``repeat``
times with consecutive seeds, through ``run_experiment``. Runs go to a pool of
worker processes that each import Keras once and use one torch thread. A run
whose folder already contains a run.json with the same configuration is reused,
so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import re
import resource
import signal
import typing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from keraslab_cli.core import defaults
from keraslab_cli.core.commands import COMMAND_DEFAULTS
from keraslab_cli.core.errors import InvalidValue, KeraslabError
from keraslab_cli.core.i18n import N_, _, get_language, set_language
from keraslab_cli.core.naming import run_name
from keraslab_cli.core.outputs import prepare_folder, write_csv, write_json
from keraslab_cli.core.spec import ExperimentSpec, validate

REUSABLE_STATUSES = ("completed", "early_stopped", "diverged")
FINISHED_STATUSES = ("completed", "early_stopped")
TRUE_WORDS = ("true", "yes", "on", "1", "oui", "vrai")
FALSE_WORDS = ("false", "no", "off", "0", "non", "faux")
DEFAULT_WORDS = ("default", "none")
MAX_RANGE_VALUES = 1000  # a range longer than this is almost certainly a typo in the step
MAX_NAME_LENGTH = 100  # sweep folder names stay readable; longer ones end with a hash


# Values ---------------------------------------------------------------------


def field_type(field_name: str) -> Any:
    """Return the type of an ExperimentSpec field with Optional unwrapped (``int`` for batch_size)."""
    hint = typing.get_type_hints(ExperimentSpec)[field_name]
    arguments = [argument for argument in typing.get_args(hint) if argument is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple
    return arguments[0] if arguments and typing.get_origin(hint) is not tuple else hint


def is_optional(field_name: str) -> bool:
    """Tell whether a field accepts None (its value then comes from a default)."""
    return type(None) in typing.get_args(typing.get_type_hints(ExperimentSpec)[field_name])


def split_items(text: str) -> list[str]:
    """Split a flag's text on the commas that are not inside parentheses."""
    items, depth, current = [], 0, []
    for character in text:
        if character == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(character, 0)
        current.append(character)
    items.append("".join(current).strip())
    return items


def parse_values(field_name: str, text: str) -> list[Any]:
    """Expand a flag's text into its list of values, without duplicates.

    Accepted forms: ``2,5,10``; inclusive ranges ``START:STOP`` or
    ``START:STOP:STEP`` for numbers (``2:10:2`` is 2, 4, 6, 8, 10);
    ``both`` or ``true,false`` for on/off flags; ``default`` for flags whose
    default depends on others (``--lr default,0.01``); ``"0 5,-1 1"`` for
    intervals.

    Raises:
        InvalidValue: an item that is not a value of the field.
    """
    kind = field_type(field_name)
    if kind is bool and text.strip().lower() == "both":
        return [False, True]
    items = split_items(text)
    if kind is float:
        _reject_decimal_comma(field_name, text, items)
    values: list[Any] = []
    for item in items:
        if not item:
            raise InvalidValue(field_name, text, _("a comma-separated list without empty items, for example 2,5,10"))
        for value in _parse_item(field_name, kind, item):
            if value not in values:
                values.append(value)
    return values


def _reject_decimal_comma(field_name: str, text: str, items: list[str]) -> None:
    """Reject a French decimal comma, which would otherwise split one number into two values.

    ``0,001`` has an item with a leading zero followed by digits, which no one
    writes for an integer. ``0,3`` is exactly two integers, which may mean 0.3
    or the two values 0 and 3, so the user must write which.

    Raises:
        InvalidValue: with the list written with decimal points.
    """
    integer = re.compile(r"[+-]?\d+")
    leading_zero = re.compile(r"[+-]?0\d+")
    if any(leading_zero.fullmatch(item) for item in items):
        corrected = _join_decimal_commas(items)
        if corrected == text:
            raise InvalidValue(field_name, text, _("decimals written with a point, with commas only between values, for example 0.01,0.001"))
        raise InvalidValue(field_name, text, _("decimals written with a point, with commas only between values: write {corrected}").format(corrected=corrected))
    if len(items) == 2 and all(integer.fullmatch(item) for item in items):
        first, second = items
        raise InvalidValue(field_name, text, _(
            "decimals written with a point, with commas only between values: write {decimal}, or {pair} to sweep {first} and {second}"
        ).format(decimal=f"{first}.{second}", pair=f"{first}.0,{second}.0", first=first, second=second))


def _join_decimal_commas(items: list[str]) -> str:
    """Guess the list meant with decimal commas: ``0,01,0,001`` is ``0.01,0.001``.

    A list of integers only, of even length, is read as pairs; otherwise each
    leading-zero item is joined to the integer before it.
    """
    integer = re.compile(r"[+-]?\d+")
    if len(items) % 2 == 0 and all(integer.fullmatch(item) for item in items):
        return ",".join(f"{items[index]}.{items[index + 1]}" for index in range(0, len(items), 2))
    joined: list[str] = []
    for item in items:
        if joined and integer.fullmatch(joined[-1]) and re.fullmatch(r"0\d+", item):
            joined[-1] = f"{joined[-1]}.{item}"
        else:
            joined.append(item)
    return ",".join(joined)


def _parse_item(field_name: str, kind: Any, item: str) -> list[Any]:
    lowered = item.lower()
    if is_optional(field_name) and lowered in DEFAULT_WORDS:
        return [None]
    if kind is bool:
        if lowered in TRUE_WORDS or lowered in FALSE_WORDS:
            return [lowered in TRUE_WORDS]
        raise InvalidValue(field_name, item, _("true, false or both (yes, no, oui, non, vrai and faux work too)"))
    if kind is tuple:
        return [_parse_interval(field_name, item)]
    if kind in (int, float) and ":" in item:
        return _parse_range(field_name, kind, item)
    if kind in (int, float):
        return [_parse_number(field_name, kind, item)]
    return [item]


def _parse_interval(field_name: str, item: str) -> tuple[float, float]:
    bounds = item.split()
    if len(bounds) == 2:
        try:
            return float(bounds[0]), float(bounds[1])
        except ValueError:
            pass
    raise InvalidValue(field_name, item, _("intervals written as two bounds separated by a space, several separated by commas, for example \"0 5,-1 1\""))


def _parse_number(field_name: str, kind: Any, text: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        expected = _("an integer, a list such as 2,5,10 or a range such as 2:10:2") if kind is int else _("a number, a list such as 0.01,0.001 or a range such as 0.1:0.5:0.1")
        raise InvalidValue(field_name, text, expected) from None


def _parse_range(field_name: str, kind: Any, item: str) -> list[int | float]:
    parts = item.split(":")
    if len(parts) not in (2, 3):
        raise InvalidValue(field_name, item, _("a range START:STOP or START:STOP:STEP, for example 2:10:2"))
    try:
        start, stop = (_parse_number(field_name, kind, part) for part in parts[:2])
        step = _parse_number(field_name, kind, parts[2]) if len(parts) == 3 else 1
    except InvalidValue as error:
        raise InvalidValue(field_name, item, error.expected) from None
    if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0) or stop < start:
        raise InvalidValue(field_name, item, _("a range START:STOP:STEP with START ≤ STOP and a positive STEP, for example 2:10:2"))
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RANGE_VALUES:
        raise InvalidValue(field_name, item, _("a range of at most {count} values; use a larger step").format(count=MAX_RANGE_VALUES))
    if kind is int:
        return list(range(start, stop + 1, step))
    # Rounding to 12 significant digits turns 0.1 + 2 × 0.1 into 0.3, not 0.30000000000000004.
    return [float(f"{start + index * step:.12g}") for index in range(count)]


# Plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    """One training run of a sweep: its specification, configuration and folder."""

    index: int
    configuration: int
    spec: ExperimentSpec
    folder: Path
    reusable: bool


@dataclass(frozen=True)
class SweepPlan:
    """Every run of a sweep, decided before any training.

    Attributes:
        swept: the fields given several values, in flag order, with their values.
        fixed: the fields given one value.
        configurations: one specification per configuration, with the first seed.
        runs: configurations × seeds, in that order.
        folder: the sweep's own folder, ``outputs/sweep/<name>``.
    """

    command: str
    swept: dict[str, list]
    fixed: dict[str, Any]
    repeat: int
    configurations: list[ExperimentSpec]
    runs: list[SweepRun]
    outputs: Path
    folder: Path


def plan_sweep(
    command: str,
    texts: dict[str, str],
    outputs: Path,
    repeat: int = 1,
    name: str | None = None,
    force: bool = False,
) -> SweepPlan:
    """Expand the flags' texts into the list of runs of a sweep.

    Args:
        command: ``approx`` or ``noisy``.
        texts: the text of each flag given, by spec field (``{"units": "2,5,10"}``).
        outputs: the outputs root.
        repeat: runs per configuration, with seeds seed, seed + 1, …; default 1.
        name: the sweep folder's name; default built from the flags.
        force: train again even when an identical run exists; default False.

    Raises:
        InvalidValue: a flag value, or a configuration, that is invalid.
    """
    if repeat < 1:
        raise InvalidValue("repeat", repeat, _("an integer of at least 1"))
    values = {field_name: parse_values(field_name, text) for field_name, text in texts.items()}
    if repeat > 1 and len(values.get("seed", [])) > 1:
        raise InvalidValue("seed", texts["seed"], _("a single seed with --repeat, which already runs seeds seed, seed + 1, …; or a list of seeds without --repeat"))
    swept = {key: items for key, items in values.items() if len(items) > 1}
    fixed = {key: items[0] for key, items in values.items() if len(items) == 1}

    base = ExperimentSpec(command=command, **COMMAND_DEFAULTS.get(command, {}))
    configurations = _configurations(base, values)
    runs = _runs(configurations, repeat, Path(outputs), force)
    from keraslab_cli.core.experiment import check_name

    folder_name = check_name(name) or sweep_name(command, texts, repeat)
    return SweepPlan(command, swept, fixed, repeat, configurations, runs, Path(outputs), Path(outputs) / "sweep" / folder_name)


def _configurations(base: ExperimentSpec, values: dict[str, list]) -> list[ExperimentSpec]:
    """Build and validate the cartesian product, dropping configurations that resolve alike."""
    names = list(values)
    configurations, seen = [], set()
    for combination in itertools.product(*(values[key] for key in names)):
        spec = replace(base, **dict(zip(names, combination)))
        try:
            validate(spec)
        except InvalidValue as error:
            context = _("in the configuration {configuration}").format(configuration=describe_values(spec, names))
            raise InvalidValue(error.field, error.value, f"{error.expected} ({context})") from None
        key = json.dumps(spec.to_dict(), sort_keys=True)
        if key not in seen:
            seen.add(key)
            configurations.append(spec)
    return configurations


def _runs(configurations: list[ExperimentSpec], repeat: int, outputs: Path, force: bool) -> list[SweepRun]:
    runs: list[SweepRun] = []
    folders: dict[Path, ExperimentSpec] = {}
    for number, configuration in enumerate(configurations):
        for offset in range(repeat):
            spec = replace(configuration, seed=configuration.seed + offset)
            folder = outputs / spec.command / run_name(spec)
            if folder in folders and folders[folder] != spec:
                raise InvalidValue("name", folder.name, _("distinct run folder names, but two configurations of this sweep share this one; sweep fewer values at once"))
            folders[folder] = spec
            reusable = not force and reusable_run(spec, folder) is not None
            runs.append(SweepRun(len(runs), number, spec, folder, reusable))
    return runs


def reusable_run(spec: ExperimentSpec, folder: Path) -> dict | None:
    """Return the run.json of a finished run with exactly this configuration, or None."""
    try:
        document = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    expected = json.loads(json.dumps(spec.to_dict()))
    if not isinstance(document, dict) or document.get("config") != expected or document.get("status") not in REUSABLE_STATUSES:
        return None
    needed = ["history.csv"] + (["model.keras"] if document["status"] != "diverged" else [])
    return document if all((folder / name).is_file() for name in needed) else None


def sweep_name(command: str, texts: dict[str, str], repeat: int) -> str:
    """Build the sweep folder's name from the flags, for example ``approx-p=2,5,10-epochs=1000,4000``."""
    from keraslab_cli.core.naming import TOKENS

    parts = [command]
    for field_name, text in texts.items():
        label = short_label(field_name).replace("_", "-")
        compact = "".join(text.split()) if field_name != "function" else TOKENS["function"](text)
        parts.append(f"{label}={compact}")
    if repeat > 1:
        parts.append(f"repeat{repeat}")
    name = "".join(character if (character.isascii() and character.isalnum()) or character in "._+-,:=" else "_" for character in "-".join(parts)).replace(":", "~")
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME_LENGTH - 9]}-{digest}"
    return name


def describe_values(spec: ExperimentSpec, field_names: Iterable[str], figure: bool = False) -> str:
    """Return ``p=5 · epochs=1000 · optimizer=adam``: the values of the given fields.

    Args:
        figure: format for a figure, whose numbers keep a decimal point in French too.
    """
    return " · ".join(f"{display_label(name)}={format_value(name, getattr(spec, name), spec, figure)}" for name in field_names)


def short_label(field_name: str) -> str:
    """Return the short English name of a field in folder names (``units`` is the lab's p)."""
    return {"units": "p", "learning_rate": "lr", "normalize": "norm", "batch_size": "batch"}.get(field_name, field_name)


# Fields whose short label is an everyday word, translated in tables and figures.
TRANSLATED_LABELS = {"epochs": N_("epochs"), "seed": N_("seed"), "layers": N_("layers"), "optimizer": N_("optimizer")}


def display_label(field_name: str) -> str:
    """Return the label of a field in tables and figures, translated where it is a word (``époques``)."""
    if field_name in TRANSLATED_LABELS:
        return _(TRANSLATED_LABELS[field_name])
    return short_label(field_name)


def _decimal(text: str, figure: bool) -> str:
    """Use the decimal comma in French tables; figures keep Matplotlib's point."""
    return text.replace(".", ",") if get_language() == "fr" and not figure else text


def format_value(field_name: str, value: Any, spec: ExperimentSpec | None = None, figure: bool = False) -> str:
    """Format one parameter value for tables, or for figure titles with ``figure``."""
    if field_name == "learning_rate" and value is None and spec is not None:
        return _decimal(f"{spec.resolved_learning_rate:g}", figure)
    if field_name == "batch_size" and value is None:
        return _("all")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return _decimal(f"{value:g}", figure)
    if isinstance(value, tuple):
        return "[" + "; ".join(_decimal(f"{bound:g}", figure) for bound in value) + "]"
    if value is None:
        return _("default")
    return str(value)


# Running --------------------------------------------------------------------


@dataclass
class RunOutcome:
    """The result of one run of a sweep, as plain data that crosses processes.

    Attributes:
        status: ``completed``, ``early_stopped``, ``diverged``, ``interrupted`` or ``failed``.
        reused: True when an identical earlier run was read instead of trained.
        loss: the training loss per epoch.
        curves: every column of the run's history.csv (``val_loss``, and
            ``data_loss`` and ``val_data_loss`` with an L1/L2 penalty).
        fit: F on ``plot_grid(spec)``, None when the run has no model.
        error: why a failed run failed.
        rss_mb: the worker's resident memory after the run, in MiB.
    """

    index: int
    status: str
    reused: bool
    folder: str
    metrics: dict[str, Any] = field(default_factory=dict)
    loss: list[float] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    fit: list[float] | None = None
    error: str | None = None
    rss_mb: float = 0.0


def plot_grid(spec: ExperimentSpec) -> np.ndarray:
    """Return the x values on which the fit plots draw f and F."""
    return np.linspace(spec.interval[0], spec.interval[1], defaults.PLOT_POINTS)


def execute_run(run: SweepRun, outputs: Path, engine: str = "auto", command_line: list[str] | None = None) -> RunOutcome:
    """Train one run of a sweep, or read it back when reusable.

    A run that raises an ``Exception`` is returned with status ``failed`` and
    the error's text, so one bad configuration does not stop the others.
    """
    outcome = RunOutcome(run.index, "failed", False, str(run.folder))
    try:
        document = reusable_run(run.spec, run.folder) if run.reusable else None
        if document is not None:
            outcome.status, outcome.reused, outcome.metrics = document["status"], True, document.get("metrics", {})
        else:
            from keraslab_cli.core.experiment import run_experiment

            result = run_experiment(run.spec, outputs, engine=engine, command_line=command_line)
            outcome.status, outcome.metrics = result.status, result.metrics
            outcome.folder = str(result.folder)
        # Fresh and reused runs read the same file, so both are plotted alike.
        outcome.curves = read_history(Path(outcome.folder) / "history.csv")
        outcome.loss = outcome.curves.get("loss", [])
        if outcome.status != "diverged":
            outcome.fit = _fit_curve(run.spec, Path(outcome.folder))
    except KeraslabError as error:
        outcome.status, outcome.error = "failed", str(error)
    except Exception as error:  # noqa: BLE001 - a failed configuration must not stop the sweep
        outcome.status, outcome.error = "failed", f"{type(error).__name__}: {error}"
    finally:
        _release_memory()
    outcome.rss_mb = current_rss_mb()
    return outcome


def read_history(path: Path) -> dict[str, list[float]]:
    """Read every loss column of a history.csv (not ``epoch``), by column name."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [name for name in (rows[0] if rows else {}) if name != "epoch" and "loss" in name]
    return {name: [float(row[name]) if row[name] not in ("", None) else math.nan for row in rows] for name in names}


def _fit_curve(spec: ExperimentSpec, folder: Path) -> list[float]:
    """Evaluate the saved model on the plot grid, so fresh and reused runs are plotted alike."""
    from keraslab_cli.core.backend import keras
    from keraslab_cli.core.experiment import predict

    model = keras.saving.load_model(folder / "model.keras", compile=False)
    return predict(model, plot_grid(spec).astype(np.float32).reshape(-1, 1)).tolist()


def _release_memory() -> None:
    """Drop Keras's global state between runs so a long-lived worker does not grow."""
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=True)


def current_rss_mb() -> float:
    """Return this process's resident memory in MiB (the peak where /proc is missing)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_jobs() -> int:
    """Return the number of cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return os.cpu_count() or 1


def prepare_worker(language: str) -> None:
    """Set up a worker process: its language, one torch thread, Keras imported once.

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the
    parent alone decides to stop, then terminates them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_language(language)
    from keraslab_cli.core.backend import set_threads

    set_threads(1)


def run_tasks(function: Callable[..., Any], tasks: list[tuple], jobs: int, on_result: Callable[[Any], Any], on_broken: Callable[[tuple], Any]) -> None:
    """Call ``function(*task)`` for every task in ``jobs`` worker processes.

    With one job the tasks run in this process, with one torch thread. Results
    are passed to ``on_result`` as they arrive; when it returns True, the tasks
    not yet finished are dropped and the workers stopped. When a worker dies
    (killed, out of memory), every task without a result is passed to
    ``on_broken``, whose return value is reported through ``on_result``.
    """
    if jobs <= 1:
        _run_here(function, tasks, on_result)
        return
    import multiprocessing

    executor = ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=prepare_worker,
        initargs=(get_language(),),
    )
    futures = {executor.submit(function, *task): task for task in tasks}
    stopped = False
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                result = on_broken(futures[future])
            if on_result(result):
                stopped = True
                break
    except BaseException:
        stopped = True
        raise
    finally:
        if stopped:
            for future in futures:
                future.cancel()
            _terminate_workers(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _run_here(function: Callable[..., Any], tasks: list[tuple], on_result: Callable[[Any], Any]) -> None:
    from keraslab_cli.core.backend import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task in tasks:
            if on_result(function(*task)):
                break
    finally:
        torch.set_num_threads(threads)


def _terminate_workers(executor: ProcessPoolExecutor) -> None:
    # NOTE: ProcessPoolExecutor has no public way to stop running workers
    # before Python 3.14 (terminate_workers), so this reads its _processes.
    for process in list(getattr(executor, "_processes", {}).values()):
        process.terminate()


def run_sweep(
    plan: SweepPlan,
    jobs: int | None = None,
    engine: str = "auto",
    command_line: list[str] | None = None,
    on_outcome: Callable[[SweepRun, RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run (or reuse) every run of a plan and return the outcomes in plan order.

    Args:
        plan: from ``plan_sweep``.
        jobs: worker processes; default the number of cores, at most the number of runs.
        engine: training engine of every run.
        command_line: the sweep's arguments, saved in each run.json.
        on_outcome: called in this process after each run, in finishing order.
    """
    prepare_folder(plan.folder)
    outcomes: dict[int, RunOutcome] = {}

    def collect(outcome: RunOutcome) -> None:
        outcomes[outcome.index] = outcome
        if on_outcome is not None:
            on_outcome(plan.runs[outcome.index], outcome)

    def broken(task: tuple) -> RunOutcome:
        run = task[0]
        return RunOutcome(run.index, "failed", False, str(run.folder), error=_("a worker process stopped abruptly (killed, or out of memory); run the sweep again to resume"))

    tasks = [(run, plan.outputs, engine, command_line) for run in plan.runs]
    try:
        run_tasks(execute_run, tasks, jobs or default_jobs(), collect, broken)
    except BaseException:
        # Ctrl-C or SIGTERM: run_tasks has stopped every worker when it re-raises.
        remove_empty_folders([run.folder for run in plan.runs if run.index not in outcomes] + [plan.folder])
        raise
    return [outcomes[run.index] for run in plan.runs]


def remove_empty_folders(folders: Iterable[Path]) -> None:
    """Remove the folders that are empty, such as those of runs stopped before writing anything.

    A folder with files but without run.json stays: it is an unfinished run,
    which the next sweep trains again.
    """
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty, or already gone


def run_specs_in_one_worker(specs: list[ExperimentSpec], outputs: Path, force: bool = True) -> list[RunOutcome]:
    """Run specifications one after another in a single spawned worker process.

    Each outcome's ``rss_mb`` is the worker's resident memory after that run,
    which shows whether a long-lived worker leaks from run to run.
    """
    runs = [
        SweepRun(index, index, spec, Path(outputs) / spec.command / run_name(spec), not force and reusable_run(spec, Path(outputs) / spec.command / run_name(spec)) is not None)
        for index, spec in enumerate(specs)
    ]
    outcomes: list[RunOutcome] = []
    import multiprocessing

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=prepare_worker, initargs=(get_language(),)) as executor:
        for run in runs:
            outcomes.append(executor.submit(execute_run, run, Path(outputs)).result())
    return outcomes


# Results --------------------------------------------------------------------


@dataclass
class ConfigurationSummary:
    """The runs of one configuration, with mean and standard deviation over seeds.

    Attributes:
        status: ``completed`` when every run finished, else the worst status
            (``failed`` before ``diverged`` before ``interrupted``).
        final_loss, dense_mse, val_loss: means over the finished (not diverged)
            runs; val_loss is the final validation loss, None without a validation set.
        seconds: mean duration of every run that reported one, plots and files included.
        ms_per_epoch: mean training time per epoch, in milliseconds.
        final_loss_std, dense_mse_std: sample standard deviations (ddof=1),
            None with fewer than two finite values.
    """

    number: int
    spec: ExperimentSpec
    runs: list[RunOutcome]
    status: str
    final_loss: float | None
    final_loss_std: float | None
    dense_mse: float | None
    dense_mse_std: float | None
    val_loss: float | None
    val_loss_std: float | None
    seconds: float | None
    ms_per_epoch: float | None
    trainable_params: int
    rank: int = 0


STATUS_ORDER = {"completed": 0, "early_stopped": 0, "interrupted": 1, "diverged": 2, "failed": 3}


def ranking_metric(plan: SweepPlan) -> str:
    """Return the summary field that ranks a sweep: the final loss for approx, MSE(F, f) for noisy.

    A noisy run's training loss measures the fit to the noise, and includes
    the L2 penalty, which favours l2 = 0. The question of the noisy study is how
    close F stays to f, so noisy sweeps are ranked by MSE(F, f) on the dense grid.
    """
    return "dense_mse" if plan.command == "noisy" else "final_loss"


def summarize(plan: SweepPlan, outcomes: list[RunOutcome]) -> list[ConfigurationSummary]:
    """Group outcomes by configuration, ranked by status then by ``ranking_metric``."""
    summaries = []
    for number, spec in enumerate(plan.configurations):
        runs = [outcome for outcome, run in zip(outcomes, plan.runs) if run.configuration == number]
        worst = max((outcome.status for outcome in runs), key=lambda status: STATUS_ORDER.get(status, 3))
        # A diverged run's numbers are overflow noise, so statistics use the finished runs only.
        finished = [outcome.metrics for outcome in runs if outcome.status in FINISHED_STATUSES]
        final_loss, final_loss_std = _mean_and_std([metrics.get("final_loss") for metrics in finished])
        dense_mse, dense_mse_std = _mean_and_std([metrics.get("dense_mse") for metrics in finished])
        val_loss, val_loss_std = _mean_and_std([metrics.get("final_val_loss") for metrics in finished])
        seconds, _std = _mean_and_std([outcome.metrics.get("total_seconds") for outcome in runs])
        ms_per_epoch, _std = _mean_and_std([outcome.metrics.get("ms_per_epoch") for outcome in runs])
        status = "completed" if STATUS_ORDER.get(worst, 3) == 0 else worst
        summaries.append(ConfigurationSummary(
            number, spec, runs, status, final_loss, final_loss_std, dense_mse, dense_mse_std, val_loss, val_loss_std, seconds, ms_per_epoch, trainable_parameters(spec)
        ))
    metric = ranking_metric(plan)

    def rank_key(summary: ConfigurationSummary) -> tuple:
        value = getattr(summary, metric)
        return STATUS_ORDER.get(summary.status, 3), math.inf if value is None else value, summary.number

    summaries.sort(key=rank_key)
    for rank, summary in enumerate(summaries, start=1):
        summary.rank = rank
    return summaries


def _mean_and_std(values: list[Any]) -> tuple[float | None, float | None]:
    finite = [float(value) for value in values if isinstance(value, (int, float)) and math.isfinite(value)]
    if not finite:
        return None, None
    mean = float(np.mean(finite))
    return mean, float(np.std(finite, ddof=1)) if len(finite) > 1 else None


def trainable_parameters(spec: ExperimentSpec) -> int:
    """Count the weights and biases of a spec's MLP without building it: (L−1)p² + (L+2)p + 1."""
    return (spec.layers - 1) * spec.units**2 + (spec.layers + 2) * spec.units + 1


SUMMARY_COLUMNS = (
    "rank", "status", "runs", "final_loss", "final_loss_std", "dense_mse", "dense_mse_std",
    "val_loss", "val_loss_std", "trainable_params", "epochs", "ms_per_epoch", "seconds_per_run",
)
RUN_COLUMNS = ("run", "configuration", "seed", "status", "reused", "final_loss", "best_loss", "dense_mse", "max_abs_error", "trainable_params", "epochs_run", "ms_per_epoch", "seconds", "folder", "error")


def varying_fields(plan: SweepPlan) -> list[str]:
    """Return the swept fields, plus the learning rate when it follows a swept optimizer."""
    names = list(plan.swept)
    rates = {spec.resolved_learning_rate for spec in plan.configurations}
    if "learning_rate" not in names and len(rates) > 1:
        names.append("learning_rate")
    return names


def write_sweep_outputs(plan: SweepPlan, summaries: list[ConfigurationSummary], outcomes: list[RunOutcome]) -> dict[str, str]:
    """Write sweep.csv (ranked configurations), sweep-runs.csv, sweep.json and both figures."""
    from keraslab_cli.core import sweep_plots

    prepare_folder(plan.folder)
    varying = varying_fields(plan)
    files = {}
    summary_rows = []
    for summary in summaries:
        row = {"rank": summary.rank, "status": summary.status, "runs": len(summary.runs)}
        row.update({name: _csv_number(getattr(summary, name)) for name in ("final_loss", "final_loss_std", "dense_mse", "dense_mse_std", "val_loss", "val_loss_std")})
        row.update(trainable_params=summary.trainable_params, epochs=summary.spec.epochs, ms_per_epoch=_csv_number(summary.ms_per_epoch), seconds_per_run=_csv_number(summary.seconds))
        row.update({name: _field_value(summary.spec, name) for name in varying})
        summary_rows.append(row)
    files["sweep.csv"] = str(_write_rows(plan.folder / "sweep.csv", SUMMARY_COLUMNS, varying, summary_rows))

    run_rows = []
    for run, outcome in zip(plan.runs, outcomes):
        metrics = outcome.metrics
        row = {"run": run.index + 1, "configuration": run.configuration + 1, "seed": run.spec.seed, "status": outcome.status, "reused": outcome.reused}
        row.update({name: _csv_number(metrics.get(name)) for name in ("final_loss", "best_loss", "dense_mse", "max_abs_error")})
        row.update(trainable_params=metrics.get("trainable_params", ""), epochs_run=metrics.get("epochs_run", ""), ms_per_epoch=_csv_number(metrics.get("ms_per_epoch")), seconds=_csv_number(metrics.get("total_seconds")), folder=outcome.folder, error=outcome.error or "")
        row.update({name: _field_value(run.spec, name) for name in varying})
        run_rows.append(row)
    files["sweep-runs.csv"] = str(_write_rows(plan.folder / "sweep-runs.csv", RUN_COLUMNS, varying, run_rows))

    files["losses.png"] = str(sweep_plots.plot_loss_curves(plan.folder / "losses.png", plan, summaries))
    files["fits.png"] = str(sweep_plots.plot_fit_grid(plan.folder / "fits.png", plan, summaries))
    files["sweep.json"] = str(plan.folder / "sweep.json")
    write_json(plan.folder / "sweep.json", sweep_document(plan, summaries, outcomes, files))
    return files


def _write_rows(path: Path, columns: Iterable[str], varying: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write rows under the given columns, then one column per varying field not already there (epochs, seed)."""
    header = list(columns) + [name for name in varying if name not in columns]
    return write_csv(path, header, [[row[name] for name in header] for row in rows])


def sweep_document(plan: SweepPlan, summaries: list[ConfigurationSummary], outcomes: list[RunOutcome], files: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the sweep as one JSON-ready document, identical in every language."""
    runs = {run.index: run for run in plan.runs}
    return {
        "command": plan.command,
        "folder": str(plan.folder),
        "swept": {key: [_csv_value(value) for value in values] for key, values in plan.swept.items()},
        "varying": varying_fields(plan),
        "fixed": {key: _csv_value(value) for key, value in plan.fixed.items()},
        "repeat": plan.repeat,
        "ranked_by": ranking_metric(plan),
        "configurations": [
            {
                "rank": summary.rank,
                "status": summary.status,
                "values": {name: _field_value(summary.spec, name) for name in plan.swept},
                "config": summary.spec.to_dict(),
                "final_loss": summary.final_loss,
                "final_loss_std": summary.final_loss_std,
                "dense_mse": summary.dense_mse,
                "dense_mse_std": summary.dense_mse_std,
                "val_loss": summary.val_loss,
                "val_loss_std": summary.val_loss_std,
                "trainable_params": summary.trainable_params,
                "epochs": summary.spec.epochs,
                "ms_per_epoch": summary.ms_per_epoch,
                "seconds_per_run": summary.seconds,
                "runs": [outcome.index + 1 for outcome in summary.runs],
            }
            for summary in summaries
        ],
        "runs": [
            {
                "run": outcome.index + 1,
                "configuration": runs[outcome.index].configuration + 1,
                "seed": runs[outcome.index].spec.seed,
                "status": outcome.status,
                "reused": outcome.reused,
                "folder": outcome.folder,
                "metrics": outcome.metrics,
                "error": outcome.error,
            }
            for outcome in outcomes
        ],
        "files": files or {},
    }


def _csv_number(value: Any) -> Any:
    return "" if value is None else value


def _field_value(spec: ExperimentSpec, field_name: str) -> Any:
    if field_name == "learning_rate":
        return spec.resolved_learning_rate
    return _csv_value(getattr(spec, field_name))


def _csv_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return " ".join(f"{bound:g}" for bound in value)
    return "" if value is None else value
