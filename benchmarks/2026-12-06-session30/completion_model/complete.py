"""Session 30's NumPy model of the teach circuit's memory and readout, with
and without recurrent completion among a memory block's winners.

Per reply window r: a block of B memory neurons, each sampling F of the
relay's P*C positional features (weights U[0.5, 1.5)); the block's code of a
cue is its k most driven neurons (no time: one top-k). Readout: signed LMS
from the code to the window's character (silence: no character over 0.5).
Completion (g > 0): Hebbian M -> M weights between co-active winners of each
lesson (clipped to [0, rmax]; only a random `density` of the pairs wired);
at recall the top-k is iterated `iters` times on
h = h0 / max(h0) + g * (R a) / k. Scores the 20 default pairs: clean,
corrupted (`associations.corrupt`, beside the ideal matcher), and the first
20 after 20 more. Run from the repo root:

    python benchmarks/2026-12-06-session30/completion_model/complete.py "B=512,k=20,g=1.0"
"""

import sys

import numpy as np

from jbrain.evals.associations import corrupt, extra_pairs, matcher_exact
from jbrain.text import ALPHABET

with open("jbrain/evals/pairs.txt", encoding="utf-8") as f:
    PAIRS = [
        tuple(x.strip() for x in line.split("=>")) for line in f if "=>" in line and not line.startswith("#")
    ]
C, P, R = 64, 8, 8


def feats(cue: str, fade: float) -> np.ndarray:
    """The relay's positional features, the newest character strongest."""
    x = np.zeros(P * C)
    cue = cue.lower()[:P]
    for p, ch in enumerate(cue):
        x[p * C + (ord(ch) % C)] += np.exp(-fade * (len(cue) - 1 - p))
    return x


def run(B=2048, F=64, k=16, g=0.0, iters=3, lessons=10, eta=0.2, fade=0.3, seed=0, rmax=1.0, density=1.0):
    rng = np.random.default_rng(seed)
    W = np.zeros((R, B, P * C))
    for r in range(R):
        for i in range(B):
            W[r, i, rng.choice(P * C, F, replace=False)] = rng.uniform(0.5, 1.5, F)
    rec_w = np.zeros((R, B, B))
    wired = rng.random((R, B, B)) < density if density < 1 else np.ones((R, B, B), bool)
    out_w = np.zeros((R, len(ALPHABET), B))

    def winners(r, x, rec=True):
        h0 = W[r] @ x
        a = np.zeros(B)
        a[np.argsort(-h0, kind="stable")[:k]] = 1
        if rec and g > 0:
            for _ in range(iters):
                h = h0 / max(h0.max(), 1e-9) + g * (rec_w[r] @ a) / k
                a = np.zeros(B)
                a[np.argsort(-h, kind="stable")[:k]] = 1
        return a

    def target(reply, r):
        t = np.zeros(len(ALPHABET))
        if r < len(reply) and reply[r] != " ":
            t[ALPHABET.index(reply[r])] = 1
        return t

    def teach(pairs):
        for _ in range(lessons):
            for i in rng.permutation(len(pairs)):
                cue, reply = pairs[i]
                x = feats(cue, fade)
                for r in range(R):
                    a = winners(r, x, rec=False)  # a lesson writes the cue's own code
                    rec_w[r] = np.clip(rec_w[r] + np.outer(a, a) * (1 - np.eye(B)) * wired[r], 0, rmax)
                    out_w[r] += eta * np.outer(target(reply, r) - out_w[r] @ a, a) / k

    def answer(cue):
        x = feats(cue, fade)
        said = ""
        for r in range(R):
            y = out_w[r] @ winners(r, x)
            said += ALPHABET[int(np.argmax(y))] if y.max() > 0.5 else " "
        return said.rstrip()

    teach(PAIRS)
    clean = np.mean([answer(c) == rep for c, rep in PAIRS])
    cues = [corrupt(c, rng) for c, _ in PAIRS]
    corr = np.mean([answer(x) == rep for x, (_, rep) in zip(cues, PAIRS, strict=True)])
    ideal = matcher_exact(PAIRS, cues)
    teach(extra_pairs(20, rng, {c for c, _ in PAIRS}, 8))
    after = np.mean([answer(c) == rep for c, rep in PAIRS])
    return clean, corr, ideal, after


if __name__ == "__main__":
    args = eval("dict(" + (sys.argv[1] if len(sys.argv) > 1 else "") + ")")
    rows = [run(seed=s, **args) for s in range(3)]
    print(
        args, " | ".join(f"clean {a:.2f} corr {b:.2f} (ideal {c:.2f}) after20 {d:.2f}" for a, b, c, d in rows)
    )
