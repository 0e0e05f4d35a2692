"""Reward-modulated STDP (rule "reward", plasticity.reward_step): the
eligibility of a pre-then-post pair, its decay, weights that move only
while dopamine is nonzero and in the reward's sign, and the feedback burst
that reads the held tag instead of the live trace."""

from __future__ import annotations

import dataclasses
import io
import math

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import preset_config, small

from jbrain import brain, learn
from jbrain import plan as plans
from jbrain.chat import Chat
from jbrain.circuit import STDP, Circuit, Controller, InputPort, Neuron, Population, Projection
from jbrain.session import Session
from jbrain.text import Codec

QUIET = Neuron(noise_sd=0.0, bias=0.0, eta_theta=0.0, v_init=("uniform", 0.0, 0.0), refractory=1)
RULE = STDP(tau_pre=20.0, tau_post=20.0, a_plus=1.0, a_minus=1.5, rule="reward", target=0.01)
ETA = RULE.target


def pair_circuit(rule: STDP = RULE, w: float = 0.1) -> Circuit:
    """A (4) -> B (4) one-to-one, weight w (too weak to fire B), the reward
    rule; ports drive A and B (gain 2: a spike the same step) and deliver
    the reward."""
    a, b = Population("A", 4, neuron=QUIET), Population("B", 4, neuron=QUIET)
    q = Projection("AB", "A", "B", "one_to_one", 1, w_lo=w, w_hi=w, w_max=1.0, plasticity=rule)
    ports = (
        InputPort("a", "A", 4, 1, 0, 2.0),
        InputPort("b", "B", 4, 1, 0, 2.0),
        InputPort("reward", "A", 1, 1, 0, 0.0),
    )
    return Circuit((a, b), (q,), ports, controller=Controller(enabled=False), name="pair")


def run(circuit, state, events, length, *, feedback=False):
    """Run `length` steps with events {step: [(channel, value), ...]}; the
    stimulus channels are a[0:4], b[4:8], reward[8]."""
    stims = np.zeros((length, 9), np.float32)
    for t, hits in events.items():
        for ch, v in hits:
            stims[t, ch] = v
    plan = dataclasses.replace(plans.resolve(circuit, platform="cpu", backend="xla"), feedback=feedback)
    wiring = run.wiring
    state, metrics = brain.burst(circuit, plan, wiring, state, jnp.asarray(stims), length=length)
    return state, metrics


def newborn(circuit):
    wiring, state = brain.init_brain(circuit, seed=0)
    run.wiring = wiring
    return state


def arrays(state):
    ps = state.projections["AB"]
    return np.asarray(ps.weights), np.asarray(ps.elig), float(ps.dopamine), np.asarray(ps.tag)


def test_reward_plan_runs_eagerly_on_the_gather_path_and_refuses_deferred():
    c = pair_circuit()
    plan = plans.resolve(c, platform="cpu", backend="xla", propagation="event")
    assert plan.paths == ("gather",) and plan.stdp == ("reward",)
    with pytest.raises(ValueError) as e:
        plans.resolve(c, platform="cpu", backend="xla", stdp="deferred")
    assert str(e.value) == (
        "--stdp=deferred cannot run projection 'AB': its reward rule keeps an eligibility trace per "
        "synapse and runs eagerly on the gather path; use --stdp=eager or auto"
    )


def test_the_reward_rule_needs_a_reward_port():
    c = pair_circuit()
    with pytest.raises(ValueError) as e:
        dataclasses.replace(c, inputs=c.inputs[:2])
    assert str(e.value) == (
        "projection 'AB': the reward rule needs one 'reward' input port with 1 channel "
        "(the reward delivered each step)"
    )


