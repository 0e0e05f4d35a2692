"""Taught associations (`jbrain eval associations`).

A living teachable brain (`--teach`, plasticity on, its noise on) is taught
pairs CUE => REPLY with `jbrain.learn.teach`: every pair once per round in
a shuffled order, P rounds, the brain running on without input for 1-3
reply-length bursts before every lesson and every test (as a `--live`
chat brain does while its user types). A test sends the cue as an ordinary
message (one reply burst, `text.reply`) and compares the reply with the
taught one padded with spaces to R characters.

Keys (fractions over the pairs): exact (replies equal to the taught
reply), per_char (characters equal), untrained_exact (before teaching),
curve (exact and per_char after each round), corrupted_exact (25% of each
cue's characters, at least one, replaced at random), ablated_exact (the
delta-rule projections' weights put back to their values before teaching,
then restored), restored_exact and restored_same (after a checkpoint is
saved and restored: the score, and whether every reply equals the one the
brain that never stopped gives), retained_exact (after `retain_steps`
further live steps with plasticity on; `rate_band`: the lowest and highest
firing rate over 1,000-step windows of that run), interference_exact (the
pairs again after `interference_pairs` more pairs are taught P times each).
Chance for one reply is (1/64)^R. `taught` lists each pair's test replies:
said (trained), corrupted_cue and corrupted_said, after_more_said (after
the interference pairs; null without them), and beside each its window
spike counts (said_counts, corrupted_counts, after_more_counts: per reply
window, {character: spikes} of the output groups that fired, `spoken`).

Reference row, apart from the brain's own learning (`readout_exact`,
`readout_per_char`): before any teaching, each cue is sent P times as an
ordinary message (live bursts between, as above); a linear readout of the
reply's window spike counts (R x 64 features, scaled by their mean) ->
each window's character is trained by gradient descent (`jax.grad`,
evals/readout.py) on those sends and tested on one more send of each cue:
what a trained decoder can read from the untaught brain's replies. Nothing
of it reaches the brain or the chat. A second reference,
`corrupted_matcher_exact` (`matcher_exact`): an ideal matcher's score on
the corrupted row's own cues, the ceiling that row's target sits under.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jbrain import learn
from jbrain.config import BrainConfig
from jbrain.evals import consistency, readout
from jbrain.session import Session
from jbrain.text import ALPHABET, Codec, as_said, reply_counts

DEFAULT_PAIRS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pairs.txt")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def read_pairs(path: str, codec: Codec) -> list[tuple[str, str]]:
    """Pairs of a file: one `CUE => REPLY` a line, `#` starts a comment,
    blank lines skipped. ValueError naming the file and line for a bad one."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            why, pair = learn.check_pair(line, codec)
            if why:
                raise ValueError(f"{path}:{number}: {why}")
            pairs.append(pair)
    if not pairs:
        raise ValueError(f"{path} holds no pairs: write one `CUE => REPLY` a line")
    return pairs


def extra_pairs(
    count: int, rng: np.random.Generator, avoid: set[str], reply_chars: int
) -> list[tuple[str, str]]:
    """`count` random pairs of letters (cues of 3-6, replies of 2-R), cues not in `avoid`."""
    out: list[tuple[str, str]] = []
    while len(out) < count:
        cue = "".join(rng.choice(list(LETTERS), rng.integers(3, 7)))
        if cue in avoid:
            continue
        avoid.add(cue)
        out.append((cue, "".join(rng.choice(list(LETTERS), rng.integers(2, reply_chars + 1)))))
    return out


def corrupt(cue: str, rng: np.random.Generator) -> str:
    """`cue` with round(len / 4) (at least one) characters replaced by other letters."""
    chars = list(cue)
    for i in rng.choice(len(chars), max(1, round(len(chars) / 4)), replace=False):
        chars[i] = rng.choice([c for c in LETTERS if c != chars[i].lower()])
    return "".join(chars)


def spoken(window_counts: np.ndarray) -> list[dict[str, int]]:
    """(R, output_channels) window spike counts -> per window, {character:
    spikes} of the groups that fired, loudest first: the evidence a reply
    was decoded from (`Codec.decode`), small enough for the record."""
    out = []
    for row in np.asarray(window_counts):
        fired = np.flatnonzero(row)
        fired = fired[np.argsort(-row[fired], kind="stable")]
        out.append({ALPHABET[c]: int(row[c]) for c in fired})
    return out


