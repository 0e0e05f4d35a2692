"""jbrain chat: talk to the brain.

Each message is encoded as a stimulus (UTF-8 bytes in time slots, see
jbrain/text.py) and answered by one `--reply_steps` burst; spike counts of the
output groups give a `--reply_chars` reply, printed as `Brain: <reply>`.

In a terminal: a `You: ` prompt with line editing and history (readline;
kept in WORKDIR/chat_history), and the brain lives on between messages
(`--live`). With stdin piped: no prompts, one `Brain: ...` line per input
line, `--live=false` by default, so the same seed and the same lines give a
byte-identical transcript on stdout. Notices, warnings and the final summary
go to stderr.

Commands: /help, /stats, /save (when checkpoints are available), /quit.
Ctrl-C or end of input: finish the current burst, flush the log, print a
one-line summary, exit 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import numpy as np
from absl import flags

from experiments import common
from jbrain.chat import Chat, piped_lines, terminal_lines
from jbrain.live import LiveLoop
from jbrain.session import BrainFault
from jbrain.text import Codec

FLAGS = flags.FLAGS
common.define_brain_flags()
common.define_checkpoint_flags()
FLAGS.set_default("plasticity", True)
flags.DEFINE_integer("reply_steps", 200, "Steps of one reply burst (the first half presents the input).")
flags.DEFINE_integer("reply_chars", 8, "Characters per reply (one output window each).")
flags.DEFINE_integer("max_input_chars", 1000, "Longer messages are cut to this many characters.")
flags.DEFINE_boolean(
    "live",
    None,
    "Keep stepping the brain in the background between messages. Default: on when stdin "
    "is a terminal, off when piped (--live=false makes sessions reproducible).",
)
flags.DEFINE_integer(
    "live_burst", 0, "Steps per background burst; 0: --reply_steps (reuses the reply's compiled program)."
)
flags.DEFINE_float(
    "live_steps_per_s", 1000.0, "Pace of the background loop (1000 = real time at 1 ms/step); 0: flat out."
)

HISTORY_NAME = "chat_history"


class _Sigint:
    """Ctrl-C while a message is being answered lets it finish, then stops;
    at the prompt (or a second Ctrl-C) it raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.busy = False
        self.hit = False
        self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        first = not self.hit
        self.hit = True
        if not (self.busy and first):
            raise KeyboardInterrupt

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._old)


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.max_input_chars < 1:
        raise ValueError(f"--max_input_chars={FLAGS.max_input_chars} must be >= 1, e.g. 1000")
    if FLAGS.live_burst < 0:
        raise ValueError(f"--live_burst={FLAGS.live_burst} must be >= 0 (0: --reply_steps)")
    if FLAGS.live_steps_per_s < 0:
        raise ValueError(f"--live_steps_per_s={FLAGS.live_steps_per_s} must be >= 0 (0: as fast as possible)")
    config = common.brain_config_from_flags()
    codec = Codec.for_circuit(config.circuit(), reply_steps=FLAGS.reply_steps, reply_chars=FLAGS.reply_chars)
    workdir = common.prepare_workdir(FLAGS.workdir)
    interactive = sys.stdin.isatty()
    live_on = interactive if FLAGS.live is None else FLAGS.live
    sys.exit(chat_loop(config, codec, workdir, interactive=interactive, live_on=live_on))


def chat_loop(config, codec: Codec, workdir: str, *, interactive: bool, live_on: bool) -> int:
    """Run the conversation on stdin/stdout; returns the exit code."""
    sigint = _Sigint()
    sigint.busy = True  # Ctrl-C while the brain is born: stop once it is
    session, live, lines, start_step, start_messages = None, None, None, 0, 0
    how, error, saved = "done", None, None
    try:
        # Restores WORKDIR/checkpoints unless --fresh; plasticity is the chat's flag.
        session = common.open_session("chat", config, workdir, always=("plasticity",))
        config = session.config  # a restored brain's own
        start_step, start_messages = session.step, session.messages
        if live_on:
            burst = FLAGS.live_burst or codec.reply_steps
            # Same length and an all-zero stimulus: the reply's compiled program.
            same = burst == codec.reply_steps
            stims = np.zeros((burst, session.circuit.input_channels), np.float32) if same else None
            live = LiveLoop(session, burst=burst, stims=stims, steps_per_s=FLAGS.live_steps_per_s).start()
        chat = Chat(session, codec, max_input_chars=FLAGS.max_input_chars, live=live)
        if interactive:
            mode = "live" if live else "paused between messages"
            chat.say(
                f"jbrain chat: {config.n_neurons:,} neurons, seed {session.seed}, {mode}; "
                "/help for commands, /quit or Ctrl-D to leave."
            )
            lines = terminal_lines(os.path.join(workdir, HISTORY_NAME))
        else:
            lines = piped_lines(sys.stdin.buffer)
        sigint.busy = False
        for line in lines if not sigint.hit else ():
            if live is not None and live.error is not None:
                raise live.error
            sigint.busy = True
            keep = chat.handle(line)
            sigint.busy = False
            if not keep or sigint.hit:
                break
    except KeyboardInterrupt:
        if interactive:
            print(flush=True)
    except BrainFault as e:
        error = str(e)
    except BrokenPipeError:  # the reader went away: stop quietly
        how = "stopped (stdout closed)"
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        sigint.restore()
        if live is not None:
            live.stop()  # lets the burst in flight finish
            if error is None and isinstance(live.error, BrainFault):
                error = str(live.error)
        if lines is not None:
            lines.close()
        if session is not None:
            saved = session.close()  # the last checkpoint (not after a fault)
    if error is not None:
        common.fail("chat", error)
    if live is not None and live.error is not None and not isinstance(live.error, BrainFault):
        raise live.error  # a bug, not a user mistake: keep its traceback
    if sigint.hit:
        how = "interrupted"
    if session is None:
        print(f"jbrain chat {how} before the brain was born", file=sys.stderr, flush=True)
        return 0
    for w in session.warnings:  # e.g. the last checkpoint failed
        print(f"jbrain chat: warning: {w}", file=sys.stderr, flush=True)
    log = session.log.path if session.log is not None else "(none)"
    said = _plural(session.messages - start_messages, "message")
    print(
        f"jbrain chat {how}: {said}, {session.step - start_step} steps "
        f"(now at step {session.step}), firing rate {session.last_rate:.4f}, log {log}"
        + (f", checkpoint {saved}" if saved else ""),
        file=sys.stderr,
        flush=True,
    )
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def launch(argv: list[str]) -> None:
    common.run_app("chat", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