def test_pre_then_post_makes_eligibility_that_decays_and_moves_weights_only_with_dopamine():
    c = pair_circuit()
    state = newborn(c)
    # pre 0 fires at step 0, post 0 at step 3 (driven); pre 1 after post 1 (LTD)
    state, m = run(c, state, {0: [(0, 1.0)], 3: [(4, 1.0)], 10: [(5, 1.0)], 13: [(1, 1.0)]}, 20)
    w, e, d, tag = arrays(state)
    # step 4 pairs step 3's post spike with the pre trace bumped in step 1 and
    # decayed in steps 2 and 3; c then decays in steps 5..19
    assert d == 0.0 and np.all(w == np.float32(0.1)) and np.all(tag == 0.0)
    assert e[0] > 0 and e[1] < 0 and e[2] == 0 and e[3] == 0
    x_seen = math.exp(-2 / 20)
    assert e[0] == pytest.approx(RULE.a_plus * x_seen * math.exp(-15 / RULE.tau_elig), rel=1e-5)
    assert e[1] == pytest.approx(-RULE.a_minus * x_seen * math.exp(-5 / RULE.tau_elig), rel=1e-5)
    # 500 quiet steps: eligibility decays with tau_elig, weights stay put
    state, _ = run(c, state, {}, 500)
    w2, e2, _, _ = arrays(state)
    assert np.all(w2 == w) and e2[0] == pytest.approx(e[0] * math.exp(-500 / RULE.tau_elig), rel=1e-4)
    # a reward of +1: d jumps and decays; w moves by eta * sum_t d_t e_t, up for
    # the pre-then-post synapse, down for the post-then-pre one
    state, _ = run(c, state, {0: [(8, 1.0)]}, 1000)
    w3, e3, d3, _ = arrays(state)
    expect = sum(
        ETA * math.exp(-t / RULE.tau_dopamine) * e2[0] * math.exp(-(t + 1) / RULE.tau_elig)
        for t in range(1000)
    )
    assert w3[0] - w2[0] == pytest.approx(expect, rel=1e-3) and w3[0] > w2[0]
    assert w3[1] < w2[1] and w3[2] == w2[2] and w3[3] == w2[3]
    assert d3 == pytest.approx(math.exp(-999 / RULE.tau_dopamine), rel=1e-4)
    # a reward of -1 (punishment) on the same eligibility: the opposite sign
    c_state = newborn(c)
    c_state, _ = run(c, c_state, {0: [(0, 1.0)], 3: [(4, 1.0)]}, 10)
    c_state, _ = run(c, c_state, {0: [(8, -1.0)]}, 500)
    wp, _, _, _ = arrays(c_state)
    assert wp[0] < np.float32(0.1) and np.all(wp[1:] == np.float32(0.1))


def test_a_feedback_burst_reads_the_tag_not_the_live_trace():
    c = pair_circuit()
    state = newborn(c)
    state, _ = run(c, state, {0: [(0, 1.0)], 3: [(4, 1.0)]}, 10)  # pair 0
    ps = state.projections["AB"]
    state = state.replace(projections={"AB": ps.replace(tag=jnp.array(ps.elig))})  # held at the reply's end
    state, _ = run(c, state, {0: [(1, 1.0)], 3: [(5, 1.0)]}, 10)  # pair 1 afterwards: live trace only
    w0, e0, _, tag = arrays(state)
    assert tag[0] > 0 and tag[1] == 0 and e0[1] > 0
    state, _ = run(c, state, {0: [(8, 1.0)]}, 100, feedback=True)
    w1, _, _, _ = arrays(state)
    assert w1[0] > w0[0] and w1[1] == w0[1]  # only the tagged synapse is credited


# ---- /good, /bad and learn.reward on a chat brain ----


def rewardable(**kw):
    """A tiny teachable cortex (1,000 sheet neurons) with the reward readout,
    its weights strong enough that the motor layer answers without teaching;
    no other plasticity, so only the reward readout can learn; a 20 ms
    dopamine pulse (choice_small's), so a feedback is a 100-step burst."""
    return preset_config(
        "cortex_small", teach=True, sheet=(25, 40), n_neurons=1000, radius=4, memory_neurons=256,
        teach_fan_in=64, reward=True, reward_w=0.6, reward_w_max=1.0, reward_tau_dopamine=20.0,
        plasticity=False, inh_plasticity=False, **kw,
    )  # fmt: skip


def weights(session):
    return {name: np.asarray(ps.weights) for name, ps in session.state.projections.items()}


