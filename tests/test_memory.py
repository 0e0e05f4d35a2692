"""Working memory (--working_memory, config._working_memory): the
short-term plasticity equations, the codec's load and recall channels, a
tiny brain that holds a message for 1,000 steps of noisy life and replays it
with /recall (and does not with facilitation off), its state through a
checkpoint, and the one-line refusals."""

from __future__ import annotations

import io
import math

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import jbrain_cli, preset_config, small

from jbrain import brain, learn
from jbrain.chat import Chat
from jbrain.circuit import STP, Projection
from jbrain.session import Session
from jbrain.text import WM_VOLLEY, Codec


def remembering(**kw):
    """A tiny teachable cortex (1,000 sheet neurons) with a working memory
    of 3 slots (1,536 memory neurons)."""
    return preset_config(
        "cortex_small", teach=True, sheet=(25, 40), n_neurons=1000, radius=4, memory_neurons=256,
        teach_fan_in=64, working_memory=True, wm_positions=3, **kw,
    )  # fmt: skip


def test_stp_facilitates_depresses_and_decays_as_its_equations_say():
    q = Projection("q", "A", "A", stp=STP(U=0.2, tau_f=1500.0, tau_d=100.0))
    u, x = jnp.full((2,), 0.2), jnp.ones((2,))
    u, x, r = brain.stp_release(q, 1.0, u, x, jnp.array([1, 0], jnp.uint8))
    # a spike: u jumps by U (1 - u) before the release r = u x; x loses r
    assert float(u[0]) == pytest.approx(0.36) and float(r[0]) == pytest.approx(0.36)
    assert float(x[0]) == pytest.approx(0.64) and float(r[1]) == 0.0 and float(u[1]) == pytest.approx(0.2)
    for _ in range(100):
        u, x, r = brain.stp_release(q, 1.0, u, x, jnp.zeros((2,), jnp.uint8))
    assert float(u[0]) - 0.2 == pytest.approx(0.16 * math.exp(-100 / 1500), rel=1e-4)
    assert 1.0 - float(x[0]) == pytest.approx(0.36 * math.exp(-100 / 100), rel=1e-4)
    off = Projection("q", "A", "A", stp=STP(U=0.2, facilitation=False))
    u2, _, r2 = brain.stp_release(off, 1.0, u, x, jnp.array([1, 1], jnp.uint8))
    assert np.allclose(u2, 0.2) and float(r2[1]) == pytest.approx(0.2)  # the ablation: u held at U


def test_the_codec_loads_each_characters_slot_and_recalls_slot_r_in_window_r():
    codec = Codec(reply_steps=40, reply_chars=4, input_channels=64, clock_channels=2, teacher=True,
                  relay=True, wm_positions=3)  # fmt: skip
    stims = codec.encode("ab")
    load, recall = stims[:, -6:-3], stims[:, -3:]
    assert (load[:10, 0] == 1).all() and (load[10:20, 1] == 1).all() and load[20:].sum() == 0
    assert load[:, 2].sum() == 0 and recall.sum() == 0  # no third character; a message recalls nothing
    r = codec.encode_recall()
    assert r[:, :-3].sum() == 0  # no text, no clock
    edges = codec.window_edges()
    for k in range(3):
        assert r[edges[k], -3 + k] == WM_VOLLEY and (r[edges[k] + 1 : edges[k + 1], -3 + k] == 1).all()
    assert r[edges[3] :, -3:].sum() == 0  # window 3: no slot left
    with pytest.raises(ValueError, match="no working memory"):
        Codec(input_channels=64).encode_recall()


def test_a_tiny_brain_replays_a_message_after_1000_noisy_steps_and_not_without_facilitation(tmp_path):
    """The held message comes back through /recall after 1,000 steps of
    free-running activity (noise on); the same brain with facilitation off
    (u held at U) replays nothing; the memory's state survives a checkpoint
    exactly and the restored brain replays it too."""
    got = {}
    for on in (True, False):
        s = Session.open(remembering(wm_facilitation=on), seed=0, workdir=str(tmp_path / str(on)))
        codec = Codec.for_circuit(s.circuit)
        quiet = np.zeros((codec.reply_steps, codec.stim_channels), np.float32)  # one program for all
        s.run(codec.reply_steps, codec.encode("fog"))
        for _ in range(5):  # 1,000 steps of noisy life
            s.run(codec.reply_steps, quiet)
        if on:
            ps = s.state.projections["wm_recurrent"]
            u, x = np.asarray(ps.stp_u), np.asarray(ps.stp_x)
            where = s.close()
            s = Session.open(remembering(), seed=0, workdir=str(tmp_path / "True"))
            assert s.warnings == [] and s.notes[0].startswith(f"restored step {s.step} from {where}")
            ps = s.state.projections["wm_recurrent"]
            np.testing.assert_array_equal(np.asarray(ps.stp_u), u)
            np.testing.assert_array_equal(np.asarray(ps.stp_x), x)
            held = u.reshape(3, 64, 8).mean(2)  # slot x character
            assert [int(np.argmax(held[p])) for p in range(3)] == [codec_index(c) for c in "fog"]
        out = io.StringIO()
        Chat(s, codec, out=out, err=io.StringIO()).handle("/recall")
        got[on] = out.getvalue()
        s.close(save=False)
    assert got[True] == "Brain (recall): fog     \n"
    assert got[False] == "Brain (recall):         \n"  # nothing reactivates: every slot reads as a space


def codec_index(ch: str) -> int:
    from jbrain.text import ALPHABET

    return ALPHABET.index(ch)


def test_recall_refuses_a_brain_without_working_memory_and_the_flags_are_checked():
    session = Session.new(small(), seed=0)
    out = io.StringIO()
    chat = Chat(session, Codec.for_circuit(session.circuit), out=out, err=io.StringIO())
    assert "/recall" not in chat.help_text()
    chat.handle("/recall")
    assert (
        out.getvalue()
        == learn.NO_MEMORY + "\n"
        == (
            "this brain has no working memory: start one with --working_memory, e.g. "
            "--flagfile=experiments/configs/teach_small.flags --working_memory --fresh\n"
        )
    )
    assert session.step == 0
    with pytest.raises(ValueError) as e:
        learn.recall(session)
    assert str(e.value) == learn.NO_MEMORY
    with pytest.raises(ValueError) as e:
        small(working_memory=True)
    assert str(e.value) == (
        "--working_memory needs --teach (its slots hear the message through the teachable brain's relay T): "
        "use --flagfile=experiments/configs/teach_small.flags --working_memory"
    )
    with pytest.raises(ValueError) as e:
        remembering(wm_U=1.5)
    assert (
        str(e.value)
        == "need 0 < --wm_U=1.5 <= 1 and --wm_tau_f=1500.0, --wm_tau_d=100.0, --wm_tau_m=5.0 > 0 ms"
    )


def test_jbrain_eval_memory_bad_flags_are_one_line_errors():
    r = jbrain_cli("eval", "memory", "--multi_trials=0")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == "jbrain eval memory: error: --multi_trials=0 must be >= 1"
