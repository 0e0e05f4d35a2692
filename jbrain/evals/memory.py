"""Working memory (`jbrain eval memory`): items held in short-term
synaptic facilitation (config._working_memory) and replayed by /recall.

A brain with a working memory (`--working_memory`, a teachable cortex) lives
on with its noise and homeostasis throughout; between trials it runs
`ITI` steps without input (2.7 tau_F at the defaults: the previous trial's
item, refreshed by its recall, has faded to ~1/14 of its facilitation).

Trial: the item is sent as an ordinary message (one reply burst: in its
input phase each character loads its slot, text.py), then the brain runs
`delay` steps of free-running noisy activity (bursts of 100 steps without
input), then one /recall burst (`learn.recall`); the replayed text is
compared with the item, slot by slot.

Items: single letters (`ITEMS`, 8 of them). An item occupies slot 0 and
is right when the recall's first character equals it. Chance: 1/26 (a
guessed letter; a slot that does not reactivate reads as a space, which
is never an item).

Rows (fractions of items right):
  single        each of the 8 items at each delay in DELAYS (0: the recall
                burst right after the message's reply burst).
  interference  the same, with other input in between: during the delay
                the brain hears a random 4-letter text in every other
                100-step burst (the text and relay channels, as a message
                has them, but no load gate: heard, not to be held).
  multi         4 items presented in sequence (one 4-letter message: item
                i in the i-th time slot of the input phase, so in slot i),
                all held at once for 1,000 steps; per item: the fraction of
                the 4 x `multi_trials` items replayed in their slot.
  ablated       single items at 1,000 steps in the same brain with
                facilitation switched off (--wm_facilitation=false: u held
                at U; same seed, wiring and schedule).
Anchors: Mi, Katkov & Tsodyks 2017 (~4 items), Rolls et al. 2013 (9
items at once), e-prop store-recall (95% at a 1,200 ms delay).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jbrain import learn
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import Codec

ITEMS = "kbqwfmzs"  # the 8 single items
DELAYS = (0, 100, 500, 1000, 2000)  # steps between the message's reply burst and the recall
MULTI_DELAY = 1000
ABLATED_DELAY = 1000
ITI = 4000  # steps the brain lives on between trials
BURST = 100  # steps of each free-running burst
LETTERS = "abcdefghijklmnopqrstuvwxyz"
CHANCE = 1.0 / len(LETTERS)


def _live(session: Session, steps: int, codec: Codec, rng: np.random.Generator | None = None) -> None:
    """`steps` steps (a multiple of BURST) of free-running activity; with
    `rng`, every other burst hears a random 4-letter text without the load
    gate (the interference row)."""
    for b in range(steps // BURST):
        if rng is not None and b % 2 == 0:
            text = "".join(rng.choice(list(LETTERS), 4))
            stims = codec.encode(text)[:BURST].copy()
            stims[:, codec.stim_channels - 2 * codec.wm_positions :] = 0.0  # heard, not loaded
            stims[:, codec.input_channels + codec.relay_channels :] = 0.0  # no clock either
            session.run(BURST, stims)
        else:
            session.run(BURST)


def trial(
    session: Session, codec: Codec, item: str, delay: int, rng: np.random.Generator | None = None
) -> str:
    """One trial (module docstring): ITI, the item as a message, `delay`
    steps, /recall. Returns the replayed text."""
    _live(session, ITI, codec)
    session.run(codec.reply_steps, codec.encode(item))
    _live(session, delay, codec, rng)
    return learn.recall(session, codec=codec)


def evaluate(
    config: BrainConfig,
    *,
    seed: int = 0,
    warmup: int = 2000,
    multi_trials: int = 8,
    plan_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The four rows (module docstring) on a newborn brain of `config`
    (working memory on, its facilitation as configured for the main rows,
    off for `ablated`). Returns the JSON record."""
    if not config.working_memory:
        raise ValueError("jbrain eval memory needs --working_memory (e.g. --flagfile=.../teach_small.flags)")
    if multi_trials < 1:
        raise ValueError(f"--multi_trials={multi_trials} must be >= 1")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    plan_options = plan_options or {}

    def brain(cfg: BrainConfig) -> tuple[Session, Codec]:
        from jbrain import plan as plans

        s = Session.new(cfg, seed=seed, plan=plans.resolve(cfg.circuit(), **plan_options))
        c = Codec.for_circuit(s.circuit)
        if c.wm_positions < 4 or c.reply_chars < 4:
            raise ValueError(
                "jbrain eval memory needs --wm_positions >= 4 and --reply_chars >= 4 (4 items at once)"
            )
        _live(s, warmup - warmup % BURST, c)
        return s, c

    session, codec = brain(config.replace(wm_facilitation=True))
    single, interference, replies = {}, {}, []
    rng = np.random.default_rng(seed)
    for delay in DELAYS:
        for row, noise in ((single, None), (interference, rng)):
            right = 0
            for item in ITEMS:
                got = trial(session, codec, item, delay, noise)
                right += got[0] == item
                replies.append({"row": "single" if noise is None else "interference", "delay": delay,
                                "item": item, "recall": got})  # fmt: skip
            row[str(delay)] = right / len(ITEMS)
        say(f"  delay {delay}: single {single[str(delay)]:.3f}, interference {interference[str(delay)]:.3f}")
    right = 0
    for _ in range(multi_trials):
        items = "".join(rng.choice(list(LETTERS), 4, replace=False))
        got = trial(session, codec, items, MULTI_DELAY)
        right += sum(a == b for a, b in zip(got[:4], items, strict=True))
        replies.append({"row": "multi", "delay": MULTI_DELAY, "item": items, "recall": got})
    multi = right / (4 * multi_trials)
    say(f"  4 items at once, {MULTI_DELAY} steps: {multi:.3f}")
    session.close(save=False)
    ablated_session, codec = brain(config.replace(wm_facilitation=False))
    right = 0
    for item in ITEMS:
        got = trial(ablated_session, codec, item, ABLATED_DELAY)
        right += got[0] == item
        replies.append({"row": "ablated", "delay": ABLATED_DELAY, "item": item, "recall": got})
    ablated = right / len(ITEMS)
    say(f"  ablated (facilitation off), {ABLATED_DELAY} steps: {ablated:.3f}")
    ablated_session.close(save=False)
    return {
        "task": "memory",
        "seed": seed,
        "preset": config.preset,
        "n_neurons": config.circuit().n,
        "wm_neurons": config.wm_positions * 64 * config.wm_group,
        "single": single,
        "interference": interference,
        "multi": multi,
        "ablated": ablated,
        "chance": CHANCE,
        "items": ITEMS,
        "multi_trials": multi_trials,
        "iti": ITI,
        "targets": {"single_1000": 0.9, "multi_1000": 0.8},
        "anchors": {
            "mi_katkov_tsodyks_2017": "~4 items held by short-term facilitation",
            "rolls_2013": "9 items at once (integrate-and-fire, facilitation)",
            "eprop_store_recall": "95% at a 1,200 ms delay",
        },
        "replies": replies,
        "seconds": time.perf_counter() - t0,
    }
