"""Unsupervised STDP on handwritten digits (`jbrain eval digits`): the
Diehl & Cook 2015 protocol on scikit-learn's 8 x 8 digits.

Data: `digits.csv.gz` (beside this file), 1,797 rows of 64 pixel values
(0..16, an 8 x 8 image row by row) then the label 0..9: the test set of the
UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin and
C. Kaynak 1998; https://archive.ics.uci.edu/dataset/80, CC BY 4.0), as
bundled by scikit-learn (`sklearn/datasets/data/digits.csv.gz` of the
scikit-learn 1.9.1 wheel, byte for byte; no sklearn at run time).

Split (fixed, independent of --seed): each class's images in a random order
(numpy PCG64, seed 0), alternately to training and test, the first to
training: 901 training images, 896 test images, every class halved.

Network (one image at a time; units: ms, mV, Hz; conductances in units of
the leak conductance; shapes with N excitatory neurons, P = 64 pixels):
  input     P Poisson spike trains, rate_j = rate_per_unit * pixel_j * boost
            (Hz; pixels 0..16: 0..128 Hz at the default 8 Hz per unit and
            boost 1), for `present_ms` ms; then `rest_ms` ms without input.
  E neurons N conductance-based LIF (Diehl & Cook's eq. 1), steps of dt
            (exponential Euler: conductances held over a step, `relax`):
              tau_e dv/dt = (v_rest_e - v) + g_e (E_exc - v) + g_i (E_inh_e - v)
              spike when v > v_thresh_e + theta (and not refractory):
              v <- v_reset_e, refractory for refrac_e ms, theta += theta_plus
              dtheta/dt = -theta / tau_theta     (adaptive threshold, (N,) mV)
            g_e += w^T s_in each step (s_in (P,) 0/1 input spikes, w (P, N)),
            decaying with tau_ge; g_i += w_ie * (number of I spikes, except
            the neuron's own partner), decaying with tau_gi.
  I neurons N, one partner per E neuron (lateral inhibition):
              tau_i dv/dt = (v_rest_i - v) + g (E_exc - v)
            g += w_ei * s_e (its E partner's spike), decaying with tau_ge;
            spike: v <- v_reset_i, refractory for refrac_i ms. Each I spike
            inhibits every E neuron but its partner.
  STDP      on the input weights w (P, N), traces decaying each step
            (tau_pre, tau_post) and bumped by 1 per spike:
              post n fires: w[:, n] += eta_post (x_pre - x_tar) (w_max - w[:, n])^mu
              pre j fires:  w[j, :] -= eta_pre x_post
              w <- clip(w, 0, w_max)
            (the paper's power-law rule, eq. 3, with their code's presynaptic
            depression); before every presentation each neuron's input
            weights are scaled to sum to `weight_sum` (per-neuron
            normalisation).
  retries   if the E neurons fire fewer than `min_spikes` spikes in a
            presentation, the image is shown again (after the rest) with the
            rates raised, boost += retry_boost, at most `max_tries` times
            (Diehl & Cook's rule: +32 Hz at full intensity per retry).
  rest      the `rest_ms` ms between presentations are applied in closed
            form: with no input every variable relaxes exponentially (v to
            rest, traces and conductances to 0, theta by exp(-rest/tau_theta)),
            refractory periods end; the conductances' last < 2 ms of charge
            is dropped.

Parameters (`Params`): Diehl & Cook's (their code's) neuron, synapse and
timing constants, dt = 0.5 ms, 350 ms presentations and 150 ms rests. Tuned
here for 64 inputs instead of 784 and ~1,800 presentations instead of
60,000+ (on a validation split of the training half: 600 images to train,
301 to validate, two such folds and two seeds; never on the test half):
rate_per_unit 8 Hz (theirs: 255 / 4 Hz at full intensity, ~64 Hz),
weight_sum 12 (theirs 78 over 784 inputs: a mean weight of 0.19 against
0.10), theta_plus 0.4 mV (theirs 0.05) with tau_theta 750 s (theirs
10^4 s), eta_post 0.02 (theirs 0.01), and the power-law rule with x_tar = 0,
mu = 1. The threshold's offset convention differs: theta starts at 0 here
(their theta starts at 20 mV with a -20 mV offset: the same threshold).

Learning (training): the training images, `epochs` times in a seeded random
order each, with STDP and the adaptive thresholds on. No label is used.
Then STDP and theta are frozen; the network's responses (E spike counts,
each image shown `readout_repeats` = 4 times from rest with the retry rule
and fresh Poisson trains, the counts summed: Diehl & Cook show it once,
which leaves ~12 spikes per image here, a noisy vote; 4 repeats were
chosen on the validation folds) to the training images assign each neuron
the class for which its mean response is highest; a test image is
classified as the class whose assigned neurons have the highest mean
response (Diehl & Cook's rule).

Rows (each assigned labels and tested the same way, with the same Poisson
trains): "trained"; "untrained" (the newborn network: random input weights,
normalised, theta = 0); "ablated" (the trained network with the learned
input weights put back to their newborn values: the thresholds keep what
they learned, so this row shows what the weights alone learned). Reference
rows, non-spiking, on the same split: multinomial logistic regression
(pixels / 16, L2, full-batch Adam on jax.grad) and k-means with 100
prototypes (Lloyd's algorithm on the raw pixels, prototypes labelled by a
majority vote of their training images, test images by their nearest
prototype).

Implementation: one jitted pure step (state: `Dynamics`, with the
`Net` weights and thresholds), scanned with `jax.lax.scan` over the steps of
a presentation; training scans a chunk of images at a time (one program for
every chunk), evaluation vmaps the presentation over a batch of images with
the weights and thresholds shared. Every random draw comes from
jax.random keys folded from the seed: a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jbrain.evals import readout

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv.gz")
PIXELS = 64
CLASSES = 10
SPLIT_SEED = 0
ANCHORS = {
    "diehl_cook_mnist_6400": 0.950,
    "diehl_cook_mnist_400": 0.870,
    "logistic_regression_digits": 0.957,
    "kmeans_100_digits": 0.964,
}
TARGET = 0.92


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------
def load(path: str = DATA) -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 64) float32 pixels 0..16, labels (1797,) int32 0..9)."""
    with gzip.open(path, "rt", encoding="ascii") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return data[:, :PIXELS], data[:, PIXELS].astype(np.int32)


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted index arrays: each class's images in a random
    order (PCG64 seed 0, fixed), alternately to train and test."""
    rng = np.random.Generator(np.random.PCG64(SPLIT_SEED))
    train, test = [], []
    for c in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        train.append(idx[0::2])
        test.append(idx[1::2])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# ----------------------------------------------------------------------------
# the network
# ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Params:
    """The network's constants (hashable: a static argument of the jitted
    programs). Units: ms, mV, Hz; conductances per leak conductance."""

    n_neurons: int = 400  # N excitatory neurons (and as many inhibitory partners)
    dt: float = 0.5  # step (ms)
    present_ms: float = 350.0  # presentation of one image (ms)
    rest_ms: float = 150.0  # rest after each presentation (ms; closed form)
    rate_per_unit: float = 8.0  # input rate per pixel unit (Hz; pixel 16 -> 128 Hz)
    retry_boost: float = 0.5  # rate multiplier added per retry
    min_spikes: int = 5  # E spikes below which a presentation is repeated
    max_tries: int = 8  # presentations of one image at most
    readout_repeats: int = 4  # presentations whose counts are summed per image when labelling and testing
    # excitatory neurons
    tau_e: float = 100.0  # membrane time constant (ms)
    v_rest_e: float = -65.0  # E resting potential (mV)
    v_reset_e: float = -65.0  # E potential after a spike (mV)
    v_thresh_e: float = -52.0  # threshold before adaptation (mV)
    refrac_e: float = 5.0  # refractory period (ms)
    e_exc: float = 0.0  # excitatory reversal potential (mV)
    e_inh_e: float = -100.0  # inhibitory reversal potential of E neurons (mV)
    theta_plus: float = 0.4  # threshold increase per spike (mV)
    tau_theta: float = 7.5e5  # threshold decay (ms)
    # inhibitory neurons
    tau_i: float = 10.0  # I membrane time constant (ms)
    v_rest_i: float = -60.0  # I resting potential (mV)
    v_reset_i: float = -45.0  # I potential after a spike (mV)
    v_thresh_i: float = -40.0  # I threshold (mV)
    refrac_i: float = 2.0  # I refractory period (ms)
    # synapses
    tau_ge: float = 1.0  # excitatory conductance decay (ms)
    tau_gi: float = 2.0  # inhibitory conductance decay (ms)
    w_ei: float = 10.4  # E -> its I partner (conductance per spike)
    w_ie: float = 17.0  # I -> every other E (conductance per spike)
    # STDP on the input weights
    w_init: float = 0.3  # newborn weights ~ U[0, w_init), then normalised
    weight_sum: float = 12.0  # sum of each neuron's input weights
    w_max: float = 1.0  # upper bound of an input weight
    tau_pre: float = 20.0  # presynaptic trace time constant (ms)
    tau_post: float = 20.0  # postsynaptic trace time constant (ms)
    eta_post: float = 0.02  # learning rate at a post spike (potentiation)
    eta_pre: float = 0.0001  # learning rate at a pre spike (depression)
    x_tar: float = 0.0  # target presynaptic trace (below it, a post spike depresses)
    mu: float = 1.0  # weight dependence (w_max - w)^mu of potentiation

    @property
    def steps(self) -> int:
        return max(1, round(self.present_ms / self.dt))

    def check(self) -> None:
        """ValueError naming the first bad value."""
        if not 1 <= self.n_neurons <= 4096:
            raise ValueError(f"n_neurons={self.n_neurons}: must be in 1..4096")
        for name in ("dt", "present_ms", "rate_per_unit", "tau_e", "tau_i", "tau_ge", "tau_gi", "w_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be > 0")
        if self.rest_ms < 0 or self.min_spikes < 0 or self.max_tries < 1 or self.readout_repeats < 1:
            raise ValueError("rest_ms and min_spikes must be >= 0, max_tries and readout_repeats >= 1")


class Net(NamedTuple):
    """What learning writes: input weights w (P, N) and thresholds theta (N,) mV."""

    w: jax.Array
    theta: jax.Array


class Dynamics(NamedTuple):
    """The fast state of one presentation (all float32 but the refractory counters)."""

    v_e: jax.Array  # (N,) mV
    ge_e: jax.Array  # (N,) excitatory conductance of E
    gi_e: jax.Array  # (N,) inhibitory conductance of E
    ref_e: jax.Array  # (N,) int32 refractory steps left
    v_i: jax.Array  # (N,) mV
    ge_i: jax.Array  # (N,) excitatory conductance of I
    ref_i: jax.Array  # (N,) int32
    x_pre: jax.Array  # (P,) presynaptic traces
    x_post: jax.Array  # (N,) postsynaptic traces


def newborn(p: Params, key: jax.Array) -> Net:
    """Random input weights U[0, w_init) normalised per neuron; theta = 0."""
    w = jax.random.uniform(key, (PIXELS, p.n_neurons), jnp.float32, 0.0, p.w_init)
    return Net(normalise(p, w), jnp.zeros((p.n_neurons,), jnp.float32))


def normalise(p: Params, w: jax.Array) -> jax.Array:
    """Each neuron's input weights scaled to sum to weight_sum."""
    return w * (p.weight_sum / jnp.maximum(w.sum(0, keepdims=True), 1e-9))


