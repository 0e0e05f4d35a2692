"""The distal reward problem (`jbrain eval distal-reward`): Izhikevich 2007
(Cereb. Cortex 17:2443, Fig. 1) in jbrain, with the random-reward control
of Fremaux, Sprekeler & Gerstner 2010.

Network (`circuit`; jbrain's hybrid LIF neurons, not Izhikevich's model
neurons; dt = 1 ms): 800 excitatory and 200 inhibitory neurons, 100
synapses onto each neuron: E -> E 80 (rule "distinct": 80 different E
partners, so no pair is joined twice), I -> E 20, E -> I 80, I -> I 20.
Why distinct: rule "random" (K random permutations) joins some pairs two
or three times; such a pair's pre drives its post that much harder, so
its pairings are causal, its eligibility mostly positive, and every
reward, whatever it was for, lifted it to the cap (EVALS.md, distal
reward). Gaussian noise (`noise_sd` per step) makes every neuron fire at
about `rate_hz`; no threshold homeostasis, no rate controller. The E -> E
synapses learn by reward-modulated STDP (rule "reward",
plasticity.reward_step: eligibility tau 1 s, dopamine tau 0.2 s, a_plus 1,
a_minus 1.5, traces of 20 ms, as in the paper), born at w0 and capped at
w_max = 4 w0 (the paper: 1 and 4); the others are fixed.

Protocol: one E -> E synapse j -> i is chosen (post i = E neuron 0, its
lowest-numbered input j). The brain runs in bursts of 1 s; after each the
host reads j's and i's spikes, and every time i fires within 10 ms after j
(a pre-then-post pairing), a reward of 1 is scheduled U[1, 3] s after
i's spike: it enters a later burst on the "reward" input port, so the
reward is part of the jitted burst like any stimulus. The weights are read
after every burst: the chosen synapse, and the mean and 99th percentile of
the other 63,999 E -> E synapses.

Control: the same newborn brain, the same number of rewards, each at a
uniformly random moment of the run (no pairing needed): with the same rule,
no synapse should be singled out (Fremaux et al. 2010: with reward
uncorrelated with activity, only noise moves the weights).

Model time: the paper runs an hour. On a CPU this evaluation runs
`model_seconds` (default 1,200 s, 20 min). eta (`Params.eta`) is the
weight change per reward: each reward also credits every synapse that
happened to pair in the last second or two, so the longer the run (the
more rewards), the smaller eta must be for chance credit not to lift
other synapses to the cap too (EVALS.md, distal reward: the rates tried).
`Params` n_e, n_i, k_e, k_i scale the network down for tests.
Reached cap: the chosen weight >= 0.95 w_max at the end.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import brain
from jbrain import plan as plans
from jbrain.circuit import STDP, Circuit, Controller, InputPort, Neuron, Population, Projection

BURST = 1000  # steps (1 s) per burst: the host schedules rewards between bursts
WINDOW = 10  # ms: a post spike this soon after the pre's is a pairing
DELAY = (1000, 3000)  # ms: reward delay after the pairing's post spike, uniform
CAP_FRACTION = 0.95  # reached_cap: the chosen weight >= this fraction of w_max


@dataclasses.dataclass(frozen=True)
class Params:
    """The network's numbers (units: ms, threshold = 1). `eta`: weight
    change per unit of dopamine and eligibility per step (`STDP.target`)."""

    n_e: int = 800
    n_i: int = 200
    k_e: int = 80
    k_i: int = 20
    w0: float = 0.04
    w_max: float = 0.16
    w_inh: float = 0.3
    w_ei: float = 0.1
    noise_sd: float = 0.125
    eta: float = 0.000125
    a_plus: float = 1.0
    a_minus: float = 1.5

    def check(self) -> None:
        if not (
            0 < self.w0 <= self.w_max
            and self.eta > 0
            and 1 <= self.k_e < self.n_e
            and 1 <= self.k_i < self.n_i
        ):
            raise ValueError(
                f"distal-reward parameters: need 0 < w0={self.w0} <= w_max={self.w_max}, eta={self.eta} > 0, "
                f"1 <= k_e={self.k_e} < n_e={self.n_e} and 1 <= k_i={self.k_i} < n_i={self.n_i}"
            )


def circuit(p: Params = Params()) -> Circuit:
    """The 800 E / 200 I network (module docstring)."""
    neuron = Neuron(
        tau_m=20.0, theta=1.0, noise_sd=p.noise_sd, bias=0.0, eta_theta=0.0, refractory=2,
        v_init=("uniform", 0.0, 0.5),
    )  # fmt: skip
    e = Population("E", p.n_e, "E", neuron, 0.001)
    i = Population("I", p.n_i, "I", dataclasses.replace(neuron, tau_m=10.0), 0.001)
    rule = STDP(20.0, 20.0, p.a_plus, p.a_minus, False, "reward", p.eta, tau_elig=1000.0, tau_dopamine=200.0)
    k_e, k_i = p.k_e, p.k_i
    fixed = lambda w: {"w_lo": w, "w_hi": w, "w_max": w}  # noqa: E731
    projections = (
        # distinct partners: no pre -> post pair twice (see the module docstring)
        Projection("EE", "E", "E", "distinct", k_e, w_lo=p.w0, w_hi=p.w0, w_max=p.w_max, plasticity=rule),
        Projection("IE", "I", "E", "random", k_i, **fixed(p.w_inh)),
        Projection("EI", "E", "I", "random", k_e, **fixed(p.w_ei)),
        Projection("II", "I", "I", "random", k_i, **fixed(p.w_inh)),
    )
    ports = (InputPort("reward", "E", 1, 1, 0, 0.0),)
    return Circuit((e, i), projections, ports, dt=1.0, controller=Controller(enabled=False), name="distal")


def run(
    p: Params,
    *,
    seed: int,
    model_seconds: int,
    reward_times: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One run: rewards for the chosen synapse's pairings (`reward_times`
    None) or at the given steps (the control). Returns the trajectories
    (one row a second) and the reward steps."""
    c = circuit(p)
    plan = plans.resolve(c, platform=jax.default_backend(), backend="xla", propagation="gather")
    wiring, state = brain.init_brain(c, seed=seed)
    pre = np.asarray(wiring.projections["EE"].pre)
    post, slot = 0, int(np.argmin(pre[0]))
    chosen_pre, k = int(pre[0, slot]), pre.shape[1]
    plan = dataclasses.replace(plan, record_spikes=max(post, chosen_pre) + 1)
    rng = np.random.default_rng(seed + 1)
    scheduled = [] if reward_times is None else sorted(int(t) for t in reward_times)
    delivered, pairings = [], []
    last_pre = -(10**9)
    weights, means, p99s, rates = [], [], [], []
    t0 = time.perf_counter()
    for b in range(model_seconds):
        start = b * BURST
        stims = np.zeros((BURST, 1), np.float32)
        due = [t for t in scheduled if start <= t < start + BURST]
        scheduled = [t for t in scheduled if t >= start + BURST]
        for t in due:
            stims[t - start, 0] += 1.0
        delivered += due
        state, m = brain.burst(c, plan, wiring, state, jnp.asarray(stims), length=BURST)
        raster = np.asarray(m.raster)
        if reward_times is None:  # the chosen synapse's pairings, in order
            pre_t = np.flatnonzero(raster[:, chosen_pre]) + start
            post_t = np.flatnonzero(raster[:, post]) + start
            events = sorted([(t, 0) for t in pre_t] + [(t, 1) for t in post_t])
            for t, kind in events:
                if kind == 0:
                    last_pre = t
                elif 0 < t - last_pre <= WINDOW:
                    pairings.append(int(t))
                    scheduled.append(t + int(rng.integers(DELAY[0], DELAY[1] + 1)))
                    last_pre = -(10**9)  # one reward per pre spike
            scheduled.sort()
        w = np.asarray(state.projections["EE"].weights)
        chosen = post * k + slot
        others = np.delete(w, chosen)
        weights.append(float(w[chosen]))
        means.append(float(others.mean()))
        p99s.append(float(np.percentile(others, 99)))
        rates.append(float(np.asarray(m.spikes).sum()) / (c.n * BURST / 1000.0))
        if progress and (b + 1) % 60 == 0:
            progress(
                f"  {b + 1} s: chosen {weights[-1]:.3f}, others mean {means[-1]:.3f} p99 {p99s[-1]:.3f}, "
                f"{len(delivered)} rewards, {rates[-1]:.2f} Hz ({time.perf_counter() - t0:.0f} s)"
            )
    w = np.asarray(state.projections["EE"].weights)
    return {
        "chosen": (post, chosen_pre, slot),
        "weights": weights,
        "means": means,
        "p99s": p99s,
        "rate_hz": float(np.mean(rates)),
        "rewards": delivered,
        "pairings": pairings,  # steps of the pairings' post spikes
        "final": w,
        "chosen_index": post * k + slot,
    }


