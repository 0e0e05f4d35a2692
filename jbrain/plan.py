"""Plan: HOW this device runs a circuit, resolved once at the edge.

The circuit says what the brain is; the plan picks the code: the backend
(`backends.REGISTRY`: "xla", the reference; "pallas_gpu"; "cpu_native"),
each projection's propagation path and STDP form, the spike-list capacity
of each population, the scan unroll, the spikes recorded, kernel tiling.
It is a frozen dataclass and a static argument of the jitted burst: a
change recompiles, and nothing else (no module global, no environment
variable read while tracing) picks a code path.

Paths (synapses.py): "event" (a spike list of the pre population, then a
scatter of the spikers' out-rows; needs a fixed fan-out, i.e. a "random"
projection between populations of one size), "gather" (a fixed-width
gather over the BCOO's buffers), "csr" (a static projection with no
out-table on the cpu_native backend, picked by "auto": once per burst its
synapses are grouped by pre neuron, then each step adds those of the pres
that fired; the gather's numbers), "bcoo" (`jax.experimental.sparse`, the
reference). STDP forms (plasticity.py): "eager" (every step) or "deferred"
(LTP replayed at the pre's next spike; event path, no scaling), the same
weights bit for bit. A spike-list capacity is an allocation, like JAX MD's
neighbour-list capacity: a burst that overflows it is re-run with a grown
plan (`Plan.grown`); it never changes the circuit or a checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import jax

from jbrain import backends, shard
from jbrain.circuit import Circuit, Population

PROPAGATIONS = ("auto", "event", "gather", "bcoo")
EXCHANGES = ("auto", "words", "list")
STDP_FORMS = ("auto", "eager", "deferred")
BACKENDS = ("auto", *backends.REGISTRY)


# populations up to this size list all their neurons (Plan.capacity)
SMALL_POPULATION = 256
# The event, bcoo and csr paths number a projection's synapses e = i*K + k
# in int32 (its presynaptic order, the BCOO's indices, the kernels' row
# offsets); the gather path indexes (post, slot) pairs. A projection with
# more synapses than this runs the gather path.
MAX_FLAT_SYNAPSES = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Plan:
    """A resolved plan (see the module docstring).

    platform: "cpu" or "gpu" (jax's backend of the device); backend: a
    `backends.REGISTRY` name; paths, stdp: per projection, in the circuit's
    order (stdp None: not plastic); spike_buffer: list capacity as a
    fraction of each population; listed: per population, whether a step
    builds its spike list; unroll: scan unroll; record_spikes: the raster
    records neurons [0, R); record_sheet: every step also emits all N
    spikes bit-packed, ceil(N/32) uint32 words (`brain.unpack_sheet`; the
    session turns it on for its --record_sheet budget, then off: one
    recompile); teaching: this burst runs the teacher-gated
    delta rule (stdp form "delta"; a program of its own, so ordinary
    bursts never touch a taught readout); feedback: this burst credits a
    chat reply's held eligibility (stdp form "reward" reads its tag, not its
    live trace: `learn.reward`); devices: the neuron axis is
    split over the first `devices` devices of `jax.devices()` (jbrain/shard.py;
    1: the single-device program); exchange: how the shards swap each
    step's spikes (devices > 1; "none" on one device): "words", every
    shard's spikes bit-packed (N/8 bytes a step), or "list", each shard's
    spiking neurons as a list of `exchange_capacity` int32 ids (4 x capacity
    x devices bytes; overflow re-runs the burst as the event path's lists).
    """

    platform: str
    backend: str
    paths: tuple[str, ...]
    stdp: tuple[str | None, ...]
    spike_buffer: float
    listed: tuple[bool, ...]
    unroll: int
    record_spikes: int = 0
    record_sheet: bool = False
    teaching: bool = False
    feedback: bool = False
    devices: int = 1
    exchange: str = "none"

    def capacity(self, size: int) -> int:
        """Spike-list entries for a population of `size` neurons: the
        spike_buffer fraction, and all of a population of up to
        SMALL_POPULATION neurons (a pool that fires as one costs nothing to
        list whole, and would overflow any fraction)."""
        return size if size <= SMALL_POPULATION else max(1, math.ceil(size * self.spike_buffer))

    def exchange_capacity(self, n: int) -> int:
        """Ids per shard in the spike-list exchange of a brain of `n` neurons
        (`capacity` of one shard's ceil(n / devices) neurons)."""
        return self.capacity(-(-n // self.devices))

    @property
    def uses_spike_list(self) -> bool:
        """Whether a burst can report STATUS_SPIKE_OVERFLOW."""
        return any(self.listed) or self.exchange == "list"

    def overflowed(self, circuit: Circuit, peak: dict[str, int]) -> list[Population]:
        """The populations whose `peak` spikes in one step outgrew their list."""
        return [p for p in circuit.populations if peak[p.name] > self.capacity(p.size)]

    def grown(self, circuit: Circuit, peak: dict[str, int]) -> Plan:
        """A plan whose lists hold the `peak` spikes (x1.25) of every
        population that overflowed, at least twice the old fraction: what
        `Session` re-runs an overflowed burst with."""
        need = max((peak[p.name] / p.size for p in self.overflowed(circuit, peak)), default=0.0)
        if self.exchange == "list":  # the host sees no shard's count: the busiest population's rate
            need = max([need] + [peak[p.name] / p.size for p in circuit.populations])
        return dataclasses.replace(self, spike_buffer=min(1.0, max(2.0 * self.spike_buffer, 1.25 * need)))

    def to_dict(self, circuit: Circuit) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["projections"] = {
            q.name: {"path": path, "stdp": stdp}
            for q, path, stdp in zip(circuit.projections, self.paths, self.stdp, strict=True)
        }
        d["spike_capacity"] = {
            p.name: self.capacity(p.size) if on else 0
            for p, on in zip(circuit.populations, self.listed, strict=True)
        }
        if self.devices > 1:
            d["exchange_bytes"] = exchange_bytes(circuit.n, self.devices, self.exchange_capacity(circuit.n))
            d["exchange_capacity"] = self.exchange_capacity(circuit.n) if self.exchange == "list" else 0
        for k in ("paths", "stdp", "listed"):
            del d[k]
        return d

    def to_json(self, circuit: Circuit) -> str:
        return json.dumps(self.to_dict(circuit), indent=1)


def exchange_bytes(n: int, devices: int, capacity: int) -> dict[str, int]:
    """Bytes all-gathered per step to swap a step's spikes of `n` neurons
    over `devices` shards: "words", uint32 words of 32 neurons (about
    n / 8); "list", `capacity` int32 ids from each shard."""
    return {"words": 4 * -(-n // 32), "list": 4 * capacity * devices}


def event_capable(circuit: Circuit, index: int) -> bool:
    """Whether projection `index` can take the event path: a fixed fan-out
    (an out-table) and delay 1 (the step lists the last step's spikes)."""
    q = circuit.projections[index]
    same = circuit.population(q.pre).size == circuit.population(q.post).size
    whole = not q.pre_region and not q.post_region
    hebbian = q.plasticity is None or q.plasticity.rule == "hebbian"
    fixed_fan_out = whole and ((q.rule == "random" and same) or q.rule == "local")
    return fixed_fan_out and hebbian and q.delay == 1 and q.stp is None


def resolve(
    circuit: Circuit,
    *,
    propagation: str = "auto",
    stdp: str = "auto",
    spike_buffer: float = 0.1,
    unroll: int = 0,
    record_spikes: int = 0,
    record_sheet: int = 0,
    backend: str = "auto",
    platform: str | None = None,
    devices: int = 1,
    exchange: str = "auto",
) -> Plan:
    """The plan for `circuit` on this process's default device (or
    `platform`). ValueError (one line, naming the flag) for a request the
    circuit or device cannot honour. record_sheet: steps of whole-brain
    spikes to record (`Session` counts them down; the plan only says
    whether this burst emits them).

    auto picks what measured fastest (BENCHMARKS.md): the event path on
    GPUs and on CPUs (with the compiled kernels, or with plasticity), else
    gather; deferred STDP on GPUs and on CPUs without the compiled kernels;
    the Pallas backend on GPUs, the compiled one on CPUs. A projection
    without a fixed fan-out takes the gather path when event is asked for.
    devices (0: all; `shard.check_devices`) > 1 shards the brain: the XLA
    backend, the gather path and eager STDP (jbrain/shard.py); asking for
    another is a ValueError. exchange (devices > 1): "words", "list", or
    auto, the one that moves fewer bytes a step (`exchange_bytes`: lists
    win when spike_buffer < 1/32).
    """
    platform = platform or jax.default_backend()
    platform = "cpu" if platform == "cpu" else "gpu"
    if propagation not in PROPAGATIONS:
        raise ValueError(f"--propagation={propagation!r} is unknown: use one of {', '.join(PROPAGATIONS)}")
    if stdp not in STDP_FORMS:
        raise ValueError(f"--stdp={stdp!r} is unknown: use one of {', '.join(STDP_FORMS)}")
    if backend not in BACKENDS:
        raise ValueError(f"--backend={backend!r} is unknown: use one of {', '.join(BACKENDS)}")
    if not 0.0 < spike_buffer <= 1.0:
        raise ValueError(
            f"--spike_buffer={spike_buffer} must be in (0, 1]: the spike list holds that fraction of neurons"
        )
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 0:
        raise ValueError(f"--unroll={unroll} must be >= 0 (0 picks by device)")
    if not 0 <= record_spikes <= circuit.n:
        raise ValueError(f"--record_spikes={record_spikes} must be between 0 and the {circuit.n} neurons")
    if isinstance(record_sheet, bool) or not isinstance(record_sheet, int) or record_sheet < 0:
        raise ValueError(
            f"--record_sheet={record_sheet} must be >= 0: the steps whose spikes go to WORKDIR/sheet.bits "
            "(0: none)"
        )
    devices = shard.check_devices(devices)
    if devices > 1:  # the sharded step (shard.py): XLA, gather, eager STDP
        asked = [
            f"--{flag}={value}"
            for flag, value, ok in (
                ("backend", backend, ("auto", "xla")),
                ("propagation", propagation, ("auto", "gather")),
                ("stdp", stdp, ("auto", "eager")),
            )
            if value not in ok
        ]
        if asked:
            raise ValueError(
                f"{', '.join(asked)} cannot run on --devices={devices}: a sharded brain runs the xla "
                "backend, the gather path and eager STDP; drop the flag or pass --devices=1"
            )
        backend, propagation, stdp = "xla", "gather", "eager"
    if exchange not in EXCHANGES:
        raise ValueError(f"--exchange={exchange} must be one of {', '.join(EXCHANGES)}")
    if devices == 1:
        exchange = "none"
    elif exchange == "auto":
        shard_cap = -(-circuit.n // devices)
        cap = shard_cap if shard_cap <= SMALL_POPULATION else max(1, math.ceil(shard_cap * spike_buffer))
        moved = exchange_bytes(circuit.n, devices, cap)
        exchange = "list" if moved["list"] < moved["words"] else "words"
    name = backends.pick(platform) if backend == "auto" else backend
    if not backends.REGISTRY[name].supports(platform):
        raise ValueError(f"--backend={name} does not run on this {platform}: use --backend=xla or auto")
    native = name == "cpu_native"
    plastic = any(q.plasticity is not None for q in circuit.projections)
    paths, forms = [], []
    for i, q in enumerate(circuit.projections):
        path = propagation
        if path == "auto":
            path = "event" if platform == "gpu" or native or plastic else "gather"
        if path == "event" and not event_capable(circuit, i):
            path = "gather"
            if propagation == "auto" and native and q.plasticity is None and q.stp is None:
                path = "csr"
        post_start, post_end = circuit.span(q, "post")
        size = (post_end - post_start) * q.fan_in
        if path != "gather" and size > MAX_FLAT_SYNAPSES:
            if propagation != "auto":
                raise ValueError(
                    f"--propagation={propagation} cannot run projection {q.name!r}: its {size:,} synapses "
                    f"exceed int32 synapse ids ({MAX_FLAT_SYNAPSES:,}); use --propagation=gather or auto"
                )
            path = "gather"
        form = None
        if q.plasticity is not None and q.plasticity.rule == "delta":
            form = "delta"  # dense, on the gather or bcoo path; only in teaching bursts
        elif q.plasticity is not None and q.plasticity.rule == "reward":
            if stdp == "deferred":
                raise ValueError(
                    f"--stdp=deferred cannot run projection {q.name!r}: its reward rule keeps an "
                    "eligibility trace per synapse and runs eagerly on the gather path; "
                    "use --stdp=eager or auto"
                )
            form = "reward"  # dense, on the gather or bcoo path (not event_capable)
        elif q.plasticity is not None:
            deferrable = path == "event" and not q.plasticity.scaling
            if stdp == "deferred" and not deferrable:
                why = "synaptic scaling" if q.plasticity.scaling else f"the {path} path"
                raise ValueError(
                    f"--stdp=deferred cannot run projection {q.name!r} on {why}: "
                    "use --stdp=eager, or drop --propagation / --synaptic_scaling"
                )
            if stdp == "auto":
                form = "deferred" if deferrable and (platform == "gpu" or not native) else "eager"
            else:
                form = stdp
        paths.append(path)
        forms.append(form)
    # a static event projection pushes its spikes without a list where the backend can, and
    # a deferred one replays and pushes its spikers' rows without one where the backend's
    # replay kernel votes on the spikes itself
    pushes = backends.REGISTRY[name].push_event is not None
    votes = backends.REGISTRY[name].replay_stdp is not None
    listed = []
    for p in circuit.populations:
        on = False
        for q, path, form in zip(circuit.projections, paths, forms, strict=True):
            unlisted = (pushes and form is None) or (votes and form == "deferred")
            needs_pre = q.pre == p.name and not unlisted
            if path == "event" and (needs_pre or (form == "eager" and q.post == p.name)):
                on = True
        listed.append(on)
    return Plan(
        platform=platform,
        backend=name,
        paths=tuple(paths),
        stdp=tuple(forms),
        spike_buffer=float(spike_buffer),
        listed=tuple(listed),
        unroll=unroll or (1 if platform == "cpu" else 8),
        record_spikes=record_spikes,
        record_sheet=record_sheet > 0,
        devices=devices,
        exchange=exchange,
    )
