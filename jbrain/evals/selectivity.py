"""Selectivity from experience (`jbrain eval selectivity`).

Eight words are presented to a living brain, `presentations` times each in a
random order, with plasticity on. Before and after that training (and after
an ablation), each word is presented `test_reps` more times with plasticity
off, and the spike count of every excitatory neuron of the association
region over each presentation window is its response r[n, w, k] (neuron n,
word w, repetition k).

The test presentations come in rounds (every word once per round, in a
random order); each response is taken relative to its round's mean over the
words, c[n, w, k] = r[n, w, k] - mean_w r[n, w, k], which cancels the slow
drifts of a living brain (thresholds still adapt while it is tested).

Selectivity index (per neuron, a permutation test; Fisher/Pitman style):
    m[n, w]  = mean_k c[n, w, k]
    d[n]     = max_w m[n, w] - second-largest_w m[n, w]
    d_s[n]   = the same with the word labels shuffled within each round
               (s = 1 .. S, the same shuffles for all neurons)
    p[n]     = (1 + #{s: d_s[n] >= d[n]}) / (1 + S)
    neuron n is selective when p[n] < alpha and it fired at all
The reported figure is the fraction of selective neurons. Its control is
the same analysis applied to responses whose labels were shuffled once
within each round before it (no neuron can prefer a word there: the
fraction is ~alpha or below, the chance level).

Rows: "untrained" (the warmed-up brain before training), "trained", and
"ablated" (the trained brain with every plastic projection's weights put
back to their values before training: whatever training wrote into them is
gone, the rest of the state is the trained brain's). Learning lives in the
synapses (local STDP and inhibitory plasticity inside the burst); nothing
on the host remembers the words.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbrain import brain
from jbrain import plan as plans
from jbrain.circuit import Circuit
from jbrain.text import BYTE_CHANNELS, CHANNEL_OF_BYTE, Codec

WORDS = ("red", "green", "blue", "cat", "dog", "sun", "moon", "tree")


@functools.partial(jax.jit, static_argnames=("circuit", "plan"))
def respond(circuit: Circuit, plan: plans.Plan, wiring: Any, state: Any, stims: jax.Array):
    """Run one presentation, (T, input_channels) f32 stims -> (state, counts
    (N,) int32 spikes of every neuron over the T steps)."""

    def body(carry, stim):
        s, counts = carry
        s, _ = brain.step(circuit, plan, wiring, s, stim)
        return (s, counts + s.neurons.spikes.astype(jnp.int32)), None

    zeros = jnp.zeros((circuit.n,), jnp.int32)
    (state, counts), _ = jax.lax.scan(body, (state, zeros), stims)
    return state, counts


def drive_period(circuit: Circuit) -> int:
    """Steps per period of the circuit's drive oscillation (1: none)."""
    c = circuit.controller
    return max(1, round(c.osc_period)) if c.enabled and c.osc_amp != 0 else 1


def word_stims(word: str, steps: int, channels: int) -> np.ndarray:
    """(steps, channels) f32 0/1: the chat encoder's presentation of `word`
    (`text.Codec`: its bytes one after another over the first half), byte
    value v on the chat's own channel when the brain has 256 or 64 channels
    (`text.CHANNEL_OF_BYTE`), else on channel v % channels."""
    full = Codec(reply_steps=steps, reply_chars=1).encode(word)
    fold = CHANNEL_OF_BYTE.get(channels, np.arange(BYTE_CHANNELS) % channels)
    out = np.zeros((steps, channels), np.float32)
    for v in np.nonzero(full.any(axis=0))[0]:
        out[:, fold[v]] = np.maximum(out[:, fold[v]], full[:, v])
    return out


def frozen(circuit: Circuit) -> Circuit:
    """The circuit with every projection's plasticity off (the test phases)."""
    return dataclasses.replace(
        circuit, projections=tuple(dataclasses.replace(q, plasticity=None) for q in circuit.projections)
    )


def association_neurons(circuit: Circuit) -> np.ndarray:
    """Shared-axis indices of the excitatory neurons inside region
    "association" (or of every excitatory neuron without such a region)."""
    out = []
    for p in circuit.populations:
        if p.sign != "E":
            continue
        first = circuit.offset(p.name)
        if any(r.name == "association" for r in circuit.regions) and p.placement.kind == "rect":
            rows, cols = p.placement.cells()
            inside = circuit.region_of("association").contains(rows, cols)
            out.append(first + np.nonzero(inside)[0])
        else:
            out.append(first + np.arange(p.size))
    return np.concatenate(out)


def _within_rounds(rng: np.random.Generator, words: int, rounds: int) -> np.ndarray:
    """(words, rounds) int: for each round (column) a random permutation of the words."""
    return np.stack([rng.permutation(words) for _ in range(rounds)], axis=1)


def selective_fraction(
    responses: np.ndarray, *, shuffles: int = 200, alpha: float = 0.05, seed: int = 0
) -> float:
    """Fraction of neurons that prefer one word (module docstring).

    responses: (n_neurons, words, rounds) spike counts, round k holding one
    presentation of every word. Each round's mean over the words is taken
    out per neuron (slow drifts of the living brain cancel), and the word
    labels are shuffled within rounds. Returns a float in [0, 1].
    """
    r = np.asarray(responses, np.float32)
    n, w, k = r.shape
    rng = np.random.Generator(np.random.PCG64(seed))
    centred = r - r.mean(axis=1, keepdims=True)
    cols = np.arange(k)[None, :]

    def gap(x: np.ndarray) -> np.ndarray:  # (n, w, k) -> (n,) top1 - top2 of the word means
        m = np.sort(x.mean(axis=2), axis=1)
        return m[:, -1] - m[:, -2]

    d = gap(centred)
    exceed = np.zeros(n, np.int64)
    for _ in range(shuffles):
        exceed += gap(centred[:, _within_rounds(rng, w, k), cols]) >= d
    p = (1 + exceed) / (1 + shuffles)
    responsive = r.mean(axis=2).max(axis=1) > 0
    return float(np.mean((p < alpha) & responsive))