def at_rest(p: Params) -> Dynamics:
    n = p.n_neurons
    zeros = jnp.zeros((n,), jnp.float32)
    full = lambda v: jnp.full((n,), v, jnp.float32)  # noqa: E731
    izeros = jnp.zeros((n,), jnp.int32)
    return Dynamics(
        full(p.v_rest_e), zeros, zeros, izeros, full(p.v_rest_i), zeros, izeros,
        jnp.zeros((PIXELS,), jnp.float32), zeros,
    )  # fmt: skip


def relax(v: jax.Array, v_rest: float, ge: Any, gi: Any, e_inh: float, tau: float, p: Params) -> jax.Array:
    """v after dt of tau dv/dt = (v_rest - v) + ge (E_exc - v) + gi (e_inh - v)
    with the conductances held over the step (exponential Euler: exact for
    constant conductances, stable for any, where forward Euler overshoots
    once (1 + ge + gi) dt > tau, as when many inhibitory neurons fire at once)."""
    g = 1.0 + ge + gi
    v_inf = (v_rest + ge * p.e_exc + gi * e_inh) / g
    return v_inf + (v - v_inf) * jnp.exp(-g * (p.dt / tau))


def step(p: Params, learn: bool, net: Net, d: Dynamics, s_in: jax.Array) -> tuple[Net, Dynamics, jax.Array]:
    """One dt step: (net, dynamics, s_in (P,) bool input spikes) -> (net,
    dynamics, s_e (N,) bool E spikes). The conductances take this step's
    spikes at its end (they act from the next step); learn: STDP and theta."""
    dt = p.dt
    # E membranes (exponential Euler), spikes, reset, refractoriness
    free_e = d.ref_e == 0
    v_e = jnp.where(free_e, relax(d.v_e, p.v_rest_e, d.ge_e, d.gi_e, p.e_inh_e, p.tau_e, p), d.v_e)
    s_e = free_e & (v_e > p.v_thresh_e + net.theta)
    v_e = jnp.where(s_e, p.v_reset_e, v_e)
    ref_e = jnp.where(s_e, round(p.refrac_e / dt), jnp.maximum(d.ref_e - 1, 0))
    # I partners
    free_i = d.ref_i == 0
    v_i = jnp.where(free_i, relax(d.v_i, p.v_rest_i, d.ge_i, 0.0, 0.0, p.tau_i, p), d.v_i)
    s_i = free_i & (v_i > p.v_thresh_i)
    v_i = jnp.where(s_i, p.v_reset_i, v_i)
    ref_i = jnp.where(s_i, round(p.refrac_i / dt), jnp.maximum(d.ref_i - 1, 0))
    # conductances: decay, then this step's spikes
    fin, fe, fi = s_in.astype(jnp.float32), s_e.astype(jnp.float32), s_i.astype(jnp.float32)
    ge_e = d.ge_e * math.exp(-dt / p.tau_ge) + fin @ net.w
    gi_e = d.gi_e * math.exp(-dt / p.tau_gi) + p.w_ie * (fi.sum() - fi)
    ge_i = d.ge_i * math.exp(-dt / p.tau_ge) + p.w_ei * fe
    x_pre, x_post = d.x_pre, d.x_post
    if learn:
        w = net.w
        # post fired: the paper's power-law rule (traces before this step's bump)
        gap = jnp.maximum(p.w_max - w, 0.0)
        soft = gap if p.mu == 1.0 else gap**p.mu
        w = w + p.eta_post * (x_pre - p.x_tar)[:, None] * soft * fe[None, :]
        # pre fired: depression by the postsynaptic trace
        w = w - p.eta_pre * fin[:, None] * x_post[None, :]
        w = jnp.clip(w, 0.0, p.w_max)
        theta = net.theta * math.exp(-dt / p.tau_theta) + p.theta_plus * fe
        net = Net(w, theta)
        x_pre = x_pre * math.exp(-dt / p.tau_pre) + fin
        x_post = x_post * math.exp(-dt / p.tau_post) + fe
    d = Dynamics(v_e, ge_e, gi_e, ref_e, v_i, ge_i, ref_i, x_pre, x_post)
    return net, d, s_e


