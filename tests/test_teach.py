"""Teaching (/teach, jbrain/learn.py): the codec's relay, clock and teacher
channels, the one-line errors of a malformed /teach, the delta rule, the
k-winners-take-all memory, and a tiny teachable cortex that learns a pair
(well above chance) and forgets it when the readout is put back."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import preset_config, small

from jbrain import brain, learn, neurons, plasticity
from jbrain.chat import Chat
from jbrain.circuit import STDP, Projection
from jbrain.evals import associations
from jbrain.session import Session
from jbrain.state import ProjectionWiring
from jbrain.text import ALPHABET, CLOCK_LEAD, TEACH_DELAY, Codec


def tiny_teachable(**kw):
    """A 50 x 100 teachable cortex (5,000 sheet neurons), the cortex_small preset's flags."""
    return preset_config(
        "cortex_small", **{"sheet": (50, 100), "n_neurons": 5000, "teach": True, "plasticity": True,
                           "memory_neurons": 1024, **kw},
    )  # fmt: skip


def test_the_codec_copies_the_text_to_the_relay_and_clocks_the_windows():
    codec = Codec(
        reply_steps=40, reply_chars=4, input_channels=64, clock_channels=2, teacher=True, relay=True
    )
    stims = codec.encode("ab", teach="Hi")
    assert stims.shape == (40, 64 + 64 + 2 + 64)
    np.testing.assert_array_equal(stims[:, :64], stims[:, 64:128])
    # nothing but text in the input phase, until the clock starts CLOCK_LEAD
    # steps ahead of the first reply window, and the teacher TEACH_DELAY
    # steps after the clock (when the clocked block's code reaches the motor layer)
    assert stims[: 20 - CLOCK_LEAD, 128:].sum() == 0 and stims[20 - CLOCK_LEAD, 128] == 1
    assert stims[: 20 - CLOCK_LEAD + TEACH_DELAY, 130:].sum() == 0
    edges = codec.window_edges() - CLOCK_LEAD
    taught_edges = np.minimum(edges + TEACH_DELAY, 40)
    assert taught_edges[-1] == 40  # the last window's lesson runs to the burst's end
    for r in range(4):
        window = stims[edges[r] : edges[r + 1]]
        assert (window[:, 128 + r % 2] == 1).all() and window[:, 128 + 1 - r % 2].sum() == 0
        taught = stims[taught_edges[r] : taught_edges[r + 1], 130:]
        if r < 2:  # a letter: its group's channel only
            assert [ALPHABET[i] for i in np.nonzero(taught[0])[0]] == ["hi"[r]] and (taught.sum(1) == 1).all()
        else:  # a space: taught silence, every channel -1
            assert (taught == -1).all()
    plain = codec.encode("ab")
    assert plain[:, 130:].sum() == 0 and (plain[:, :130] == stims[:, :130]).all()


@pytest.mark.parametrize(
    "line, message",
    [
        ("hello hi", "no '=>' between the cue and the reply"),
        ("  => hi", "the cue is empty"),
        ("hello =>  ", "the reply is empty"),
        ("hello => abcdefghi", "the reply has 9 characters, more than --reply_chars=8"),
        ("hello => h\u00e9", "the reply has characters the brain cannot say: '\u00e9'"),
    ],
)
def test_a_malformed_teach_line_is_one_line_with_the_usage(line, message):
    codec = Codec(input_channels=64, clock_channels=8, teacher=True, relay=True)
    with pytest.raises(ValueError) as e:
        learn.parse_teach(line, codec)
    text = str(e.value)
    assert text.startswith(message) and text.endswith(learn.USAGE) and "\n" not in text
    assert learn.parse_teach(" Hello there  =>  Hi! ", codec) == ("Hello there", "Hi!")


def chat_of(session):
    out = io.StringIO()
    return Chat(session, Codec.for_circuit(session.circuit), out=out, err=io.StringIO()), out


def test_teach_in_a_brain_that_cannot_learn_it_says_so_and_changes_nothing():
    session = Session.new(small(), seed=0)
    chat, out = chat_of(session)
    assert chat.handle("/teach hello => hi")
    assert out.getvalue().startswith("this brain cannot be taught: start a teachable one")
    assert session.step == 0


