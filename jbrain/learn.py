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

Reward: `/good`, `/bad` and `reward(session, r)` credit the LAST reply of a
rewardable brain (`--reward`: a readout M -> O with reward-modulated STDP,
plasticity.reward_step, Izhikevich 2007). While the brain replies, each
pre-then-post pairing on that readout adds to its synapse's eligibility c,
which decays with tau_elig ~1 s. A user takes seconds to judge the reply,
and a `--live` brain steps thousands of times meanwhile, so c alone would
have forgotten the reply: at the end of each reply burst the session holds
it (`Session.hold_reply`: tag <- c, kept without decay; the live steps
change c, never the tag). Feedback r in [-1, 1] is then one burst of the
feedback program (`Plan.feedback`, FEEDBACK_TAUS dopamine time constants
long) whose first step delivers r on the "reward" port. The dopamine it
releases is r minus what the brain expected, its mood m (`RewardState`: an
exponential average of its past rewards, brain.MOOD_FEEDBACKS of them), and
the mood then moves toward r, all inside the jitted burst:
    delta = r - m,   m <- m + (r - m) / MOOD_FEEDBACKS
    d_t = delta exp(-t dt/tau_dopamine),   w <- clip(w + eta d_t tag, 0, w_max)
so each synapse moves by about eta delta tag tau_dopamine/dt (for /good on
a newborn brain up on the pairings of the reply, for /bad down; synapses
that did not pair in the reply keep their weights), as ordinary learning.
Why minus the mood: reward-modulated STDP learns only from reward minus
expected reward (Fremaux, Sprekeler & Gerstner 2010). Every motor neuron
that fired in a reply pairs with the memory's code, not only the group that
won; with r alone, a brain that is mostly wrong would depress every one of
them (and one mostly right potentiate them all), while with r - m only
what goes with better-than-usual rewards grows (EVALS.md, reward learning).
Then the eligibility, tag and dopamine are spent (zeroed): one feedback per
reply, and the next reply's tag holds that reply's pairings alone.

Working memory: `/recall` and `recall(session)` make a brain with a
working memory (`--working_memory`, config._working_memory) replay what it
holds: one reply-length burst of `Codec.encode_recall` (no text; each
slot's recall drive in its reply window), decoded from the spike counts
of the memory's own assemblies (`Codec.decode_memory`). What it holds is
the last message's first P characters, in the facilitation u of its
assemblies' synapses (in the state, saved with it); nothing is kept on the
host. The recall is a reactivation: it refreshes what it replays.
"""

from __future__ import annotations

import math

import numpy as np

from jbrain import brain
from jbrain.text import Codec, reply

FEEDBACK_TAUS = 5  # a feedback burst lasts this many dopamine time constants (99.3% of its effect)
NOT_REWARDABLE = (
    "this brain has no reward-modulated synapses: start one with --reward, e.g. "
    "--flagfile=experiments/configs/teach_small.flags --reward --fresh"
)
NO_REPLY = "no reply to credit: send a message, then /good or /bad (one per reply)"

NO_MEMORY = (
    "this brain has no working memory: start one with --working_memory, e.g. "
    "--flagfile=experiments/configs/teach_small.flags --working_memory --fresh"
)
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


def reward_problem(session, r: object) -> str | None:
    """Why `reward(session, r)` cannot credit anything (one line), or None."""
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not -1.0 <= r <= 1.0:
        return f"reward r={r!r} must be a number in [-1, 1] (1: good, -1: bad)"
    if not brain.reward_projections(session.circuit):
        return NOT_REWARDABLE
    if not session.reply_held:
        return NO_REPLY
    return None


def feedback_steps(circuit) -> int:
    """Steps of a feedback burst: FEEDBACK_TAUS of the longest dopamine decay."""
    tau = max(
        q.plasticity.tau_dopamine for q in circuit.projections if q.name in brain.reward_projections(circuit)
    )
    return math.ceil(FEEDBACK_TAUS * tau / circuit.dt)


def reward(session, r: float) -> int:
    """Credit the session's last reply with reward r in [-1, 1] (module
    docstring): one feedback burst of `feedback_steps` steps (it advances
    the brain like any burst) with r on the reward port's first step, then
    the held tag and dopamine spent. Returns the number of synapses whose
    weight changed. ValueError with one line (`reward_problem`) when r is out
    of range, the brain has no reward projection, or no reply awaits credit;
    nothing changes then."""
    why = reward_problem(session, r)
    if why:
        raise ValueError(why)
    circuit = session.circuit
    names = brain.reward_projections(circuit)
    with session.lock:
        before = {name: np.asarray(session.state.projections[name].weights) for name in names}
        length = feedback_steps(circuit)
        stims = np.zeros((length, circuit.input_channels), np.float32)
        first = 0
        for port in circuit.inputs:
            if port.name == "reward":
                stims[0, first] = r
            first += port.channels
        session.run(length, stims, feedback=True)
        session.state = brain.spend_feedback(circuit, session.state)
        return sum(
            int(np.count_nonzero(np.asarray(session.state.projections[name].weights) != before[name]))
            for name in names
        )


def recall(session, *, codec: Codec | None = None) -> str:
    """What the brain's working memory holds, replayed and decoded from its
    own spikes (module docstring): one burst of `codec.reply_steps` steps
    (it advances the brain like any reply). ValueError (`NO_MEMORY`) for a
    brain without a working memory; nothing runs then."""
    codec = codec or Codec.for_circuit(session.circuit)
    if not codec.wm_positions:
        raise ValueError(NO_MEMORY)
    metrics = session.run(codec.reply_steps, codec.encode_recall())
    return codec.decode_memory(metrics["out_counts"])
