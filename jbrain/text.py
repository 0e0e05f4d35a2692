"""Text <-> brain: the byte encoder, the spike-count decoder and `reply`.

Host-side and pure NumPy. A reply is ONE burst of T = `reply_steps` steps (one
compiled program for every text: the stimulus always has the shape
(T, input_channels)), split in two phases:

    steps [0, T_in)   input phase,  T_in = T // 2: the text is presented
    steps [T_in, T)   output phase: R = `reply_chars` windows are read

Encoder (text -> stims (T, input_channels) f32, values 0 or 1)
    The text is taken as UTF-8 bytes b_0 .. b_{L-1}, so every input is
    accepted (accents, emoji, control characters, an empty line; strings that
    came from undecodable input through `surrogateescape` give back their
    original bytes). Byte value v drives input channel v (256 channels), or,
    in a brain of 64 input channels (one per ALPHABET character, as the
    cortex presets have: each character its own patch of the sheet), the
    channel of its character in ALPHABET, upper case as lower case, every
    other byte (control characters, the bytes of non-ASCII characters) as a
    space.
    Bytes are presented one after another in S = min(L, T_in) time slots:
        byte i goes to slot  s(i) = floor(i * S / L)
        slot s spans steps   [floor(s * T_in / S), floor((s + 1) * T_in / S))
    In the first len - floor(len / 4) steps of its slot a byte's channel is 1
    (stimulated), in the rest 0: the gap separates repeated bytes, so "a",
    "aa" and "aaa" differ. Order matters ("dog" != "god"). A text longer than
    T_in bytes shares slots: several bytes (consecutive ones) are presented at
    once, as a set. The output phase gets no text; an empty text gives an
    all-zero text stimulus (the brain answers from its own activity).

Relay, clock and teacher (a teachable brain, `--teach`: input ports
"relay", "clock" and "teacher" after the text's channels)
    Relay: the text's channels again (the memory's own copy of the message),
    or, in a brain whose relay hears positions (`--cue_positions=P`), P x
    input_channels channels: channel p C + c is the text's channel c over
    the time slot of the p-th character (p < P; bytes past the P-th slot
    are not relayed), so the memory knows each character's place.
    Clock: in reply window r (below), shifted CLOCK_LEAD steps earlier,
    clock channel r mod C is 1, every reply alike, so the brain knows which
    character it is answering (time cells); nothing in it depends on the
    text. The lead is the motor layer's latency (a synaptic delay and a
    step of integration), so the answer to window r's clock falls in
    window r.
    Teacher (`encode(text, teach=REPLY)`, teaching bursts only): in window
    r (its steps shifted TEACH_DELAY after the clock's, when block r's code
    reaches the motor layer; the last runs to the burst's end) the teacher
    channel of REPLY's r-th character (padded with spaces to R characters)
    is 1, which drives that output group (teacher forcing)
    and is the delta rule's target (jbrain/learn.py). A space is a silent
    window (the decoder reads silence as a space): there every teacher
    channel is -1, which holds every group down and teaches them all
    silence, so the padding of short replies does not teach a "space"
    group to outshout the letters of long ones.
    Reward (`--reward`: one more channel, "reward", after the teacher's):
    always 0 in a message; `learn.reward` puts the user's r there.
    Working memory (`--working_memory`: P load channels, then P recall
    channels, after those): in a message, load channel p is 1 over the
    whole time slot of the p-th character (p < P; a slot shared by several
    bytes, in a text longer than the input phase, loads them all); recall
    channels are 0. `encode_recall` gives the /recall burst instead: no
    text and no clock, recall channel r at WM_VOLLEY in the first step of
    reply window r and 1 over the rest of it (r < min(P, R)).

Decoder (out_counts (T, output_channels) int32 -> R characters)
    Window r spans steps [T_in + floor(r * T_out / R), T_in + floor((r+1) * T_out / R)),
    T_out = T - T_in. Its spike count per output group is summed and the
    group with the most spikes names the character ALPHABET[group] (ties:
    the lowest group, so a silent window reads as ALPHABET[0], a space).
    A teachable brain's motor layer is quiet where nothing was taught, so
    there a window whose winning group fires fewer than 1/QUIET of the
    spikes of the reply's loudest window also reads as a space: stray
    spikes after a taught word are not letters (an untaught reply, one
    spike or two in every window, stays as it was).
    Only the first `output_channels` columns are the reply's; a working
    memory's readout follows them (P x 64 assemblies), and `decode_memory`
    reads window r's spike counts of slot r's assemblies the same way.

So the same brain state and text always give the same reply, and, the
network being chaotic, different texts usually give different ones.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

# 64 printable characters, one per output group (BrainConfig.output_channels).
# Space first: a silent window decodes to a space.
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()/&+=*#@%$<>_~^[]"
BYTE_CHANNELS = 256
# Steps by which a teachable brain's clock leads the reply windows: the motor
# layer answers the memory one synaptic delay plus about one step of
# integration late, so its spikes for window r fall in window r.
CLOCK_LEAD = 2
# Steps from a clock block's onset to its code reaching the motor layer
# (about two for the block's membranes to cross threshold, one synaptic
# delay): the teacher's window r starts that late, so the delta rule pairs
# window r's character with block r's code and not with the fading trace of
# block r - 1, which would teach it to answer a window early.
TEACH_DELAY = 3
# A teachable brain's window reads as silence when its winning group fires
# under 1/QUIET of the reply's loudest window (`Codec.decode`): a taught
# letter's group fires many times the stray groups that other lessons'
# shared memory neurons wake in the silent windows after a word, while a
# taught reply's fading last window, or a partly taught one, still reads
# as its letter. Chosen on recorded replies (EVALS.md, teaching: "Stray
# spikes read as silence" and "The quiet decoder re-read").
QUIET = 6
# A recall window opens with a volley: the slot's recall channel at this many
# times its steady value for one step, which fires every neuron of the slot
# once (config._working_memory).
WM_VOLLEY = 10.0


def as_said(reply: str, chars: int) -> str:
    """A reply as the decoder says it: lower case, padded with spaces (silent
    windows) to `chars` characters; what teaching drives and scoring compares."""
    return reply.lower().ljust(chars)


def _alphabet_channels() -> np.ndarray:
    """(256,) int: the input channel of each byte value in a 64-channel brain."""
    out = np.zeros(BYTE_CHANNELS, np.int64)  # 0: ALPHABET[0], a space
    for v in range(128):
        ch = chr(v).lower()
        if ch in ALPHABET:
            out[v] = ALPHABET.index(ch)
    return out


CHANNEL_OF_BYTE = {BYTE_CHANNELS: np.arange(BYTE_CHANNELS), len(ALPHABET): _alphabet_channels()}


def to_bytes(text: str | bytes) -> bytes:
    """UTF-8 bytes of any text (bytes pass through; lone surrogates are kept)."""
    if isinstance(text, bytes | bytearray):
        return bytes(text)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "surrogatepass")


class _Runs(Protocol):
    def run(self, length: int, stims: np.ndarray | None = None) -> dict[str, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class Codec:
    """Encoder and decoder of one reply program (see the module docstring).

    reply_steps: T, steps of a reply burst (>= 2); reply_chars: R, characters
    per reply, 1 <= R <= T - T // 2 (a window has at least one step).
    """

    reply_steps: int = 200
    reply_chars: int = 8
    input_channels: int = BYTE_CHANNELS
    output_channels: int = len(ALPHABET)
    clock_channels: int = 0
    teacher: bool = False
    relay: bool = False
    relay_positions: int = 0
    reward: bool = False
    wm_positions: int = 0

    def __post_init__(self) -> None:
        t, r = self.reply_steps, self.reply_chars
        if not isinstance(t, int) or t < 2:
            raise ValueError(f"--reply_steps={t} must be an integer >= 2, e.g. --reply_steps=200")
        if not isinstance(r, int) or not 1 <= r <= t - t // 2:
            raise ValueError(
                f"--reply_chars={r} must be between 1 and {t - t // 2} (half of --reply_steps={t}, "
                "so that every character has at least one step): lower it or raise --reply_steps"
            )
        if self.input_channels not in CHANNEL_OF_BYTE:
            raise ValueError(
                f"input_channels={self.input_channels} does not fit the text encoder: it needs "
                f"{BYTE_CHANNELS} (one per byte value) or {len(ALPHABET)} (one per character)"
            )
        if self.output_channels != len(ALPHABET):
            raise ValueError(
                f"output_channels={self.output_channels} does not match the decoder's "
                f"{len(ALPHABET)}-character alphabet: use output_channels={len(ALPHABET)}"
            )

    @classmethod
    def for_circuit(cls, circuit, *, reply_steps: int = 200, reply_chars: int = 8) -> Codec:
        """The codec of a circuit's input ports and readouts."""
        if not circuit.inputs or not circuit.readouts:
            raise ValueError(
                f"the {circuit.name} circuit has no text input or readout to talk through: "
                "chat with --preset=seed or --preset=ei"
            )
        ports = {p.name: p.channels for p in circuit.inputs}
        relay = ports.get("relay", 0)  # the text's channels, or P positions of them
        names = [p.name for p in circuit.inputs]
        wm = ["wm_load", "wm_recall"] if names[-2:] == ["wm_load", "wm_recall"] else []
        if names[: len(names) - len(wm)] not in (
            ["text"],
            ["text", "relay", "clock", "teacher"],
            ["text", "relay", "clock", "teacher", "reward"],
        ):
            raise ValueError(f"the {circuit.name} circuit's input ports {names} do not fit the text codec")
        return cls(
            reply_steps=reply_steps,
            reply_chars=reply_chars,
            input_channels=ports["text"],
            output_channels=circuit.readouts[0].groups,
            clock_channels=ports.get("clock", 0),
            teacher="teacher" in ports,
            relay="relay" in ports,
            relay_positions=relay // ports["text"] if relay > ports["text"] else 0,
            reward="reward" in ports,
            wm_positions=ports.get("wm_load", 0),
        )

    @property
    def stim_channels(self) -> int:
        """Width of a stimulus: text, relay, clock, teacher and reward channels."""
        text = self.input_channels + self.relay_channels
        teacher = self.output_channels if self.teacher else 0
        return text + self.clock_channels + teacher + int(self.reward) + 2 * self.wm_positions

    @property
    def relay_channels(self) -> int:
        """The relay's channels: none, the text's, or P positions x the text's."""
        return self.input_channels * max(1, self.relay_positions) if self.relay else 0

    def window_edges(self) -> np.ndarray:
        """(R + 1,) int64: reply window r spans steps [edges[r], edges[r + 1])."""
        t_in, t_out, r = self.input_steps, self.reply_steps - self.input_steps, self.reply_chars
        return t_in + np.arange(r + 1) * t_out // r

    def teachable(self, reply: str) -> str | None:
        """Why `reply` cannot be taught (one line), or None: it must have 1 to
        R characters of ALPHABET (upper case counts as lower case)."""
        if not reply:
            return "the reply is empty"
        if len(reply) > self.reply_chars:
            return f"the reply has {len(reply)} characters, more than --reply_chars={self.reply_chars}"
        bad = sorted({ch for ch in reply.lower() if ch not in ALPHABET})
        if bad:
            return f"the reply has characters the brain cannot say: {''.join(bad)!r}"
        return None

    @property
    def input_steps(self) -> int:
        """T_in: steps of the input phase."""
        return self.reply_steps // 2

    def encode(self, text: str | bytes, teach: str | None = None) -> np.ndarray:
        """Text -> stims (reply_steps, stim_channels) f32: the text, the
        clock (if any) and, given `teach` (a reply `teachable` accepts), the
        teacher; values 0 or 1, and -1 on the teacher's channels in a taught
        silence."""
        stims = np.zeros((self.reply_steps, self.stim_channels), np.float32)
        c, first = self.input_channels, self.input_channels + self.relay_channels
        stims[:, :c] = self._encode_text(text)
        bounds = self._slot_bounds(len(to_bytes(text)))  # the characters' time slots
        if self.relay_positions:  # the p-th slot's characters on the relay's position p
            for p in range(min(self.relay_positions, len(bounds) - 1)):
                rows = slice(bounds[p], bounds[p + 1])
                stims[rows, c * (1 + p) : c * (2 + p)] = stims[rows, :c]
        elif self.relay:
            stims[:, c:first] = stims[:, :c]
        if self.wm_positions:  # load channel p over the p-th character's slot
            load = self.stim_channels - 2 * self.wm_positions
            for p in range(min(self.wm_positions, len(bounds) - 1)):
                stims[bounds[p] : bounds[p + 1], load + p] = 1.0
        edges = self.window_edges() - (CLOCK_LEAD if self.clock_channels else 0)
        for r in range(self.reply_chars):
            if self.clock_channels:
                stims[edges[r] : edges[r + 1], first + r % self.clock_channels] = 1.0
        if teach is not None:
            if not self.teacher:
                raise ValueError("this brain has no teacher port: teach a --teach cortex")
            why = self.teachable(teach)
            if why:
                raise ValueError(why)
            first += self.clock_channels
            edges = np.minimum(edges + (TEACH_DELAY if self.clock_channels else 0), self.reply_steps)
            for r, ch in enumerate(as_said(teach, self.reply_chars)):
                if ch == ALPHABET[0]:  # a space: silence
                    stims[edges[r] : edges[r + 1], first : first + self.output_channels] = -1.0
                else:
                    stims[edges[r] : edges[r + 1], first + ALPHABET.index(ch)] = 1.0
        return stims

    def _slot_bounds(self, n: int) -> np.ndarray:
        """(S + 1,) int64: slot s of a text of n bytes spans steps [b[s], b[s + 1]) (S = min(n, T_in))."""
        s = min(n, self.input_steps)
        return np.arange(s + 1, dtype=np.int64) * self.input_steps // max(s, 1)

    def encode_recall(self) -> np.ndarray:
        """The /recall stimulus (reply_steps, stim_channels) f32: no text,
        no clock; recall channel r at WM_VOLLEY in the first step of reply
        window r, 1 over the rest of it (module docstring)."""
        if not self.wm_positions:
            raise ValueError("this brain has no working memory: start one with --working_memory")
        stims = np.zeros((self.reply_steps, self.stim_channels), np.float32)
        first = self.stim_channels - self.wm_positions
        edges = self.window_edges()
        for r in range(min(self.wm_positions, self.reply_chars)):
            stims[edges[r] : edges[r + 1], first + r] = 1.0
            stims[edges[r], first + r] = WM_VOLLEY
        return stims

    def decode_memory(self, out_counts: np.ndarray) -> str:
        """out_counts (reply_steps, output_channels + P x 64) of a /recall
        burst -> reply_chars characters: in window r < P, the character of
        slot r's assembly with the most spikes (ties: the lowest, so a
        silent slot or a tie reads as a space); spaces past P."""
        out_counts = np.asarray(out_counts)
        p, chars = self.wm_positions, len(ALPHABET)
        first = self.output_channels
        if out_counts.shape != (self.reply_steps, first + p * chars):
            raise ValueError(
                f"out_counts has shape {out_counts.shape}, expected ({self.reply_steps}, {first + p * chars})"
            )
        edges = self.window_edges()
        csum = np.concatenate([np.zeros((1, out_counts.shape[1]), np.int64), np.cumsum(out_counts, 0)])
        counts = (csum[edges[1:]] - csum[edges[:-1]])[:, first:].reshape(self.reply_chars, p, chars)
        out = [ALPHABET[int(np.argmax(counts[r, r]))] if r < p else " " for r in range(self.reply_chars)]
        return "".join(out)

    def _encode_text(self, text: str | bytes) -> np.ndarray:
        """(reply_steps, input_channels) f32: the text in its slots (module docstring)."""
        data = np.frombuffer(to_bytes(text), np.uint8)
        t, t_in = self.reply_steps, self.input_steps
        stims = np.zeros((t, self.input_channels), np.float32)
        n = data.shape[0]
        if n == 0:
            return stims
        s = min(n, t_in)
        slot = np.arange(n, dtype=np.int64) * s // n  # slot of each byte
        present = np.zeros((s, self.input_channels), bool)
        present[slot, CHANNEL_OF_BYTE[self.input_channels][data]] = True
        bounds = np.arange(s + 1, dtype=np.int64) * t_in // s  # slot s: [bounds[s], bounds[s+1])
        steps = np.arange(t_in)
        slot_of_step = np.searchsorted(bounds, steps, side="right") - 1
        length = bounds[1:] - bounds[:-1]
        on_until = bounds[1:] - length // 4  # stimulated while step < on_until
        on = steps < on_until[slot_of_step]
        stims[:t_in] = present[slot_of_step] & on[:, None]
        return stims

    def window_counts(self, out_counts: np.ndarray) -> np.ndarray:
        """out_counts (reply_steps, output_channels) -> (reply_chars, output_channels) int64."""
        out_counts = np.asarray(out_counts)
        if out_counts.ndim == 2 and self.wm_positions:  # the working memory's readout follows the reply's
            out_counts = out_counts[:, : self.output_channels]
        if out_counts.shape != (self.reply_steps, self.output_channels):
            raise ValueError(
                f"out_counts has shape {out_counts.shape}, expected "
                f"({self.reply_steps}, {self.output_channels})"
            )
        edges = self.window_edges()
        csum = np.concatenate([np.zeros((1, self.output_channels), np.int64), np.cumsum(out_counts, 0)])
        return csum[edges[1:]] - csum[edges[:-1]]

    def decode(self, out_counts: np.ndarray) -> str:
        """out_counts (reply_steps, output_channels) int -> reply of reply_chars characters."""
        return self.decode_windows(self.window_counts(out_counts))

    def decode_windows(self, counts: np.ndarray) -> str:
        """`decode` of the window counts (reply_chars, output_channels) `window_counts` gives."""
        winners = np.argmax(counts, axis=1)
        if self.teacher:  # a motor layer: windows far quieter than the reply's loudest are silence
            top = counts.max(axis=1)
            winners = np.where(top * QUIET < top.max(), 0, winners)
        return "".join(ALPHABET[i] for i in winners)


def reply(session: _Runs, codec: Codec, text: str | bytes) -> str:
    """Present `text` to the brain for one reply burst and decode its answer.

    Runs `session.run(codec.reply_steps, codec.encode(text))`: the reply's
    steps advance the brain (and go to its debug log) like any others. A
    session with `hold_reply` (Session) then holds the reply's eligibility
    for its feedback (`learn.reward`).
    """
    return reply_counts(session, codec, text)[0]


def reply_counts(session: _Runs, codec: Codec, text: str | bytes) -> tuple[str, np.ndarray]:
    """`reply`, and the spike counts it was decoded from: (reply, (R,
    output_channels) int64 `Codec.window_counts`)."""
    metrics = session.run(codec.reply_steps, codec.encode(text))
    hold = getattr(session, "hold_reply", None)
    if hold is not None:  # a rewardable brain keeps this reply's eligibility for /good, /bad
        hold()
    counts = codec.window_counts(metrics["out_counts"])
    return codec.decode_windows(counts), counts