def test_the_delta_rule_moves_the_predicted_drive_to_the_target_only_when_on():
    rule = STDP(0.5, 0.5, 0.5, 0.0, False, "delta", 1.0)
    q = Projection("R", "M", "E", fan_in=2, w_lo=0.0, w_hi=0.0, w_max=2.0, plasticity=rule)
    wiring = ProjectionWiring(pre=jnp.asarray([[0, 1], [0, 1]], jnp.int32), out_post=None)
    w, x = jnp.zeros((4,), jnp.float32), jnp.zeros((2,), jnp.float32)
    spikes, target = jnp.asarray([1, 0], jnp.uint8), jnp.asarray([1.0, 0.0])
    same, _ = plasticity.delta_step(q, 1.0, wiring, w, x, spikes, target, jnp.asarray(False))
    assert (same == 0).all()
    for _ in range(30):
        w, _ = plasticity.delta_step(q, 1.0, wiring, w, x, spikes, target, jnp.asarray(True))
    r = 1.0 - np.exp(-2.0)  # the trace of one spike, as a rate
    w = np.asarray(w).reshape(2, 2)
    assert w[0, 0] * r == pytest.approx(1.0, rel=1e-3)  # the taught post: drive = target
    assert w[0, 1] == 0 and (w[1] == 0).all()  # silent pre and untaught post: unchanged / zero
    # signed: taught silence while both pres fire, the post's drive goes to 0 by
    # moving both weights down alike, so the one born at 0 turns negative
    w = jnp.asarray([2.0, 0.0, 2.0, 0.0], jnp.float32)
    both = jnp.asarray([1, 1], jnp.uint8)
    for _ in range(100):
        w, _ = plasticity.delta_step(q, 1.0, wiring, w, x, both, jnp.zeros(2), jnp.asarray(True))
    np.testing.assert_allclose(np.asarray(w).reshape(2, 2), [[1.0, -1.0], [1.0, -1.0]], atol=1e-4)


def test_k_winners_take_all_lets_at_most_k_fire_per_block():
    circuit = tiny_teachable().circuit()
    memory = circuit.population("M")
    k, blocks = memory.kwta
    a, b = circuit.bounds("M")
    margin = jnp.zeros((circuit.n,)).at[a:b].set(jnp.arange(b - a, dtype=jnp.float32))
    spikes = neurons._k_winners(circuit, jnp.ones((circuit.n,), bool), margin)
    per_block = np.asarray(spikes[a:b]).reshape(blocks, -1)
    assert (per_block.sum(axis=1) == k).all() and per_block[:, -k:].all()  # the largest margins win
    assert bool(spikes[:a].all())  # other populations keep every spike
    # ties at the k-th margin go to the lower index: never more than k a block
    tied = neurons._k_winners(circuit, jnp.ones((circuit.n,), bool), jnp.zeros((circuit.n,)))
    per_block = np.asarray(tied[a:b]).reshape(blocks, -1)
    assert (per_block.sum(axis=1) == k).all() and per_block[:, :k].all()
    # fewer than k above threshold: those fire, no others
    above = jnp.zeros((circuit.n,), bool).at[a + 3].set(True)
    assert np.asarray(neurons._k_winners(circuit, above, margin)[a:b]).nonzero()[0].tolist() == [3]


def test_the_teacher_signal_is_signed_and_on_while_any_channel_is():
    circuit = tiny_teachable().circuit()
    codec = Codec.for_circuit(circuit)
    a, _ = circuit.bounds("O")
    group = circuit.population("O").size // codec.output_channels
    stims = codec.encode("cat", teach="a")
    edges = codec.window_edges() - CLOCK_LEAD + TEACH_DELAY
    for step, want in ((edges[0], 1.0), (edges[1], -1.0)):  # 'a', then a taught silence
        target, on = brain.teacher_signal(circuit, jnp.asarray(stims[step]))
        o = np.asarray(target[a:])[: codec.output_channels * group].reshape(-1, group)
        assert bool(on) and (o[ALPHABET.index("a")] == want).all()
        assert (o[ALPHABET.index("b")] == (0.0 if want > 0 else -1.0)).all()
    assert not bool(brain.teacher_signal(circuit, jnp.asarray(stims[0]))[1])  # the input phase: off


