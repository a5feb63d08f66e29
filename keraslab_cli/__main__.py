"""Entry point for ``python -m keraslab_cli``."""

from keraslab_cli.cli.app import main

main()
