"""Launchers: thin absl apps over the jbrain library (`jbrain <command>`)."""

import os

# JAX's GPU client takes 75% of the card's memory when it starts unless told
# otherwise, and reserving it cost ~1.1 s of every start of a brain; a pool
# that grows as arrays are made leaves every step as fast (BENCHMARKS.md,
# start-up). Read when the GPU client starts, so it holds for every launcher;
# XLA_PYTHON_CLIENT_PREALLOCATE=true in the environment restores the reservation.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
