"""Bad input through the CLI: each value is rejected before training with a clear message.

A usage error names the flag, the value received and what is valid, exits
with 2 and prints no traceback. An output folder that cannot be written exits
with 1. In both cases nothing is written and Keras is never imported.
"""

import json
import os
import subprocess
import sys
import time

import pytest

FAST = ("--epochs", "2", "--n", "10")

# (command, extra arguments, flag named, value shown, fragment of what is valid)
BAD_VALUES = [
    ("approx", ("--p", "0"), "--p", "0", "an integer of at least 1"),
    ("approx", ("--units", "-3"), "--p", "-3", "an integer of at least 1"),
    ("approx", ("--layers", "-1"), "--layers", "-1", "an integer of at least 1"),
    ("approx", ("--layers", "0"), "--layers", "0", "an integer of at least 1"),
    ("approx", ("--epochs", "0"), "--epochs", "0", "an integer of at least 1"),
    ("approx", ("--lr", "0"), "--lr", "0.0", "a positive finite number"),
    ("approx", ("--lr", "-0.01"), "--lr", "-0.01", "a positive finite number"),
    ("approx", ("--lr", "nan"), "--lr", "nan", "a positive finite number"),
    ("approx", ("--learning-rate", "inf"), "--lr", "inf", "a positive finite number"),
    ("approx", ("--n", "1"), "--n", "1", "at least 2"),
    ("approx", ("--interval", "5", "0"), "--interval", "5.0 0.0", "A < B"),
    ("approx", ("--interval", "1", "1"), "--interval", "1.0 1.0", "A < B"),
    ("approx", ("--interval", "0", "1e39"), "--interval", "1e+39", "float32"),
    ("approx", ("--batch-size", "0"), "--batch-size", "0", "an integer of at least 1"),
    ("approx", ("--optimizer", "adamax"), "--optimizer", "adamax", "rmsprop, sgd, adam"),
    ("approx", ("--activation", "tanhh"), "--activation", "tanhh", "relu, sigmoid, tanh"),
    ("approx", ("--loss", "rmse"), "--loss", "rmse", "mse, mae, huber"),
    ("approx", ("--momentum", "0.9"), "--momentum", "0.9", "--optimizer sgd"),
    ("approx", ("--function", "cos(2*x"), "--function", "cos(2*x", "a valid expression in x"),
    ("approx", ("--function", "x^2"), "--function", "x^2", "**"),
    ("approx", ("--function", "__import__('os').system('true')"), "--function", "__import__", "calls to the functions"),
    ("approx", ("--function", "y + 1"), "--function", "y + 1", "unknown name 'y'"),
    ("approx", ("--function", "sqrt(x)", "--interval", "-1", "1"), "--function", "sqrt(x)", "f(-1) is not a finite number"),
    ("approx", ("--function", "1/x", "--interval", "-1", "1", "--n", "3"), "--function", "1/x", "f(0) is not a finite number"),
    ("approx", ("--function", "exp(x)", "--interval", "0", "100"), "--function", "exp(x)", "float32"),
    ("approx", ("--normalize", "--n", "2", "--interval", "1", "1.00000001"), "--normalize", "True", "standard deviation is 0"),
    ("approx", ("--p", "100000"), "--p", "100000", "trainable parameters"),
    ("approx", ("--layers", "5000", "--p", "1"), "--layers", "5000", "at most 1000 hidden layers"),
    ("approx", ("--n", "100000000"), "--n", "100000000", "at most"),
    ("approx", ("--seed", "-1"), "--seed", "-1", "an integer from 0 to 4294967295"),
    ("approx", ("--seed", "4294967296"), "--seed", "4294967296", "an integer from 0 to 4294967295"),
    ("approx", ("--name", "../escape"), "--name", "../escape", "a plain folder name"),
    ("noisy", ("--sigma", "-1"), "--sigma", "-1.0", "at least 0"),
    ("noisy", ("--sigma", "nan"), "--sigma", "nan", "at least 0"),
    ("noisy", ("--sigma", "1e300"), "--sigma", "1e+300", "float32"),
    ("noisy", ("--val-split", "1"), "--val-split", "1.0", "[0, 1)"),
    ("noisy", ("--val-split", "-0.1"), "--val-split", "-0.1", "[0, 1)"),
    ("noisy", ("--noise-seed", "-5"), "--noise-seed", "-5", "an integer from 0"),
    ("noisy", ("--early-stopping", "0"), "--early-stopping", "0", "an integer of at least 1"),
    ("noisy", ("--early-stopping", "5", "--val-split", "0"), "--early-stopping", "5", "--val-split must be above 0"),
]


def case_id(case) -> str:
    return f"{case[0]}{''.join(case[1])}"


@pytest.mark.parametrize("case", BAD_VALUES, ids=[case_id(case) for case in BAD_VALUES])
def test_bad_value_rejected(invoke, tmp_path, case):
    command, arguments, flag, value, expected = case
    outputs = tmp_path / "outputs"
    result = invoke(command, *FAST, "--outputs", outputs, *arguments)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert message.startswith("Error: Invalid value for "), message
    assert f"for {flag}:" in message
    assert value in message
    assert expected in message
    assert result.stdout == ""
    assert not outputs.exists()


