"""BrainConfig: every static number of the model, validated once at the edge.

The config is a frozen, hashable dataclass. Under `jax.jit` it is a static
argument, so changing any field recompiles. Units: time in steps of `dt` ms,
voltages in threshold units (the resting threshold is 1.0).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

PROPAGATIONS = ("auto", "event", "gather", "bcoo")
STDP_MODES = ("auto", "eager", "deferred")


def parse_sheet(text: str | None) -> tuple[int, int] | None:
    """'HxW' -> (H, W); '' or None -> None (1-D ring)."""
    if text is None or text == "":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ValueError(
            f"--sheet={text!r} is malformed: write it as HxW with two positive "
            "integers, e.g. --sheet=400x500, or leave it empty for a 1-D ring"
        )
    h, w = int(m.group(1)), int(m.group(2))
    if h <= 0 or w <= 0:
        raise ValueError(f"--sheet={text!r} has a zero side: both H and W must be >= 1")
    return h, w


@dataclasses.dataclass(frozen=True)
class BrainConfig:
    """Static model description (a jit static argument).

    Sizes
      n_neurons, fan_in: N neurons, each with exactly K incoming synapses
        (and, by construction, exactly K outgoing ones; see `synapses.py`).
      sheet: None for a 1-D ring, or (H, W) with H*W == N for a 2-D torus.

    Neuron (per step of dt = 1 ms, threshold units)
      v <- v + (v_rest - v)/tau_m + bias + drive + noise_sd*xi + I_syn + I_nbr + I_ext
      spike when v > theta (+ adapt_boost in the ADAPTED mode), then v <- v_reset
      and the neuron is refractory for `refractory` steps.

    Homeostasis
      theta <- clip(theta + eta_theta*(s - target_rate), theta_min, theta_max)
      g     <- clip(g + ctrl_gain*(target_rate - rate), -ctrl_max, ctrl_max)
      drive  = g + osc_amp*sin(2 pi t / osc_period)
    """

    # sizes and wiring
    n_neurons: int = 200_000
    fan_in: int = 32
    sheet: tuple[int, int] | None = None
    w_max: float = 0.05  # initial weights ~ U[0, w_max); plastic bound
    neighbour_weight: float = 0.08  # total excitation if all neighbours fired
    # neuron
    tau_m: float = 20.0
    v_rest: float = 0.0
    v_reset: float = 0.0
    theta_init: float = 1.0
    refractory: int = 2
    bias: float = 0.03
    noise_sd: float = 0.1  # 0.05 (the seed's) synchronises into 30% bursts
    tau_adapt: float = 100.0  # spike-frequency trace a <- a*exp(-1/tau) + s
    adapt_on: float = 12.0  # enter ADAPTED when a >= adapt_on
    adapt_off: float = 6.0  # leave ADAPTED when a < adapt_off
    adapt_boost: float = 0.5  # extra threshold while ADAPTED
    # homeostasis
    target_rate: float = 0.05
    eta_theta: float = 0.01
    theta_min: float = 0.2
    theta_max: float = 10.0
    ctrl_gain: float = 0.01
    ctrl_max: float = 0.5
    osc_amp: float = 0.005
    osc_period: float = 250.0
    # plasticity (STDP on the sparse weights; event-driven)
    plasticity: bool = False
    tau_pre: float = 20.0
    tau_post: float = 20.0
    a_plus: float = 0.0005
    a_minus: float = 0.000525
    synaptic_scaling: bool = False
    stdp: str = "auto"  # eager | deferred (LTP replayed at the pre's next spike; same weights)
    # input / output populations (text I/O lives on these)
    input_channels: int = 256  # one channel per byte value
    output_channels: int = 64  # groups read by the decoder
    io_fraction: float = 0.1  # fraction of N in each of the two populations
    input_gain: float = 0.5  # per-step current into a stimulated input neuron
    # engine
    propagation: str = "auto"
    spike_buffer: float = 0.1  # capacity of the event spike list, fraction of N
    unroll: int = 0  # scan unroll; 0 = auto (8 on GPU, 1 on CPU where unrolling is slower)
    record_spikes: int = 0  # record the spike trains of neurons [0, R)

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        for name in ("n_neurons", "fan_in"):
            v = getattr(self, name)
            need(
                isinstance(v, int) and not isinstance(v, bool) and v > 0,
                f"--{name} must be a positive integer (got {v!r}); "
                f"e.g. --{name}={getattr(BrainConfig, name)}",
            )
        need(
            self.fan_in < self.n_neurons,
            f"--fan_in={self.fan_in} must be smaller than --n_neurons={self.n_neurons}: "
            "lower --fan_in or raise --n_neurons",
        )
        need(
            self.n_neurons * self.fan_in < 2**31,
            f"--n_neurons * --fan_in = {self.n_neurons * self.fan_in} synapses exceeds "
            "int32 indexing (2**31 - 1): lower one of them",
        )
        if self.sheet is not None:
            h, w = self.sheet
            need(
                h * w == self.n_neurons,
                f"--sheet={h}x{w} has {h * w} cells but --n_neurons={self.n_neurons}: "
                f"make H*W equal --n_neurons (or pass --n_neurons={h * w})",
            )
            need(h >= 3 and w >= 3, f"--sheet={h}x{w}: both sides must be >= 3")
        need(
            0.0 < self.target_rate < 1.0,
            f"--target_rate={self.target_rate} must lie strictly between 0 and 1 "
            "(a fraction of neurons firing per step, e.g. 0.05)",
        )
        need(
            self.propagation in PROPAGATIONS,
            f"--propagation={self.propagation!r} is unknown: use one of {', '.join(PROPAGATIONS)}",
        )
        need(
            self.stdp in STDP_MODES,
            f"--stdp={self.stdp!r} is unknown: use one of {', '.join(STDP_MODES)}",
        )
        need(
            self.stdp != "deferred" or self.propagation in ("auto", "event"),
            f"--stdp=deferred needs the event path, not --propagation={self.propagation}: "
            "drop --propagation or use --stdp=eager",
        )
        need(
            self.stdp != "deferred" or not self.synaptic_scaling,
            "--stdp=deferred cannot rescale rows (--synaptic_scaling): use --stdp=eager",
        )
        need(
            0.0 < self.spike_buffer <= 1.0,
            f"--spike_buffer={self.spike_buffer} must be in (0, 1]: the spike list "
            "holds that fraction of neurons",
        )
        need(
            isinstance(self.unroll, int) and self.unroll >= 0,
            f"--unroll={self.unroll} must be >= 0 (0 picks by device)",
        )
        need(self.tau_m > 0, f"tau_m={self.tau_m} must be > 0 ms")
        need(self.refractory >= 0, f"refractory={self.refractory} must be >= 0 steps")
        need(self.noise_sd >= 0, f"noise_sd={self.noise_sd} must be >= 0")
        need(self.w_max > 0, f"--w_max={self.w_max} must be > 0")
        need(
            self.w_max * self.fan_in < 2**31 / 2**WEIGHT_FRAC_BITS / 4,
            f"--w_max * --fan_in = {self.w_max * self.fan_in} is too large for the "
            "fixed-point synaptic sum: lower --w_max",
        )
        need(
            0 <= self.record_spikes <= self.n_neurons,
            f"--record_spikes={self.record_spikes} must be between 0 and --n_neurons",
        )
        need(
            0.0 < self.io_fraction <= 0.5,
            f"io_fraction={self.io_fraction} must be in (0, 0.5]",
        )
        need(
            self.n_neurons * self.io_fraction >= self.output_channels,
            f"--n_neurons={self.n_neurons} is too small for {self.output_channels} "
            "output groups: use at least "
            f"{math.ceil(self.output_channels / self.io_fraction)} neurons",
        )

    # ---- derived sizes (static Python ints) ----
    @property
    def n_neighbours(self) -> int:
        return 2 if self.sheet is None else 8

    @property
    def spike_capacity(self) -> int:
        return max(1, math.ceil(self.n_neurons * self.spike_buffer))

    @property
    def input_group(self) -> int:
        """Neurons per input channel; the input population is [0, C_in*G_in)."""
        return max(1, int(self.n_neurons * self.io_fraction) // self.input_channels)

    @property
    def output_group(self) -> int:
        """Neurons per output group; the output population ends at N."""
        return max(1, int(self.n_neurons * self.io_fraction) // self.output_channels)

    @property
    def output_start(self) -> int:
        return self.n_neurons - self.output_channels * self.output_group

    # ---- (de)serialisation, for checkpoints and logs ----
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sheet"] = None if self.sheet is None else list(self.sheet)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("sheet") is not None:
            kw["sheet"] = tuple(kw["sheet"])
        return cls(**kw)

    def replace(self, **changes: Any) -> BrainConfig:
        return dataclasses.replace(self, **changes)


# Synaptic sums are accumulated in int32 fixed point with this many fraction
# bits: integer addition is associative, so every propagation path (gather,
# event-driven scatter with atomics) gives bit-identical inputs on any device.
WEIGHT_FRAC_BITS = 20

# The fields that fix the shapes of a brain (a checkpoint must match them).
SHAPE_FIELDS = ("n_neurons", "fan_in", "sheet")