def test_good_and_bad_credit_the_last_reply_after_many_live_steps_and_nothing_else():
    session = Session.new(rewardable(), seed=0)
    out = io.StringIO()
    chat = Chat(session, Codec.for_circuit(session.circuit), out=out, err=io.StringIO())
    assert "/good, /bad" in chat.help_text()
    before = weights(session)
    chat.handle("/good")  # no reply yet: one line, nothing runs
    assert (
        out.getvalue()
        == learn.NO_REPLY + "\n"
        == ("no reply to credit: send a message, then /good or /bad (one per reply)\n")
    )
    assert session.step == 0 and all(np.array_equal(before[k], w) for k, w in weights(session).items())
    for r, command in ((1.0, "/good"), (-1.0, "/bad")):
        chat.handle("hello")
        tag = np.asarray(session.state.projections["memory_reward"].tag)
        assert np.count_nonzero(tag > 0) > 100 and np.count_nonzero(tag < 0) > 10
        session.run(1500)  # the user types for 1.5 s of a --live brain: c moves on, the tag does not
        live = np.asarray(session.state.projections["memory_reward"].elig)
        assert not np.array_equal(live, tag)
        np.testing.assert_array_equal(np.asarray(session.state.projections["memory_reward"].tag), tag)
        before = weights(session)
        out.truncate(0), out.seek(0)
        chat.handle(command)
        after = weights(session)
        moved = after["memory_reward"] - before["memory_reward"]
        changed = moved != 0
        word = "rewarded" if r > 0 else "punished"
        assert out.getvalue() == f"{word} the last reply: {np.count_nonzero(changed):,} synapses changed\n"
        # the synapses that paired in the reply move (unless a bound holds them), each
        # in the sign of r * tag; no other synapse moves
        w0, up = before["memory_reward"], r * tag > 0
        free = (tag != 0) & ~(up & (w0 == 1.0)) & ~(~up & (w0 == 0.0))
        assert np.array_equal(changed, free), (np.count_nonzero(changed), np.count_nonzero(free))
        assert np.array_equal(np.sign(moved[changed]), np.sign(r * tag[changed]))
        assert all(np.array_equal(before[k], after[k]) for k in before if k != "memory_reward")
        ps = session.state.projections["memory_reward"]
        assert not np.any(np.asarray(ps.tag)) and float(ps.dopamine) == 0.0
        assert not np.any(np.asarray(ps.elig))  # spent too: the next reply's tag is that reply's alone
        out.truncate(0), out.seek(0)
        chat.handle(command)  # one feedback per reply
        assert out.getvalue() == learn.NO_REPLY + "\n"


def test_reward_refuses_bad_input_and_brains_without_reward_synapses():
    session = Session.new(small(), seed=0)
    with pytest.raises(ValueError) as e:
        learn.reward(session, 1.0)
    assert str(e.value) == (
        "this brain has no reward-modulated synapses: start one with --reward, e.g. "
        "--flagfile=experiments/configs/teach_small.flags --reward --fresh"
    )
    for r in (2.0, "good", float("nan"), True):
        with pytest.raises(ValueError) as e:
            learn.reward(session, r)
        assert str(e.value) == f"reward r={r!r} must be a number in [-1, 1] (1: good, -1: bad)"
    out = io.StringIO()
    Chat(session, Codec.for_circuit(session.circuit), out=out, err=io.StringIO()).handle("/bad")
    assert out.getvalue() == learn.NOT_REWARDABLE + "\n" and session.step == 0
    with pytest.raises(ValueError) as e:
        small(reward=True)
    assert str(e.value) == (
        "--reward needs --teach (its readout M -> O ends on the teachable brain's motor layer): "
        "use --flagfile=experiments/configs/teach_small.flags --reward"
    )


def test_a_checkpoint_without_the_reward_arrays_restores_with_them_at_zero(tmp_path):
    """A brain saved before it had eligibility, tag and dopamine (here: the
    arrays stripped before the save) restores: weights and everything else
    as saved, the three at zero, and one warning that says so."""
    config = rewardable()
    s = Session.open(config, seed=1, workdir=str(tmp_path))
    s.run(30)
    ps = s.state.projections["memory_reward"]
    s.state = s.state.replace(
        projections={**s.state.projections, "memory_reward": ps.replace(elig=None, tag=None, dopamine=None)}
    )
    saved_w = np.asarray(ps.weights)
    where = s.close()
    again = Session.open(config, seed=1, workdir=str(tmp_path))
    assert again.step == 30 and again.warnings == [
        f"checkpoint {where} was written without the reward rule's eligibility, tag and dopamine: they start "
        "at zero (the weights and everything else are restored)"
    ]
    ps = again.state.projections["memory_reward"]
    np.testing.assert_array_equal(ps.weights, saved_w)
    assert ps.elig.shape == ps.weights.shape and not np.any(ps.elig) and not np.any(ps.tag)
    assert float(ps.dopamine) == 0.0
    again.run(10)  # and it lives on
    again.close(save=False)


