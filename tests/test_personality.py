"""jbrain eval personality: a brain's profile over a fixed probe set, told
apart from another history's, and equal after save and restore."""

from __future__ import annotations

import numpy as np
from conftest import preset_config

from jbrain.evals import personality


def test_profiles_classify_by_mean_distance_to_each_brains_other_probings():
    a, b = np.zeros(3), np.ones(3)
    assert personality.classify([a, a + 0.1, b, b - 0.1], [0, 0, 1, 1]) == 1.0
    # two identical brains: every left-out profile is as near the other brain's (ties are wrong)
    assert personality.classify([a, a, a, a], [0, 1, 0, 1]) == 0.0
    # two brains alike but for noise, 4 probings each: near chance (0.43 over these 40 draws),
    # not the bias of the distance to the others' mean (0.16: the left-out probing's own
    # brain, one probing short, has the noisier mean, which lies farther from it)
    draws = [np.random.default_rng(s).uniform(0, 1, (8, 1280)) for s in range(40)]
    noisy = [personality.classify(list(x), [0, 1] * 4) for x in draws]
    assert np.mean(noisy) >= 0.35
    # one probe answered the same every time (a taught pair: 'hi' or 'yo') among
    # 40 redrawn by noise: weighed by its spread it decides; in raw distance the noise would
    rng = np.random.default_rng(0)
    labels = [0, 1] * 8
    profiles = [np.concatenate([[0.125 * c], rng.uniform(0, 1, 40)]) for c in labels]
    assert personality.classify(profiles, labels) == 1.0
    assert personality.classify(profiles, labels, sd_floor=1e9) < 0.8  # every feature alike: Euclidean


def test_a_small_personality_run_restores_its_profile_exactly():
    config = preset_config(
        "reward_small", sheet=(25, 40), n_neurons=1000, radius=4, memory_neurons=256, teach_fan_in=128,
        plasticity=False, inh_plasticity=False,
    )  # fmt: skip
    record = personality.evaluate(
        config, probings=2, presentations=1, reward_trials=2, warmup=0, reply_steps=20, seed=0
    )
    assert record["restored_equal"] is True
    assert record["probes"] == len(personality.PROBES) == 20 and record["chance"] == 0.5
    assert 0.0 <= record["accuracy"] <= 1.0 and 0.0 <= record["control_accuracy"] <= 1.0
    # both brains were rewarded twice: their moods moved away from the newborn's 0
    assert all(m != 0.0 for m in record["moods"]) and record["between"] > 0.0


def test_a_round_is_left_out_whole_so_twins_of_one_history_are_not_told_apart_by_their_age():
    # two identical brains whose replies drift as they age: each round's two probings
    # are alike; leaving out one profile at a time puts it beside its twin (always
    # wrong), leaving out its round compares it with other ages only (chance)
    rng = np.random.default_rng(0)
    ages = [rng.uniform(0, 1, 64) for _ in range(6)]
    profiles = [age + rng.normal(0, 0.01, 64) for age in ages for _ in (0, 1)]
    labels, rounds = [0, 1] * 6, [n for n in range(6) for _ in (0, 1)]
    assert personality.classify(profiles, labels) == 0.0
    assert 0.25 <= personality.classify(profiles, labels, rounds) <= 0.75
