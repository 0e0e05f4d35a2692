"""The model as data: populations, projections, ports, dt.

A `Circuit` says WHAT the brain is (the vocabulary of PyNN, Brian2 and NEST:
populations of neurons, projections of synapses between them, input ports
and readouts). It is frozen and hashable, a static argument under jit, and
validated on construction: a bad field is a ValueError of one line that
names the field and the fix. HOW a device runs it is the `Plan` (plan.py).

All populations share one neuron axis: population p owns the contiguous
range [offset_p, offset_p + size_p) of the N = sum(size) neurons, in the
order given. Units: time constants in ms, `dt` in ms, delays and
refractory periods in steps; voltages in the population's own units
(threshold units for the seed, mV for COBA). `bias` and `noise_sd` are per
step.

Neuron (hybrid LIF, neurons.py), per step:
    v <- v + (v_rest - v) dt/tau_m + I_syn + I_nbr + bias + drive + noise_sd xi + I_ext
Synapses (projection pre -> post, weights w >= 0, sign from pre, Dale's law):
    delta: I_syn[post] += sign * (W @ s_pre(t - delay))
    exp:   g <- g exp(-dt/tau_syn) + W @ s_pre(t - delay)
           I_syn[post] += g (e_rev - v) dt/tau_m[post]        (g in units of the leak)
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

SIGNS = ("E", "I")
RULES = ("random", "bernoulli", "radius", "one_to_one", "groups")
SYNAPSES = ("delta", "exp")
V_INITS = ("uniform", "normal")
MAX_DELAY = 33  # steps: the spike history holds 32 steps behind the last one


def _need(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


@dataclasses.dataclass(frozen=True)
class Neuron:
    """Hybrid LIF parameters (neurons.py has the update and the modes).

    tau_m (ms); v_rest, v_reset, theta (initial threshold) in the
    population's voltage units; v_init: ("uniform", lo, hi) or ("normal",
    mean, sd) for the newborn voltages; refractory (steps); bias, noise_sd
    (per step); tau_adapt (ms), adapt_on, adapt_off (spike-trace levels) and
    adapt_boost (extra threshold in the ADAPTED mode); threshold homeostasis
    theta <- clip(theta + eta_theta (s - target_rate), theta_min, theta_max)
    (off when eta_theta = 0).
    """

    tau_m: float = 20.0
    v_rest: float = 0.0
    v_reset: float = 0.0
    theta: float = 1.0
    v_init: tuple[str, float, float] = ("uniform", 0.0, 0.5)
    refractory: int = 2
    bias: float = 0.03
    noise_sd: float = 0.1
    tau_adapt: float = 100.0
    adapt_on: float = 12.0
    adapt_off: float = 6.0
    adapt_boost: float = 0.5
    eta_theta: float = 0.01
    theta_min: float = 0.2
    theta_max: float = 10.0

    def validate(self, where: str) -> None:
        _need(self.tau_m > 0, f"{where}: tau_m={self.tau_m} must be > 0 ms (--tau_m)")
        _need(
            isinstance(self.refractory, int) and self.refractory >= 0,
            f"{where}: refractory={self.refractory} must be an integer >= 0 steps (--refractory)",
        )
        _need(self.noise_sd >= 0, f"{where}: noise_sd={self.noise_sd} must be >= 0 (--noise_sd)")
        _need(self.tau_adapt > 0, f"{where}: tau_adapt={self.tau_adapt} must be > 0 ms (--tau_adapt)")
        _need(
            self.adapt_off <= self.adapt_on,
            f"{where}: adapt_off={self.adapt_off} must be <= adapt_on={self.adapt_on} (the hysteresis)",
        )
        _need(self.eta_theta >= 0, f"{where}: eta_theta={self.eta_theta} must be >= 0 (--eta_theta)")
        _need(
            self.theta_min <= self.theta <= self.theta_max,
            f"{where}: theta={self.theta} must lie in [theta_min, theta_max] = "
            f"[{self.theta_min}, {self.theta_max}] (--theta_init, --theta_min, --theta_max)",
        )
        kind = self.v_init[0] if len(self.v_init) == 3 else None
        _need(
            kind in V_INITS,
            f"{where}: v_init={self.v_init!r} must be ('uniform', lo, hi) or ('normal', mean, sd)",
        )


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a population lies: a 1-D ring of its own (kind "ring"), or a
    rectangle [row, row + height) x [col, col + width) of the circuit's 2-D
    sheet (kind "rect"; neuron (r, c) of the rectangle is the population's
    neuron r * width + c). Neighbour excitation and radius wiring use it."""

    kind: str = "ring"
    row: int = 0
    col: int = 0
    height: int = 0
    width: int = 0


