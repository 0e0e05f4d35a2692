"""The "cpu_native" backend: compiled CPU kernels through the XLA FFI (source: ../csrc/cpu_kernels.cc).

XLA:CPU runs the event path's row gathers element by element, padding
included: most of an event step's time on a CPU (BENCHMARKS.md).
`event_propagate` does the same work in one C++ loop that prefetches the
spikers' rows ahead, with the same int32 fixed-point sums (`event_push`:
the same from the spike vector, for a static projection, no list),
`csr_order` / `csr_push` do it for a static projection with no out-table
(the plan's "csr" path: the gather path's sums, touching only the
synapses of the neurons that fired), and `event_stdp` applies STDP over
the spike list in place; all give XLA's numbers bit for bit, so a run is
the same with or without them.

The library is built on first use with the system C++ compiler ($CXX, else
c++/g++/clang++) against jaxlib's FFI headers, and cached in $JBRAIN_CACHE
(default ~/.cache/jbrain) under a hash of the source, jaxlib's version and
the compiler, written to a temporary file and renamed (concurrent builds
cannot leave a half-written library). `main()` builds it ahead of time
(scripts/_venv.sh calls it). Without a compiler, or if the build
fails, `available()` is False, one warning says why and how to fix it, and the
plan picks the "xla" backend (`--backend=xla` asks for it).
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jbrain.circuit import WEIGHT_FRAC_BITS
from jbrain.compile_cache import cache_dir
from jbrain.synapses import from_fixed

SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc", "cpu_kernels.cc")
_TARGETS = {
    "jbrain_event_propagate": "JbrainEventPropagate",
    "jbrain_event_push": "JbrainEventPush",
    "jbrain_event_stdp": "JbrainEventStdp",
    "jbrain_csr_order": "JbrainCsrOrder",
    "jbrain_csr_push": "JbrainCsrPush",
}


@dataclasses.dataclass
class _Build:
    """This process's build: started?, the library (or None: failed), why."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    path: str | None = None
    error: str | None = None  # why the build failed; warned once, then cleared
    registered: bool = False


_build_state = _Build()


def enabled() -> bool:
    """Whether the kernels can apply here at all: jax's default backend is the CPU."""
    return jax.default_backend() == "cpu"


def compiler() -> str | None:
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    for name in ("c++", "g++", "clang++"):
        if shutil.which(name):
            return shutil.which(name)
    return None


# -O3 -march=native: code for this CPU (faster than -O2's baseline x86-64
# code: BENCHMARKS.md, CPU, session 26). Native code may not run
# on another CPU, so the library's key names this one (a cache folder shared
# between machines keeps one build each); a compiler that does not know
# -march=native builds without it. No FMA contraction: the kernels' float
# arithmetic stays XLA's, op by op.
FLAGS = ("-O3", "-ffp-contract=off", "-march=native")


def _cpu_identity() -> str:
    """This CPU's model and feature flags (Linux's /proc/cpuinfo), else its architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        import platform

        return f"{platform.machine()}|{platform.processor()}"


def library_path(cxx: str) -> str:
    """Where the library built by `cxx` for this source and jaxlib lives."""
    import jaxlib

    with open(SOURCE, "rb") as f:
        key = hashlib.sha256(f.read())
    key.update(f"{jaxlib.__version__}|{cxx}|{WEIGHT_FRAC_BITS}|{FLAGS}|{_cpu_identity()}".encode())
    return os.path.join(cache_dir(), f"cpu_kernels-{key.hexdigest()[:16]}.so")


def _build(b: _Build) -> None:
    """Compile (or find) the library: sets b.path, or b.error."""
    b.path, b.error = _compile()


def _compile() -> tuple[str | None, str | None]:
    """(library path, None) or (None, why not)."""
    cxx = compiler()
    if cxx is None:
        return None, "no C++ compiler found: install g++ (or set CXX to one)"
    path = library_path(cxx)
    if os.path.exists(path):
        return path, None
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        _remove_stale_builds()
        fd, tmp = tempfile.mkstemp(dir=cache_dir(), prefix=".build-", suffix=".so")
        os.close(fd)
    except OSError as e:
        return None, f"cannot write the cache folder {cache_dir()} ({e.strerror}): set JBRAIN_CACHE"
    for flags in (FLAGS, FLAGS[:-1]):  # without -march=native if the compiler refuses it
        cmd = [cxx, *flags, "-std=c++17", "-pthread", "-shared", "-fPIC", "-w", "-I", jax.ffi.include_dir()]
        try:
            done = subprocess.run([*cmd, SOURCE, "-o", tmp], capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            done = None
            message = str(e)
        if done is None or done.returncode == 0:
            break
    if done is not None and done.returncode == 0:
        os.replace(tmp, path)  # atomic: readers see the whole library or none
        return path, None
    if done is not None:
        lines = (done.stderr or done.stdout).strip().splitlines()
        message = lines[-1] if lines else f"exit code {done.returncode}"
    os.unlink(tmp)
    return None, f"{os.path.basename(cxx)} failed on {SOURCE}: {message}"


def _remove_stale_builds(age_s: float = 3600.0) -> None:
    """Delete temporary libraries of builds that died (process killed
    mid-compile) more than `age_s` ago; a running build's file is younger."""
    now = time.time()
    for name in os.listdir(cache_dir()):
        path = os.path.join(cache_dir(), name)
        try:
            if name.startswith(".build-") and now - os.stat(path).st_mtime > age_s:
                os.unlink(path)
        except OSError:
            pass


