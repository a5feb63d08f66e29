"""Shared fixtures: English by default, a CLI runner, small fast runs."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

# Tests choose their language explicitly; the machine's locale must not leak in.
os.environ["KERASLAB_LANG"] = "en"
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """Run every test in English unless it sets another language."""
    from keraslab_cli.core.i18n import set_language

    monkeypatch.setenv("KERASLAB_LANG", "en")
    set_language("en")
    yield
    set_language("en")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Invoke keraslab with arguments and return the result (stdout and stderr apart)."""
    from keraslab_cli.cli.app import app

    def run(*args: str, env: dict | None = None, input: str | None = None):
        # A wide console keeps table cells on one line, so tests can search them.
        environment = {"COLUMNS": "200", **(env or {})}
        return runner.invoke(app, [str(arg) for arg in args], env=environment, input=input, catch_exceptions=False)

    return run
