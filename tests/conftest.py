"""Shared fixtures: English by default, a CLI runner, small fast runs."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
from typer.testing import CliRunner

# CI must give the same verdict on every run, so property tests draw the same
# examples each time; set HYPOTHESIS_PROFILE=explore to draw new ones.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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
