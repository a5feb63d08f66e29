"""keraslab: a command-line experiment runner for the Keras neural-network lab."""

__version__ = "0.1.0"