def rest(p: Params, learn: bool, net: Net, d: Dynamics) -> tuple[Net, Dynamics]:
    """rest_ms without input, in closed form (exponential relaxation)."""
    t = p.rest_ms
    f = lambda tau: math.exp(-t / tau)  # noqa: E731
    d = Dynamics(
        v_e=p.v_rest_e + (d.v_e - p.v_rest_e) * f(p.tau_e),
        ge_e=d.ge_e * f(p.tau_ge), gi_e=d.gi_e * f(p.tau_gi), ref_e=jnp.zeros_like(d.ref_e),
        v_i=p.v_rest_i + (d.v_i - p.v_rest_i) * f(p.tau_i), ge_i=d.ge_i * f(p.tau_ge),
        ref_i=jnp.zeros_like(d.ref_i), x_pre=d.x_pre * f(p.tau_pre), x_post=d.x_post * f(p.tau_post),
    )  # fmt: skip
    if learn:
        net = net._replace(theta=net.theta * f(p.tau_theta))
    return net, d


def present(
    p: Params, learn: bool, net: Net, d: Dynamics, image: jax.Array, key: jax.Array
) -> tuple[Net, Dynamics, jax.Array, jax.Array]:
    """Show one image (P,) pixels with the retry rule: -> (net, dynamics after
    the rest, counts (N,) int32 E spikes of the last presentation, tries)."""

    def once(net, d, tries):
        boost = 1.0 + p.retry_boost * tries.astype(jnp.float32)
        prob = image * (p.rate_per_unit * p.dt / 1000.0) * boost
        s_in = jax.random.uniform(jax.random.fold_in(key, tries), (p.steps, PIXELS)) < prob
        if learn:
            net = net._replace(w=normalise(p, net.w))

        def body(carry, s):
            net, d, counts = carry
            net, d, s_e = step(p, learn, net, d, s)
            return (net, d, counts + s_e.astype(jnp.int32)), None

        zeros = jnp.zeros((p.n_neurons,), jnp.int32)
        (net, d, counts), _ = jax.lax.scan(body, (net, d, zeros), s_in)
        net, d = rest(p, learn, net, d)
        return net, d, counts

    def cond(c):
        _, _, counts, tries = c
        return (tries == 0) | ((counts.sum() < p.min_spikes) & (tries < p.max_tries))

    def body(c):
        net, d, _, tries = c
        net, d, counts = once(net, d, tries)
        return net, d, counts, tries + 1

    zeros = jnp.zeros((p.n_neurons,), jnp.int32)
    net, d, counts, tries = jax.lax.while_loop(cond, body, (net, d, zeros, jnp.int32(0)))
    return net, d, counts, tries


