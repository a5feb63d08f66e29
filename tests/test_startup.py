"""Help, version and usage errors start without importing keras or torch.

Importing keras and torch takes seconds, so only work that trains or loads a
model may import them. Each case runs keraslab in a fresh interpreter with
``-X importtime``, which lists every module the process imports on stderr.
"""

import subprocess
import sys

import pytest

HEAVY_PACKAGES = ("keras", "torch")


def imported_modules(*args: str) -> tuple[int, set[str]]:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keraslab_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"KERASLAB_LANG": "en", "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    modules = set()
    for line in completed.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            modules.add(line.rsplit("|", 1)[1].strip())
    return completed.returncode, modules


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["--help"], 0),
        (["approx", "--help"], 0),
        (["noisy", "--help"], 0),
        (["--version"], 0),
        (["--lang", "fr", "--help"], 0),
        (["approx", "--epochs", "abc"], 2),
        (["approx", "--epochs", "0"], 2),
        (["approx", "--function", "x+"], 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_light_command_imports_no_keras(args, exit_code):
    returncode, modules = imported_modules(*args)
    assert returncode == exit_code
    assert "keraslab_cli.cli.app" in modules
    for package in HEAVY_PACKAGES:
        assert package not in modules
        assert not any(module.startswith(package + ".") for module in modules)