def evaluate(
    *,
    seed: int = 0,
    params: Params = Params(),
    model_seconds: int = 1200,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The experiment and its random-reward control; the JSON record
    (keys in the module docstring of experiments/eval.py)."""
    params.check()
    if model_seconds < 10:
        raise ValueError(f"--distal_seconds={model_seconds} must be >= 10 s of model time")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    say(f"distal reward: {model_seconds} s of model time, rewards for the chosen synapse's pairings")
    main = run(params, seed=seed, model_seconds=model_seconds, progress=progress)
    n = len(main["rewards"])
    rng = np.random.default_rng(seed + 2)
    times = np.sort(rng.integers(0, model_seconds * BURST, size=n))
    say(f"control: the same brain, {n} rewards at random times")
    control = run(params, seed=seed, model_seconds=model_seconds, reward_times=times, progress=progress)

    def summary(r: dict[str, Any]) -> dict[str, float]:
        w, i = r["final"], r["chosen_index"]
        others = np.delete(w, i)
        return {
            "chosen_weight": float(w[i]),
            "others_mean": float(others.mean()),
            "others_p99": float(np.percentile(others, 99)),
            "others_max": float(others.max()),
            "chosen_rank": int((others >= w[i]).sum()) + 1,
            "others_at_cap": int((others >= CAP_FRACTION * params.w_max).sum()),
        }

    a, b = summary(main), summary(control)
    post, pre, _ = main["chosen"]
    return {
        "task": "distal-reward",
        "seed": seed,
        "params": dataclasses.asdict(params),
        "model_seconds": model_seconds,
        "neurons": params.n_e + params.n_i,
        "plastic_synapses": int(main["final"].size),
        "chosen_synapse": {"pre": pre, "post": post},
        "rate_hz": main["rate_hz"],
        "control_rate_hz": control["rate_hz"],
        "pairings": len(main["pairings"]),
        "rewards": n,
        "w0": params.w0,
        "w_max": params.w_max,
        **a,
        "reached_cap": a["chosen_weight"] >= CAP_FRACTION * params.w_max,
        **{f"control_{k}": v for k, v in b.items()},
        "control_reached_cap": b["chosen_weight"] >= CAP_FRACTION * params.w_max,
        "trajectory": {
            "seconds": list(range(1, model_seconds + 1)),
            "chosen": main["weights"],
            "others_mean": main["means"],
            "others_p99": main["p99s"],
            "control_chosen": control["weights"],
            "control_others_mean": control["means"],
            "control_others_p99": control["p99s"],
        },
        "reward_seconds": [t / BURST for t in main["rewards"]],
        "pairing_seconds": [t / BURST for t in main["pairings"]],
        "control_reward_seconds": [t / BURST for t in control["rewards"]],
        "anchor": "Izhikevich 2007: only the chosen synapse reaches the cap (4, from 1) within an hour",
        "seconds": time.perf_counter() - t0,
    }


def plot(record: dict[str, Any], png_path: str) -> None:
    """The chosen synapse's weight against the others' mean and 99th
    percentile over model time, rewarded run and control side by side,
    the final weight distribution beneath (jbrain/plots.py's style)."""
    from jbrain.plots import pyplot

    plt = pyplot()
    tr = record["trajectory"]
    minutes = np.asarray(tr["seconds"]) / 60.0
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, prefix, title in (
        (axes[0], "", f"rewarded pairings ({record['rewards']} rewards)"),
        (axes[1], "control_", f"control: {record['rewards']} rewards at random times"),
    ):
        ax.plot(minutes, tr[f"{prefix}chosen"], color="tab:red", label="chosen synapse")
        ax.plot(minutes, tr[f"{prefix}others_mean"], color="tab:blue", label="others: mean")
        ax.plot(
            minutes, tr[f"{prefix}others_p99"], color="tab:blue", ls="--", label="others: 99th percentile"
        )
        ax.axhline(record["w_max"], color="gray", lw=0.8, ls=":", label="cap")
        ax.set_xlabel("model time (min)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("E -> E weight")
    axes[0].legend(fontsize=8, loc="center right")
    fig.suptitle(
        f"distal reward (Izhikevich 2007) in jbrain: {record['neurons']} neurons, "
        f"{record['model_seconds']} s of model time",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
