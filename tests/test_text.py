"""Text <-> brain: the byte encoder, the decoder, replies and the one-compile rule."""

from __future__ import annotations

import string

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import preset_config, small

from jbrain import brain
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import ALPHABET, Codec, reply, to_bytes

CODEC = Codec()  # 200 steps, 8 characters
T_IN = CODEC.input_steps


def on_steps(stims: np.ndarray, channel: int) -> np.ndarray:
    return np.nonzero(stims[:, channel])[0]


def test_alphabet_is_64_distinct_printable_characters():
    assert len(ALPHABET) == 64 == BrainConfig().output_channels
    assert len(set(ALPHABET)) == 64
    assert all(c in string.printable and c not in "\t\n\r\x0b\x0c" for c in ALPHABET)
    assert ALPHABET[0] == " "


def test_encode_shape_values_and_silent_output_phase():
    s = CODEC.encode("hello")
    assert s.shape == (200, 256) and s.dtype == np.float32
    assert set(np.unique(s)) <= {0.0, 1.0}
    assert not s[T_IN:].any()  # the output phase gets no stimulus
    assert set(np.nonzero(s.any(0))[0]) == set(b"hello")


def test_empty_text_is_an_all_zero_stimulus():
    assert not CODEC.encode("").any()


def test_bytes_are_presented_in_order_with_gaps():
    s = CODEC.encode("dog")
    d, o, g = (on_steps(s, ord(c)) for c in "dog")
    # three slots of ~33 steps, each stimulated for its first 3/4
    assert d[0] == 0 and d[-1] < o[0] and o[-1] < g[0] and g[-1] < T_IN
    assert len(d) == 33 - 33 // 4
    assert np.all(np.diff(d) == 1)


def test_order_and_repetition_change_the_stimulus():
    assert not np.array_equal(CODEC.encode("dog"), CODEC.encode("god"))
    a, aa, aaa = (CODEC.encode(x) for x in ("a", "aa", "aaa"))
    assert not np.array_equal(a, aa) and not np.array_equal(aa, aaa)
    # "aa": two presentations separated by a gap
    steps = on_steps(aa, ord("a"))
    assert np.count_nonzero(np.diff(steps) > 1) == 1


def test_utf8_bytes_of_any_text_are_accepted():
    s = CODEC.encode("\u00e9")  # two bytes, C3 A9, in that order
    c3, a9 = on_steps(s, 0xC3), on_steps(s, 0xA9)
    assert len(c3) and len(a9) and c3[-1] < a9[0]
    for text in ["\U0001f600 emoji", "tab\there", "\x00\x01\x1b[2J", "\r", " ", "\udcff", "\ud800 lone"]:
        stims = CODEC.encode(text)
        assert stims.any(), repr(text)
    # bytes that are not UTF-8 (piped input decodes them as surrogate escapes)
    raw = bytes(range(256))
    assert to_bytes(raw.decode("utf-8", "surrogateescape")) == raw
    assert set(np.nonzero(CODEC.encode(raw).any(0))[0]) == set(range(256))


def test_long_text_shares_slots_and_fits_the_same_shape():
    text = "x" * 310 + "y" * 4690  # 5,000 bytes into 100 one-step slots of 50 bytes
    s = CODEC.encode(text)
    assert s.shape == (200, 256)
    assert on_steps(s, ord("x"))[0] == 0 and on_steps(s, ord("y"))[-1] == T_IN - 1
    both = np.nonzero(s[:, ord("x")] * s[:, ord("y")])[0]
    assert len(both) == 1  # the one slot holding both the last x's and the first y's


def test_decode_reads_the_output_windows():
    counts = np.zeros((200, 64), np.int32)
    want = "hi there"
    edges = T_IN + np.arange(9) * (200 - T_IN) // 8
    for r, ch in enumerate(want):
        counts[edges[r] : edges[r + 1], ALPHABET.index(ch)] = 3
        counts[edges[r], (ALPHABET.index(ch) + 5) % 64] = 2  # a weaker rival
    counts[:T_IN, ALPHABET.index("z")] = 100  # the input phase is not read
    assert CODEC.decode(counts) == want


def test_decode_silence_and_ties():
    counts = np.zeros((200, 64), np.int32)
    assert CODEC.decode(counts) == " " * 8  # silent windows read as spaces
    counts[T_IN:, [ALPHABET.index("q"), ALPHABET.index("b")]] = 1
    assert CODEC.decode(counts) == "b" * 8  # ties: the lowest group


def test_a_taught_reply_reads_stray_windows_as_silence():
    """A teachable brain's motor layer (`Codec.teacher`): a window whose
    winning group fires under 1/QUIET of the reply's loudest window is a
    space; an untaught reply (a spike or two everywhere) keeps its letters;
    a brain without a motor layer reads every window by its argmax."""
    taught = Codec(teacher=True)
    edges = T_IN + np.arange(9) * (200 - T_IN) // 8

    def reply_of(per_window: list[tuple[str, int]]) -> np.ndarray:
        counts = np.zeros((200, 64), np.int32)
        for r, (ch, n) in enumerate(per_window):
            counts[edges[r], ALPHABET.index(ch)] = n
        return counts

    said = reply_of([("h", 15), ("e", 11), ("j", 1), (" ", 0), (" ", 0), ("x", 2), (" ", 0), ("q", 3)])
    assert taught.decode(said) == "he     q"  # 1 and 2 spikes: under 15 / 6; 3 spikes: not
    assert CODEC.decode(said) == "hej  x q"
    untaught = reply_of([(ch, 1 + (r == 3)) for r, ch in enumerate("gq.cop]x")])
    assert taught.decode(untaught) == CODEC.decode(untaught) == "gq.cop]x"