@dataclasses.dataclass(frozen=True)
class Population:
    """A group of neurons with one sign (Dale's law: every projection out
    of it has this sign), one neuron model and one target rate.

    neighbour_weight: local excitation, the input when every neighbour fired
    (ring: 2 neighbours; rect: 8, on a torus over the rectangle); 0: none.
    region: a tag for inspection and regions of a sheet.
    """

    name: str
    size: int
    sign: str = "E"
    neuron: Neuron = Neuron()
    target_rate: float = 0.05
    placement: Placement = Placement()
    region: str = ""
    neighbour_weight: float = 0.0

    def validate(self, sheet: tuple[int, int] | None) -> None:
        where = f"population {self.name!r}"
        _need(bool(self.name) and self.name.isidentifier(), f"{where}: the name must be an identifier")
        _need(_positive_int(self.size), f"{where}: size={self.size!r} must be a positive integer")
        _need(self.sign in SIGNS, f"{where}: sign={self.sign!r} must be 'E' or 'I'")
        _need(
            0.0 < self.target_rate < 1.0,
            f"{where}: target_rate={self.target_rate} must lie strictly between 0 and 1 "
            "(a fraction of neurons firing per step, e.g. --target_rate=0.05)",
        )
        self.neuron.validate(where)
        p = self.placement
        _need(p.kind in ("ring", "rect"), f"{where}: placement kind {p.kind!r} must be 'ring' or 'rect'")
        if p.kind == "rect":
            _need(sheet is not None, f"{where}: a 'rect' placement needs the circuit's sheet (--sheet=HxW)")
            h, w = sheet
            _need(
                p.height * p.width == self.size,
                f"{where}: its rectangle {p.height}x{p.width} has {p.height * p.width} cells, not "
                f"size={self.size}: make height*width equal the size",
            )
            _need(p.height >= 3 and p.width >= 3, f"{where}: both sides of its rectangle must be >= 3")
            _need(
                p.row >= 0 and p.row + p.height <= h and p.col >= 0 and p.col + p.width <= w,
                f"{where}: its rectangle leaves the {h}x{w} sheet",
            )
        _need(self.neighbour_weight >= 0, f"{where}: neighbour_weight must be >= 0 (--neighbour_weight)")


@dataclasses.dataclass(frozen=True)
class STDP:
    """Pair-based STDP with all-to-all traces (plasticity.py):
    post fires: w += a_plus x_pre; pre fires: w -= a_minus y_post; clip to
    [0, w_max] (the projection's). tau_pre, tau_post in ms. scaling: each
    post that fired has its in-row rescaled to K w_max / 2 in total."""

    tau_pre: float = 20.0
    tau_post: float = 20.0
    a_plus: float = 0.0005
    a_minus: float = 0.000525
    scaling: bool = False


