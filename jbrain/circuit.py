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

import numpy as np

SIGNS = ("E", "I")
RULES = (
    "random", "distinct", "bernoulli", "radius", "patchy", "patch", "local", "one_to_one", "groups", "classes"
)  # fmt: skip
SYNAPSES = ("delta", "exp", "slow")
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
    grid of `height` x `width` cells on the circuit's 2-D sheet (kind
    "rect"; the population's neuron r * width + c is grid cell (r, c)).

    Grid row r sits on sheet row `sheet_row(r)`, grid column c on sheet
    column col + c. Dense (every = 1, take = (0,)): the grid is the sheet
    rectangle [row, row + height) x [col, col + width). Interleaved: of each
    block of `every` sheet rows the population takes the rows `take`, so two
    populations can share one stretch of sheet, e.g. E on rows 0-3 and I on
    row 4 of every 5 (an 80/20 sheet): grid row r is sheet row
    row + (r // len(take)) * every + take[r % len(take)]. Neighbour
    excitation, radius wiring, regions and sheet plots use it."""

    kind: str = "ring"
    row: int = 0
    col: int = 0
    height: int = 0
    width: int = 0
    every: int = 1
    take: tuple[int, ...] = (0,)

    @property
    def sheet_height(self) -> int:
        """Sheet rows the grid spans: height / len(take) blocks of `every`."""
        return self.height // len(self.take) * self.every

    def sheet_row(self, r: Any) -> Any:
        """Sheet row of grid row r (int or NumPy integer array)."""
        t = len(self.take)
        r = np.asarray(r)
        return self.row + (r // t) * self.every + np.asarray(self.take)[r % t]

    def grid_rows(self, top: int, bottom: int) -> tuple[int, int]:
        """[first, last) grid rows whose sheet rows lie in [top, bottom)."""
        rows = np.nonzero(
            (self.sheet_row(np.arange(self.height)) >= top)
            & (self.sheet_row(np.arange(self.height)) < bottom)
        )[0]
        return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(sheet row, sheet column) of every neuron, (height*width,) int64 each."""
        i = np.arange(self.height * self.width)
        return self.sheet_row(i // self.width), self.col + i % self.width


@dataclasses.dataclass(frozen=True)
class Population:
    """A group of neurons with one sign (Dale's law: every projection out
    of it has this sign), one neuron model and one target rate.

    neighbour_weight: local excitation, the input when every neighbour fired
    (ring: 2 neighbours; rect: 8, on a torus over the rectangle); 0: none.
    region: a tag for inspection and regions of a sheet.
    kwta: k-winners-take-all, (k, blocks): the population is cut into
    `blocks` equal blocks of consecutive neurons, and in each block at most
    the k neurons furthest above threshold fire per step; the others above
    threshold are reset (fast, strong lateral inhibition; (0, 1): off).
    """

    name: str
    size: int
    sign: str = "E"
    neuron: Neuron = Neuron()
    target_rate: float = 0.05
    placement: Placement = Placement()
    region: str = ""
    neighbour_weight: float = 0.0
    kwta: tuple[int, int] = (0, 1)

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
            t = p.take
            _need(
                _positive_int(p.every) and len(t) >= 1 and list(t) == sorted(set(t))
                and t[0] >= 0 and t[-1] < p.every and p.height % len(t) == 0,
                f"{where}: its placement takes rows {t} of every {p.every}: use distinct sorted rows in "
                f"[0, every) and a height that is a multiple of {len(t)}",
            )  # fmt: skip
            _need(
                p.row >= 0 and p.row + p.sheet_height <= h and p.col >= 0 and p.col + p.width <= w,
                f"{where}: its rectangle leaves the {h}x{w} sheet",
            )
        _need(self.neighbour_weight >= 0, f"{where}: neighbour_weight must be >= 0 (--neighbour_weight)")
        k, blocks = self.kwta
        _need(
            _positive_int(blocks) and self.size % blocks == 0 and 0 <= k <= self.size // blocks,
            f"{where}: kwta={self.kwta} must be (k, blocks) with blocks dividing the size and "
            f"0 <= k <= size / blocks",
        )


@dataclasses.dataclass(frozen=True)
class Region:
    """A named rectangle of the sheet, [row, row + height) x [col, col +
    width): what `jbrain inspect` lists and plots outline, and what
    projections (pre_region, post_region) and ports (region) select. A
    population's neurons inside a region must be one contiguous range of
    its grid rows, so regions that projections use span the population's
    full width (bands of rows)."""

    name: str
    row: int
    col: int
    height: int
    width: int

    def contains(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return (
            (rows >= self.row)
            & (rows < self.row + self.height)
            & (cols >= self.col)
            & (cols < self.col + self.width)
        )


@dataclasses.dataclass(frozen=True)
class STP:
    """Short-term synaptic plasticity of a projection's synapses, per
    presynaptic neuron j (Tsodyks & Markram 1997; the working-memory model
    of Mongillo, Barak & Tsodyks 2008): a utilisation u_j (facilitation,
    the release probability) and available resources x_j (depression), in
    the state (`ProjectionState.stp_u`, `stp_x`, (N_pre,) f32 each). Each
    step, before the spikes s_j(t - delay) arrive:
        u <- U + (u - U) exp(-dt/tau_f)         x <- 1 - (1 - x) exp(-dt/tau_d)
        u <- u + U (1 - u) s                    (facilitation: u jumps first)
        r  = u x s                              (the fraction released)
        x <- x - r                              (depression)
    and the synapse j -> i delivers w_ij r_j instead of w_ij s_j: the
    effective weight is w u x. U (0 < U <= 1) is the baseline utilisation,
    tau_f and tau_d (ms) the decay of facilitation and the recovery of
    resources. facilitation False (the ablation): u stays U, so every
    spike releases U x, whatever the history. Gather path, no STDP."""

    U: float = 0.2
    tau_f: float = 1500.0
    tau_d: float = 200.0
    facilitation: bool = True


@dataclasses.dataclass(frozen=True)
class STDP:
    """Pair-based STDP with all-to-all traces (plasticity.py), rule
    "hebbian": post fires: w += a_plus x_pre; pre fires: w -= a_minus
    y_post; clip to [0, w_max] (the projection's). tau_pre, tau_post in ms.
    scaling: each post that fired has its in-row rescaled to K w_max / 2 in
    total.

    rule "delta" (teacher-gated delta rule, for the taught readout): runs
    only in teaching bursts (`Plan.teaching`), where a teacher port gives
    every post neuron a target T_i in {0, 1} each step; LMS on
    the pre traces x_j (x <- x exp(-dt/tau_pre) + s, rescaled to rates
    r_j = x_j (1 - exp(-dt/tau_pre))):
        u_i = sum_j w_ij r_j                          (the post's predicted drive)
        w_ij <- clip(w_ij + a_plus r_j (T_i target - u_i), -w_max, w_max)  (LMS)
    on the steps a teacher channel is on: eta = a_plus per step, `target`
    the drive per step a taught post should get (a_minus, tau_post unused).
    Outside teaching the weights never change. Its weights are signed
    (Dale's law holds for the pathway, not the synapse): w_ij < 0 stands for
    the feedforward inhibition that pre j recruits onto post i through
    interneurons (the molecular-layer interneurons between parallel fibres
    and Purkinje cells), so the rule turns a wrong post down as well as a
    right one up; with weights >= 0 a code that two cues share carries the
    majority's character to both (EVALS.md, teaching).

    rule "vogels" (inhibitory plasticity, Vogels et al. 2011, for I -> E):
    post fires: w += eta x_pre; pre fires: w += eta (y_post - alpha), with
    eta = a_plus and alpha = 2 r0 / (1 - exp(-dt/tau_post)) for the target
    rate r0 = `target` (spikes per step; the trace's mean at rate r0 is
    r0 / (1 - exp(-dt/tau)), so the mean drift vanishes at r_post = r0): a
    post firing above r0 strengthens its inhibition, below r0 weakens it
    (tau_pre must equal tau_post; a_minus is unused).

    rule "reward" (reward-modulated STDP, Izhikevich 2007): the hebbian
    rule's pairings go into a per-synapse eligibility trace c instead of the
    weight, and a dopamine level d (one per projection, every reward
    projection fed by the same "reward" input port: one global signal) turns
    them into weight changes (plasticity.reward_step):
        c <- c exp(-dt/tau_elig) + pairings (post fires: +a_plus x_pre; pre fires: -a_minus y_post)
        w <- clip(w + eta d c, 0, w_max)
        d <- d exp(-dt/tau_dopamine) + reward
    eta = `target` (per unit of dopamine per step), tau_elig ~1 s and
    tau_dopamine ~0.2 s in ms. The circuit needs an input port named
    "reward" (one channel; its value is the reward delivered that step).
    Gather and bcoo paths, eager; no synaptic scaling."""

    tau_pre: float = 20.0
    tau_post: float = 20.0
    a_plus: float = 0.0005
    a_minus: float = 0.000525
    scaling: bool = False
    rule: str = "hebbian"
    target: float = 0.0
    tau_elig: float = 1000.0
    tau_dopamine: float = 200.0


@dataclasses.dataclass(frozen=True)
class Projection:
    """Synapses pre -> post with a fixed fan-in.

    rule "local" (a population on the sheet to itself): fan_in slots, each a
    random bijection of the grid that moves every cell less than `radius`
    cells (a short shift after shuffles within small blocks;
    `synapses._local_tables`), so fan-in AND fan-out are fan_in and the
    event path applies, like "random" between equal sizes.
    rule: "random" (fan_in partners drawn from the whole pre population; when
    pre and post have the same size, K random cyclic permutations, so the
    fan-out is fixed too and the event-driven path applies; otherwise drawn
    with replacement, so a post may hear a pre twice), "distinct" (fan_in
    different partners drawn without replacement from the whole pre
    population, each post on its own: a sample of distinct inputs, as a
    Kenyon cell samples distinct glomeruli), "radius"
    (fan_in partners within `radius` cells on the sheet, uniform, pre and
    post both 'rect'), "patchy" (fan_in partners in `clusters` patches of
    the pre span: each post draws `clusters` centres at random pre neurons and
    fan_in / clusters partners around each, as "radius" draws them around the
    post's own place: receptive fields of a few places, for projections
    between regions), "patch" (a population to itself inside one region:
    the region cut into `group` patches as ports and readouts cut it
    (`tiles`), each post draws fan_in partners at random from its own
    patch, itself excluded: the self-excitation of winner-take-all groups),
    "one_to_one" (fan_in 1, post i <- pre i, equal sizes),
    "classes" (the pre population is C = N_pre / fan_in classes of fan_in
    consecutive neurons; post i belongs to class (i // group) mod C and hears
    every pre neuron of its class: a character's relay neurons onto that
    character's assembly in every slot of a working memory laid out as
    slots x C characters x `group` neurons),
    "groups" (all-to-all inside groups of `group` neurons, self included:
    fan_in = group), "bernoulli" (each pre-post pair independently with
    probability p, as Brian2's connect(p=...): the fan-in varies, rows are
    padded to the static width fan_in with zero-weight slots (rows drawn
    wider are cut; `bernoulli_width` makes that a 1e-9 event); no
    plasticity, gather and bcoo paths).
    pre_region / post_region: only the pre (post) population's neurons
    inside that region take part ("" : all of it). profile (rule "radius"):
    "uniform" over the disc of `radius` cells, or "gaussian" offsets with a
    standard deviation of `radius` cells per axis.
    Weights ~ U[w_lo, w_hi) at birth (w_lo = w_hi: constant), bounded by
    [0, w_max]; synapse "delta" (a current) or "exp" (a conductance with
    time constant tau_syn ms and reversal potential e_rev) or "slow" (a
    current that decays with tau_syn ms: g <- g exp(-dt/tau_syn) + W @ s,
    I = sign g (1 - exp(-dt/tau_syn)), so a spike delivers w in all, as a
    delta synapse does, spread over ~tau_syn: NMDA-like, a memory of the
    recent input); delay >= 1 steps;
    plasticity: an STDP rule or None; stp: short-term plasticity (`STP`)
    or None.
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
    pre_region: str = ""
    post_region: str = ""
    profile: str = "uniform"
    clusters: int = 1
    stp: STP | None = None


@dataclasses.dataclass(frozen=True)
class InputPort:
    """A stimulus entry: `channels` channels, channel c drives neurons
    [start + c*group, start + (c+1)*group) of `population` with gain*stim[c];
    with a `region`, channel c drives the first `group` of the population's
    neurons in patch c of the region (`patches`: a grid of equal patches,
    row-major), so each channel has its own place on the sheet."""

    name: str
    population: str
    channels: int
    group: int
    start: int = 0
    gain: float = 0.5
    region: str = ""


@dataclasses.dataclass(frozen=True)
class Readout:
    """Groups a decoder reads: group g is neurons [start + g*group,
    start + (g+1)*group) of `population`, or with a `region` the first
    `group` of its neurons in patch g of the region; metrics count their
    spikes."""

    name: str
    population: str
    groups: int
    group: int
    start: int = 0
    region: str = ""


def _patch_grid(region: Region, count: int) -> tuple[int, int, int, int]:
    """(patch rows, patch columns, height, width) of the grid of at least
    `count` equal, about square patches that cuts `region` (row-major)."""
    pc = max(1, min(region.width, round(math.sqrt(count * region.width / region.height))))
    pr = -(-count // pc)
    return pr, pc, max(1, region.height // pr), max(1, region.width // pc)


def patches(region: Region, count: int, placement: Placement) -> list[np.ndarray]:
    """The region cut into a grid of at least `count` equal patches (about
    square; row-major), and for the first `count` of them the indices of the
    population's neurons inside (ascending), from its placement."""
    pr, pc, ph, pw = _patch_grid(region, count)
    rows, cols = placement.cells()
    out = []
    for c in range(count):
        r0, c0 = region.row + (c // pc) * ph, region.col + (c % pc) * pw
        inside = (rows >= r0) & (rows < r0 + ph) & (cols >= c0) & (cols < c0 + pw)
        out.append(np.nonzero(inside)[0])
    return out


def tiles(region: Region, count: int, placement: Placement) -> np.ndarray:
    """(size,) int64: the patch (`patches`' grid) of each of the population's
    neurons, -1 outside the region; cells past the grid's last row or column
    of patches join it, so every neuron of the region has a patch, and patch
    c < count holds `patches(...)[c]`."""
    pr, pc, ph, pw = _patch_grid(region, count)
    rows, cols = placement.cells()
    inside = (rows >= region.row) & (rows < region.row + region.height)
    inside &= (cols >= region.col) & (cols < region.col + region.width)
    tr = np.minimum((rows - region.row) // ph, pr - 1)
    tc = np.minimum((cols - region.col) // pw, pc - 1)
    return np.where(inside, tr * pc + tc, -1).astype(np.int64)


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
    regions: tuple[Region, ...] = ()

    def __post_init__(self) -> None:
        _need(len(self.populations) > 0, "a circuit needs at least one population")
        rnames = [r.name for r in self.regions]
        _need(len(set(rnames)) == len(rnames), f"region names repeat: {rnames}")
        for r in self.regions:
            _need(self.sheet is not None, f"region {r.name!r} needs the circuit's sheet (--sheet=HxW)")
            h, w = self.sheet
            _need(
                r.name.isidentifier() and r.height > 0 and r.width > 0 and r.row >= 0 and r.col >= 0
                and r.row + r.height <= h and r.col + r.width <= w,
                f"region {r.name!r}: name an identifier and keep its rectangle on the {h}x{w} sheet",
            )  # fmt: skip
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
            if port.region:
                region = self._region(port.region, where)
                placement = self.population(port.population).placement
                _need(placement.kind == "rect", f"{where}: a region port needs a population on the sheet")
                small = min(len(x) for x in patches(region, count, placement))
                _need(
                    port.group <= small,
                    f"{where}: group={port.group} exceeds the {small} neurons of its smallest patch of "
                    f"region {port.region!r}: use group <= {small}, fewer channels or a larger region",
                )
                continue
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

    def _region(self, name: str, where: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise ValueError(f"{where}: no region named {name!r} (regions: {[r.name for r in self.regions]})")

    def _check_projection(self, proj: Projection) -> None:
        where = f"projection {proj.name!r}"
        names = [p.name for p in self.populations]
        for end in ("pre", "post"):
            _need(getattr(proj, end) in names, f"{where}: no population named {getattr(proj, end)!r}")
        for end in ("pre", "post"):
            region = getattr(proj, f"{end}_region")
            if not region:
                continue
            r = self._region(region, where)
            pl = self.population(getattr(proj, end)).placement
            _need(
                pl.kind == "rect" and r.col <= pl.col and pl.col + pl.width <= r.col + r.width,
                f"{where}: {end}_region {region!r} must span the full width of population "
                f"{getattr(proj, end)!r} on the sheet (a band of rows)",
            )
            lo, hi = pl.grid_rows(r.row, r.row + r.height)
            _need(hi > lo, f"{where}: population {getattr(proj, end)!r} has no neurons in region {region!r}")
        pre, post = self._part(proj, "pre"), self._part(proj, "post")
        _need(
            proj.profile in ("uniform", "gaussian"),
            f"{where}: profile={proj.profile!r}: use uniform or gaussian",
        )
        _need(proj.rule in RULES, f"{where}: rule={proj.rule!r} must be one of {', '.join(RULES)}")
        _need(_positive_int(proj.fan_in), f"{where}: fan_in={proj.fan_in!r} must be a positive integer")
        if proj.rule == "random":
            self_loop = proj.pre == proj.post
            _need(
                proj.fan_in < pre.size or (not self_loop and proj.fan_in <= pre.size),
                f"{where}: fan_in={proj.fan_in} must be smaller than the pre population ({pre.size}): "
                "lower --fan_in or raise --n_neurons",
            )
        elif proj.rule == "distinct":
            _need(
                proj.fan_in <= pre.size and pre.size * post.size <= 2**28,
                f"{where}: a distinct projection draws fan_in={proj.fan_in} different partners of "
                f"{pre.size} by ranking every pair ({pre.size} x {post.size}): fan_in must be at most "
                "the pre population and the product at most 2**28; use the 'random' rule",
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
        elif proj.rule == "classes":
            _need(
                _positive_int(proj.group) and pre.size % proj.fan_in == 0
                and post.size % (proj.group * (pre.size // proj.fan_in)) == 0,
                f"{where}: rule 'classes' needs fan_in dividing the pre size ({pre.size}) into C classes "
                f"and a post size that is a multiple of group * C (group={proj.group})",
            )  # fmt: skip
        elif proj.rule == "patch":
            _need(
                proj.pre == proj.post and proj.pre_region == proj.post_region and bool(proj.pre_region),
                f"{where}: rule 'patch' wires a population to itself inside one region (pre == post, "
                "pre_region == post_region)",
            )
            _need(
                pre.placement.kind == "rect" and _positive_int(proj.group),
                f"{where}: rule 'patch' needs a population on the sheet and group = the number of patches",
            )
            r = self._region(proj.pre_region, where)
            t = tiles(r, proj.group, self.population(proj.pre).placement)
            a, b = self.span(proj, "pre")
            first = a - self.offset(proj.pre)
            _need(
                (t[first : first + b - a] >= 0).all(),
                f"{where}: rule 'patch' needs region {r.name!r} as wide as population {proj.pre!r}'s grid",
            )
            sizes = np.bincount(t[t >= 0])
            _need(
                sizes.min() > proj.fan_in,
                f"{where}: the smallest of the {proj.group} patches of region {r.name!r} holds "
                f"{sizes.min()} neurons, too few for fan_in={proj.fan_in}: lower fan_in or use fewer patches",
            )
        elif proj.rule == "local":
            _need(
                proj.pre == proj.post
                and proj.pre_region == proj.post_region
                and pre.placement.kind == "rect",
                f"{where}: rule 'local' wires a population on the sheet to itself (pre == post, one region)",
            )
            _need(
                proj.radius >= 2 and proj.fan_in < pre.size,
                f"{where}: rule 'local' needs radius >= 2 cells (got {proj.radius}) and fan_in < {pre.size}",
            )
        else:  # radius, patchy
            _need(
                pre.placement.kind == "rect" and (post.placement.kind == "rect" or proj.rule == "patchy"),
                f"{where}: rule {proj.rule!r} needs both populations placed on the sheet ('rect'; "
                "patchy: the pre population)",
            )
            per_place = proj.fan_in
            if proj.rule == "patchy":
                _need(
                    _positive_int(proj.clusters) and proj.fan_in % proj.clusters == 0,
                    f"{where}: clusters={proj.clusters!r} must be a positive integer "
                    f"dividing fan_in={proj.fan_in}",
                )
                per_place = proj.fan_in // proj.clusters
            cells = math.pi * proj.radius**2 * (4.0 if proj.profile == "gaussian" else 1.0)
            _need(
                proj.radius >= 1 and per_place <= cells,
                f"{where}: radius={proj.radius} holds about {int(cells)} cells, fewer than "
                f"the {per_place} partners drawn around each place: raise the radius",
            )
        _need(proj.synapse in SYNAPSES, f"{where}: synapse={proj.synapse!r} must be 'delta', 'exp' or 'slow'")
        signed = proj.plasticity is not None and proj.plasticity.rule == "delta"
        _need(
            (-proj.w_max if signed else 0.0) <= proj.w_lo <= proj.w_hi <= proj.w_max and proj.w_max > 0,
            f"{where}: need 0 <= w_lo <= w_hi <= w_max and w_max > 0 (weights are magnitudes; "
            f"the sign comes from the pre population; a delta-rule readout's are signed, "
            f"-w_max <= w_lo), got {proj.w_lo}, {proj.w_hi}, {proj.w_max}",
        )
        # the most a post's fixed-point sum can hold in one step: w_max times
        # the synapses that can carry a spike at once (all, unless the pre's
        # k-winners-take-all lets at most k per block fire), a quarter of int32
        active = min(proj.fan_in, pre.kwta[0] * pre.kwta[1]) if pre.kwta[0] else proj.fan_in
        _need(
            proj.w_max * active < 2**31 / 2**WEIGHT_FRAC_BITS / 4,
            f"{where}: w_max * {active} synapses that can fire at once = {proj.w_max * active:g} "
            "is too large for the fixed-point synaptic sum: lower --w_max",
        )
        _need(
            isinstance(proj.delay, int) and 1 <= proj.delay <= MAX_DELAY,
            f"{where}: delay={proj.delay!r} must be an integer between 1 and {MAX_DELAY} steps",
        )
        if proj.synapse in ("exp", "slow"):
            _need(proj.tau_syn > 0, f"{where}: tau_syn={proj.tau_syn} must be > 0 ms")
        if proj.synapse == "exp":
            # Dale's law for conductances: the reversal potential must act with the pre's sign
            rest, theta = post.neuron.v_rest, post.neuron.theta
            ok = proj.e_rev > theta if pre.sign == "E" else proj.e_rev <= rest
            _need(
                ok,
                f"{where}: e_rev={proj.e_rev} does not match its {pre.sign} pre population "
                f"(excitatory: above the threshold {theta}; inhibitory: at or below rest {rest})",
            )
        if proj.stp is not None:
            t = proj.stp
            _need(
                0.0 < t.U <= 1.0 and t.tau_f > 0 and t.tau_d > 0,
                f"{where}: short-term plasticity needs 0 < U <= 1 and tau_f, tau_d > 0 ms "
                f"(--wm_U, --wm_tau_f, --wm_tau_d), got {t.U}, {t.tau_f}, {t.tau_d}",
            )
            _need(
                proj.plasticity is None and proj.synapse == "delta",
                f"{where}: short-term plasticity runs on delta synapses without STDP",
            )
        if proj.plasticity is not None:
            s = proj.plasticity
            _need(
                s.tau_pre > 0 and s.tau_post > 0,
                f"{where}: STDP time constants must be > 0 ms (--tau_stdp)",
            )
            _need(s.a_plus >= 0 and s.a_minus >= 0, f"{where}: a_plus and a_minus must be >= 0")
            _need(
                s.rule in ("hebbian", "vogels", "delta", "reward"),
                f"{where}: STDP rule={s.rule!r}: use hebbian, vogels, delta or reward",
            )
            if s.rule == "reward":
                rewards = [p for p in self.inputs if p.name == "reward"]
                _need(
                    len(rewards) == 1 and rewards[0].channels == 1,
                    f"{where}: the reward rule needs one 'reward' input port with 1 channel "
                    "(the reward delivered each step)",
                )
                _need(
                    s.tau_elig > 0 and s.tau_dopamine > 0 and s.target > 0 and not s.scaling,
                    f"{where}: the reward rule needs tau_elig > 0 and tau_dopamine > 0 ms, eta (target) > 0 "
                    "and no synaptic scaling",
                )
            if s.rule == "delta":
                teachers = [p for p in self.inputs if p.name == "teacher"]
                _need(
                    len(teachers) == 1 and teachers[0].population == proj.post and s.target > 0,
                    f"{where}: the delta rule needs a 'teacher' input port on its post population "
                    f"{proj.post!r} and a target drive > 0",
                )
            if s.rule == "vogels":
                _need(
                    s.tau_pre == s.tau_post and not s.scaling and 0.0 < s.target < 1.0,
                    f"{where}: the vogels rule needs tau_pre == tau_post, no synaptic scaling and a "
                    "target rate in (0, 1) spikes per step",
                )

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

    def span(self, proj: Projection, end: str) -> tuple[int, int]:
        """[a, b) on the shared axis of projection `proj`'s pre or post
        neurons (`end`): its population, cut to its region if it names one."""
        name, region = getattr(proj, end), getattr(proj, f"{end}_region")
        a, b = self.bounds(name)
        if not region:
            return a, b
        r = self._region(region, f"projection {proj.name!r}")
        pl = self.population(name).placement
        lo, hi = pl.grid_rows(r.row, r.row + r.height)
        return a + lo * pl.width, a + hi * pl.width

    def _part(self, proj: Projection, end: str) -> Population:
        """The population at `end` of `proj`, its size cut to the span."""
        a, b = self.span(proj, end)
        return dataclasses.replace(self.population(getattr(proj, end)), size=b - a)

    def region_of(self, name: str) -> Region:
        return self._region(name, "circuit")

    def port_neurons(self, port: InputPort | Readout) -> np.ndarray:
        """(count, group) int64 neurons on the shared axis of an input port's
        channels or a readout's groups."""
        count = port.channels if isinstance(port, InputPort) else port.groups
        first = self.offset(port.population)
        if not port.region:
            return first + port.start + np.arange(count * port.group).reshape(count, port.group)
        pl = self.population(port.population).placement
        cells = patches(self.region_of(port.region), count, pl)
        return first + np.stack([c[: port.group] for c in cells])

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
            pl = dict(x["placement"])
            if "take" in pl:
                pl["take"] = tuple(pl["take"])
            kwta = tuple(x.get("kwta", (0, 1)))
            return Population(
                **{**x, "neuron": neuron(x["neuron"]), "placement": Placement(**pl), "kwta": kwta}
            )

        def projection(x):
            stdp, stp = x.get("plasticity"), x.get("stp")
            return Projection(
                **{
                    **x,
                    "plasticity": None if stdp is None else STDP(**stdp),
                    "stp": None if stp is None else STP(**stp),
                }
            )

        return cls(
            populations=tuple(population(p) for p in d["populations"]),
            projections=tuple(projection(p) for p in d["projections"]),
            inputs=tuple(InputPort(**p) for p in d["inputs"]),
            readouts=tuple(Readout(**r) for r in d["readouts"]),
            dt=d["dt"],
            controller=Controller(**d["controller"]),
            sheet=None if d["sheet"] is None else tuple(d["sheet"]),
            name=d.get("name", "custom"),
            regions=tuple(Region(**r) for r in d.get("regions", ())),
        )

    def describe(self) -> list[str]:
        """One line per population, projection and port (`jbrain inspect`)."""
        sheet = f", sheet {self.sheet[0]}x{self.sheet[1]}" if self.sheet else ""
        lines = [f"circuit {self.name}: {self.n} neurons, dt {self.dt} ms{sheet}"]
        for r in self.regions:
            sizes = []
            for p in self.populations:
                if p.placement.kind == "rect":
                    rows, cols = p.placement.cells()
                    sizes.append(f"{int(r.contains(rows, cols).sum())} {p.name}")
            lines.append(
                f"  region {r.name}: rows [{r.row}, {r.row + r.height}) x cols [{r.col}, "
                f"{r.col + r.width}), {r.height * r.width} cells ({', '.join(sizes)})"
            )
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
            stdp = f", STDP ({q.plasticity.rule})" if q.plasticity else ""
            if q.stp:
                stdp += f", STP (U {q.stp.U:g}, tau_f {q.stp.tau_f:g} ms, tau_d {q.stp.tau_d:g} ms" + (
                    ")" if q.stp.facilitation else ", facilitation off)"
                )
            pre = q.pre + (f"[{q.pre_region}]" if q.pre_region else "")
            post = q.post + (f"[{q.post_region}]" if q.post_region else "")
            rule = q.rule + (f" r={q.radius:g} {q.profile}" if q.rule in ("radius", "patchy") else "")
            rule += f" x{q.clusters} places" if q.rule == "patchy" else ""
            lines.append(
                f"  projection {q.name}: {pre} -> {post}, {rule} fan-in {q.fan_in}, {q.synapse}, "
                f"delay {q.delay}{stdp}"
            )
        for i in self.inputs:
            at = f", patches of region {i.region}" if i.region else ""
            lines.append(f"  input {i.name}: {i.channels} channels x {i.group} neurons of {i.population}{at}")
        for r in self.readouts:
            at = f", patches of region {r.region}" if r.region else ""
            lines.append(f"  readout {r.name}: {r.groups} groups x {r.group} neurons of {r.population}{at}")
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
