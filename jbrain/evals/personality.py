"""A persistent personality (`jbrain eval personality`): brains with
different histories answer a fixed probe set differently, and a brain's
answers survive save and restore.

Two brains are born of one seed (the same wiring and newborn state) and
given different histories: brain A is taught the pairs of HISTORY_A and,
in `reward_trials` trials of the reward task (jbrain/evals/reward.py), is
rewarded for cue i -> reply i; brain B is taught HISTORY_B and rewarded
for the reversed mapping. Everything they learned lives in their state
(the taught and reward readouts' weights, the mood, the sheet's synapses).

A probing sends the 20 PROBES as ordinary messages, in order, each after
0-1 quiet reply-length bursts (drawn per probing), so the brain's own
noise (the motor layer's exploration, --reward_noise, and the sheet's)
makes repeated probings differ. Its profile (`profile`): for each probe,
the histogram of the reply's characters over the 64-character alphabet
(R characters, divided by R): a (20 * 64,) vector. Only what the brain
says is classified: the mood (which /stats shows, and which differs
between the two histories) is reported beside it, not used, or it alone
would tell them apart. Probing does not teach or reward.

Keys: accuracy (leave-one-round-out classification of each of the 2 x
`probings` profiles: the brain whose probings of the other rounds are
nearer on average, Euclidean in units of each feature's within-brain
spread (`classify`); a tie is wrong; chance 0.5), control_accuracy (the
same with both brains given the SAME history, A's, probed with their own
gaps: history, not the probing, must be what tells them apart),
restored_equal (brain A saved, probed, restored from the checkpoint and
probed with the same gaps: the two profiles are equal, element for
element, and so are the moods), moods (A's and B's), within and between (mean distance of a
probing's profile to its own brain's mean and between the two means).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jbrain import learn
from jbrain.config import BrainConfig
from jbrain.evals import reward
from jbrain.session import Session
from jbrain.text import ALPHABET, Codec

PROBES = (
    "hello", "how are you", "cat", "dog", "sun", "key", "what is your name", "good morning",
    "tell me a story", "yes", "no", "why", "red", "blue", "one two three", "abc", "the moon",
    "are you happy", "bye", "?",
)  # fmt: skip
HISTORY_A = (("hello", "hi"), ("bye", "ciao"), ("how are you", "fine"))
HISTORY_B = (("hello", "yo"), ("bye", "later"), ("how are you", "meh"))
# The least spread `classify` divides a feature by: a twentieth of a
# character's share of an 8-character reply's histogram (1/8).
SD_FLOOR = 0.125 / 20


def profile(session: Session, codec: Codec, gaps: list[int]) -> np.ndarray:
    """One probing (module docstring): (len(PROBES) * 64,) f32, the
    per-probe character histograms of the replies (each sums to 1)."""
    quiet = np.zeros((codec.reply_steps, codec.stim_channels), np.float32)
    rows = np.zeros((len(PROBES), len(ALPHABET)), np.float32)
    for p, (text, gap) in enumerate(zip(PROBES, gaps, strict=True)):
        for _ in range(gap):
            session.run(codec.reply_steps, quiet)
        said = learn.answer(session, text, codec=codec)
        for ch in said:
            rows[p, ALPHABET.index(ch)] += 1.0 / len(said)
    return rows.reshape(-1)


def live_history(
    session: Session, codec: Codec, pairs, rewarded: tuple[int, ...], presentations: int, trials: int,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """Teach `pairs` `presentations` times each (shuffled rounds), then
    `trials` reward trials with cue i's rewarded reply REPLIES[rewarded[i]]."""
    for _ in range(presentations):
        for i in rng.permutation(len(pairs)):
            learn.teach(session, *pairs[i], codec=codec)
    task = Codec.for_circuit(session.circuit, reply_steps=codec.reply_steps, reply_chars=1)
    for i in [int(x) for _ in range(-(-trials // 4)) for x in rng.permutation(4)][:trials]:
        said = reward.choice(task, session.run(task.reply_steps, task.encode(reward.CUES[i]))["out_counts"])
        session.hold_reply()
        learn.reward(session, 1.0 if said == rewarded[i] else -1.0)


def classify(
    profiles: list[np.ndarray], labels: list[int], rounds: list[int] | None = None, sd_floor: float = SD_FLOOR
) -> float:
    """Leave-one-round-out classification (module docstring) by the mean
    squared distance to each brain's probings of the other rounds, in units
    of each feature's spread within a brain. Round r holds both brains'
    r-th probing (`rounds`; default: each profile its own round); all of it
    is left out with k, because two brains probed at the same point of
    their lives are alike for that alone (the same number of replies and
    quiet bursts behind them; twins of one history would be classified by
    it, always wrongly). Feature j is divided by s_j = max(sd_floor, pooled
    within-brain sd of j over the kept probings), so a probe whose reply a
    brain gives every time (a taught pair) weighs more than one whose reply
    its noise redraws. k goes to the brain c with the smaller
        D_c = mean over c's kept probings i of sum_j ((x_kj - x_ij) / s_j)^2,
    whose noise part (twice the spread) is the same for both brains however
    many probings each holds (the distance to their mean would not be: the
    brain with fewer probings kept has the noisier mean). A tie is wrong."""
    x, y = np.asarray(profiles, np.float64), np.asarray(labels)
    r = np.arange(len(x)) if rounds is None else np.asarray(rounds)
    hits = []
    for k in range(len(x)):
        keep = r != r[k]
        groups = [x[keep & (y == c)] for c in (0, 1)]
        resid = np.concatenate([g - g.mean(axis=0) for g in groups])
        sd = np.maximum(sd_floor, np.sqrt((resid**2).sum(axis=0) / max(1, len(resid) - 2)))
        d = [float((((x[k] - g) / sd) ** 2).sum(axis=1).mean()) for g in groups]
        hits.append(d[y[k]] < d[1 - y[k]])
    return float(np.mean(hits))


def evaluate(
    config: BrainConfig,
    *,
    probings: int = 8,
    presentations: int = 3,
    reward_trials: int = 40,
    reply_steps: int = 200,
    reply_chars: int = 8,
    seed: int = 0,
    warmup: int = 2000,
    plan_options: dict | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """The record (module docstring). `config` must be rewardable (--teach --reward)."""
    if probings < 2:
        raise ValueError(f"--probings={probings} must be >= 2 (classification leaves one probing out)")
    if not config.reward:
        raise ValueError(
            "jbrain eval personality needs a rewardable brain: pass "
            "--flagfile=experiments/configs/reward_small.flags (or --teach --reward)"
        )
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    identity = tuple(range(4))

    def brain_with(pairs, rewarded, history_seed: int, workdir: str | None = None) -> tuple[Session, Codec]:
        if workdir is None:
            s = Session.new(config, seed=seed, plan=reward._plan(config, plan_options))
        else:
            s = Session.open(config, seed=seed, workdir=workdir, fresh=True, plan_options=plan_options)
        codec = Codec.for_circuit(s.circuit, reply_steps=reply_steps, reply_chars=reply_chars)
        if warmup:
            s.run(warmup, None)
        live_history(
            s, codec, pairs, rewarded, presentations, reward_trials, np.random.default_rng(history_seed)
        )
        return s, codec

    def gaps() -> list[int]:
        return [int(g) for g in rng.integers(0, 2, len(PROBES))]

    def probe_pair(a: Session, b: Session, codec: Codec) -> tuple[list[np.ndarray], list[int], list[int]]:
        """(profiles, labels, rounds): round n probes A, then B."""
        profiles, labels, rounds = [], [], []
        for n in range(probings):
            for label, s in ((0, a), (1, b)):
                profiles.append(profile(s, codec, gaps()))
                labels.append(label)
                rounds.append(n)
            progress(f"  probing {n + 1} of {probings}")
        return profiles, labels, rounds

    progress(f"two brains of seed {seed}: A taught {len(HISTORY_A)} pairs, B {len(HISTORY_B)} other ones")
    b, codec = brain_with(HISTORY_B, reward.REVERSED, seed + 2)
    # save and restore: brain A's profile before == after
    with tempfile.TemporaryDirectory() as workdir:
        a, _ = brain_with(HISTORY_A, identity, seed + 1, workdir)
        a.save(wait=True)
        same_gaps = gaps()
        before, mood_before = profile(a, codec, same_gaps), a.mood
        a.close(save=False)
        a = Session.open(config, seed=seed, workdir=workdir, plan_options=plan_options)
        after = profile(a, codec, same_gaps)
        restored_equal = bool(np.array_equal(before, after)) and a.mood == mood_before
        progress(f"profile after save and restore equals the profile before: {restored_equal}")
        moods = [a.mood, b.mood]
        profiles, labels, rounds = probe_pair(a, b, codec)
        a.close(save=False)
    accuracy = classify(profiles, labels, rounds)
    progress(f"different histories: nearest-profile accuracy {accuracy:.3f}")
    x, y = np.asarray(profiles), np.asarray(labels)
    means = [x[y == c].mean(axis=0) for c in (0, 1)]
    within = float(np.mean([np.linalg.norm(p - means[c]) for p, c in zip(x, y, strict=True)]))
    between = float(np.linalg.norm(means[0] - means[1]))
    # control: the same history twice (A's), told apart only by their probings
    c1, _ = brain_with(HISTORY_A, identity, seed + 1)
    c2, _ = brain_with(HISTORY_A, identity, seed + 1)
    control = classify(*probe_pair(c1, c2, codec))
    progress(f"control, the same history twice: {control:.3f}")
    return {
        "task": "personality",
        "preset": config.preset,
        "n_neurons": a.circuit.n,
        "probes": len(PROBES),
        "probe_messages": list(PROBES),
        "probings": probings,
        "histories": {"A": [list(p) for p in HISTORY_A], "B": [list(p) for p in HISTORY_B]},
        "presentations": presentations,
        "reward_trials": reward_trials,
        "accuracy": accuracy,
        "control_accuracy": control,
        "chance": 0.5,
        "restored_equal": restored_equal,
        "moods": moods,
        "within": within,
        "between": between,
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