def test_uniforms_never_reach_one():
    top = neurons.unit_interval(jnp.asarray([0xFFFFFFFF, 0], jnp.uint32))
    assert float(top[0]) < 1.0 and float(top[1]) > 0.0
    assert np.isfinite(np.sqrt(2) * np.asarray(jax.lax.erf_inv(2.0 * top - 1.0))).all()


def test_a_tiny_teachable_cortex_learns_pairs_and_the_ablation_forgets_them():
    config = tiny_teachable(sheet=(25, 40), n_neurons=1000, radius=4, memory_neurons=256, teach_fan_in=128)
    record = associations.evaluate(
        config, pairs=[("hello", "hi"), ("cat", "meow")], presentations=3,
        interference_pairs=1, retain_steps=1000, warmup=0, plan_options={"spike_buffer": 0.3},
    )  # fmt: skip
    # three lessons teach both replies exactly (chance (1/64)^8); the newborn
    # and the ablated brains (readout put back) say neither: this small memory
    # leaves them mostly silent, which reads as the replies' padding spaces,
    # so their per-character scores stay well below the taught brain's
    assert record["exact"] == 1.0 and record["per_char"] == 1.0 and len(record["curve"]) == 3
    assert record["ablated_exact"] == 0.0 and record["untrained_exact"] == 0.0
    assert max(record["untrained_per_char"], record["ablated_per_char"]) <= 0.75
    assert [t["said"].rstrip() for t in record["taught"]] == ["hi", "meow"]
    assert record["restored_same"]  # a restored brain answers as the one that never stopped
    assert 0.0 < record["rate_band"][0] <= record["rate_band"][1] < 0.3
    for key in ("exact", "untrained_exact", "ablated_exact", "corrupted_exact", "retained_exact"):
        assert 0.0 <= record[key] <= 1.0, key
    assert record["interference_exact"] is not None
    # every row's replies are in the record, so its misses can be read
    taught = record["taught"]
    for t in taught:
        assert len(t["corrupted_cue"]) == len(t["cue"]) and t["corrupted_cue"] != t["cue"]
    for row, key in (("corrupted_exact", "corrupted_said"), ("interference_exact", "after_more_said")):
        hits = [t[key] == t["reply"].ljust(len(t[key])) for t in taught]
        assert record[row] == np.mean(hits), row
    pairs, cues = [(t["cue"], t["reply"]) for t in taught], [t["corrupted_cue"] for t in taught]
    assert record["corrupted_matcher_exact"] == associations.matcher_exact(pairs, cues)
    # ... with the window counts each was decoded from: a letter is its window's loudest group
    for t in taught:
        for said, counts in (("said", "said_counts"), ("corrupted_said", "corrupted_counts")):
            assert len(t[counts]) == len(t[said])
            for ch, window in zip(t[said], t[counts], strict=True):
                assert ch == " " or next(iter(window)) == ch, (t[said], t[counts])
                assert window or ch == " "
    assert any(window for t in taught for window in t["said_counts"])


def test_spoken_lists_each_windows_groups_loudest_first():
    counts = np.zeros((3, len(ALPHABET)), np.int64)
    counts[0, ALPHABET.index("h")], counts[0, ALPHABET.index("e")] = 2, 9
    counts[2, ALPHABET.index("b")] = counts[2, ALPHABET.index("a")] = 4  # a tie: the lower group first
    spoken = associations.spoken(counts)
    assert spoken == [{"e": 9, "h": 2}, {}, {"a": 4, "b": 4}]
    assert [list(w) for w in spoken] == [["e", "h"], [], ["a", "b"]]


