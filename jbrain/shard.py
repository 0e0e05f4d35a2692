"""One brain over several devices: the neuron axis sharded over a 1-D `Mesh`.

A plan with `devices` D > 1 (plan.py) runs the same `step` and `burst`
(brain.py) under `jax.jit` with the brain's arrays laid out over a mesh
of the first D devices of `jax.devices()` (every process's, in a
`jax.distributed` run), axis AXIS:

    neurons.*                  (N,)        split along the neuron axis
    projections.*.weights      (N_post*K,) split by post-synaptic neuron
    projections.*.y_post, g    (N_post,)   split by post-synaptic neuron
    projections.*.x_pre        (N_pre,)    replicated: every shard updates
                                           every pre trace from the
                                           exchanged spikes, so LTP and the
                                           delta rule read them locally
    wiring.*.pre, out_post     (N, K)      split by post (by pre), rows whole
    homeostasis, step, key,
    status                     ()/(2,)     replicated

Each step exchanges the spikes that cross shards once: every shard packs
its spikes into uint32 words (32 neurons a word), the words are
all-gathered, and each shard unpacks the whole (N,) spike vector
(`brain.exchange_spikes`). With it, a shard's synaptic input (the gather
path, W_i . s[pre_i] in int32 fixed point), STDP (LTP at its posts'
spikes, LTD at any pre's), the delta rule and neighbour excitation need
nothing more from the other shards. XLA's SPMD partitioner splits the rest
of the step (elementwise updates, k-WTA blocks, population slices, ports)
and turns whole-brain reductions into per-shard partial sums and an
all-reduce. Integer sums (spike counts, fixed-point currents) are exact
in any order, so spikes, state and weights do not depend on D; the float
means of the metrics (mean input, threshold, voltage) may differ from a
one-device run in their last bits (their sums are split).

A sharded plan runs the XLA backend, the gather path and eager STDP: the
event path's spike lists and the custom kernels (cpu_native, pallas_gpu)
are single-device programs. D = 1 is today's program: nothing here runs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "n"


def check_devices(devices: int) -> int:
    """`devices` (0: every device of every process) validated against this
    run's device count; ValueError (one line, naming --devices) if not."""
    have = jax.device_count()
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 0:
        raise ValueError(f"--devices={devices} must be >= 0 (0: all {have} devices)")
    if devices > have:
        where = "in this run" if jax.process_count() == 1 else f"over its {jax.process_count()} processes"
        raise ValueError(
            f"--devices={devices} is more than the {have} device{'s' if have > 1 else ''} {where}: "
            f"pass --devices={have} or fewer (0: all of them)"
        )
    if jax.process_count() > 1 and devices not in (0, have):
        raise ValueError(
            f"--devices={devices}: a run of {jax.process_count()} processes shards over all {have} "
            "devices: drop --devices"
        )
    return devices or have


@functools.cache
def mesh(devices: int) -> Mesh:
    """The 1-D mesh of the first `devices` devices (axis AXIS)."""
    return Mesh(np.asarray(jax.devices()[:devices]), (AXIS,))


def _spec(path: str, ndim: int) -> P:
    """The partition of one leaf, by its place in the state or wiring."""
    if ndim == 0 or "x_pre" in path:
        return P()
    if "neurons" in path or "projections" in path:
        return P(AXIS)
    return P()


def shardings(devices: int, tree: Any) -> Any:
    """A NamedSharding per leaf of a state or wiring pytree (or of their
    checkpoint dicts: the same names), for a mesh of `devices`."""
    m = mesh(devices)
    return jax.tree_util.tree_map_with_path(
        lambda path, x: NamedSharding(m, _spec(jax.tree_util.keystr(path), len(x.shape))), tree
    )


def put(devices: int, tree: Any) -> Any:
    """`tree` (state or wiring; host or device arrays, the same values on
    every process) laid out over the mesh of `devices`. Each process
    places only its own devices' shards (`jax.make_array_from_callback`),
    so it works across processes too. devices=1: each leaf committed to
    the device it is on (host arrays: the default device). A newborn
    brain's arrays are uncommitted and a restored one's committed, and jit
    keys its programs on that: without this a restored brain would compile
    every burst again."""
    if devices == 1:
        return jax.tree.map(_commit, tree)
    target = shardings(devices, tree)

    def place(x: Any, sharding: NamedSharding) -> jax.Array:
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        host = host_array(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree, target)


def _commit(x: Any) -> jax.Array:
    """x committed to its device (a host array: to the default device);
    the same buffer where x is already there."""
    x = x if isinstance(x, jax.Array) else jax.device_put(x)
    return x if x.committed else jax.device_put(x, x.sharding)


def constrain(devices: int, tree: Any) -> Any:
    """Inside jit: `tree`'s leaves held to their layout (the scan carry
    keeps the state's sharding from step to step)."""
    if devices == 1:
        return tree
    return jax.tree.map(jax.lax.with_sharding_constraint, tree, shardings(devices, tree))


def replicated(devices: int, x: jax.Array) -> jax.Array:
    """Inside jit: `x` on every device (what the host reads once per burst)."""
    if devices == 1:
        return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh(devices), P()))


def split(devices: int, x: jax.Array) -> jax.Array:
    """Inside jit: `x` split along its first axis."""
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh(devices), P(AXIS)))


def host_array(x: Any) -> np.ndarray:
    """The whole of `x` as a host array, also when its shards live in
    other processes (an all-gather: every process must call it)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def to_host(tree: Any) -> Any:
    """`host_array` of every leaf."""
    return jax.tree.map(host_array, tree)
