"""BrainConfig: the model's constants as flags set them, and the presets
that turn them into a `Circuit`.

`BrainConfig` is flat, frozen and validated: one field per flag (launchers
define a flag for every field, so every model constant can be set from the
command line or a `--flagfile=experiments/configs/NAME.flags` preset).
`config.circuit()` builds the `Circuit` of the preset named by
`config.preset` (`PRESETS`: seed, ei, coba). How a device runs it
(propagation path, STDP form, spike-list capacity, unroll) is not here: it
is the `Plan` (plan.py). Units: time constants in ms; `dt` in ms; delays and
`refractory` in steps; `bias`, `noise_sd` and `input_gain` per step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable
from typing import Any

from jbrain.circuit import (
    STDP,
    STP,
    Circuit,
    Controller,
    InputPort,
    Neuron,
    Placement,
    Population,
    Projection,
    Readout,
    Region,
    bernoulli_width,
    patches,
)


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
    """Every model constant (a flag each; see the module docstring).

    Sizes: n_neurons N, fan_in K (synapses into each neuron), sheet (H, W)
    with H*W == N or None (ring), inh_fraction (ei, coba: the share of
    inhibitory neurons; each neuron's K inputs split in that proportion).
    Neuron: see `circuit.Neuron`. Homeostasis: per-neuron thresholds
    (eta_theta, theta_min, theta_max toward target_rate) and the global
    controller (controller, ctrl_gain, ctrl_max, osc_amp, osc_period).
    Synapses: w_max (excitatory weights ~ U[0, w_max), or = w_max with
    w_init "constant"; also the plastic bound), w_inh (inhibitory, likewise),
    synapse ("delta" or "exp" with tau_exc/tau_inh and e_exc/e_inh), delay
    (steps), neighbour_weight. Plasticity: STDP on the excitatory recurrent
    projection (tau_pre, tau_post, a_plus, a_minus, synaptic_scaling).
    I/O: input_channels groups of the input population (its first
    io_fraction of the excitatory neurons), output_channels readout groups
    (the last io_fraction), input_gain.
    """

    preset: str = "seed"
    n_neurons: int = 200_000
    fan_in: int = 32
    sheet: tuple[int, int] | None = None
    inh_fraction: float = 0.2
    connectivity: str = "fixed"  # fixed: fixed fan-in; bernoulli: each pair with p = fan-in / N_pre
    dt: float = 1.0
    # neuron
    tau_m: float = 20.0
    v_rest: float = 0.0
    v_reset: float = 0.0
    theta_init: float = 1.0
    v_init: str = "uniform"  # uniform: U[v_init_a, v_init_b); normal: N(v_init_a, v_init_b)
    v_init_a: float = 0.0
    v_init_b: float = 0.5
    refractory: int = 2
    bias: float = 0.03
    noise_sd: float = 0.1  # 0.05 (the seed's) synchronises into 30% bursts
    tau_adapt: float = 100.0
    adapt_on: float = 12.0
    adapt_off: float = 6.0
    adapt_boost: float = 0.5
    # homeostasis
    target_rate: float = 0.05
    eta_theta: float = 0.01
    theta_min: float = 0.2
    theta_max: float = 10.0
    controller: bool = True
    ctrl_gain: float = 0.01
    ctrl_max: float = 0.5
    osc_amp: float = 0.005
    osc_period: float = 250.0
    # synapses
    w_init: str = "uniform"
    w_max: float = 0.05
    w_inh: float = 0.2
    synapse: str = "delta"
    tau_exc: float = 5.0
    tau_inh: float = 10.0
    e_exc: float = 0.0
    e_inh: float = -80.0
    delay: int = 1
    neighbour_weight: float = 0.08
    # cortex: local wiring on the sheet and long-range projections between regions
    radius: float = 12.0
    profile: str = "uniform"
    long_fan_in: int = 4
    long_w_max: float = 0.05
    local_rule: str = "radius"
    long_clusters: int = 0
    long_radius: float = 2.0
    wta: bool = False
    wta_fan_in: int = 8
    wta_self: float = 0.1
    wta_inh: float = 0.3
    # teaching (cortex): cue memory, clock, teacher and the taught readout
    teach: bool = False
    memory_neurons: int = 2048
    memory_fan_in: int = 8
    relay_group: int = 1
    cue_positions: int = 0
    memory_tau: float = 100.0
    memory_w: float = 4.8
    memory_noise: float = 0.0
    memory_theta: float = 12.0
    memory_tau_m: float = 5.0
    memory_k: int = 8
    clock_channels: int = 8
    clock_gain: float = 2.4
    teach_fan_in: int = 1024
    teach_w: float = 0.25
    motor_group: int = 16
    motor_pool: int = 64
    motor_pool_fan_in: int = 32
    motor_inh: float = 0.3
    teach_w_max: float = 1.0
    teach_eta: float = 0.3
    teach_tau: float = 2.0
    teach_target: float = 0.7
    teacher_gain: float = 0.2
    # reward (cortex --teach): a reward-modulated readout M -> O for /good and /bad
    reward: bool = False
    reward_eta: float = 1e-4
    reward_w: float = 0.05
    reward_w_max: float = 0.5
    # working memory (cortex --teach): short-term facilitation in slot assemblies W, /recall
    working_memory: bool = False
    wm_positions: int = 8
    wm_group: int = 8
    wm_U: float = 0.2
    wm_tau_f: float = 1500.0
    wm_tau_d: float = 100.0
    wm_J: float = 0.24
    wm_relay_w: float = 0.4
    wm_load: float = 0.12
    wm_recall: float = 0.15
    wm_noise: float = 0.02
    wm_tau_m: float = 5.0
    wm_facilitation: bool = True
    reward_noise: float = 0.0
    motor_k: int = 0
    motor_self: float = 0.0
    motor_self_tau_d: float = 0.0
    reward_tau_dopamine: float = 200.0
    reward_a_minus: float = 1.0
    # plasticity
    plasticity: bool = False
    tau_pre: float = 20.0
    tau_post: float = 20.0
    a_plus: float = 0.0005
    a_minus: float = 0.000525
    synaptic_scaling: bool = False
    inh_plasticity: bool = False
    inh_eta: float = 0.0005
    inh_tau: float = 20.0
    # input / output
    input_channels: int = 256
    output_channels: int = 64
    io_fraction: float = 0.1
    input_gain: float = 0.5

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(
            self.preset in PRESETS,
            f"--preset={self.preset!r} is unknown: use one of {', '.join(PRESETS)}",
        )
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
        if self.sheet is not None:
            h, w = self.sheet
            need(
                h * w == self.n_neurons,
                f"--sheet={h}x{w} has {h * w} cells but --n_neurons={self.n_neurons}: "
                f"make H*W equal --n_neurons (or pass --n_neurons={h * w})",
            )
            need(h >= 3 and w >= 3, f"--sheet={h}x{w}: both sides must be >= 3")
            need(
                self.preset in ("seed", "cortex"),
                f"--sheet is an option of --preset=seed or cortex, not --preset={self.preset}",
            )
        if self.preset == "cortex":
            need(self.sheet is not None, "--preset=cortex needs --sheet=HxW (and --n_neurons=H*W)")
            every = round(1.0 / self.inh_fraction)
            need(
                abs(every * self.inh_fraction - 1.0) < 1e-6 and every >= 2,
                f"--inh_fraction={self.inh_fraction}: the cortex puts one row in `every` on the "
                "inhibitory grid, so use 1/every, e.g. 0.2 (one row in 5) or 0.25",
            )
            need(
                self.sheet[0] % (5 * every) == 0,
                f"--sheet={self.sheet[0]}x{self.sheet[1]}: the cortex needs H to be a multiple of "
                f"{5 * every} (five bands of whole {every}-row blocks)",
            )
            need(
                self.long_fan_in >= 0 and self.radius >= 1 and self.long_w_max > 0,
                f"--long_fan_in={self.long_fan_in} must be >= 0, --radius={self.radius} >= 1 and "
                f"--long_w_max={self.long_w_max} > 0",
            )
        need(self.profile in ("uniform", "gaussian"), f"--profile={self.profile!r}: use uniform or gaussian")
        need(self.local_rule in ("radius", "local"), f"--local_rule={self.local_rule!r}: use radius or local")
        need(
            self.wta_fan_in >= 1 and self.wta_self > 0 and self.wta_inh > 0,
            f"--wta_fan_in={self.wta_fan_in} must be >= 1, --wta_self={self.wta_self} and "
            f"--wta_inh={self.wta_inh} > 0",
        )
        if self.teach:
            need(
                self.preset == "cortex" and self.long_fan_in > 0,
                "--teach needs --preset=cortex with --long_fan_in > 0 (the cue reaches the association "
                "region through it): use --flagfile=experiments/configs/cortex_small.flags",
            )
            need(
                self.clock_channels >= 1 and self.teach_fan_in >= 1 and self.memory_tau > 0,
                f"--clock_channels={self.clock_channels} and --teach_fan_in={self.teach_fan_in} must be "
                f">= 1 and --memory_tau={self.memory_tau} > 0",
            )
            p = self.cue_positions
            need(
                isinstance(p, int) and not isinstance(p, bool) and (p == 0 or p >= 2),
                f"--cue_positions={p} must be 0 (the relay hears characters wherever they are) or at least 2 "
                "(the message's first P characters at their positions)",
            )
            need(
                not (p and self.working_memory) or p == self.wm_positions,
                f"--cue_positions={p} and --wm_positions={self.wm_positions} must be equal with "
                "--working_memory (the positional relay loads the (slot, character) assemblies)",
            )
            need(
                self.memory_neurons >= self.clock_channels and self.memory_neurons % self.clock_channels == 0,
                f"--memory_neurons={self.memory_neurons} must be a multiple of --clock_channels="
                f"{self.clock_channels} (a block of memory per clock channel)",
            )
            need(
                self.motor_group >= 1 and self.motor_pool >= 1 and self.motor_pool_fan_in >= 1
                and self.motor_inh > 0,
                f"--motor_group={self.motor_group}, --motor_pool={self.motor_pool} and "
                f"--motor_pool_fan_in={self.motor_pool_fan_in} must be >= 1 and --motor_inh="
                f"{self.motor_inh} > 0",
            )  # fmt: skip
            size = self.output_channels * self.motor_group
            need(
                0 <= self.motor_k <= size and self.motor_self >= 0 and self.motor_self_tau_d >= 0,
                f"need 0 <= --motor_k={self.motor_k} <= the motor layer's {size} neurons, "
                f"--motor_self={self.motor_self} >= 0 and --motor_self_tau_d >= 0",
            )
            need(
                0 <= self.teach_w <= self.teach_w_max and self.teach_eta > 0 and self.teach_target > 0
                and self.memory_w > 0,
                f"need 0 <= --teach_w={self.teach_w} <= --teach_w_max={self.teach_w_max}, and "
                "--teach_eta, --teach_target and --memory_w > 0",
            )  # fmt: skip
        need(
            not self.reward or self.teach,
            "--reward needs --teach (its readout M -> O ends on the teachable brain's motor layer): "
            "use --flagfile=experiments/configs/teach_small.flags --reward",
        )
        need(
            not self.reward
            or (
                0 <= self.reward_w <= self.reward_w_max
                and self.reward_eta > 0
                and self.reward_tau_dopamine > 0
                and self.reward_a_minus >= 0
            ),
            f"need 0 <= --reward_w={self.reward_w} <= --reward_w_max={self.reward_w_max}, --reward_eta > 0, "
            "--reward_tau_dopamine > 0 and --reward_a_minus >= 0",
        )
        need(
            not self.working_memory or self.teach,
            "--working_memory needs --teach (its slots hear the message through the teachable brain's "
            "relay T): use --flagfile=experiments/configs/teach_small.flags --working_memory",
        )
        if self.working_memory:
            need(
                self.input_channels == 64,
                f"--working_memory needs --input_channels=64 (one assembly per ALPHABET character in each "
                f"slot), not {self.input_channels}",
            )
            need(
                all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                    for v in (self.wm_positions, self.wm_group)),
                f"--wm_positions={self.wm_positions} and --wm_group={self.wm_group} must be integers >= 1",
            )  # fmt: skip
            need(
                0.0 < self.wm_U <= 1.0 and self.wm_tau_f > 0 and self.wm_tau_d > 0 and self.wm_tau_m > 0,
                f"need 0 < --wm_U={self.wm_U} <= 1 and --wm_tau_f={self.wm_tau_f}, --wm_tau_d="
                f"{self.wm_tau_d}, --wm_tau_m={self.wm_tau_m} > 0 ms",
            )
            need(
                min(self.wm_J, self.wm_relay_w, self.wm_load, self.wm_recall) > 0 and self.wm_noise >= 0,
                "--wm_J, --wm_relay_w, --wm_load and --wm_recall must be > 0 and --wm_noise >= 0",
            )
        need(
            self.long_clusters >= 0
            and (not self.long_clusters or self.long_fan_in % self.long_clusters == 0),
            f"--long_clusters={self.long_clusters} must be >= 0 and divide --long_fan_in={self.long_fan_in}",
        )
        need(
            0.0 < self.target_rate < 1.0,
            f"--target_rate={self.target_rate} must lie strictly between 0 and 1 "
            "(a fraction of neurons firing per step, e.g. 0.05)",
        )
        need(0.0 < self.inh_fraction < 1.0, f"--inh_fraction={self.inh_fraction} must be in (0, 1)")
        need(self.w_max > 0, f"--w_max={self.w_max} must be > 0")
        need(self.w_inh > 0, f"--w_inh={self.w_inh} must be > 0")
        need(self.w_init in ("uniform", "constant"), f"--w_init={self.w_init!r}: use uniform or constant")
        need(self.v_init in ("uniform", "normal"), f"--v_init={self.v_init!r}: use uniform or normal")
        need(self.synapse in ("delta", "exp"), f"--synapse={self.synapse!r}: use delta or exp")
        need(
            self.connectivity in ("fixed", "bernoulli"),
            f"--connectivity={self.connectivity!r}: use fixed or bernoulli",
        )
        need(
            self.connectivity == "fixed" or self.preset != "seed",
            "--connectivity=bernoulli applies to --preset=ei or coba (the seed keeps its fixed fan-in)",
        )
        need(
            0.0 < self.io_fraction <= 0.5,
            f"--io_fraction={self.io_fraction} must be in (0, 0.5]",
        )
        need(
            self.n_neurons * self.io_fraction >= self.output_channels,
            f"--n_neurons={self.n_neurons} is too small for {self.output_channels} "
            "output groups: use at least "
            f"{math.ceil(self.output_channels / self.io_fraction)} neurons",
        )

    def circuit(self) -> Circuit:
        """The preset's Circuit (validated; ValueError names the problem)."""
        return PRESETS[self.preset](self)

    # ---- (de)serialisation, for checkpoints and logs ----
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sheet"] = None if self.sheet is None else list(self.sheet)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BrainConfig:
        """From `to_dict` output; unknown keys (engine options of older
        checkpoints: propagation, stdp, spike_buffer, unroll, record_spikes)
        are ignored and missing ones take their defaults, so an older
        checkpoint's config reads as the seed preset it was."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("sheet") is not None:
            kw["sheet"] = tuple(kw["sheet"])
        return cls(**kw)

    def replace(self, **changes: Any) -> BrainConfig:
        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------ presets --


def _neuron(c: BrainConfig) -> Neuron:
    return Neuron(
        tau_m=c.tau_m,
        v_rest=c.v_rest,
        v_reset=c.v_reset,
        theta=c.theta_init,
        v_init=(c.v_init, c.v_init_a, c.v_init_b),
        refractory=c.refractory,
        bias=c.bias,
        noise_sd=c.noise_sd,
        tau_adapt=c.tau_adapt,
        adapt_on=c.adapt_on,
        adapt_off=c.adapt_off,
        adapt_boost=c.adapt_boost,
        eta_theta=c.eta_theta,
        theta_min=c.theta_min,
        theta_max=c.theta_max,
    )


def _stdp(c: BrainConfig) -> STDP | None:
    if not c.plasticity:
        return None
    return STDP(c.tau_pre, c.tau_post, c.a_plus, c.a_minus, c.synaptic_scaling)


def _controller(c: BrainConfig) -> Controller:
    return Controller(c.controller, c.target_rate, c.ctrl_gain, c.ctrl_max, c.osc_amp, c.osc_period)


def _ports(c: BrainConfig, pop: str, size: int) -> tuple[tuple[InputPort, ...], tuple[Readout, ...]]:
    """The text ports: input channels on the first io_fraction of `pop`,
    output groups on its last io_fraction."""
    g_in = max(1, int(size * c.io_fraction) // c.input_channels)
    g_out = max(1, int(size * c.io_fraction) // c.output_channels)
    return (
        (InputPort("text", pop, c.input_channels, g_in, 0, c.input_gain),),
        (Readout("text", pop, c.output_channels, g_out, size - c.output_channels * g_out),),
    )


def _weights(c: BrainConfig, sign: str) -> dict[str, float]:
    w = c.w_max if sign == "E" else c.w_inh
    return {"w_lo": w if c.w_init == "constant" else 0.0, "w_hi": w, "w_max": w}


def _synapse(c: BrainConfig, sign: str) -> dict[str, Any]:
    if c.synapse == "delta":
        return {"synapse": "delta"}
    if sign == "E":
        return {"synapse": "exp", "tau_syn": c.tau_exc, "e_rev": c.e_exc}
    return {"synapse": "exp", "tau_syn": c.tau_inh, "e_rev": c.e_inh}


def seed(c: BrainConfig) -> Circuit:
    """The seed brain: one excitatory population of N neurons on a ring (or
    the H x W sheet) with neighbour excitation, K random recurrent synapses
    each (projection "W", STDP with --plasticity), the text ports and the
    global controller."""
    n = c.n_neurons
    place = Placement() if c.sheet is None else Placement("rect", 0, 0, c.sheet[0], c.sheet[1])
    brain = Population("brain", n, "E", _neuron(c), c.target_rate, place, "", c.neighbour_weight)
    w = Projection(
        "W", "brain", "brain", "random", c.fan_in, delay=c.delay, plasticity=_stdp(c),
        **_weights(c, "E"), **_synapse(c, "E"),
    )  # fmt: skip
    inputs, readouts = _ports(c, "brain", n)
    return Circuit((brain,), (w,), inputs, readouts, c.dt, _controller(c), c.sheet, "seed")


def _ei_populations(c: BrainConfig) -> tuple[Population, Population, int, int]:
    n_i = max(1, round(c.n_neurons * c.inh_fraction))
    n_e = c.n_neurons - n_i
    e = Population("E", n_e, "E", _neuron(c), c.target_rate, Placement(), "", c.neighbour_weight)
    i = Population("I", n_i, "I", _neuron(c), c.target_rate, Placement(), "", 0.0)
    k_i = max(1, round(c.fan_in * c.inh_fraction))
    return e, i, c.fan_in - k_i, k_i


def _ei_projections(c: BrainConfig, sizes: dict[str, int], k_e: int, k_i: int) -> tuple[Projection, ...]:
    """EE, EI, IE, II: fixed fan-in k_e from E and k_i from I, or (bernoulli)
    each pair with probability k / N_pre."""
    out = []
    for pre, k in (("E", k_e), ("I", k_i)):
        for post in ("E", "I"):
            stdp = _stdp(c) if pre == post == "E" else None
            rule = {"rule": "random", "fan_in": k}
            if c.connectivity == "bernoulli":
                p = k / sizes[pre]
                rule = {"rule": "bernoulli", "p": p, "fan_in": bernoulli_width(sizes[pre], p)}
            out.append(
                Projection(
                    pre + post,
                    pre,
                    post,
                    delay=c.delay,
                    plasticity=stdp,
                    **rule,
                    **_weights(c, pre),
                    **_synapse(c, pre),
                )  # fmt: skip
            )
    return tuple(out)


def ei(c: BrainConfig) -> Circuit:
    """The seed brain with Dale's law: populations E (1 - inh_fraction of N)
    and I, four random projections EE, EI, IE, II (each neuron's K inputs
    split between E and I in proportion), STDP on EE, the text ports on E.
    Meant to run with --controller=false: inhibition and the per-neuron
    thresholds hold the rate."""
    e, i, k_e, k_i = _ei_populations(c)
    inputs, readouts = _ports(c, "E", e.size)
    projections = _ei_projections(c, {"E": e.size, "I": i.size}, k_e, k_i)
    return Circuit((e, i), projections, inputs, readouts, c.dt, _controller(c), None, "ei")


def coba(c: BrainConfig) -> Circuit:
    """The COBA benchmark (Vogels & Abbott 2005, Brette et al. 2007) when
    the flags of experiments/configs/coba.flags are set: E and I populations
    with conductance synapses, 2% pairwise (bernoulli) connectivity, no ports."""
    e, i, k_e, k_i = _ei_populations(c)
    projections = _ei_projections(c, {"E": e.size, "I": i.size}, k_e, k_i)
    return Circuit((e, i), projections, (), (), c.dt, _controller(c), None, "coba")


def _regions(c: BrainConfig) -> tuple[Region, Region, Region]:
    """The cortex's bands of rows: input (the top fifth), association (the
    middle three fifths), output (the bottom fifth)."""
    h, w = c.sheet
    band = h // 5
    return (
        Region("input", 0, 0, band, w),
        Region("association", band, 0, 3 * band, w),
        Region("output", 4 * band, 0, band, w),
    )


def _e_placement(c: BrainConfig) -> Placement:
    """The cortex's E grid: rows 0 .. every-2 of every block of every = 1/inh_fraction sheet rows."""
    h, w = c.sheet
    every = round(1.0 / c.inh_fraction)
    return Placement("rect", 0, 0, h // every * (every - 1), w, every, tuple(range(every - 1)))


def cortex(c: BrainConfig) -> Circuit:
    """A cortical sheet of H x W positions (--sheet), 1 - inh_fraction
    excitatory: population E holds the rows 0 .. every-2 and population I
    the last row of every block of every = 1/inh_fraction sheet rows.

    Regions are bands of rows: `input` (the top fifth; a patch of E neurons
    per input channel), `association` (the middle three fifths) and
    `output` (the bottom fifth; a patch per readout group). Local wiring:
    EE, EI, IE, II with each neuron's fan_in split between E and I in
    proportion, drawn within --radius cells (--profile uniform or
    gaussian; --local_rule=local wires E -> E and I -> I instead as fan_in
    local bijections of the grid, a fixed fan-out that the event path
    runs). Long range: input -> association and association -> output
    E -> E, --long_fan_in synapses per post (none when 0), drawn at random
    over the pre region or, with --long_clusters=C, around C random places
    of it (C receptive fields of --long_radius cells each), born like
    the local E weights and bounded by --long_w_max when plastic. STDP
    (--plasticity) on the E -> E projections; inhibitory plasticity toward
    the target rate on IE (--inh_plasticity, Vogels et al. 2011).
    """
    h, w = c.sheet
    every = round(1.0 / c.inh_fraction)
    regions = _regions(c)
    rows_e, rows_i = h // every * (every - 1), h // every
    e = Population("E", rows_e * w, "E", _neuron(c), c.target_rate, _e_placement(c), "", c.neighbour_weight)
    i = Population(
        "I", rows_i * w, "I", _neuron(c), c.target_rate,
        Placement("rect", 0, 0, rows_i, w, every, (every - 1,)), "", 0.0,
    )  # fmt: skip
    k_i = max(1, round(c.fan_in * c.inh_fraction))
    k_e = c.fan_in - k_i
    local = {"rule": "radius", "radius": c.radius, "profile": c.profile, "delay": c.delay}
    own = {**local, "rule": c.local_rule}  # E -> E and I -> I: radius draws, or local bijections
    istdp = None
    if c.inh_plasticity:
        istdp = STDP(c.inh_tau, c.inh_tau, c.inh_eta, 0.0, False, "vogels", c.target_rate)
    exc, inh = {**_weights(c, "E"), **_synapse(c, "E")}, {**_weights(c, "I"), **_synapse(c, "I")}
    projections = [
        Projection("EE", "E", "E", fan_in=k_e, plasticity=_stdp(c), **own, **exc),
        Projection("EI", "E", "I", fan_in=k_e, **local, **exc),
        Projection("IE", "I", "E", fan_in=k_i, plasticity=istdp, **local, **inh),
        Projection("II", "I", "I", fan_in=k_i, **own, **inh),
    ]
    if c.long_fan_in:
        for name, src, dst in (("input_association", "input", "association"),
                               ("association_output", "association", "output")):  # fmt: skip
            projections.append(
                Projection(
                    name,
                    "E",
                    "E",
                    "patchy" if c.long_clusters else "random",
                    c.long_fan_in,
                    radius=c.long_radius if c.long_clusters else 0.0,
                    clusters=max(1, c.long_clusters),
                    plasticity=_stdp(c),
                    delay=c.delay,
                    pre_region=src,
                    post_region=dst,
                    **{**exc, "w_max": max(c.long_w_max, exc["w_hi"])},
                )  # fmt: skip
            )
    if c.wta:
        # winner-take-all among the output groups: each excites its own patch,
        # and every group excites, and is inhibited by, the output region's I
        # neurons as a whole (a pool shared by all groups)
        pool = {"pre_region": "output", "post_region": "output", "fan_in": c.wta_fan_in, "delay": c.delay}
        projections += [
            Projection("output_self", "E", "E", "patch", group=c.output_channels,
                       w_lo=c.wta_self, w_hi=c.wta_self, w_max=c.wta_self, **pool),
            Projection("output_pool", "E", "I", "random", **pool, **exc),
            Projection("pool_output", "I", "E", "random", w_lo=c.wta_inh, w_hi=c.wta_inh,
                       w_max=c.wta_inh, **pool, **_synapse(c, "I")),
        ]  # fmt: skip
    g_in = min(len(x) for x in patches(regions[0], c.input_channels, e.placement))
    g_out = min(len(x) for x in patches(regions[2], c.output_channels, e.placement))
    need_cells = "use a larger --sheet or fewer --input_channels / --output_channels"
    if g_in < 1 or g_out < 1:
        raise ValueError(f"--sheet={h}x{w} leaves a port patch without excitatory neurons: {need_cells}")
    inputs = (InputPort("text", "E", c.input_channels, g_in, 0, c.input_gain, "input"),)
    readouts = (Readout("text", "E", c.output_channels, g_out, 0, "output"),)
    populations = (e, i)
    if c.teach:
        learners, taught, ports = _teachable(c)
        populations, projections = (e, i, *learners), [*projections, *taught]
        inputs += ports
        readouts = (Readout("text", "O", c.output_channels, c.motor_group),)
        if c.working_memory:  # each (slot, character) assembly's spikes, for /recall
            readouts += (Readout("memory", "W", c.wm_positions * c.input_channels, c.wm_group),)
    return Circuit(
        populations, tuple(projections), inputs, readouts, c.dt, _controller(c), c.sheet, "cortex", regions
    )


def _teachable(c: BrainConfig) -> tuple[tuple[Population, ...], list[Projection], tuple[InputPort, ...]]:
    """What --teach adds to the cortex: a cerebellum-like learning circuit
    (Marr 1969, Albus 1971) beside the sheet.

    Population `T` (relay, --relay_group noiseless neurons per text
    channel, like a thalamic relay) hears the message as the input region
    does (port "relay", the text's channels), or with --cue_positions=P the
    message's first P characters at their positions: P x the text's
    channels, channel p C + c on while character c is the p-th one
    (text.py), so that the memory compares cues character by position and
    a cue with one character replaced keeps the rest of its code, where a
    code of characters wherever they are confuses cues inside cues ("man",
    "woman"; EVALS.md, teaching). Population `M` (memory,
    --memory_neurons neurons with a fixed threshold --memory_theta, a fast
    membrane, --memory_tau_m ms, noise --memory_noise, none by default) is a
    sparse expansion code of (message, reply window), as the mushroom body's
    Kenyon cells code odours (Dasgupta et al. 2017): --memory_fan_in "slow"
    synapses each (decay --memory_tau ms) from as many different relay
    neurons (rule "distinct"; with one relay neuron per channel, the default,
    different characters), few, so that each M neuron samples a handful of
    characters and responds to their conjunction. Different ones: a neuron
    that heard one character twice would rank near the top for every
    message that ends with it, and such neurons, the first of a block to
    fire, made cues that share their last character answer alike (EVALS.md,
    teaching). Weights born U[0.5, 1.5) x --memory_w, so neurons that
    sample the same characters differ, and the winners among them are the
    same at every send of a message (equal weights tie, and noise would pick
    among the tied). Each M neuron holds a fading, recency-weighted sum of the
    characters it samples, which outlasts the message. The clock port (reply
    window r drives channel r mod --clock_channels) lifts block r of M by
    --clock_gain per step, to --clock_gain * --memory_tau_m = --memory_theta
    at rest, so only the clocked block fires (the threshold is high enough
    that the relay alone, even a one-character cue held through the whole
    input phase, lifts no unclocked neuron over it: a block that fired
    unclocked in the window before its own would learn that window's
    character too, and answer it a window late), and k-winners-take-all lets at
    most --memory_k of its neurons fire per step: in window r, the block-r
    neurons that remember the message best (the clock leads the reply
    windows by text.CLOCK_LEAD steps).
    The reply comes from the motor layer `O` (a group of --motor_group
    neurons per output character, the brain's readout: quiet neurons with
    fixed thresholds 1, no homeostasis), whose groups compete through an
    inhibitory pool `P` (--motor_pool neurons, each fired by any spike of
    the --motor_pool_fan_in random motor neurons it hears, and inhibiting as
    many, weight --motor_inh): a window's most driven group fires and holds
    the others down (winner-take-all). A stricter decision (the rewardable
    brain's, reward_small.flags): --motor_k lets at most k motor neurons fire
    per step (k-winners-take-all), and --motor_self excites each group from
    itself (rule "groups"), through synapses that depress with use (U 0.5,
    recovery --motor_self_tau_d ms), so the first group to fire ignites and
    takes the window while the others stay silent, then falls silent once
    its inputs end. With --reward, a second readout
    memory_reward M -> O (--teach_fan_in synapses per motor neuron, born
    U[0, --reward_w), within [0, --reward_w_max]) learns by reward-modulated
    STDP (Izhikevich 2007; eligibility tau 1 s, dopamine tau
    --reward_tau_dopamine ms, rate --reward_eta, post-before-pre loss
    --reward_a_minus) from a "reward" port that /good and /bad feed
    (jbrain/learn.py). The taught readout memory_output
    M -> O (--teach_fan_in synapses per motor neuron, born
    U[-teach_w, teach_w): random drive, so an untaught brain's reply already
    depends on the message; signed, within +-teach_w_max) is written only
    by the teacher-gated delta rule (--teach_eta, --teach_target, pre traces
    of --teach_tau ms), as climbing fibres teach the parallel fibre ->
    Purkinje synapses. The teacher port drives the motor groups by
    --teacher_gain. Why a motor layer and not the sheet's output region:
    there every group fires ~20 spikes per window of its own (the sheet's
    activity, held by fast homeostasis), which the learned drive moved by
    only 3-5 (EVALS.md, teaching)."""
    m, channels = c.memory_neurons, c.input_channels * max(1, c.cue_positions)
    quiet = {"noise_sd": 0.0, "eta_theta": 0.0, "bias": 0.0}
    relay = Population(
        "T", channels * c.relay_group, "E", dataclasses.replace(_neuron(c), **quiet), c.target_rate
    )
    neuron = dataclasses.replace(
        _neuron(c), **{**quiet, "noise_sd": c.memory_noise}, theta=c.memory_theta, tau_m=c.memory_tau_m,
        theta_max=max(c.theta_max, c.memory_theta),
    )  # fmt: skip
    memory = Population("M", m, "E", neuron, c.target_rate, kwta=(c.memory_k, c.clock_channels))
    reader = dataclasses.replace(neuron, theta=c.theta_init)  # fired by its drive, not gated by a clock
    if c.reward:  # exploration: the motor layer's own noise lets a group other than the most driven win
        reader = dataclasses.replace(reader, noise_sd=c.reward_noise)
    size = c.output_channels * c.motor_group
    motor = Population("O", size, "E", reader, c.target_rate, kwta=(c.motor_k, 1))
    pool = Population("P", c.motor_pool, "I", dataclasses.replace(reader, noise_sd=0.0), c.target_rate)
    fixed = lambda w: {"w_lo": w, "w_hi": w, "w_max": w, "delay": c.delay}  # noqa: E731
    taught = [
        Projection(
            "relay_memory", "T", "M", "distinct", c.memory_fan_in, w_lo=0.5 * c.memory_w,
            w_hi=1.5 * c.memory_w, w_max=1.5 * c.memory_w, synapse="slow", tau_syn=c.memory_tau,
            delay=c.delay,
        ),
        Projection(
            "memory_output", "M", "O", "random", c.teach_fan_in, w_lo=-c.teach_w, w_hi=c.teach_w,
            w_max=c.teach_w_max, delay=c.delay,
            plasticity=STDP(c.teach_tau, c.teach_tau, c.teach_eta, 0.0, False, "delta", c.teach_target),
        ),
        Projection("motor_pool", "O", "P", "random", c.motor_pool_fan_in, **fixed(1.0)),
        Projection("pool_motor", "P", "O", "random", c.motor_pool_fan_in, **fixed(c.motor_inh)),
    ]  # fmt: skip
    ports = (
        InputPort("relay", "T", channels, c.relay_group, 0, c.input_gain),
        InputPort("clock", "M", c.clock_channels, m // c.clock_channels, 0, c.clock_gain),
        InputPort("teacher", "O", c.output_channels, c.motor_group, 0, c.teacher_gain),
    )
    if c.reward:  # /good and /bad (jbrain/learn.py): reward-modulated STDP on a second readout M -> O
        rule = STDP(
            20.0, 20.0, 1.0, c.reward_a_minus, False, "reward", c.reward_eta, tau_elig=1000.0,
            tau_dopamine=c.reward_tau_dopamine,
        )  # fmt: skip
        taught.append(
            Projection(
                "memory_reward", "M", "O", "random", c.teach_fan_in, w_lo=0.0, w_hi=c.reward_w,
                w_max=c.reward_w_max, delay=c.delay, plasticity=rule,
            )
        )  # fmt: skip
        ports = (*ports, InputPort("reward", "O", 1, 1, 0, 0.0))
    if c.motor_self:  # each motor group excites itself: the group that leads a window holds it
        g = c.motor_group
        # its synapses depress with use (each spike releases half of what is left, recovering with
        # --motor_self_tau_d): a group ignites at once, then lives on its inputs alone, and falls
        # silent when they end (a reply does not outlast its window)
        stp = STP(0.5, 1.0, c.motor_self_tau_d, False) if c.motor_self_tau_d else None
        self_w = fixed(c.motor_self)
        taught.append(Projection("motor_self", "O", "O", "groups", g, group=g, stp=stp, **self_w))
    if c.working_memory:
        w_pop, w_proj, w_ports = _working_memory(c)
        return (relay, memory, motor, pool, w_pop), taught + w_proj, ports + w_ports
    return (relay, memory, motor, pool), taught, ports


def _working_memory(c: BrainConfig) -> tuple[Population, list[Projection], tuple[InputPort, ...]]:
    """What --working_memory adds to a teachable cortex: a working memory
    held in short-term synaptic facilitation (Mongillo, Barak & Tsodyks
    2008), population `W` after every other (so a brain's other arrays keep
    their places).

    Layout: P = --wm_positions slots x C = --input_channels characters x
    g = --wm_group neurons; neuron (p, c, j) is W's p C g + c g + j, and
    the g neurons of (p, c) are one assembly. Neurons: quiet (no bias,
    no homeostasis, no adaptation boost), threshold 1, membrane
    --wm_tau_m ms, no refractory period, noise --wm_noise.
    Synapses:
      relay_wm (T -> W, rule "classes", weight --wm_relay_w): character c's
        relay neurons excite the (p, c) assembly of every slot; alone too
        weak to fire it.
      wm_recurrent (W -> W, rule "groups": all-to-all inside each assembly,
        weight J = --wm_J) with short-term plasticity (`circuit.STP`: U
        --wm_U, tau_f --wm_tau_f, tau_d --wm_tau_d): a spike of j delivers
        J u_j x_j, u_j its facilitation. --wm_facilitation=false holds u
        at U (the ablation).
    Ports (P channels each, channel p on slot p's C g neurons):
      wm_load (gain --wm_load): on while the message's p-th character is
        presented (text.py); with the relay it fires assembly (p, c),
        whose spikes facilitate its synapses (u -> 1), alone it fires none.
      wm_recall (gain --wm_recall): /recall (`learn.recall`) drives slot r
        in reply window r, first with a volley (text.WM_VOLLEY times the
        gain: every neuron of the slot fires once), then with a steady drive
        that alone fires none: the volley's spikes release J U (2 - U) onto
        each resting assembly, J u (1 - U) + J U (more, for u > U) onto the
        facilitated one, whose neurons fire again (a reactivation). The
        readout "memory" counts each assembly's spikes; the decoder names
        window r's most active assembly of slot r (ties: a space).
    Between load and recall the slot is silent: the item lives only in
    u - U, which decays with tau_f."""
    p_slots, chars, g = c.wm_positions, c.input_channels, c.wm_group
    size = p_slots * chars * g
    neuron = dataclasses.replace(
        _neuron(c), noise_sd=c.wm_noise, eta_theta=0.0, bias=0.0, theta=1.0, tau_m=c.wm_tau_m,
        refractory=0, adapt_boost=0.0, theta_min=min(c.theta_min, 1.0), theta_max=max(c.theta_max, 1.0),
    )  # fmt: skip
    w = Population("W", size, "E", neuron, c.target_rate)
    stp = STP(c.wm_U, c.wm_tau_f, c.wm_tau_d, c.wm_facilitation)
    fixed = lambda x: {"w_lo": x, "w_hi": x, "w_max": x, "delay": c.delay}  # noqa: E731
    projections = [
        Projection("relay_wm", "T", "W", "classes", c.relay_group, group=g, **fixed(c.wm_relay_w)),
        Projection("wm_recurrent", "W", "W", "groups", g, group=g, stp=stp, **fixed(c.wm_J)),
    ]
    ports = (
        InputPort("wm_load", "W", p_slots, chars * g, 0, c.wm_load),
        InputPort("wm_recall", "W", p_slots, chars * g, 0, c.wm_recall),
    )
    return w, projections, ports


PRESETS: dict[str, Callable[[BrainConfig], Circuit]] = {
    "seed": seed, "ei": ei, "coba": coba, "cortex": cortex
}  # fmt: skip

# Fields that change the shapes or layout of a brain's arrays: a restored
# checkpoint cannot take a different value (Session.open says so).
SHAPE_FIELDS = (
    "preset", "n_neurons", "fan_in", "sheet", "inh_fraction", "connectivity", "synapse", "delay",
    "long_fan_in", "input_channels", "output_channels", "teach", "memory_neurons", "memory_fan_in",
    "relay_group", "cue_positions", "clock_channels", "teach_fan_in", "motor_group", "motor_pool",
    "motor_pool_fan_in", "reward", "working_memory", "wm_positions", "wm_group", "motor_self",
    "motor_self_tau_d",
)  # fmt: skip
