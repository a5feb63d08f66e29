"""The command-line interface: Typer commands over the core, one module per command."""
