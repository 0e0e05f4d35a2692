"""Stress: perturb a living brain and measure how it recovers (`jbrain stress`).

A brain is warmed up for `warmup` steps; then each perturbation of
`PERTURBATIONS` is applied to the same warmed state (states are immutable
pytrees and the bursts here never donate their input, so every perturbation
starts from an identical brain) and the brain is observed until the end of
its window:

    input_x10              stims of 10.0 on every input channel (a chat
                           character is 1.0) for 200 steps
    drive_off              every population's bias current (`Neuron.bias`) 0
                           for 500 steps (a circuit of its own: recompiles;
                           a global controller, where there is one, runs on)
    exc_weights_x1.5/x0.5  the weights of every projection whose pre
                           population has sign "E" times 1.5 (0.5) for 1,000
                           steps, then divided back
    inh_silenced_20pct     20% of the inhibitory neurons (sign "I"; all
                           neurons, and a note, where there are none)
                           silenced (`brain.lesion`) for 1,000 steps
    neurons_removed_10pct  10% of all neurons silenced for good (never lifted)

Silenced neurons are drawn without replacement by an explicit
`np.random.Generator(PCG64([seed, index]))`, index the perturbation's place
in the list. A reversible perturbation's window is its duration plus
`after` steps after it ends; the removal's is `after_permanent` steps from
its onset.

Measures, per perturbation (steps are dt each; the rates are fractions of
neurons firing per step):

    rate(t)       = spikes(t) / (N - neurons silenced at t)
    set point     = sum_p size_p target_rate_p / N   (the circuit's target)
    m(t)          = (1/200) sum_{u = t-199..t} rate(u), the trailing moving
                    mean (the warm-up's last 200 steps precede the onset, so
                    m is defined from the onset on)
    within(t)     = |m(t) - set point| <= 0.1 set point
    recovery_steps = the first k >= 0, counted from the END of the
                    perturbation (the removal: from its onset), with
                    within(end + k + j) for every j = 0 .. 500: within the
                    band and staying there for the next 500 steps, all of
                    them inside the observed window; null if there is none
                    (end: the first step after the perturbation was lifted;
                    the removal: its first step)
    peak_rate      = max rate(t) from the onset to the end of the window
    longest_silence = the longest run of steps with zero spikes in that span
    recovered      = recovery_steps is not null and <= its target (500 steps
                    for a reversible perturbation, 2,000 for the removal)
    ran_away       = peak_rate > 0.3

A row also carries its duration, window, target, the mean rates before
(the warm-up's last 200 steps), during and at the end (the window's last
200 steps), and the moving mean every 50 steps from the onset.

Bursts are `CHUNK` steps (one compiled program per (circuit, plan, length,
stims is None, lesion or not)); a spike list that overflowed is re-run with a
grown plan, as `Session` does; a non-finite state raises `StressFault`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import brain
from jbrain import plan as plans
from jbrain.circuit import Circuit
from jbrain.plan import Plan
from jbrain.state import STATUS_NONFINITE, STATUS_SPIKE_OVERFLOW, BrainState, Wiring

WINDOW = 200  # steps of the trailing moving mean
TOLERANCE = 0.1  # the band: |m - set point| <= TOLERANCE * set point
HOLD = 500  # steps the moving mean must stay in the band after recovery_steps
RUNAWAY = 0.3  # peak_rate above this: ran away
SILENCE = 50  # target: no run of this many silent steps
TARGET_REVERSIBLE = 500  # steps after the end of a reversible perturbation
TARGET_PERMANENT = 2000  # steps after the onset of the removal
CHUNK = 100  # steps per burst
TRACE_EVERY = 50  # the row's moving-mean trace: one value per this many steps

KINDS = ("input", "drive_off", "exc_weights", "silence_inh", "remove")


class StressFault(RuntimeError):
    """The brain's state went non-finite during a perturbation."""


@dataclasses.dataclass(frozen=True)
class Perturbation:
    """One perturbation: kind (`KINDS`), steps it lasts (0: never lifted),
    factor (input: the stim value per channel; exc_weights: the weight
    multiplier), fraction (silence_inh, remove: of the neurons drawn)."""

    name: str
    kind: str
    steps: int
    factor: float = 1.0
    fraction: float = 0.0

    def __post_init__(self) -> None:
        where = f"perturbation {self.name!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind={self.kind!r} must be one of {', '.join(KINDS)}")
        if not (isinstance(self.steps, int) and self.steps >= 0):
            raise ValueError(f"{where}: steps={self.steps!r} must be an integer >= 0 (0: never lifted)")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"{where}: fraction={self.fraction} must lie in [0, 1]")

    @property
    def permanent(self) -> bool:
        return self.steps == 0


