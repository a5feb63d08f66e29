"""Entry point for ``python -m keraslab_cli``."""

from keraslab_cli.entry import main

main()
