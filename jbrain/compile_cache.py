"""JAX's persistent compilation cache for jbrain's programs.

A brain's programs (its burst, the reply burst, the teaching and feedback
bursts) take seconds to compile and are the same from one start to the next
for the same circuit, plan and device. `enable` points JAX's persistent
cache at a folder (by default $JBRAIN_CACHE/xla, else ~/.cache/jbrain/xla),
so a second start loads them instead of compiling (BENCHMARKS.md, start-up).
JAX keys each entry by the program, the compiler options, jax's version and
the device, so a stale entry is never used. The launchers call it first
(`--compile_cache`); a library user may call it before the first Session.
"""

from __future__ import annotations

import os

import jax

# Every program is written, however fast it compiled: a newborn brain's
# wiring runs op by op (brain.init_brain), and each op's first dispatch
# compiles a small program of its own; loading them instead shortens
# birth on GPUs and CPUs alike (BENCHMARKS.md, start-up). A brain adds
# some tens of small entries.
MIN_COMPILE_SECONDS = 0.0


def cache_dir() -> str:
    """jbrain's cache folder: $JBRAIN_CACHE, else ~/.cache/jbrain."""
    return os.environ.get("JBRAIN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jbrain")


def enable(path: str = "auto") -> str | None:
    """Turn JAX's persistent compilation cache on; returns its folder (None: off).

    path: "auto" -> cache_dir()/xla, unless JAX already has a cache folder
    (JAX_COMPILATION_CACHE_DIR or jax.config), which is kept; "off" -> no
    cache (not even JAX_COMPILATION_CACHE_DIR's); else the folder to use
    (created if missing). ValueError (one line) if an explicit folder
    cannot be created or written; with "auto" a folder that cannot be made
    leaves the cache off. Call it before the first
    compilation: JAX reads the setting when it first compiles.
    """
    if path == "off":
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    if path == "auto":
        current = jax.config.jax_compilation_cache_dir
        if current:
            return current
        path = os.path.join(cache_dir(), "xla")
        if not _writable(path):
            return None
    elif not _writable(path):
        raise ValueError(
            f"--compile_cache={path} cannot be created or written: pass a writable folder, "
            "auto (the default) or off"
        )
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)