PERTURBATIONS = (
    Perturbation("input_x10", "input", 200, factor=10.0),
    Perturbation("drive_off", "drive_off", 500),
    Perturbation("exc_weights_x1.5", "exc_weights", 1000, factor=1.5),
    Perturbation("exc_weights_x0.5", "exc_weights", 1000, factor=0.5),
    Perturbation("inh_silenced_20pct", "silence_inh", 1000, fraction=0.2),
    Perturbation("neurons_removed_10pct", "remove", 0, fraction=0.1),
)


# ------------------------------------------------------------ the measures --


def set_point(circuit: Circuit) -> float:
    """The circuit's target rate: its populations' target_rate weighted by size."""
    return sum(p.size * p.target_rate for p in circuit.populations) / circuit.n


def moving_mean(rate: Any, window: int = WINDOW) -> np.ndarray:
    """(T,) f64 trailing mean m[t] = mean(rate[t-window+1 .. t]); NaN for
    t < window - 1 (not enough history)."""
    r = np.asarray(rate, np.float64)
    out = np.full(r.shape, np.nan)
    if r.size >= window:
        c = np.concatenate([[0.0], np.cumsum(r)])
        out[window - 1 :] = (c[window:] - c[:-window]) / window
    return out


def recovery_steps(
    rate: Any,
    start: int,
    target: float,
    *,
    window: int = WINDOW,
    tolerance: float = TOLERANCE,
    hold: int = HOLD,
) -> int | None:
    """The first k >= 0 with |m[start + k + j] - target| <= tolerance * target
    for every j = 0 .. hold (m = `moving_mean(rate, window)`), all inside
    the trace; None if there is none. rate: (T,) per-step rates, history
    before `start` included (the moving mean looks back over it)."""
    m = moving_mean(rate, window)
    within = np.abs(m - target) <= tolerance * target  # NaN: False
    n = within.size
    idx = np.arange(n)
    # run[i]: how many consecutive steps from i on are within the band
    next_out = np.minimum.accumulate(np.where(within, n, idx)[::-1])[::-1]
    run = next_out - idx
    hits = np.flatnonzero(run[start:] >= hold + 1)
    return int(hits[0]) if hits.size else None