def shuffled_control(responses: np.ndarray, *, seed: int = 0, **kw: Any) -> float:
    """`selective_fraction` of the responses with their word labels shuffled
    once within each round."""
    r = np.asarray(responses)
    n, w, k = r.shape
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    mixed = r[:, _within_rounds(rng, w, k), np.arange(k)[None, :]]
    return selective_fraction(mixed, seed=seed, **kw)


def evaluate(
    circuit: Circuit,
    *,
    seed: int = 0,
    warmup: int = 2000,
    presentations: int = 200,
    test_reps: int = 10,
    steps: int = 100,
    words: tuple[str, ...] = WORDS,
    shuffles: int = 200,
    settle: int = 1000,
    plan_options: dict[str, Any] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """The whole evaluation (module docstring) on a newborn brain of
    `circuit` (which must be plastic: training needs a plastic projection).

    steps: T per presentation: the word over the first T/2 steps (the chat
    encoder's input phase), then T/2 steps without input; on a paced brain
    silent steps follow up to a whole number of drive periods, so that every
    presentation starts at the same phase of the drive. settle: steps
    without input before each test phase (thresholds re-settle after
    training or an ablation). Returns the JSON
    record: rows untrained / trained / ablated with "selective_fraction" and
    "shuffled_control", and the settings.
    """
    plastic = [q.name for q in circuit.projections if q.plasticity is not None]
    if not plastic:
        raise ValueError("selectivity needs plasticity: add --plasticity (and --inh_plasticity)")
    if presentations < 1 or test_reps < 2 or steps < 2:
        raise ValueError("--presentations must be >= 1, --test_reps >= 2 and --eval_steps >= 2")
    plan_options = plan_options or {}
    learn_plan = plans.resolve(circuit, **plan_options)
    test_circuit = frozen(circuit)
    test_plan = plans.resolve(test_circuit, **plan_options)
    stims = {w: jnp.asarray(word_stims(w, steps, circuit.input_channels)) for w in words}
    silence = jnp.zeros((steps, circuit.input_channels), jnp.float32)
    cells = association_neurons(circuit)
    rng = np.random.Generator(np.random.PCG64(seed))
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()

    # A paced brain (a drive oscillation, `Controller.osc_amp`) responds
    # differently at each phase: every presentation starts at phase 0, a
    # gap of silent steps after each filling it up to whole periods.
    period = drive_period(circuit)
    gap = jnp.zeros(((-steps) % period, circuit.input_channels), jnp.float32)

    def present(circ: Circuit, plan: plans.Plan, state: Any, stim: jax.Array) -> tuple[Any, jax.Array]:
        state, counts = respond(circ, plan, wiring, state, stim)
        if gap.shape[0]:
            state, _ = respond(circ, plan, wiring, state, gap)
        return state, counts

    wiring, state = brain.init_brain(circuit, seed=seed)
    for _ in range(max(0, warmup) // steps):
        state, _ = respond(circuit, learn_plan, wiring, state, silence)
    lead = (-int(state.step)) % period  # steps to the drive's next phase 0
    if lead:
        state, _ = respond(
            circuit, learn_plan, wiring, state, jnp.zeros((lead, circuit.input_channels), jnp.float32)
        )

    def test(state: Any) -> np.ndarray:
        """(cells, words, test_reps) responses in rounds (each round every word
        once, in a random order), after `settle` steps without input in the
        test circuit; the state goes on living."""
        for _ in range(settle // steps):
            state, _ = present(test_circuit, test_plan, state, silence)
        out = np.zeros((cells.size, len(words), test_reps), np.int32)
        for k in range(test_reps):
            for w in rng.permutation(len(words)):
                state, counts = present(test_circuit, test_plan, state, stims[words[w]])
                out[:, w, k] = np.asarray(counts)[cells]
        return out

    before = {q: state.projections[q].weights for q in plastic}
    untrained = test(state)
    say(f"untrained responses measured ({time.perf_counter() - t0:.0f} s)")
    order = np.repeat(np.arange(len(words)), presentations)
    rng.shuffle(order)
    for i, w in enumerate(order):
        state, _ = present(circuit, learn_plan, state, stims[words[w]])
        if progress and (i + 1) % max(1, len(order) // 10) == 0:
            say(f"trained {i + 1}/{len(order)} presentations ({time.perf_counter() - t0:.0f} s)")
    trained = test(state)
    restored = {q: state.projections[q].replace(weights=before[q]) for q in plastic}
    ablated_state = state.replace(projections={**state.projections, **restored})
    ablated = test(ablated_state)

    def row(name: str, r: np.ndarray) -> dict[str, Any]:
        return {
            "name": name,
            "selective_fraction": selective_fraction(r, shuffles=shuffles, seed=seed),
            "shuffled_control": shuffled_control(r, shuffles=shuffles, seed=seed),
            "mean_response": float(r.mean()),
        }

    return {
        "task": "selectivity",
        "preset": circuit.name,
        "device": str(jax.devices()[0].device_kind),
        "n_neurons": circuit.n,
        "association_neurons": int(cells.size),
        "words": list(words),
        "presentations": presentations,
        "steps_per_presentation": steps + int(gap.shape[0]),
        "test_reps": test_reps,
        "steps": steps,
        "warmup": warmup,
        "seed": seed,
        "plastic_projections": plastic,
        "rows": [row("untrained", untrained), row("trained", trained), row("ablated", ablated)],
        "seconds": time.perf_counter() - t0,
    }