@pytest.mark.parametrize("case", BAD_VALUES, ids=[case_id(case) for case in BAD_VALUES])
def test_bad_value_rejected_in_french(invoke, tmp_path, case):
    command, arguments, flag, value, _expected = case
    result = invoke(command, *FAST, "--outputs", tmp_path / "outputs", *arguments, "--lang", "fr")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert flag in message
    assert value in message
    assert not (tmp_path / "outputs").exists()


# Errors that Click and typer raise while parsing, before keraslab receives a value.
PARSE_ERRORS = [
    (("--p", "abc"), "--p"),
    (("--epochs", "1.5"), "--epochs"),
    (("--lr", "fast"), "--lr"),
    (("--interval", "a", "b"), "--interval"),
    (("--interval", "5"), "--interval"),
    (("--batch-size",), "--batch-size"),
    (("--engine", "turbo"), "--engine"),
    (("--lang", "de"), "--lang"),
    (("--epoch", "5"), "--epoch"),
    (("extra",), "extra"),
]


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize(("arguments", "flag"), PARSE_ERRORS, ids=[" ".join(case[0]) for case in PARSE_ERRORS])
def test_parse_error_names_flag(invoke, tmp_path, arguments, flag, language):
    # --lang is scanned before parsing, so it still applies when the error is on --lang itself.
    result = invoke("approx", "--outputs", tmp_path / "outputs", *arguments, env={"KERASLAB_LANG": language})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert flag in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "outputs").exists()


def test_unknown_option_suggests_flag(invoke, tmp_path):
    result = invoke("approx", "--outputs", tmp_path, "--epoch", "5")
    assert result.exit_code == 2
    assert "--epochs" in result.stderr


def test_french_message_for_new_limit(invoke, tmp_path):
    result = invoke("approx", "--seed", "-1", "--outputs", tmp_path / "outputs", "--lang", "fr")
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert "un entier de 0 à 4294967295" in message


def test_file_where_outputs_folder_should_be(invoke, tmp_path):
    blocker = tmp_path / "outputs"
    blocker.write_text("my notes\n")
    result = invoke("approx", *FAST, "--outputs", blocker)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert str(blocker) in message
    assert "is a file, not a folder" in message
    assert "--outputs" in message
    assert blocker.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]


def test_file_where_run_folder_should_be(invoke, tmp_path):
    run_folder = tmp_path / "approx" / "mine"
    run_folder.parent.mkdir()
    run_folder.write_text("keep me")
    result = invoke("approx", *FAST, "--outputs", tmp_path, "--name", "mine")
    assert result.exit_code == 1, result.output
    assert "is a file, not a folder" in " ".join(result.stderr.split())
    assert run_folder.read_text() == "keep me"
    assert not (tmp_path / "runs.csv").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_outputs_folder(invoke, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("approx", *FAST, "--outputs", locked)
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 1, result.output
    assert "Cannot write to the output folder" in " ".join(result.stderr.split())
    assert list(locked.iterdir()) == []


def test_unwritable_outputs_folder(invoke, tmp_path, monkeypatch):
    from keraslab_cli.core import outputs

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", denied)
    result = invoke("approx", *FAST, "--outputs", tmp_path / "outputs")
    message = " ".join(result.stderr.split())
    assert result.exit_code == 1, result.output
    assert "Cannot write to the output folder" in message
    assert "Permission denied" in message
    assert "--outputs" in message
    assert not (tmp_path / "outputs" / "runs.csv").exists()


PROBE = """
import json, sys, time
started = time.perf_counter()
from keraslab_cli.cli.app import main
sys.argv = ["keraslab", *sys.argv[1:]]
try:
    main()
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "keras": "keras" in sys.modules, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        (("--p", "0"), 2),
        (("--p", "abc"), 2),
        (("--function", "sqrt(x)", "--interval", "-1", "1"), 2),
        (("--lr", "nan", "--lang", "fr"), 2),
        (("--outputs", "BLOCKER"), 1),
    ],
    ids=["validate", "parse", "data", "french", "outputs"],
)
def test_error_before_keras_import(tmp_path, arguments, code):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    arguments = [str(blocker) if argument == "BLOCKER" else argument for argument in arguments]
    if "--outputs" not in arguments:
        arguments += ["--outputs", str(tmp_path / "outputs")]
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, "approx", *arguments],
        capture_output=True, text=True, timeout=60, env={**os.environ, "KERASLAB_LANG": "en"},
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["code"] == code, completed.stderr
    assert report["keras"] is False
    assert report["torch"] is False
    # Importing Keras and torch alone takes seconds; the error comes well before.
    assert report["seconds"] < 2.0
    assert "Traceback" not in completed.stderr


def test_usage_error_wall_time(tmp_path):
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "keraslab_cli", "approx", "--p", "0", "--outputs", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    elapsed = time.perf_counter() - started
    assert completed.returncode == 2
    assert "--p" in completed.stderr
    # Interpreter start included; a Keras import would add several seconds.
    assert elapsed < 3.0


def test_overlong_name_rejected(invoke, tmp_path):
    result = invoke("approx", *FAST, "--outputs", tmp_path, "--name", "x" * 300)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "--name" in message
    assert "at most 200 bytes" in message
    assert list(tmp_path.iterdir()) == []


def test_overlong_outputs_path_is_an_output_error(invoke, tmp_path):
    result = invoke("approx", *FAST, "--outputs", tmp_path / ("y" * 300))
    assert result.exit_code == 1, result.output
    assert "Cannot write to the output folder" in " ".join(result.stderr.split())