@functools.partial(jax.jit, static_argnames=("p",))
def train_chunk(
    p: Params, net: Net, d: Dynamics, images: jax.Array, keys: jax.Array, valid: jax.Array
) -> tuple[Net, Dynamics, jax.Array, jax.Array]:
    """Learn from a chunk of images in order (images (C, P), keys (C, 2),
    valid (C,) bool: False pads a short last chunk) -> (net, dynamics,
    counts (C, N), tries (C,))."""

    def body(carry, x):
        image, key, ok = x

        def go(c):
            net, d, counts, tries = present(p, True, *c, image, key)
            return (net, d), (counts, tries)

        def skip(c):
            return c, (jnp.zeros((p.n_neurons,), jnp.int32), jnp.int32(0))

        return jax.lax.cond(ok, go, skip, carry)

    (net, d), (counts, tries) = jax.lax.scan(body, (net, d), (images, keys, valid))
    return net, d, counts, tries


@functools.partial(jax.jit, static_argnames=("p",))
def respond(p: Params, net: Net, images: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Responses of the frozen network (no STDP, theta fixed) to a batch of
    images (B, P): each image shown `readout_repeats` times from rest, the
    first with its key, repeat r with fold_in(key, r): -> (counts (B, N)
    int32 E spikes summed over the repeats, tries (B,) summed likewise)."""

    def one(image, key):
        def repeat(r, total):  # one presentation program, looped (not unrolled per repeat)
            key_r = jnp.where(r == 0, key, jax.random.fold_in(key, r))
            _, _, c, t = present(p, False, net, at_rest(p), image, key_r)
            return total[0] + c, total[1] + t

        zeros = (jnp.zeros((p.n_neurons,), jnp.int32), jnp.int32(0))
        return jax.lax.fori_loop(0, p.readout_repeats, repeat, zeros)

    return jax.vmap(one)(images, keys)


def responses(
    p: Params, net: Net, images: np.ndarray, key: jax.Array, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """`respond` over any number of images (batches of `batch`, the last
    padded; image i's Poisson trains come from fold_in(key, i))."""
    n = len(images)
    keys = fold_keys(key, n)
    counts, tries = [], []
    for start in range(0, n, batch):
        idx = np.minimum(np.arange(start, start + batch), n - 1)
        c, t = respond(p, net, jnp.asarray(images[idx]), keys[idx])
        keep = min(batch, n - start)
        counts.append(np.asarray(c)[:keep])
        tries.append(np.asarray(t)[:keep])
    return np.concatenate(counts), np.concatenate(tries)


def fold_keys(key: jax.Array, n: int) -> jax.Array:
    """(n, 2) keys fold_in(key, i), i = 0 .. n-1."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))


# ----------------------------------------------------------------------------
# labels after training
# ----------------------------------------------------------------------------
def assign(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) class of each neuron: the class of its highest mean response
    (counts (M, N) over labelled images; ties: the lower class), -1 for a
    neuron silent on every image (unassigned, as in Diehl & Cook's code)."""
    onehot = labels[None, :] == np.arange(CLASSES)[:, None]  # (C, M)
    mean = (onehot @ counts) / np.maximum(onehot.sum(1, keepdims=True), 1)  # (C, N); no image: 0
    return np.where(mean.max(0) > 0, mean.argmax(0), -1)


def classify(counts: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """(M,) predicted classes: the class whose assigned neurons have the
    highest mean response (a class without neurons scores 0)."""
    scores = np.zeros((len(counts), CLASSES))
    for c in range(CLASSES):
        members = assignment == c
        if members.any():
            scores[:, c] = counts[:, members].mean(1)
    return scores.argmax(1)


# ----------------------------------------------------------------------------
# reference rows (non-spiking)
# ----------------------------------------------------------------------------
def logistic_regression(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Multinomial logistic regression on pixels / 16 (evals/readout.py:
    l2 1e-3, 500 full-batch Adam steps on jax.grad from zero). Returns the
    test predictions."""
    return readout.softmax_regression(x_train / 16.0, y_train, x_test / 16.0, CLASSES)


def kmeans(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    k: int = 100,
    iters: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Lloyd's algorithm on the raw pixels from k distinct training images
    drawn with `seed` (an empty cluster keeps its prototype); each prototype
    takes the majority label of its training images (ties: the lower class;
    none: class 0); test images take their nearest prototype's. Returns the
    test predictions."""
    rng = np.random.Generator(np.random.PCG64(seed))
    x = x_train.astype(np.float64)
    protos = x[rng.choice(len(x), k, replace=False)]

    def nearest(z, protos):
        d = (z * z).sum(1)[:, None] - 2 * z @ protos.T + (protos * protos).sum(1)[None]
        return d.argmin(1)

    for _ in range(iters):
        a = nearest(x, protos)
        sums = np.zeros_like(protos)
        np.add.at(sums, a, x)
        n = np.bincount(a, minlength=k)
        new = np.where(n[:, None] > 0, sums / np.maximum(n, 1)[:, None], protos)
        if np.array_equal(new, protos):
            break
        protos = new
    a = nearest(x, protos)
    votes = np.zeros((k, CLASSES), np.int64)
    np.add.at(votes, (a, y_train), 1)
    return votes.argmax(1)[nearest(x_test.astype(np.float64), protos)]


# ----------------------------------------------------------------------------
# the evaluation
# ----------------------------------------------------------------------------
def evaluate(
    *,
    seed: int = 0,
    params: Params = Params(),
    epochs: int = 2,
    n_train: int | None = None,
    chunk: int = 100,
    batch: int = 256,
    references: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the network on the training half (`n_train`: only its first
    images), assign labels, test; the same for the untrained and the
    ablated network; the reference rows. Returns the JSON record."""
    params.check()
    if epochs < 1:
        raise ValueError(f"epochs={epochs}: must be >= 1")
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    images, labels = load()
    train, test = split(labels)
    if n_train is not None:
        if not 10 <= n_train <= len(train):
            raise ValueError(f"n_train={n_train}: must be in 10..{len(train)}")
        train = train[:n_train]
    x_train, y_train, x_test, y_test = images[train], labels[train], images[test], labels[test]
    root = jax.random.PRNGKey(seed)
    k_init, k_order, k_train, k_label, k_test = (jax.random.fold_in(root, i) for i in range(5))

    def score(net: Net) -> dict[str, Any]:
        c_train, t_train = responses(params, net, x_train, k_label, batch)
        c_test, t_test = responses(params, net, x_test, k_test, batch)
        assignment = assign(c_train, y_train)
        return {
            "test_accuracy": float(np.mean(classify(c_test, assignment) == y_test)),
            "train_accuracy": float(np.mean(classify(c_train, assignment) == y_train)),
            "neurons_per_class": np.bincount(assignment[assignment >= 0], minlength=CLASSES).tolist(),
            "unassigned_neurons": int((assignment < 0).sum()),
            "mean_spikes": float(c_test.sum(1).mean() / params.readout_repeats),  # per presentation
            "silent_test_images": int((c_test.sum(1) == 0).sum()),
            "mean_tries": float(t_test.mean() / params.readout_repeats),
        }

    newborn_net = newborn(params, k_init)
    untrained = score(newborn_net)
    say(f"untrained: {untrained['test_accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)")
    net, d = newborn_net, at_rest(params)
    n = len(x_train)
    spikes, tries = [], []
    t_train0 = time.perf_counter()
    for epoch in range(epochs):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(k_order, epoch), n))
        keys = fold_keys(jax.random.fold_in(k_train, epoch), n)
        for start in range(0, n, chunk):
            idx = np.arange(start, start + chunk)
            valid = idx < n
            take = order[np.minimum(idx, n - 1)]
            net, d, c, t = train_chunk(
                params, net, d, jnp.asarray(x_train[take]), keys[np.minimum(idx, n - 1)], jnp.asarray(valid)
            )
            spikes.append(np.asarray(c).sum(1)[valid])
            tries.append(np.asarray(t)[valid])
        say(f"epoch {epoch + 1}/{epochs} trained ({time.perf_counter() - t0:.0f} s)")
    train_seconds = time.perf_counter() - t_train0
    net = net._replace(w=normalise(params, net.w))
    trained = score(net)
    say(f"trained: {trained['test_accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)")
    ablated = score(net._replace(w=newborn_net.w))
    say(f"ablated: {ablated['test_accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)")
    record: dict[str, Any] = {
        "task": "digits",
        "test_accuracy": trained["test_accuracy"],
        "untrained_accuracy": untrained["test_accuracy"],
        "ablated_accuracy": ablated["test_accuracy"],
        "ablation": "input weights put back to their newborn values (learned thresholds kept)",
        "rows": {"trained": trained, "untrained": untrained, "ablated": ablated},
        "n_neurons": params.n_neurons,
        "epochs": epochs,
        "n_train": len(train),
        "n_test": len(test),
        "split": f"stratified, each class alternately to train and test in a PCG64 seed-{SPLIT_SEED} order",
        "seed": seed,
        "params": dataclasses.asdict(params),
        "train_spikes_per_image": float(np.concatenate(spikes).mean()),
        "train_tries_per_image": float(np.concatenate(tries).mean()),
        "theta_mean_mv": float(net.theta.mean()),
        "train_seconds": train_seconds,
        "chance": 1.0 / CLASSES,
        "target": TARGET,
        "anchors": dict(ANCHORS),
        "device": str(jax.devices()[0].device_kind),
    }
    if references:
        record["logistic_accuracy"] = float(np.mean(logistic_regression(x_train, y_train, x_test) == y_test))
        record["kmeans_accuracy"] = float(np.mean(kmeans(x_train, y_train, x_test, seed=seed) == y_test))
        say(
            f"references: logistic {record['logistic_accuracy']:.3f}, k-means {record['kmeans_accuracy']:.3f}"
        )
    record["seconds"] = time.perf_counter() - t0
    return record
