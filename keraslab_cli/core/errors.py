"""Exceptions raised by the core, as a small hierarchy.

Each carries a message already translated into the selected language. The CLI
maps them to exit codes: usage errors 2, runtime failures 1.
"""

from __future__ import annotations

from typing import Any


class KeraslabError(Exception):
    """Base of every error keraslab reports to the user without a traceback."""

    exit_code = 1


class InvalidValue(KeraslabError):
    """A parameter value that keraslab rejects before any work starts.

    Attributes:
        field: name of the parameter in the core (``learning_rate``); the CLI
            turns it into the flag the user typed (``--lr``).
        value: the value received.
        expected: what a valid value looks like, translated.
    """

    exit_code = 2

    def __init__(self, field: str, value: Any, expected: str) -> None:
        super().__init__(f"{field}={value!r}: {expected}")
        self.field = field
        self.value = value
        self.expected = expected


class InvalidFile(KeraslabError):
    """A file given by the user that cannot be used (missing, corrupt, unsafe)."""

    exit_code = 2

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class OutputError(KeraslabError):
    """An output folder or file that cannot be written."""

    exit_code = 1


class TrainingFailed(KeraslabError):
    """Training that could not finish (a diverged loss, for example)."""

    exit_code = 1