def start_build() -> None:
    """Start building in the background (returns at once), so the compiler
    runs while the brain is born; `available()` waits for it."""
    b = _build_state
    with b.lock:
        if b.thread is None and enabled():
            b.thread = threading.Thread(target=_build, args=(b,), name="jbrain-cpu-kernels", daemon=True)
            b.thread.start()


def available() -> bool:
    """Whether the kernels can run here (builds and registers them on first
    call; False, with one warning, if that failed)."""
    if not enabled():
        return False
    start_build()
    b = _build_state
    b.thread.join()
    with b.lock:
        if b.path is None:
            if b.error:
                why, b.error = b.error, None
                warnings.warn(
                    f"jbrain: CPU kernels unavailable, the event path runs in XLA (slower): {why}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return False
        if not b.registered:
            lib = ctypes.cdll.LoadLibrary(b.path)
            for target, symbol in _TARGETS.items():
                jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
            b.registered = True
        return True


def _require() -> None:
    if not available():
        raise RuntimeError("jbrain's CPU kernels are not available here (see the warning): use XLA's path")


def event_propagate(out_post: jax.Array, weights_pre: jax.Array, ids: jax.Array) -> jax.Array:
    """I = W @ s over the listed spikers: `synapses.propagate_event`'s
    numbers. out_post (N, K) int32; weights_pre (N*K,) f32, presynaptic
    order; ids (C,) int32, padded with N (skipped). Returns (N,) f32.
    Raises RuntimeError unless `available()`."""
    _require()
    n = out_post.shape[0]
    call = jax.ffi.ffi_call("jbrain_event_propagate", jax.ShapeDtypeStruct((n,), jnp.float32))
    return call(out_post.reshape(-1), weights_pre, ids)


def event_push(out_post: jax.Array, weights_pre: jax.Array, spikes: jax.Array) -> jax.Array:
    """`event_propagate` over the spike vector, no list: out_post (N, K)
    int32; weights_pre (N*K,) f32; spikes (N,) uint8/bool. Returns (N,) f32.
    Raises RuntimeError unless `available()`."""
    _require()
    n = out_post.shape[0]
    call = jax.ffi.ffi_call("jbrain_event_push", jax.ShapeDtypeStruct((n,), jnp.float32))
    return call(out_post.reshape(-1), weights_pre, spikes.astype(jnp.uint8))


def csr_order(pre: jax.Array, n_pre: int) -> tuple[jax.Array, jax.Array]:
    """A static projection's synapses grouped by pre neuron (a stable
    counting sort): pre (N_post, K) int32 -> (offsets (N_pre + 1,) int32,
    order (N_post*K,) int32); the post-major synapse ids of pre j are
    order[offsets[j]:offsets[j + 1]]. Raises RuntimeError unless `available()`."""
    _require()
    call = jax.ffi.ffi_call(
        "jbrain_csr_order",
        (jax.ShapeDtypeStruct((n_pre + 1,), jnp.int32), jax.ShapeDtypeStruct((pre.size,), jnp.int32)),
    )
    return tuple(call(pre.reshape(-1)))


def csr_push(
    table: tuple[jax.Array, jax.Array], weights: jax.Array, spikes: jax.Array, n_post: int
) -> jax.Array:
    """I = W @ s for a projection with no out-table, from `csr_order`'s
    table: the gather path's numbers bit for bit (int32 fixed point), work
    ~ the synapses of the pres that fired. weights (N_post*K,) f32
    post-major; spikes (N_pre,) uint8/bool. Returns (N_post,) f32. Raises
    RuntimeError unless `available()`."""
    _require()
    offsets, order = table
    call = jax.ffi.ffi_call("jbrain_csr_push", jax.ShapeDtypeStruct((n_post,), jnp.int32))
    return from_fixed(call(offsets, order, weights, spikes.astype(jnp.uint8)))


def event_stdp(
    pre: jax.Array,
    out_post: jax.Array,
    weights_pre: jax.Array,
    spikes: jax.Array,
    ids: jax.Array,
    ltp: jax.Array,
    ltd: jax.Array,
    *,
    w_max: float,
) -> jax.Array:
    """STDP for the spike vector s over the listed spikers, in place:
    `plasticity.stdp_step(pre_major=True)` without synaptic scaling, bit for
    bit. pre, out_post (N, K) int32; weights_pre (N*K,) f32, presynaptic
    order (aliased to the result); spikes (N,) uint8; ids (C,) int32 padded
    with N; ltp = a_plus * x_pre, ltd = a_minus * y_post, (N,) f32, traces
    before s. Returns the weights (N*K,) f32. Raises RuntimeError unless `available()`."""
    _require()
    call = jax.ffi.ffi_call(
        "jbrain_event_stdp", jax.ShapeDtypeStruct(weights_pre.shape, jnp.float32), input_output_aliases={6: 0}
    )
    return call(
        pre.reshape(-1), out_post.reshape(-1), spikes.astype(jnp.uint8), ids, ltp, ltd, weights_pre,
        w_max=np.float32(w_max),
    )  # fmt: skip


def main() -> int:
    """Build now; prints the library's path. Called as
    `python -c "from jbrain.backends import cpu_native; cpu_native.main()"`
    (`python -m` would run this module a second time beside the copy that
    jbrain.backends imports, and runpy warns about it)."""
    path, why = _compile()
    if path is None:
        print(f"jbrain: CPU kernels not built: {why}", file=sys.stderr)
        return 1
    print(path)
    return 0
