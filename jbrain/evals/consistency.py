"""Input-dependent replies, untaught (`jbrain eval consistency`).

A living brain (plasticity as its flags say, its noise on) is sent each of
M messages `sends` times, in a random order, at random moments: before
every message it runs on without input for a random number of bursts of
`chunk` steps (uniform in [1, max_chunks]; by default a burst is a reply's
length), as a `--live` chat brain lives on in such bursts while its user
types (so a message, as in the chat, starts where a burst ends). Every
reply is one chat reply burst (`text.reply`'s encoder and decoder: R
characters read from R windows of the output phase).

The measure is leave-one-out nearest-neighbour classification of "which
message caused this reply" over the M * sends replies:
    accuracy          on the reply text: distance = the number of the R
                      characters that differ (Hamming)
    counts_accuracy   on what the decoder read: each reply's (R, groups)
                      window spike counts, flattened and scaled to unit
                      length; distance = 1 - cosine similarity
Ties are split evenly: a reply whose nearest neighbours (all at the least
distance) include j of its own message among n counts j / n, the expected
score of a random tie-break. Chance is 1 / M.

How firmly each window settles on its character (`margin`): per reply
window, (c1 - c2) / (c1 + c2) with c1, c2 the spike counts of the winning
group and the runner-up (0: a tie or a silent window, 1: only the winner
fired), averaged over all windows of all replies.

Nothing is trained and nothing on the host remembers the messages: the
figure says how much a reply depends on its message rather than on the
brain's moment.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from jbrain import plan as plans
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import Codec

MESSAGES = (
    "hello", "cat", "dog", "man", "woman", "1", "2", "3", "why?", "red",
    "green", "blue", "sun", "moon", "tree", "how are you", "good night", "yes", "no", "what is this",
)  # fmt: skip


def nearest_neighbour_accuracy(distance: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy from a (n, n) distance matrix and (n,)
    labels, ties split evenly (module docstring)."""
    d = np.array(distance, np.float64)
    n = d.shape[0]
    if n < 2:
        raise ValueError("nearest-neighbour classification needs at least 2 replies")
    np.fill_diagonal(d, np.inf)
    nearest = np.isclose(d, d.min(axis=1, keepdims=True), rtol=0.0, atol=1e-12)
    same = labels[:, None] == labels[None, :]
    return float(np.mean((nearest & same).sum(axis=1) / nearest.sum(axis=1)))


def hamming(texts: list[str]) -> np.ndarray:
    """(n, n) number of differing characters between equal-length replies."""
    a = np.array([list(t) for t in texts])
    return (a[:, None, :] != a[None, :, :]).sum(axis=2).astype(np.float64)


def window_margin(counts: np.ndarray) -> float:
    """Mean (c1 - c2) / (c1 + c2) over windows of (..., groups) counts
    (module docstring); a silent window counts 0."""
    top = np.sort(np.asarray(counts, np.float64).reshape(-1, counts.shape[-1]), axis=1)[:, -2:]
    total = top.sum(axis=1)
    return float(np.mean(np.divide(top[:, 1] - top[:, 0], total, out=np.zeros_like(total), where=total > 0)))


def cosine_distance(counts: np.ndarray) -> np.ndarray:
    """(n, ...) counts -> (n, n) 1 - cosine similarity of the flattened rows
    (an all-zero row is at distance 1 from everything)."""
    x = np.asarray(counts, np.float64).reshape(counts.shape[0], -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return 1.0 - x @ x.T


def evaluate(
    config: BrainConfig,
    *,
    seed: int = 0,
    messages: tuple[str, ...] = MESSAGES,
    sends: int = 10,
    warmup: int = 2000,
    chunk: int | None = None,
    max_chunks: int = 20,
    reply_steps: int = 200,
    reply_chars: int = 8,
    plan_options: dict[str, Any] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """The whole evaluation (module docstring) on a newborn brain of
    `config`; returns the JSON record (accuracy, counts_accuracy, chance,
    the replies per message and the settings)."""
    if len(messages) < 2 or sends < 2:
        raise ValueError("consistency needs at least 2 messages and --sends >= 2")
    chunk = reply_steps if chunk is None else chunk
    if chunk < 1 or max_chunks < 1:
        raise ValueError("the gap's bursts and their count must be >= 1")
    circuit = config.circuit()
    session = Session.new(config, seed=seed, plan=plans.resolve(circuit, **(plan_options or {})))
    codec = Codec.for_circuit(circuit, reply_steps=reply_steps, reply_chars=reply_chars)
    rng = np.random.Generator(np.random.PCG64(seed))
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    for _ in range(max(0, warmup) // chunk):
        session.run(chunk)
    order = rng.permutation(np.repeat(np.arange(len(messages)), sends))
    texts: list[str] = []
    counts = np.zeros((order.size, reply_chars, codec.output_channels), np.int64)
    for i, m in enumerate(order):
        for _ in range(int(rng.integers(1, max_chunks + 1))):
            session.run(chunk)
        out = session.run(reply_steps, codec.encode(messages[m]))["out_counts"]
        counts[i] = codec.window_counts(out)
        texts.append(codec.decode(out))
        if (i + 1) % max(1, order.size // 10) == 0:
            say(f"sent {i + 1}/{order.size} messages ({time.perf_counter() - t0:.0f} s)")
    return {
        "task": "consistency",
        "preset": circuit.name,
        "device": str(jax.devices()[0].device_kind),
        "n_neurons": circuit.n,
        "messages": list(messages),
        "sends": sends,
        "accuracy": nearest_neighbour_accuracy(hamming(texts), order),
        "counts_accuracy": nearest_neighbour_accuracy(cosine_distance(counts), order),
        "chance": 1.0 / len(messages),
        "margin": window_margin(counts),
        "distinct_replies": len(set(texts)),
        "replies": {
            msg: [t for t, m in zip(texts, order, strict=True) if m == j] for j, msg in enumerate(messages)
        },
        "seed": seed,
        "warmup": warmup,
        "gap_steps": [chunk, chunk * max_chunks],
        "reply_steps": reply_steps,
        "reply_chars": reply_chars,
        "seconds": time.perf_counter() - t0,
    }
