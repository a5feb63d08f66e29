"""Console-script entry point that exits quietly on Ctrl-C from the first instant.

Importing the CLI takes a few tenths of a second; a SIGINT during that time
would otherwise print a KeyboardInterrupt traceback. Training installs its own
handlers later, which stop cleanly after the current epoch.
"""

from __future__ import annotations

import signal


def _exit_interrupted(signal_number: int, _frame) -> None:
    raise SystemExit(128 + signal_number)


def main() -> None:
    """Run keraslab, exiting with 130 on a Ctrl-C that comes before training."""
    signal.signal(signal.SIGINT, _exit_interrupted)
    from keraslab_cli.cli.app import main as run_cli

    run_cli()