def test_the_ideal_matcher_answers_the_nearest_cue_by_position_and_splits_ties():
    pairs = [("cat", "meow"), ("car", "drive"), ("dog", "woof"), ("1", "one"), ("2", "two")]
    pairs.append(("Moon", "night"))
    # "caz": cat and car equally near (half); "cxr": car; "DPG": dog (case aside); "j": the two
    # one-character cues tie (half); "k" likewise; "mooo" -> moon (1 of 4 positions differs)
    cues = ["caz", "cxr", "DPG", "j", "k", "mooo"]
    assert associations.matcher_exact(pairs, cues) == pytest.approx((0.5 + 1 + 1 + 0.5 + 0.5 + 1) / 6)
    # cues of different lengths: the shorter is padded at its end, so "mzn" is nearer "man" than "woman"
    assert associations.matcher_exact([("woman", "she"), ("man", "he")], ["wxman", "mzn"]) == 1.0
    # ties between cues with the same reply cost nothing
    assert associations.matcher_exact([("cat", "meow"), ("car", "meow")], ["caz", "caz"]) == 1.0


def test_associations_need_a_teachable_brain():
    with pytest.raises(ValueError) as e:
        associations.evaluate(small(), warmup=0)
    assert str(e.value) == (
        "this brain cannot be taught: pass --flagfile=experiments/configs/teach_small.flags (or --teach)"
    )


def test_a_pairs_file_with_a_bad_line_names_it(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("# comment\nhello => hi  # trailing\n\ncat meow\n", encoding="utf-8")
    codec = Codec(input_channels=64, teacher=True)
    with pytest.raises(ValueError, match=rf"^{path}:4: no '=>' between the cue and the reply$"):
        associations.read_pairs(str(path), codec)
    path.write_text("hello => hi  # trailing\n", encoding="utf-8")
    assert associations.read_pairs(str(path), codec) == [("hello", "hi")]
    assert len(associations.read_pairs(associations.DEFAULT_PAIRS, codec)) == 20


def test_a_positional_relay_hears_each_character_at_its_place():
    codec = Codec(
        reply_steps=40, reply_chars=4, input_channels=64, clock_channels=2, teacher=True, relay=True,
        relay_positions=3,
    )  # fmt: skip
    assert codec.relay_channels == 3 * 64 and codec.stim_channels == 64 + 192 + 2 + 64
    stims = codec.encode("abca")
    text, relay = stims[:, :64], stims[:, 64:256].reshape(40, 3, 64)
    # slot p of the 20-step input phase (4 characters: 5 steps each) goes to position p alone;
    # the 4th character is past the relay's 3 positions
    for p, ch in enumerate("abc"):
        heard = np.nonzero(relay[:, p].any(0))[0]
        steps = np.nonzero(relay[:, p].any(1))[0]
        assert [ALPHABET[i] for i in heard] == [ch] and steps.min() >= 5 * p and steps.max() < 5 * (p + 1)
        np.testing.assert_array_equal(relay[5 * p : 5 * p + 5, p], text[5 * p : 5 * p + 5])
    assert relay[15:].sum() == 0 and text[15:20, ALPHABET.index("a")].sum() > 0
    # the brain's codec reads the positions off its relay port
    small_memory = {"sheet": (25, 40), "n_neurons": 1000, "memory_neurons": 256, "teach_fan_in": 128}
    circuit = tiny_teachable(**small_memory, cue_positions=4).circuit()
    assert Codec.for_circuit(circuit).relay_positions == 4 and circuit.population("T").size == 4 * 64
    assert Codec.for_circuit(tiny_teachable(**small_memory).circuit()).relay_positions == 0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cue_positions": 1}, "--cue_positions=1 must be 0 (the relay hears characters wherever they are) "
         "or at least 2 (the message's first P characters at their positions)"),
        ({"cue_positions": 4, "working_memory": True, "wm_positions": 6}, "--cue_positions=4 and "
         "--wm_positions=6 must be equal with --working_memory (the positional relay loads the (slot, "
         "character) assemblies)"),
    ],
)  # fmt: skip
def test_a_bad_cue_positions_flag_says_why(changes, message):
    with pytest.raises(ValueError) as e:
        tiny_teachable(**changes)
    assert str(e.value) == message
