"""Learning from /good and /bad alone (`jbrain eval reward`): a four-armed
contextual bandit.

Four cues (CUES), four possible replies (REPLIES); each cue has its own
rewarded reply, cue i -> reply i. A trial sends one cue as an ordinary
message (one reply burst, `text.reply`'s stimulus) in which the four
replies are offered: through the motor layer's input port (the teacher's
in a lesson) their first characters' motor groups get a drive of `offer`
x --teacher_gain per step over the reply window, the same for every cue
and trial (the menu, as a bandit's levers are in view: it says what may be
answered, never which), too weak to fire a group alone. The brain's choice
is its reply: the group (jbrain/config.py, `_teachable`: the motor layer
O, a group per character) that fired most in the first reply window,
among all 64, if it is one of the four replies' first characters; a tie,
silence or any other character is no choice, and wrong. Then the only
teacher speaks: /good (`learn.reward(session, 1)`) after the rewarded
reply, /bad (-1) after any other, credited to the reply's held eligibility
on the reward readout M -> O (reward-modulated STDP inside the feedback
burst, learn.py). Nothing else is taught: the choice comes from the
brain's spiking (the motor groups' competition, `--motor_k`,
`--motor_self`), its exploration from the motor layer's own noise
(`--reward_noise`), and what it learns lives in the reward readout's
weights.

Cues come in shuffled blocks of four (each cue once per block). After
`trials` trials the rewarded replies are swapped (reversal: cue 0 <-> reply
1, 1 <-> 0, 2 <-> 3, 3 <-> 2) for `reversal` more trials. The brain lives
through it all: every feedback is a burst of `learn.feedback_steps` steps.

Keys: last50_accuracy (correct choices over the last 50 trials before the
reversal), reversal_accuracy (over the last 50 trials after it), curve
(accuracy per block of `CURVE_BLOCK` trials, {"trial": the block's last
trial, "accuracy"}, reversal included, trial numbers running on),
untrained_accuracy (the newborn brain, `test_trials` trials without
feedback), trained_accuracy (the same test after the first phase),
ablated_accuracy (the same test with the reward readout's weights put back
to their newborn values, then restored), chance (0.25), mood (the brain's
mood, `RewardState.mood`, at the end of each phase), choices (per trial:
cue, choice or -1, correct), offer. A test trial is a message and a quiet
burst of the same length, no feedback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jbrain import brain, learn
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import ALPHABET, CLOCK_LEAD, Codec

CUES = ("cat", "dog", "sun", "key")  # no letter shared: distinct memory codes
REPLIES = ("yes", "no", "up", "hi")  # distinct first characters: distinct motor groups
REVERSED = (1, 0, 3, 2)  # cue i's rewarded reply after the reversal
CURVE_BLOCK = 25
LAST = 50
# Steps of a trial's reply burst: a 20-step input phase and a 20-step reply
# window, about as long as a motor group's ignition lasts (its depressing
# self-excitation, --motor_self_tau_d), so the window holds one decision.
REPLY_STEPS = 40


def choice(codec: Codec, out_counts: np.ndarray) -> int:
    """The reply chosen in a reply burst's `out_counts` (T, 64): the index
    into REPLIES whose first character's group fired most in window 0,
    among all groups (the brain's reply, as `Codec.decode` reads it), or
    -1 when the most is shared (silence included) or another character's."""
    first = codec.window_counts(out_counts)[0]
    best = np.flatnonzero(first == first.max())
    heads = [ALPHABET.index(r[0]) for r in REPLIES]
    if best.size != 1 or first.max() == 0 or int(best[0]) not in heads:
        return -1
    return heads.index(int(best[0]))


def offered(codec: Codec, text: str, offer: float) -> np.ndarray:
    """The stimulus of a trial: `codec.encode(text)` with `offer` on the
    teacher channels of the four replies' first characters from the reply
    window's clock on (module docstring)."""
    stims = codec.encode(text)
    if offer:
        if not codec.teacher:
            raise ValueError("the offer needs the motor layer's input port: a --teach brain")
        first = codec.input_channels + codec.relay_channels + codec.clock_channels
        start = codec.window_edges()[0] - CLOCK_LEAD
        for r in REPLIES:
            stims[start:, first + ALPHABET.index(r[0])] = offer
    return stims


def evaluate(
    config: BrainConfig,
    *,
    trials: int = 300,
    reversal: int = 300,
    test_trials: int = 40,
    reply_steps: int = REPLY_STEPS,
    reply_chars: int = 1,
    offer: float = 0.5,
    seed: int = 0,
    warmup: int = 2000,
    plan_options: dict | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """The record (module docstring). `config` must be rewardable (--teach --reward)."""
    if trials < LAST or reversal < 0 or (reversal and reversal < LAST) or test_trials < 4:
        raise ValueError(
            f"--trials={trials} must be >= {LAST}, --reversal={reversal} 0 or >= {LAST} (accuracy is "
            f"read over the last {LAST} trials of each phase) and --test_reps >= 1 (test trials of each cue)"
        )
    if not config.reward:
        raise ValueError(
            "jbrain eval reward needs a rewardable brain: pass "
            "--flagfile=experiments/configs/choice_small.flags (or --teach --reward)"
        )
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    session = Session.new(config, seed=seed, plan=_plan(config, plan_options))
    codec = Codec.for_circuit(session.circuit, reply_steps=reply_steps, reply_chars=reply_chars)
    quiet = np.zeros((reply_steps, codec.stim_channels), np.float32)
    names = brain.reward_projections(session.circuit)
    if warmup:
        session.run(warmup, None)

    def cues(count: int) -> list[int]:
        order: list[int] = []
        while len(order) < count:
            order += [int(i) for i in rng.permutation(len(CUES))]
        return order[:count]

    def test(rewarded: tuple[int, ...]) -> float:
        """Accuracy over `test_trials` trials without feedback."""
        hits = []
        for i in cues(test_trials):
            said = choice(codec, session.run(reply_steps, offered(codec, CUES[i], offer))["out_counts"])
            hits.append(said == rewarded[i])
            session.run(reply_steps, quiet)
        return float(np.mean(hits))

    def train(count: int, rewarded: tuple[int, ...], log: list[dict]) -> None:
        for i in cues(count):
            said = choice(codec, session.run(reply_steps, offered(codec, CUES[i], offer))["out_counts"])
            session.hold_reply()
            correct = said == rewarded[i]
            learn.reward(session, 1.0 if correct else -1.0)
            log.append({"cue": i, "choice": said, "correct": bool(correct)})
            if len(log) % CURVE_BLOCK == 0:
                recent = np.mean([t["correct"] for t in log[-CURVE_BLOCK:]])
                progress(
                    f"  trial {len(log)}: {recent:.2f} correct over the last {CURVE_BLOCK}, mood "
                    f"{session.mood:+.3f} ({time.perf_counter() - t0:.0f} s)"
                )

    identity = tuple(range(len(CUES)))
    untrained = test(identity)
    progress(f"untrained: {untrained:.3f} correct without feedback (chance {1 / len(REPLIES):.2f})")
    newborn = session.copy_weights(names)
    log: list[dict] = []
    train(trials, identity, log)
    moods = [session.mood]
    trained = test(identity)
    learned = session.copy_weights(names)
    session.set_weights(newborn)
    ablated = test(identity)
    session.set_weights(learned)
    progress(f"trained: {trained:.3f} without feedback; ablated (reward readout put back): {ablated:.3f}")
    if reversal:
        train(reversal, REVERSED, log)
        moods.append(session.mood)
    correct = [t["correct"] for t in log]
    curve = [
        {"trial": b + CURVE_BLOCK, "accuracy": float(np.mean(correct[b : b + CURVE_BLOCK]))}
        for b in range(0, len(correct) - CURVE_BLOCK + 1, CURVE_BLOCK)
    ]
    return {
        "task": "reward",
        "preset": config.preset,
        "n_neurons": session.circuit.n,
        "cues": list(CUES),
        "replies": list(REPLIES),
        "rewarded": {c: REPLIES[i] for c, i in zip(CUES, identity, strict=True)},
        "reversed": {c: REPLIES[i] for c, i in zip(CUES, REVERSED, strict=True)},
        "trials": trials,
        "reversal": reversal,
        "last50_accuracy": float(np.mean(correct[trials - LAST : trials])),
        "reversal_accuracy": float(np.mean(correct[-LAST:])) if reversal else None,
        "reversal_first50_accuracy": float(np.mean(correct[trials : trials + LAST])) if reversal else None,
        "untrained_accuracy": untrained,
        "trained_accuracy": trained,
        "ablated_accuracy": ablated,
        "test_trials": test_trials,
        "chance": 1 / len(REPLIES),
        "targets": {"last50_accuracy": 0.9, "reversal_accuracy": 0.8},
        "mood": moods,
        "curve": curve,
        "choices": log,
        "reply_chars": reply_chars,
        "reply_steps": reply_steps,
        "offer": offer,
        "feedback_steps": learn.feedback_steps(session.circuit),
        "seed": seed,
        "steps": session.step,
        "seconds": time.perf_counter() - t0,
    }


def _plan(config: BrainConfig, plan_options: dict | None):
    from jbrain import plan as plans

    return plans.resolve(config.circuit(), **(plan_options or {}))