# ---- distal reward: credit 1-3 s late; jbrain eval distal-reward's plumbing ----


@pytest.mark.parametrize("delay", [1000, 3000])
def test_a_reward_seconds_after_a_pairing_credits_that_synapse_alone(delay):
    """The distal reward problem in miniature: synapse 0 pairs (pre then
    post), synapse 1 pairs the other way round, synapses 2-3 stay silent;
    a reward `delay` ms later still potentiates synapse 0 (its eligibility
    has decayed by exp(-delay/tau_elig), not vanished), depresses synapse 1,
    leaves 2-3 alone; the same reward 10 s after the pairing credits it
    e^-10 as much (negligibly)."""
    c = pair_circuit()
    gains = []
    for wait in (delay, 10_000):
        state = newborn(c)
        state, _ = run(c, state, {0: [(0, 1.0)], 3: [(4, 1.0)], 10: [(5, 1.0)], 13: [(1, 1.0)]}, 20)
        state, _ = run(c, state, {}, wait)
        w0, e0, _, _ = arrays(state)
        state, _ = run(c, state, {0: [(8, 1.0)]}, 1000)
        w1, _, _, _ = arrays(state)
        gains.append(w1[0] - w0[0])
        pulse = sum(math.exp(-t / RULE.tau_dopamine - (t + 1) / RULE.tau_elig) for t in range(1000))
        assert gains[-1] == pytest.approx(ETA * e0[0] * pulse, rel=1e-2) and gains[-1] > 0
        assert w1[1] < w0[1] and w1[2] == w0[2] and w1[3] == w0[3]
    assert gains[0] > 0.05 and gains[1] < 1e-3 * gains[0]  # 10 s late: ~e^-10 of a fresh pairing's credit


def test_jbrain_eval_distal_reward_runs_its_protocol_and_control(tmp_path):
    """A 12 s run of a small, busy version of the network: every pairing of
    the chosen synapse is rewarded once, 1-3 s after it (or after the run);
    the control gets as many rewards at random times; the record, table and
    plot. (Whether the chosen synapse is singled out takes ~15 min of model
    time: EVALS.md, distal reward.)"""
    from experiments import eval as eval_main
    from jbrain.evals import distal_reward

    params = distal_reward.Params(
        n_e=100, n_i=25, k_e=8, k_i=2, w0=0.2, w_max=0.8, w_inh=1.5, w_ei=0.5, noise_sd=0.2, eta=0.0005
    )
    record = distal_reward.evaluate(seed=0, params=params, model_seconds=12)
    pairs, rewards = record["pairing_seconds"], record["reward_seconds"]
    assert record["pairings"] == len(pairs) >= 5 and len(rewards) == record["rewards"]
    assert len(rewards) == len(record["control_reward_seconds"])
    # each reward is its pairing's, 1-3 s later (pairings within 3 s of the end get none yet)
    assert len([t for t in pairs if t + 3.0 <= 12.0]) <= len(rewards) <= len(pairs)
    for r in rewards:
        assert any(1.0 <= r - t <= 3.0 + 1e-9 for t in pairs)
    for key in ("chosen_weight", "others_mean", "others_p99", "w_max", "reached_cap", "control_chosen_weight",
                "control_reached_cap", "model_seconds", "rewards"):  # fmt: skip
        assert key in record
    assert record["w_max"] == 0.8 and record["model_seconds"] == 12
    assert len(record["trajectory"]["chosen"]) == len(record["trajectory"]["control_chosen"]) == 12
    record["device"] = "test CPU"
    text = eval_main.table(record)
    assert text.splitlines()[0].startswith("distal reward (Izhikevich 2007) on 125 neurons, test CPU: 12 s")
    assert "| control: rewards at random times |" in text
    distal_reward.plot(record, str(tmp_path / "distal.png"))
    assert (tmp_path / "distal.png").stat().st_size > 10_000
    with pytest.raises(ValueError) as e:
        distal_reward.evaluate(model_seconds=5)
    assert str(e.value) == "--distal_seconds=5 must be >= 10 s of model time"