@dataclasses.dataclass(frozen=True)
class Projection:
    """Synapses pre -> post with a fixed fan-in.

    rule: "random" (fan_in partners drawn from the whole pre population; when
    pre and post have the same size, K random cyclic permutations, so the
    fan-out is fixed too and the event-driven path applies), "radius"
    (fan_in partners within `radius` cells on the sheet, uniform, pre and
    post both 'rect'), "one_to_one" (fan_in 1, post i <- pre i, equal sizes),
    "groups" (all-to-all inside groups of `group` neurons, self included:
    fan_in = group), "bernoulli" (each pre-post pair independently with
    probability p, as Brian2's connect(p=...): the fan-in varies, rows are
    padded to the static width fan_in with zero-weight slots (rows drawn
    wider are cut; `bernoulli_width` makes that a 1e-9 event); no
    plasticity, gather and bcoo paths).
    Weights ~ U[w_lo, w_hi) at birth (w_lo = w_hi: constant), bounded by
    [0, w_max]; synapse "delta" (a current) or "exp" (a conductance with
    time constant tau_syn ms and reversal potential e_rev); delay >= 1 steps;
    plasticity: an STDP rule or None.
    """

    name: str
    pre: str
    post: str
    rule: str = "random"
    fan_in: int = 32
    radius: float = 0.0
    group: int = 0
    p: float = 0.0
    w_lo: float = 0.0
    w_hi: float = 0.05
    w_max: float = 0.05
    synapse: str = "delta"
    tau_syn: float = 5.0
    e_rev: float = 0.0
    delay: int = 1
    plasticity: STDP | None = None


@dataclasses.dataclass(frozen=True)
class InputPort:
    """A stimulus entry: `channels` channels, channel c drives neurons
    [start + c*group, start + (c+1)*group) of `population` with gain*stim[c]."""

    name: str
    population: str
    channels: int
    group: int
    start: int = 0
    gain: float = 0.5


@dataclasses.dataclass(frozen=True)
class Readout:
    """Groups a decoder reads: group g is neurons [start + g*group,
    start + (g+1)*group) of `population`; metrics count their spikes."""

    name: str
    population: str
    groups: int
    group: int
    start: int = 0


@dataclasses.dataclass(frozen=True)
class Controller:
    """The global rate controller (homeostasis.py): an integral on the whole
    brain's rate, g <- clip(g + gain (target - rate), -limit, limit), plus a
    slow drive osc_amp sin(2 pi t / osc_period) (t in steps); off: no drive."""

    enabled: bool = True
    target_rate: float = 0.05
    gain: float = 0.01
    limit: float = 0.5
    osc_amp: float = 0.005
    osc_period: float = 250.0


