"""The core: data, models, training, plots and run outputs.

Nothing under this package imports typer or rich, and keras or torch are
imported only inside the functions that need them (see ``backend``).
"""