# ---- mood and the held reply: brain state, shown by /stats, saved and restored ----


def test_mood_and_the_held_reply_are_state_that_a_checkpoint_keeps(tmp_path):
    """A reply is held in the state (`reward.held`), so a brain saved between
    its reply and the user's /good still credits it after a restart; each
    feedback moves the mood m <- m + (r - m) / MOOD_FEEDBACKS inside the
    feedback burst; /stats shows it; save and restore keep it exactly."""
    config = rewardable()
    s = Session.open(config, seed=0, workdir=str(tmp_path))
    out = io.StringIO()
    chat = Chat(s, Codec.for_circuit(s.circuit), out=out, err=io.StringIO())
    chat.handle("hello")
    assert s.reply_held and s.mood == 0.0
    where = s.close()
    again = Session.open(config, seed=0, workdir=str(tmp_path))
    assert again.warnings == [] and again.reply_held  # the flag came back with the brain
    out = io.StringIO()
    chat = Chat(again, Codec.for_circuit(again.circuit), out=out, err=io.StringIO())
    chat.handle("/stats")
    assert out.getvalue().splitlines()[1] == (
        "mood +0.000 (average reward of the last ~20 of 0 feedbacks; a reply awaits /good or /bad)"
    )
    chat.handle("/good")
    assert out.getvalue().splitlines()[-1].startswith("rewarded the last reply: ")
    n = brain.MOOD_FEEDBACKS
    mood = np.float32(0.0) + (np.float32(1.0) - np.float32(0.0)) * np.float32(1.0 / n)
    assert not again.reply_held and again.mood == pytest.approx(1.0 / n)
    chat.handle("again")
    chat.handle("/bad")
    mood = mood + (np.float32(-1.0) - mood) * np.float32(1.0 / n)
    assert again.mood == pytest.approx(float(mood), abs=1e-7) and int(again.state.reward.feedbacks) == 2
    out.truncate(0), out.seek(0)
    chat.handle("/stats")
    assert out.getvalue().splitlines()[1] == (
        f"mood {float(mood):+.3f} (average reward of the last ~20 of 2 feedbacks; no reply held)"
    )
    kept = {k: np.asarray(v) for k, v in again.state.reward.items()}
    again.close()
    third = Session.open(config, seed=0, workdir=str(tmp_path))
    for k, v in third.state.reward.items():
        assert np.asarray(v).tobytes() == kept[k].tobytes() and np.asarray(v).dtype == kept[k].dtype, k
    third.close(save=False)
    assert where  # the first checkpoint was written


def test_a_checkpoint_without_mood_restores_as_a_newborn_mood_with_a_warning(tmp_path):
    config = rewardable()
    s = Session.open(config, seed=1, workdir=str(tmp_path))
    s.run(20)
    s.state = s.state.replace(reward=None)  # as a brain saved before it had mood
    where = s.close()
    again = Session.open(config, seed=1, workdir=str(tmp_path))
    assert again.warnings == [
        f"checkpoint {where} was written before a rewardable brain kept its mood and held reply in its "
        "state: mood 0, no feedback counted, no reply held (the weights and everything else are restored)"
    ]
    assert again.mood == 0.0 and not again.reply_held and int(again.state.reward.feedbacks) == 0
    again.run(10)
    again.close(save=False)


# ---- jbrain eval reward: the choice, and what /good and /bad teach ----


def bandit_brain(**kw):
    """choice_small's learning circuit beside a 1,000-neuron sheet (no sheet
    plasticity): EVALS.md's tiny CPU brain, with the readout settings tuned
    on it (a motor neuron hears a quarter of this memory, against half of
    cortex_small's, for which choice_small's are scaled down)."""
    return preset_config(
        "choice_small", sheet=(25, 40), n_neurons=1000, radius=4, memory_neurons=512, teach_fan_in=128,
        memory_fan_in=8, reward_w=0.6, reward_w_max=1.0, reward_eta=4e-3,
        plasticity=False, inh_plasticity=False, **kw,
    )  # fmt: skip


