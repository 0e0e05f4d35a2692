"""Teaching: what `/teach CUE => REPLY` does, as library calls.

A teachable brain (`--teach`, the cortex presets) hears the cue as an
ordinary message while, in reply window r, the teacher drives the output
group of REPLY's r-th character (teacher forcing, text.py). The burst runs
the teaching program (`Plan.teaching`), in which the teacher-gated delta
rule (plasticity.delta_step) moves the readout association -> output so
that the association activity of (cue, window r) predicts that group's
drive. Nothing is stored on the host: the association lives in the
readout's weights, saved and restored with the rest of the state, and
ordinary bursts never change them.
"""

from __future__ import annotations

from jbrain.text import Codec, reply

USAGE = "usage: /teach CUE => REPLY  (e.g. /teach hello => hi there)"


def parse_teach(text: str, codec: Codec) -> tuple[str, str]:
    """'CUE => REPLY' -> (cue, reply), both stripped. ValueError with one
    line (the problem, then the usage) when the arrow is missing, a side is
    empty, or the reply is not something the brain can say."""
    why, pair = check_pair(text, codec)
    if why:
        raise ValueError(f"{why}; {USAGE}")
    return pair


def check_pair(text: str, codec: Codec) -> tuple[str | None, tuple[str, str]]:
    """(why 'CUE => REPLY' cannot be taught, or None; (cue, reply) stripped)."""
    cue, arrow, answer = text.partition("=>")
    cue, answer = cue.strip(), answer.strip()
    if not arrow:
        return "no '=>' between the cue and the reply", (cue, answer)
    if not cue:
        return "the cue is empty", (cue, answer)
    return codec.teachable(answer), (cue, answer)


def teach(session, cue: str, answer: str, *, codec: Codec | None = None) -> str:
    """Present `cue` once with `answer` as the teacher's reply (one teaching
    burst of the session; it advances the brain like any message). Returns
    what the brain said during it (the teacher forces it toward `answer`).
    ValueError when the brain has no teacher port or `answer` cannot be
    taught (`Codec.teachable`)."""
    codec = codec or Codec.for_circuit(session.circuit)
    if not codec.teacher:
        raise ValueError(
            "this brain cannot be taught (no teacher port): start a teachable one, "
            "e.g. --flagfile=experiments/configs/cortex_small.flags"
        )
    metrics = session.run(codec.reply_steps, codec.encode(cue, teach=answer), teaching=True)
    return codec.decode(metrics["out_counts"])


def answer(session, cue: str, *, codec: Codec | None = None) -> str:
    """The brain's reply to `cue` (an ordinary message: `text.reply`)."""
    return reply(session, codec or Codec.for_circuit(session.circuit), cue)