@dataclasses.dataclass(frozen=True)
class Circuit:
    """A whole brain model (see the module docstring)."""

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...] = ()
    inputs: tuple[InputPort, ...] = ()
    readouts: tuple[Readout, ...] = ()
    dt: float = 1.0
    controller: Controller = Controller()
    sheet: tuple[int, int] | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        _need(len(self.populations) > 0, "a circuit needs at least one population")
        _need(self.dt > 0, f"dt={self.dt} must be > 0 ms (--dt)")
        names = [p.name for p in self.populations]
        _need(len(set(names)) == len(names), f"population names repeat: {names}")
        for p in self.populations:
            p.validate(self.sheet)
        _need(self.n < 2**31, f"{self.n} neurons exceed int32 indexing: use fewer")
        pnames = [p.name for p in self.projections]
        _need(len(set(pnames)) == len(pnames), f"projection names repeat: {pnames}")
        for proj in self.projections:
            self._check_projection(proj)
        for port in (*self.inputs, *self.readouts):
            kind = "input" if isinstance(port, InputPort) else "readout"
            where = f"{kind} {port.name!r}"
            _need(port.population in names, f"{where}: no population named {port.population!r}")
            count = port.channels if kind == "input" else port.groups
            _need(_positive_int(count) and _positive_int(port.group), f"{where}: sizes must be positive")
            size = self.population(port.population).size
            _need(
                port.start >= 0 and port.start + count * port.group <= size,
                f"{where}: {count} groups of {port.group} from {port.start} do not fit population "
                f"{port.population!r} ({size} neurons): use more neurons or fewer channels",
            )
        c = self.controller
        _need(
            not c.enabled or 0.0 < c.target_rate < 1.0,
            f"controller target_rate={c.target_rate} must lie strictly between 0 and 1",
        )

    def _check_projection(self, proj: Projection) -> None:
        where = f"projection {proj.name!r}"
        names = [p.name for p in self.populations]
        for end in ("pre", "post"):
            _need(getattr(proj, end) in names, f"{where}: no population named {getattr(proj, end)!r}")
        pre, post = self.population(proj.pre), self.population(proj.post)
        _need(proj.rule in RULES, f"{where}: rule={proj.rule!r} must be one of {', '.join(RULES)}")
        _need(_positive_int(proj.fan_in), f"{where}: fan_in={proj.fan_in!r} must be a positive integer")
        if proj.rule == "random":
            self_loop = proj.pre == proj.post
            _need(
                proj.fan_in < pre.size or (not self_loop and proj.fan_in <= pre.size),
                f"{where}: fan_in={proj.fan_in} must be smaller than the pre population ({pre.size}): "
                "lower --fan_in or raise --n_neurons",
            )
        elif proj.rule == "bernoulli":
            _need(0.0 < proj.p < 1.0, f"{where}: a bernoulli projection needs 0 < p < 1 (got p={proj.p})")
            _need(
                proj.fan_in >= bernoulli_width(pre.size, proj.p) and proj.fan_in <= pre.size,
                f"{where}: fan_in={proj.fan_in} is too narrow for p={proj.p} of {pre.size}: "
                f"use fan_in={bernoulli_width(pre.size, proj.p)} (`circuit.bernoulli_width`)",
            )
            _need(
                pre.size * post.size <= 2**28,
                f"{where}: bernoulli wiring draws every pair ({pre.size} x {post.size}): too large, "
                "use the 'random' rule (fixed fan-in)",
            )
            _need(proj.plasticity is None, f"{where}: bernoulli projections cannot be plastic (padded rows)")
        elif proj.rule == "one_to_one":
            _need(proj.fan_in == 1, f"{where}: a one_to_one projection has fan_in=1")
            _need(pre.size == post.size, f"{where}: one_to_one needs pre and post of the same size")
        elif proj.rule == "groups":
            _need(
                _positive_int(proj.group) and proj.fan_in == proj.group,
                f"{where}: an all-to-all 'groups' projection has fan_in == group > 0",
            )
            _need(
                pre.size == post.size and pre.size % proj.group == 0,
                f"{where}: 'groups' needs pre and post of one size, a multiple of group={proj.group}",
            )
        else:  # radius
            _need(
                pre.placement.kind == "rect" and post.placement.kind == "rect",
                f"{where}: rule 'radius' needs both populations placed on the sheet ('rect')",
            )
            cells = math.pi * proj.radius**2
            _need(
                proj.radius >= 1 and proj.fan_in <= cells,
                f"{where}: radius={proj.radius} holds about {int(cells)} cells, fewer than "
                f"fan_in={proj.fan_in}: raise the radius",
            )
        _need(proj.synapse in SYNAPSES, f"{where}: synapse={proj.synapse!r} must be 'delta' or 'exp'")
        _need(
            0.0 <= proj.w_lo <= proj.w_hi <= proj.w_max and proj.w_max > 0,
            f"{where}: need 0 <= w_lo <= w_hi <= w_max and w_max > 0 (weights are magnitudes; "
            f"the sign comes from the pre population), got {proj.w_lo}, {proj.w_hi}, {proj.w_max}",
        )
        _need(
            proj.w_max * proj.fan_in < 2**31 / 2**WEIGHT_FRAC_BITS / 4,
            f"{where}: w_max * fan_in = {proj.w_max * proj.fan_in} is too large for the fixed-point "
            "synaptic sum: lower --w_max",
        )
        _need(
            isinstance(proj.delay, int) and 1 <= proj.delay <= MAX_DELAY,
            f"{where}: delay={proj.delay!r} must be an integer between 1 and {MAX_DELAY} steps",
        )
        if proj.synapse == "exp":
            _need(proj.tau_syn > 0, f"{where}: tau_syn={proj.tau_syn} must be > 0 ms")
            # Dale's law for conductances: the reversal potential must act with the pre's sign
            rest, theta = post.neuron.v_rest, post.neuron.theta
            ok = proj.e_rev > theta if pre.sign == "E" else proj.e_rev <= rest
            _need(
                ok,
                f"{where}: e_rev={proj.e_rev} does not match its {pre.sign} pre population "
                f"(excitatory: above the threshold {theta}; inhibitory: at or below rest {rest})",
            )
        if proj.plasticity is not None:
            s = proj.plasticity
            _need(
                s.tau_pre > 0 and s.tau_post > 0,
                f"{where}: STDP time constants must be > 0 ms (--tau_stdp)",
            )
            _need(s.a_plus >= 0 and s.a_minus >= 0, f"{where}: a_plus and a_minus must be >= 0")

    # ---- lookups and derived sizes (static Python ints) ----
    @property
    def n(self) -> int:
        """N, the neurons of every population together."""
        return sum(p.size for p in self.populations)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def index(self, name: str) -> int:
        return [p.name for p in self.populations].index(name)

    def offset(self, name: str) -> int:
        """First neuron of population `name` on the shared axis."""
        i = self.index(name)
        return sum(p.size for p in self.populations[:i])

    def bounds(self, name: str) -> tuple[int, int]:
        start = self.offset(name)
        return start, start + self.population(name).size

    @property
    def input_channels(self) -> int:
        return sum(p.channels for p in self.inputs)

    @property
    def output_channels(self) -> int:
        return sum(r.groups for r in self.readouts)

    @property
    def max_delay(self) -> int:
        return max((p.delay for p in self.projections), default=1)

    # ---- (de)serialisation: checkpoints keep the circuit beside the arrays ----
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Circuit:
        def neuron(x):
            return Neuron(**{**x, "v_init": tuple(x["v_init"])})

        def population(x):
            return Population(
                **{**x, "neuron": neuron(x["neuron"]), "placement": Placement(**x["placement"])}
            )

        def projection(x):
            stdp = x.get("plasticity")
            return Projection(**{**x, "plasticity": None if stdp is None else STDP(**stdp)})

        return cls(
            populations=tuple(population(p) for p in d["populations"]),
            projections=tuple(projection(p) for p in d["projections"]),
            inputs=tuple(InputPort(**p) for p in d["inputs"]),
            readouts=tuple(Readout(**r) for r in d["readouts"]),
            dt=d["dt"],
            controller=Controller(**d["controller"]),
            sheet=None if d["sheet"] is None else tuple(d["sheet"]),
            name=d.get("name", "custom"),
        )

    def describe(self) -> list[str]:
        """One line per population, projection and port (`jbrain inspect`)."""
        lines = [f"circuit {self.name}: {self.n} neurons, dt {self.dt} ms"]
        for p in self.populations:
            a, b = self.bounds(p.name)
            where = p.placement.kind
            if where == "rect":
                pl = p.placement
                where = f"rect {pl.height}x{pl.width} at ({pl.row}, {pl.col})"
            region = f", region {p.region}" if p.region else ""
            lines.append(
                f"  population {p.name}: {p.size} {p.sign} neurons [{a}, {b}), {where}{region}, "
                f"target rate {p.target_rate}"
            )
        for q in self.projections:
            stdp = ", STDP" if q.plasticity else ""
            lines.append(
                f"  projection {q.name}: {q.pre} -> {q.post}, {q.rule} fan-in {q.fan_in}, {q.synapse}, "
                f"delay {q.delay}{stdp}"
            )
        for i in self.inputs:
            lines.append(f"  input {i.name}: {i.channels} channels x {i.group} neurons of {i.population}")
        for r in self.readouts:
            lines.append(f"  readout {r.name}: {r.groups} groups x {r.group} neurons of {r.population}")
        return lines


def bernoulli_width(n_pre: int, p: float) -> int:
    """Padded fan-in of a bernoulli projection: the mean n_pre p plus six
    standard deviations (a wider row has probability ~1e-9), at least 1."""
    mean = n_pre * p
    return max(1, min(n_pre, math.ceil(mean + 6.0 * math.sqrt(mean * (1.0 - p))) + 1))


# Synaptic sums are accumulated in int32 fixed point with this many fraction
# bits: integer addition is associative, so every propagation path (gather,
# event-driven scatter with atomics) gives bit-identical inputs on any device.
WEIGHT_FRAC_BITS = 20