def test_the_choice_is_the_brains_reply_when_it_is_one_of_the_four():
    from jbrain.evals import reward as task
    from jbrain.text import ALPHABET

    codec = Codec(reply_steps=20, reply_chars=2, input_channels=64)
    counts = np.zeros((20, 64), np.int32)
    y, n = ALPHABET.index("y"), ALPHABET.index("n")
    counts[10, y], counts[11, n] = 2, 1
    counts[16, n] = 5  # the second window does not count
    assert task.choice(codec, counts) == 0
    counts[12, ALPHABET.index("q")] = 9  # the brain said q: not one of the replies
    assert task.choice(codec, counts) == -1
    counts[12, ALPHABET.index("q")] = 0
    counts[10, n] = 1
    assert task.choice(codec, counts) == -1  # a tie is no choice
    assert task.choice(codec, np.zeros((20, 64), np.int32)) == -1  # nor is silence


def test_the_offer_drives_the_four_replies_groups_alike_for_every_cue():
    from jbrain.evals import reward as task
    from jbrain.text import ALPHABET, CLOCK_LEAD

    codec = Codec.for_circuit(bandit_brain().circuit(), reply_steps=40, reply_chars=1)
    plain, stims = codec.encode("cat"), task.offered(codec, "cat", 0.5)
    teacher = codec.input_channels * 2 + codec.clock_channels
    changed = np.argwhere(stims != plain)
    start = codec.window_edges()[0] - CLOCK_LEAD
    heads = sorted(teacher + ALPHABET.index(r[0]) for r in task.REPLIES)
    assert sorted(set(changed[:, 1])) == heads and changed[:, 0].min() == start
    assert np.all(stims[start:, heads] == 0.5)
    assert np.array_equal(task.offered(codec, "dog", 0.5) - codec.encode("dog"), stims - plain)


def test_good_and_bad_alone_teach_four_cues_their_replies_and_the_ablation_forgets():
    """The bandit on EVALS.md's tiny brain, shortened: /good and /bad after
    each of 160 trials take the brain well above chance (0.25; 0.68 over the
    last 50 and 0.65 tested, seed 0, CPU), and the reward readout put back
    to its newborn weights falls to chance (0.125)."""
    from jbrain.evals import reward as task

    record = task.evaluate(bandit_brain(), trials=160, reversal=0, test_trials=40, warmup=500)
    assert record["last50_accuracy"] >= 0.55, record["curve"]
    assert record["trained_accuracy"] >= 0.5
    assert record["ablated_accuracy"] <= 0.35 and record["untrained_accuracy"] <= 0.4
    assert record["offer"] == 0.5 and record["reply_steps"] == task.REPLY_STEPS


def test_the_feedback_releases_reward_minus_the_mood():
    """The dopamine of a feedback is r - m (the mood before it): a reward
    the brain expected (m = r) moves no synapse; the same reply's /good at
    mood -1 moves the paired synapses twice as far as at mood 0."""
    moved = {}
    for mood in (0.0, 1.0, -1.0):
        session = Session.new(rewardable(), seed=0)
        session.state = session.state.replace(
            reward=session.state.reward.replace(mood=jnp.asarray(mood, jnp.float32))
        )
        learn.answer(session, "hello")
        before = np.asarray(session.state.projections["memory_reward"].weights)
        learn.reward(session, 1.0)
        moved[mood] = np.asarray(session.state.projections["memory_reward"].weights) - before
        born = before
        assert session.mood == pytest.approx(mood + (1.0 - mood) / brain.MOOD_FEEDBACKS)
    assert not np.any(moved[1.0]) and np.count_nonzero(moved[0.0]) > 100
    twice = born + 2 * moved[0.0]
    free = (moved[0.0] != 0) & (twice > 1e-6) & (twice < 1.0 - 1e-6)  # away from the bounds [0, 1]
    # (f32 rounding of w + eta d e over the burst's 100 steps)
    np.testing.assert_allclose(moved[-1.0][free], 2 * moved[0.0][free], rtol=0.01, atol=5e-5)