def test_codec_errors_name_the_flag():
    with pytest.raises(ValueError, match=r"--reply_chars=101 must be between 1 and 100"):
        Codec(reply_steps=200, reply_chars=101)
    with pytest.raises(ValueError, match=r"--reply_chars=0"):
        Codec(reply_chars=0)
    with pytest.raises(ValueError, match=r"--reply_steps=1 must be an integer >= 2"):
        Codec(reply_steps=1, reply_chars=1)
    with pytest.raises(ValueError, match=r"output_channels=32 does not match .* use output_channels=64"):
        Codec(output_channels=32)
    with pytest.raises(
        ValueError, match=r"input_channels=128 does not fit the text encoder: it needs 256 .* or 64"
    ):
        Codec(input_channels=128)
    with pytest.raises(ValueError, match=r"out_counts has shape \(10, 64\)"):
        CODEC.decode(np.zeros((10, 64)))


def test_a_64_channel_brain_hears_characters_case_folded_and_the_rest_as_spaces():
    """One channel per ALPHABET character: 'A' and 'a' share a channel, a
    newline and the two bytes of 'e' acute are spaces (channel 0)."""
    codec = Codec(reply_steps=40, reply_chars=4, input_channels=64)
    heard = lambda text: [int(np.nonzero(row)[0][0]) for row in codec.encode(text)[:20] if row.any()]  # noqa: E731
    assert set(heard("Ab?")) == {ALPHABET.index("a"), ALPHABET.index("b"), ALPHABET.index("?")}
    assert np.array_equal(codec.encode("CAT"), codec.encode("cat"))
    assert set(heard("\n\u00e9")) == {0}
    assert codec.encode("dog").shape == (40, 64)


def test_codec_for_circuit_reads_its_text_ports():
    for config in (small(), preset_config("ei", n_neurons=2000)):
        codec = Codec.for_circuit(config.circuit(), reply_steps=40, reply_chars=4)
        assert codec == Codec(reply_steps=40, reply_chars=4, input_channels=256, output_channels=64)
    with pytest.raises(ValueError) as e:
        Codec.for_circuit(preset_config("coba").circuit())
    assert str(e.value) == (
        "the coba circuit has no text input or readout to talk through: "
        "chat with --preset=seed or --preset=ei"
    )
    with pytest.raises(ValueError, match=r"output_channels=32 does not match .* use output_channels=64"):
        Codec.for_circuit(small(output_channels=32).circuit())
    with pytest.raises(ValueError, match=r"--reply_chars=101 must be between 1 and 100"):
        Codec.for_circuit(small().circuit(), reply_chars=101)


SMALL = small(plasticity=True)


def fork(session: Session, snapshot) -> None:
    """Put a copy of `snapshot` (state, step) back into the session."""
    session.state = jax.tree.map(jnp.copy, snapshot[0])
    session.step = snapshot[1]


def test_same_state_and_text_give_the_same_reply_different_texts_differ():
    s = Session.new(SMALL, seed=3)
    s.run(200)
    snap = (jax.tree.map(jnp.copy, s.state), s.step)
    words = ["hello", "dog", "god", "cat", "why?", "1 = 1 yes", "", "\U0001f600"]
    replies = []
    for w in words:
        fork(s, snap)
        replies.append(reply(s, CODEC, w))
    assert all(len(r) == 8 and set(r) <= set(ALPHABET) for r in replies)
    assert len(set(replies)) >= 7, replies  # usually different
    fork(s, snap)
    assert reply(s, CODEC, "dog") == replies[1]  # always the same
    # and a second brain of the same seed answers the same
    s2 = Session.new(SMALL, seed=3)
    s2.run(200)
    assert reply(s2, CODEC, "hello") == replies[0]


def test_reply_advances_the_brain_and_logs_its_steps(tmp_path):
    s = Session.new(SMALL, seed=0, workdir=str(tmp_path))
    reply(s, Codec(reply_steps=40, reply_chars=4), "hi")
    reply(s, Codec(reply_steps=40, reply_chars=4), "there")
    s.close()
    assert s.step == 80
    lines = (tmp_path / "brain_debug.log").read_text().splitlines()
    assert len(lines) == 81 and lines[-1].startswith("80\t")


def test_twenty_replies_of_different_lengths_trace_the_reply_program_once(monkeypatch):
    traces = []
    real_step = brain._step

    def counting_step(*args, **kwargs):
        traces.append(1)  # runs only while jax traces the burst
        return real_step(*args, **kwargs)

    monkeypatch.setattr(brain, "_step", counting_step)
    config = small(n_neurons=1537, plasticity=True)  # a size no other test compiles
    s = Session.new(config, seed=0)
    codec = Codec(reply_steps=50, reply_chars=5)
    lengths = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1000, 2000, 4000, 7]
    replies = [reply(s, codec, "\u00e9" * n) for n in lengths]
    assert len(replies) == 20 and s.step == 20 * 50
    assert len(traces) == 1