def longest_silence(spikes: Any) -> int:
    """The longest run of consecutive zeros in (T,) spike counts (0 if none)."""
    zero = np.asarray(spikes) == 0
    if not zero.any():
        return 0
    edges = np.diff(np.concatenate([[0], zero.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def summarize(
    name: str,
    rate: Any,
    spikes: Any,
    *,
    onset: int,
    start: int,
    target_rate: float,
    target_steps: int,
) -> dict[str, Any]:
    """One row from a trace: rate, spikes (T,) with `onset` steps of history
    before the perturbation; `start`: the index recovery is counted from."""
    rate, spikes = np.asarray(rate, np.float64), np.asarray(spikes)
    k = recovery_steps(rate, start, target_rate)
    peak = float(rate[onset:].max()) if rate.size > onset else 0.0
    m = moving_mean(rate)
    trace = m[onset::TRACE_EVERY]
    return {
        "name": name,
        "recovery_steps": k,
        "peak_rate": peak,
        "longest_silence": longest_silence(spikes[onset:]),
        "recovered": k is not None and k <= target_steps,
        "ran_away": peak > RUNAWAY,
        "target_steps": target_steps,
        "rate_before": float(rate[:onset].mean()) if onset else None,
        "rate_during": float(rate[onset:start].mean()) if start > onset else None,
        "rate_end": float(rate[-WINDOW:].mean()),
        "moving_mean_every_50": [None if np.isnan(x) else round(float(x), 6) for x in trace],
    }


# -------------------------------------------------------- running a brain --


def _burst(
    circuit: Circuit, plan: Plan, wiring: Wiring, state: BrainState, stims: Any, length: int
) -> tuple[BrainState, Plan, np.ndarray]:
    """One burst that keeps its input: (state, plan, (length,) int64 spikes).
    A spike list that overflowed is re-run from the same state with a grown
    plan (exact, as `Session` does)."""
    while True:
        new, packed, raster = brain.burst_packed_keeping_input(
            circuit, plan, wiring, state, stims, length=length
        )
        packed = np.asarray(packed)
        status = brain.packed_status(packed)
        if status & STATUS_NONFINITE:
            raise StressFault(
                f"non-finite voltage or threshold by step {int(new.step)}: the perturbed brain diverged"
            )
        m = brain.unpack_metrics(circuit, packed, np.asarray(raster), xp=np)
        if plan.uses_spike_list and status & STATUS_SPIKE_OVERFLOW and plan.spike_buffer < 1.0:
            pops = circuit.populations
            plan = plan.grown(circuit, {p.name: int(m.pop_counts[:, i].max()) for i, p in enumerate(pops)})
            continue
        return new, plan, np.asarray(m.spikes, np.int64)


def advance(
    circuit: Circuit,
    plan: Plan,
    wiring: Wiring,
    state: BrainState,
    steps: int,
    *,
    stim: float | None = None,
    chunk: int = CHUNK,
) -> tuple[BrainState, Plan, np.ndarray]:
    """Run `steps` steps in bursts of `chunk` (the last one shorter): (state,
    plan (grown if a spike list overflowed), (steps,) int64 spikes per
    step). stim: the value on every input channel each step, or None."""
    parts = []
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        stims = None if stim is None else jnp.full((n, circuit.input_channels), stim, jnp.float32)
        state, plan, spikes = _burst(circuit, plan, wiring, state, stims, n)
        parts.append(spikes)
        done += n
    return state, plan, np.concatenate(parts) if parts else np.zeros((0,), np.int64)


@dataclasses.dataclass(frozen=True)
class Applied:
    """A perturbation in force: the circuit to run meanwhile, the perturbed
    state, the stim value (or None), the neurons still able to fire, the
    silenced mask ((N,) bool or None) and a note ("" or why it differs)."""

    circuit: Circuit
    state: BrainState
    stim: float | None
    active: int
    mask: np.ndarray | None
    note: str = ""


def _scaled(circuit: Circuit, state: BrainState, factor: float) -> BrainState:
    """The state with every E-pre projection's weights times `factor`."""
    out = dict(state.projections)
    for q in circuit.projections:
        if circuit.population(q.pre).sign == "E":
            ps = out[q.name]
            out[q.name] = ps.replace(weights=ps.weights * jnp.float32(factor))
    return state.replace(projections=out)


def _draw(circuit: Circuit, candidates: np.ndarray, fraction: float, seed: int, index: int) -> np.ndarray:
    """(N,) bool: round(fraction * len(candidates)) of `candidates`, drawn
    without replacement by np.random.Generator(PCG64([seed, index]))."""
    rng = np.random.Generator(np.random.PCG64([seed, index]))
    chosen = rng.choice(candidates, size=round(fraction * candidates.size), replace=False)
    mask = np.zeros((circuit.n,), bool)
    mask[chosen] = True
    return mask


def apply(circuit: Circuit, state: BrainState, p: Perturbation, *, seed: int, index: int) -> Applied:
    """Perturbation `p` applied to (circuit, state) (see the module docstring)."""
    n = circuit.n
    if p.kind == "input":
        if circuit.input_channels == 0:
            return Applied(circuit, state, None, n, None, "the circuit has no input ports: nothing applied")
        return Applied(circuit, state, p.factor, n, None)
    if p.kind == "drive_off":
        pops = tuple(
            dataclasses.replace(q, neuron=dataclasses.replace(q.neuron, bias=0.0))
            for q in circuit.populations
        )
        return Applied(dataclasses.replace(circuit, populations=pops), state, None, n, None)
    if p.kind == "exc_weights":
        exc = any(circuit.population(q.pre).sign == "E" for q in circuit.projections)
        note = "" if exc else "the circuit has no excitatory projections: nothing applied"
        return Applied(circuit, _scaled(circuit, state, p.factor), None, n, None, note)
    note = ""
    if p.kind == "silence_inh":
        inh = [q for q in circuit.populations if q.sign == "I"]
        candidates = np.concatenate([np.arange(*circuit.bounds(q.name)) for q in inh]) if inh else None
        if candidates is None:
            candidates = np.arange(n)
            note = f"no inhibitory population: {p.fraction:.0%} of all neurons silenced instead"
    else:
        candidates = np.arange(n)
    mask = _draw(circuit, candidates, p.fraction, seed, index)
    return Applied(circuit, brain.lesion(circuit, state, mask), None, n - int(mask.sum()), mask, note)


def lift(circuit: Circuit, state: BrainState, p: Perturbation) -> BrainState:
    """The state after reversible perturbation `p` ends: weights divided
    back, silenced neurons restored (input and drive need nothing)."""
    if p.permanent:
        raise ValueError(f"perturbation {p.name!r} is permanent (steps=0): it is never lifted")
    if p.kind == "exc_weights":
        return _scaled(circuit, state, 1.0 / p.factor)
    if p.kind == "silence_inh":
        return brain.lesion(circuit, state, None)
    return state


def perturb(
    circuit: Circuit,
    plan: Plan,
    wiring: Wiring,
    state: BrainState,
    p: Perturbation,
    *,
    seed: int,
    index: int,
    history: np.ndarray,
    after: int,
    after_permanent: int,
) -> tuple[dict[str, Any], Plan]:
    """Apply `p` to the warmed `state` (kept: nothing here donates it),
    observe its window and measure it: (row, plan). history: (H,) rates
    of the steps before the onset (the moving mean looks back over them)."""
    applied = apply(circuit, state, p, seed=seed, index=index)
    during = p.steps if not p.permanent else after_permanent
    s, plan, spikes = advance(applied.circuit, plan, wiring, applied.state, during, stim=applied.stim)
    rates, counts = [spikes / applied.active], [spikes]
    if not p.permanent:
        s = lift(circuit, s, p)
        s, plan, spikes = advance(circuit, plan, wiring, s, after)
        rates.append(spikes / circuit.n)
        counts.append(spikes)
    del s
    onset = history.size
    rate = np.concatenate([history, *rates])
    spikes = np.concatenate([np.full(onset, -1, np.int64), *counts])  # the history is not counted
    row = summarize(
        p.name,
        rate,
        spikes,
        onset=onset,
        start=onset + (0 if p.permanent else p.steps),
        target_rate=set_point(circuit),
        target_steps=TARGET_PERMANENT if p.permanent else TARGET_REVERSIBLE,
    )
    row.update(steps=p.steps, observed=after_permanent if p.permanent else after, permanent=p.permanent)
    if applied.mask is not None:
        row["silenced"] = int(applied.mask.sum())
    if applied.note:
        row["note"] = applied.note
    return row, plan


def stress(
    circuit: Circuit,
    plan: Plan,
    wiring: Wiring,
    state: BrainState,
    *,
    seed: int,
    warmup: int,
    after: int,
    after_permanent: int,
    perturbations: Sequence[Perturbation] = PERTURBATIONS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Warm the brain up for `warmup` steps, then run every perturbation
    from the warmed state: {"set_point", "warmup", "n_neurons",
    "warmup_rate" (mean of the warm-up's last WINDOW steps), "perturbations":
    [row, ...]}. seed: of the silenced neurons' draws."""
    check_windows(warmup=warmup, after=after, after_permanent=after_permanent)
    say = progress or (lambda msg: None)
    say(f"{circuit.name}: warm-up, {warmup} steps")
    state, plan, spikes = advance(circuit, plan, wiring, state, warmup)
    history = spikes[-WINDOW:] / circuit.n
    rows = []
    for index, p in enumerate(perturbations):
        say(f"{circuit.name}: {p.name}")
        row, plan = perturb(
            circuit, plan, wiring, state, p, seed=seed, index=index, history=history,
            after=after, after_permanent=after_permanent,
        )  # fmt: skip
        rows.append(row)
    return {
        "set_point": set_point(circuit),
        "warmup": warmup,
        "n_neurons": circuit.n,
        "warmup_rate": float(history.mean()),
        "perturbations": rows,
    }


def check_windows(*, warmup: int, after: int, after_permanent: int) -> None:
    """ValueError (naming the flag and the fix) for windows too short to measure."""
    if warmup < WINDOW:
        raise ValueError(
            f"--warmup={warmup} must be >= {WINDOW}: the moving mean looks back {WINDOW} steps "
            "over the warm-up at the onset"
        )
    for flag, value in (("after", after), ("after_permanent", after_permanent)):
        if value <= HOLD:
            raise ValueError(
                f"--{flag}={value} must be > {HOLD}: a recovery must stay within the band for "
                f"{HOLD} steps inside the observed window (e.g. --{flag}=2000)"
            )


def evaluate(
    circuit: Circuit,
    *,
    seed: int,
    warmup: int,
    after: int,
    after_permanent: int,
    baseline: Circuit | None = None,
    plan_options: dict | None = None,
    perturbations: Sequence[Perturbation] = PERTURBATIONS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole record: `stress` on a newborn `circuit` (seed `seed`), and
    on `baseline` under "baseline" (None: no baseline). plan_options: the
    `plan.resolve` keyword arguments, for both circuits. Keys: preset,
    device, seed, n_neurons, set_point, warmup, after, after_permanent,
    warmup_rate, perturbations, targets (whether the rows meet each target),
    baseline ({preset, set_point, n_neurons, ...} or absent)."""
    check_windows(warmup=warmup, after=after, after_permanent=after_permanent)

    def one(c: Circuit) -> dict[str, Any]:
        plan = plans.resolve(c, **(plan_options or {}))
        wiring, state = brain.init_brain(c, seed=seed)
        out = stress(
            c, plan, wiring, state, seed=seed, warmup=warmup, after=after,
            after_permanent=after_permanent, perturbations=perturbations, progress=progress,
        )  # fmt: skip
        return {"preset": c.name, **out, "targets": targets(out["perturbations"])}

    if baseline is not None:  # fail fast on a plan the baseline cannot have
        plans.resolve(baseline, **(plan_options or {}))
    main = one(circuit)
    record = {"preset": main.pop("preset"), "device": str(jax.devices()[0].device_kind), "seed": seed}
    record.update(after=after, after_permanent=after_permanent, **main)
    if baseline is not None:
        record["baseline"] = {"preset": baseline.name, "device": record["device"], "seed": seed}
        record["baseline"].update({k: v for k, v in one(baseline).items() if k != "preset"})
    return record


def targets(rows: Sequence[dict[str, Any]]) -> dict[str, bool]:
    """Whether the rows meet each target: every perturbation recovered
    within its target, no peak rate above RUNAWAY, no silent run of SILENCE
    steps."""
    return {
        "all_recovered": all(r["recovered"] for r in rows),
        "no_runaway": not any(r["ran_away"] for r in rows),
        "no_silence": all(r["longest_silence"] < SILENCE for r in rows),
    }


def format_table(record: dict[str, Any]) -> str:
    """A markdown table of the record's rows (the baseline's after them)."""
    lines = [
        f"stress on {record['preset']} ({record['n_neurons']} neurons, set point "
        f"{record['set_point']:.4g}, warm-up {record['warmup']} steps, seed {record['seed']}, "
        f"{record['device']}):",
        "",
        "| brain | perturbation | recovery steps | target | recovered | peak rate | longest silence "
        "| rate before / during / end | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    parts = [record] + ([record["baseline"]] if "baseline" in record else [])
    for part in parts:
        for r in part["perturbations"]:
            k = "null" if r["recovery_steps"] is None else str(r["recovery_steps"])
            rates = " / ".join(
                "-" if r.get(x) is None else f"{r[x]:.4f}" for x in ("rate_before", "rate_during")
            )
            lines.append(
                f"| {part['preset']} | {r['name']} | {k} | {r['target_steps']} | "
                f"{'yes' if r['recovered'] else 'no'} | {r['peak_rate']:.4f}"
                f"{' (ran away)' if r['ran_away'] else ''} | {r['longest_silence']} | "
                f"{rates} / {r['rate_end']:.4f} | {r.get('note', '')} |"
            )
    t = record["targets"]
    lines += [
        "",
        f"targets on {record['preset']}: every perturbation recovered in time: "
        f"{'met' if t['all_recovered'] else 'NOT met'}; peak rate <= {RUNAWAY}: "
        f"{'met' if t['no_runaway'] else 'NOT met'}; no silent run of {SILENCE} steps: "
        f"{'met' if t['no_silence'] else 'NOT met'}",
    ]
    return "\n".join(lines)