def matcher_exact(pairs: list[tuple[str, str]], cues: list[str]) -> float:
    """The reference for the corrupted row: the fraction of `cues` (cues[i]
    a corrupted form of pairs[i]'s cue) that an ideal matcher answers
    right, where the matcher answers a cue with the reply of the taught cue
    it differs from in the fewest positions (characters compared at their
    positions from the start, lower case, the shorter padded; ties credited
    1/ties, as a reader that cannot tell them apart guesses). A host-side
    yardstick of what any reader of the cue could do (EVALS.md, teaching),
    never a brain's answer: the brain's corrupted row is `corrupted_exact`."""

    texts = [t.lower() for t in [*cues, *(c for c, _ in pairs)]]
    width = max(map(len, texts))  # padded alike: the spaces past both texts' ends match
    d = consistency.hamming([t.ljust(width) for t in texts])[: len(cues), len(cues) :]
    nearest = d == d.min(axis=1, keepdims=True)
    replies = np.array([r for _, r in pairs])
    right = replies[None, :] == replies[:, None]  # [i, j]: taught cue j's reply is cue i's
    return float(np.mean((nearest & right).sum(axis=1) / nearest.sum(axis=1)))


def evaluate(
    config: BrainConfig,
    *,
    pairs: list[tuple[str, str]] | None = None,
    presentations: int = 10,
    interference_pairs: int = 20,
    retain_steps: int = 50_000,
    reply_steps: int = 200,
    reply_chars: int = 8,
    seed: int = 0,
    warmup: int = 2000,
    plan_options: dict | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """The record (module docstring). `config` must be teachable (--teach);
    plasticity is switched on, as in chat."""
    if presentations < 1 or interference_pairs < 0 or retain_steps < 0:
        raise ValueError("--presentations must be >= 1, --interference_pairs and --retain_steps >= 0")
    config = config.replace(plasticity=True)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        session = Session.open(config, seed=seed, workdir=workdir, fresh=True, plan_options=plan_options)
        codec = Codec.for_circuit(session.circuit, reply_steps=reply_steps, reply_chars=reply_chars)
        if not codec.teacher:
            raise ValueError(
                "this brain cannot be taught: pass --flagfile=experiments/configs/teach_small.flags "
                "(or --teach)"
            )
        pairs = pairs or read_pairs(DEFAULT_PAIRS, codec)
        quiet = np.zeros((reply_steps, codec.stim_channels), np.float32)

        def live(s: Session, gen: np.random.Generator) -> None:
            for _ in range(int(gen.integers(1, 4))):
                s.run(reply_steps, quiet)

        def test(s: Session, items: list[tuple[str, str]], cues: list[str] | None = None, gen=None) -> dict:
            said, counts, hit = [], [], lambda a, b: [x == y for x, y in zip(a, b, strict=True)]
            for cue, _ in items if cues is None else zip(cues, items, strict=True):
                live(s, gen or rng)
                text, window_counts = reply_counts(s, codec, cue)
                said.append(text)
                counts.append(spoken(window_counts))
            want = [as_said(answer, reply_chars) for _, answer in items]
            return {
                "exact": float(np.mean([a == b for a, b in zip(said, want, strict=True)])),
                "per_char": float(np.mean([hit(a, b) for a, b in zip(said, want, strict=True)])),
                "replies": said,
                "counts": counts,
            }

        def teach_rounds(s: Session, items: list[tuple[str, str]], rounds: int, curve: list | None) -> None:
            for p in range(rounds):
                for i in rng.permutation(len(items)):
                    live(s, rng)
                    learn.teach(s, *items[i], codec=codec)
                if curve is not None:
                    curve.append(
                        {
                            "presentations": p + 1,
                            **{k: v for k, v in test(s, items).items() if k != "replies"},
                        }
                    )
                    progress(f"  after {p + 1} presentation(s) each: exact {curve[-1]['exact']:.3f}")

        if warmup:
            session.run(warmup, None)
        taught_names = [
            q.name for q in session.circuit.projections if q.plasticity and q.plasticity.rule == "delta"
        ]
        before = session.copy_weights(taught_names)
        untrained = test(session, pairs)
        progress(f"untrained: exact {untrained['exact']:.3f}, per character {untrained['per_char']:.3f}")
        reference = trained_readout(session, pairs, presentations, codec, lambda: live(session, rng))
        progress(f"trained readout (jax.grad) of the untaught replies: exact {reference['exact']:.3f}")
        curve: list[dict] = []
        teach_rounds(session, pairs, presentations, curve)
        trained = test(session, pairs)
        corrupted_cues = [corrupt(c, rng) for c, _ in pairs]
        corrupted = test(session, pairs, corrupted_cues)
        learned = session.copy_weights(taught_names)

        session.set_weights(before)
        ablated = test(session, pairs)
        session.set_weights(learned)
        # a checkpoint, restored beside the brain that never stopped: both
        # answer the same tests after the same quiet bursts
        session.save(wait=True)
        restored = Session.open(config, seed=seed, workdir=workdir, plan_options=plan_options)
        gap_seed = int(rng.integers(2**31))
        after_restore = test(restored, pairs, gen=np.random.default_rng(gap_seed))
        kept = test(session, pairs, gen=np.random.default_rng(gap_seed))
        session.close(save=False)
        session = restored
        progress(f"retaining: {retain_steps} live steps")
        rates = []
        for _ in range(retain_steps // reply_steps):
            rates.append(session.run(reply_steps, quiet)["rate"])
        rates = np.concatenate(rates) if rates else np.zeros((0,), np.float32)
        windows = (
            rates[: rates.size // 1000 * 1000].reshape(-1, 1000).mean(axis=1) if rates.size >= 1000 else rates
        )
        retained = test(session, pairs)
        interference = None
        if interference_pairs:
            more = extra_pairs(interference_pairs, rng, {c for c, _ in pairs}, reply_chars)
            teach_rounds(session, more, presentations, None)
            interference = test(session, pairs)
        session.close(save=False)
    return {
        "task": "associations",
        "preset": config.preset,
        "n_neurons": session.circuit.n,
        "pairs": len(pairs),
        "presentations": presentations,
        "exact": trained["exact"],
        "per_char": trained["per_char"],
        "untrained_exact": untrained["exact"],
        "untrained_per_char": untrained["per_char"],
        "readout_exact": reference["exact"],
        "readout_per_char": reference["per_char"],
        "ablated_exact": ablated["exact"],
        "ablated_per_char": ablated["per_char"],
        "corrupted_exact": corrupted["exact"],
        "corrupted_matcher_exact": matcher_exact(pairs, corrupted_cues),
        "restored_exact": after_restore["exact"],
        "restored_same": after_restore["replies"] == kept["replies"],
        "retained_exact": retained["exact"],
        "retain_steps": retain_steps,
        "rate_band": [float(windows.min()), float(windows.max())] if windows.size else None,
        "interference_exact": None if interference is None else interference["exact"],
        "interference_pairs": interference_pairs,
        "curve": curve,
        "chance_exact": (1 / len(ALPHABET)) ** reply_chars,
        # every test reply of each taught pair, so that a row's misses can be read
        "taught": [
            {
                "cue": c,
                "reply": r,
                "said": trained["replies"][i],
                "corrupted_cue": corrupted_cues[i],
                "corrupted_said": corrupted["replies"][i],
                "after_more_said": None if interference is None else interference["replies"][i],
                "said_counts": trained["counts"][i],
                "corrupted_counts": corrupted["counts"][i],
                "after_more_counts": None if interference is None else interference["counts"][i],
            }
            for i, (c, r) in enumerate(pairs)
        ],
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }


def trained_readout(
    session: Session, pairs: list[tuple[str, str]], sends: int, codec: Codec, live: Callable[[], None]
) -> dict[str, float]:
    """The reference row (module docstring): `sends` training replies and one
    test reply per cue from the untaught brain; per window, a softmax
    regression of the reply's (R * 64) window counts -> that window's
    character. Returns exact and per_char over the test replies."""
    rounds = []
    for _ in range(sends + 1):
        counts = []
        for cue, _ in pairs:
            live()
            metrics = session.run(codec.reply_steps, codec.encode(cue))
            counts.append(codec.window_counts(metrics["out_counts"]).reshape(-1))
        rounds.append(np.asarray(counts, np.float32))
    x_train, x_test = np.concatenate(rounds[:-1]), rounds[-1]
    scale = max(float(x_train.mean()), 1e-6)
    want = np.asarray([[ALPHABET.index(c) for c in as_said(a, codec.reply_chars)] for _, a in pairs])
    said = np.stack(
        [
            readout.softmax_regression(
                x_train / scale, np.tile(want[:, r], sends), x_test / scale, len(ALPHABET)
            )
            for r in range(codec.reply_chars)
        ],
        axis=1,
    )
    return {"exact": float((said == want).all(axis=1).mean()), "per_char": float((said == want).mean())}
