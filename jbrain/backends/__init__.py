"""Backends: the kernels behind one interface, found by name.

A rule (STDP, propagation) is written once, in XLA, in synapses.py and
plasticity.py: that is the "xla" backend, the reference. Another backend
overrides some of its kernels with faster ones that give the same numbers
bit for bit (tests check each against XLA):

    spike_list(s, capacity)            -> (ids padded with N, raw ids, count)
    propagate_event(wiring, w_pre, ids) -> W @ s, (N,) f32
    push_event(wiring, w_pre, s, scratch) -> (W @ s, scratch): a static
                                        event projection with no spike list,
                                        or None
    push_scratch(n_post)                what a burst carries from one push to
                                        the next (None: nothing)
    csr_order(pre, n_pre)               a static projection's synapses grouped
                                        by pre, once per burst (the "csr" path),
                                        or None
    csr_push(table, w, s, n_post)       W @ s from that table, or None
    event_stdp                          eager STDP over a spike list, or None
    replay_stdp                         the deferred-STDP kernel (given the push's
                                        scratch, it also pushes the spikers' new rows),
                                        or None

"pallas_gpu" (pallas_gpu.py: the push, the spike list and deferred STDP as
Pallas Mosaic GPU kernels) and "cpu_native" (cpu_native.py: the push, the
event scatter, the csr push and eager STDP as compiled C++ through the XLA FFI). The plan
(plan.py) names one; `pick(platform)` is what "auto" resolves to.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jbrain import synapses
from jbrain.backends import cpu_native, pallas_gpu


class XLA:
    """The reference: every kernel in plain XLA."""

    name = "xla"
    push_event = None
    csr_order = None
    csr_push = None
    event_stdp = None
    replay_stdp = None

    @staticmethod
    def push_scratch(n_post: int) -> Any:
        return None

    @staticmethod
    def supports(platform: str) -> bool:
        return True

    @staticmethod
    def spike_list(spikes: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        ids, count = synapses.spike_list(spikes, capacity)
        return ids, ids, count

    @staticmethod
    def propagate_event(wiring: Any, weights_pre: jax.Array, ids: jax.Array) -> jax.Array:
        return synapses.propagate_event(wiring, weights_pre, ids)


class PallasGPU(XLA):
    """Pallas Mosaic GPU push, spike list and deferred STDP on NVIDIA GPUs.
    The list is in no fixed order (every consumer is order-free); `raw` is
    the kernel's list, `ids` the same padded with N."""

    name = "pallas_gpu"
    replay_stdp = staticmethod(pallas_gpu.replay_stdp)

    push_scratch = staticmethod(pallas_gpu.push_scratch)

    @staticmethod
    def push_event(wiring: Any, w_pre: jax.Array, spikes: jax.Array, scratch: Any) -> tuple[jax.Array, Any]:
        """scratch: (a zero accumulator, the last step's), swapped each step."""
        acc, stale = pallas_gpu.push_event(spikes.astype(jnp.uint8), wiring.out_post, w_pre, *scratch)
        return synapses.from_fixed(acc), (stale, acc)

    @staticmethod
    def supports(platform: str) -> bool:
        return platform == "gpu" and pallas_gpu.import_error() is None

    @staticmethod
    def spike_list(spikes: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        raw, count = pallas_gpu.spike_list(spikes, capacity=capacity)
        return pallas_gpu.listed(raw, count, spikes.shape[0]), raw, count


class CpuNative(XLA):
    """Compiled C++ push, event scatter, csr push and eager STDP on CPUs (built on first use)."""

    name = "cpu_native"
    event_stdp = staticmethod(cpu_native.event_stdp)
    csr_order = staticmethod(cpu_native.csr_order)
    csr_push = staticmethod(cpu_native.csr_push)

    @staticmethod
    def supports(platform: str) -> bool:
        return platform == "cpu" and cpu_native.available()

    @staticmethod
    def propagate_event(wiring: Any, weights_pre: jax.Array, ids: jax.Array) -> jax.Array:
        return cpu_native.event_propagate(wiring.out_post, weights_pre, ids)

    @staticmethod
    def push_event(wiring: Any, w_pre: jax.Array, spikes: jax.Array, scratch: Any) -> tuple[jax.Array, Any]:
        return cpu_native.event_push(wiring.out_post, w_pre, spikes), scratch


REGISTRY: dict[str, type[XLA]] = {"xla": XLA, "pallas_gpu": PallasGPU, "cpu_native": CpuNative}
_warned: set[str] = set()


def get(name: str) -> type[XLA]:
    return REGISTRY[name]


def pick(platform: str) -> str:
    """The fastest backend that runs on `platform` ("cpu" or "gpu"): the
    compiled kernels on CPUs (if they build), Pallas on GPUs (if this jax
    has its Mosaic GPU backend; one warning if not), else XLA."""
    if platform == "gpu":
        if PallasGPU.supports(platform):
            return "pallas_gpu"
        if "pallas" not in _warned:
            _warned.add("pallas")
            warnings.warn(
                "jbrain: this jax has no Pallas Mosaic GPU backend "
                f"({pallas_gpu.import_error()}); running the XLA kernels (slower)",
                RuntimeWarning,
                stacklevel=2,
            )
        return "xla"
    return "cpu_native" if CpuNative.supports(platform) else "xla"
