"""jbrain: a living, learning spiking brain in JAX."""

__version__ = "0.1.0"  # keep equal to pyproject.toml's version (checkpoints record it)
