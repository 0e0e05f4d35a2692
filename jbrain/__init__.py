"""jbrain: a living, learning spiking brain in JAX."""

__version__ = "0.1.0"  # the one version number (pyproject reads it; checkpoints record it)
