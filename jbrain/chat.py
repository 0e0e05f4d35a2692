"""The conversation, without a terminal: `Chat.handle(line)` per input line.

A message is encoded as a stimulus (UTF-8 bytes in time slots, text.py) and
answered by one reply burst of the session; the readout's spike counts give
the reply (`text.reply`). Commands: /help, /stats, /teach CUE => REPLY
(a teachable brain: jbrain/learn.py), /good and /bad (credit the last
reply of a rewardable brain, `--reward`: `learn.reward`), /recall (replay
what a brain with a working memory holds, `--working_memory`:
`learn.recall`), /save (when the
session can save), /quit. `piped_lines` and `terminal_lines` are the two line
sources of `jbrain chat` (experiments/chat.py).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from jbrain import brain, learn
from jbrain.live import LiveLoop
from jbrain.session import Session
from jbrain.text import Codec, reply

_COMMAND = re.compile(r"\s*(/[A-Za-z]\S*)(\s.*)?", re.DOTALL)


class Chat:
    """The conversation, without terminal I/O: `handle(line)` per input line.

    Writes `Brain: ...` lines and command output to `out`, notices to `err`.
    `live` (optional) is the background loop; replies run under its hold.
    `on_reply` (optional) is called with each reply's text after its line is
    written, outside the hold (`jbrain chat --speak` speaks it there).
    """

    def __init__(
        self,
        session: Session,
        codec: Codec,
        *,
        max_input_chars: int = 1000,
        live: LiveLoop | None = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        on_reply: Callable[[str], None] | None = None,
    ):
        self.session = session
        self.codec = codec
        self.max_input_chars = max_input_chars
        self.live = live
        self.out = out
        self.err = err
        self.on_reply = on_reply

    def guard(self) -> contextlib.AbstractContextManager:
        """The reply path's lock: pauses the live loop, holds the session."""
        return self.live.hold() if self.live is not None else self.session.lock

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"jbrain chat: {text}", file=self.err, flush=True)

    def help_text(self) -> str:
        c = self.codec
        lines = [
            f"Type a message; the brain answers with {c.reply_chars} characters after a "
            f"{c.reply_steps}-step reply.",
            "Commands:",
            "  /help    this help",
            "  /stats   step, firing rate, mean threshold, messages so far, mood",
        ]
        if self.codec.teacher:
            lines.append("  /teach CUE => REPLY   teach the brain to answer CUE with REPLY")
        if self.codec.reward:
            lines.append("  /good, /bad   reward or punish the last reply (its synapses' eligibility)")
        if self.codec.wm_positions:
            lines.append("  /recall  replay what the working memory holds (the last message)")
        if hasattr(self.session, "save"):
            lines.append("  /save    save the brain (a checkpoint in the workdir)")
        lines.append("  /quit    leave (so do Ctrl-D and Ctrl-C)")
        return "\n".join(lines)

    def stats_text(self) -> str:
        """Two lines: step, rate, threshold and messages; then the mood (`mood_text`)."""
        with self.guard():
            s = self.session
            return (
                f"step {s.step}, firing rate {s.last_rate:.4f}, "
                f"mean threshold {s.mean_threshold():.4f}, messages {s.messages}\n{mood_text(s.state)}"
            )

    def handle(self, line: str) -> bool:
        """Answer one input line; False when the user asked to quit."""
        m = _COMMAND.fullmatch(line)
        if m:
            return self.command(m.group(1).lower(), (m.group(2) or "").strip())
        n = len(line)
        if n > self.max_input_chars:
            line = line[: self.max_input_chars]
            self.note(f"input cut from {n:,} to {self.max_input_chars:,} characters (--max_input_chars)")
        with self.guard():
            answer = reply(self.session, self.codec, line)
            self.session.messages += 1
        self.say(f"Brain: {answer}")
        self.flush_warnings()
        if self.on_reply is not None:
            self.on_reply(answer)
        return True

    def command(self, name: str, args: str = "") -> bool:
        if name == "/quit":
            return False
        if name == "/stats":
            self.say(self.stats_text())
        elif name == "/teach":
            self.teach(args)
        elif name == "/recall":
            self.recall()
        elif name in ("/good", "/bad"):
            self.feedback(1.0 if name == "/good" else -1.0)
        elif name == "/save" and hasattr(self.session, "save"):
            # Checkpoints (jbrain/checkpoint.py): Session.save() returns the
            # checkpoint's folder, or None with the reason in its warnings.
            with self.guard():
                where = self.session.save(wait=True)
            self.say(f"saved step {self.session.step} to {where}" if where else "nothing saved")
            self.flush_warnings()
        elif name == "/help":
            self.say(self.help_text())
        else:
            self.say(f"unknown command {name}\n{self.help_text()}")
        return True

    def teach(self, args: str) -> None:
        """/teach CUE => REPLY: one teaching burst (jbrain/learn.py); a
        malformed line or an unteachable brain gets one line and changes
        nothing."""
        if not self.codec.teacher:
            self.say(
                "this brain cannot be taught: start a teachable one, e.g. "
                "--flagfile=experiments/configs/cortex_small.flags --fresh"
            )
            return
        try:
            cue, answer = learn.parse_teach(args, self.codec)
        except ValueError as e:
            self.say(str(e))
            return
        with self.guard():
            learn.teach(self.session, cue, answer, codec=self.codec)
            self.session.messages += 1
        self.say(f"taught: {cue} => {answer}")
        self.flush_warnings()

    def feedback(self, r: float) -> None:
        """/good (r = 1) or /bad (r = -1): credit the last reply
        (`learn.reward`); with no reply held, or a brain without reward
        synapses, one line and nothing changes."""
        with self.guard():
            why = learn.reward_problem(self.session, r)
            if why is None:
                changed = learn.reward(self.session, r)
        if why is not None:
            self.say(why)
            return
        self.say(f"{'rewarded' if r > 0 else 'punished'} the last reply: {changed:,} synapses changed")
        self.flush_warnings()

    def recall(self) -> None:
        """/recall: the brain replays its working memory (`learn.recall`);
        a brain without one gets one line and nothing runs."""
        if not self.codec.wm_positions:
            self.say(learn.NO_MEMORY)
            return
        with self.guard():
            held = learn.recall(self.session, codec=self.codec)
        self.say(f"Brain (recall): {held}")
        self.flush_warnings()

    def flush_warnings(self) -> None:
        while self.session.warnings:
            self.note(f"warning: {self.session.warnings.pop(0)}")


def mood_text(state) -> str:
    """The /stats line of a brain's mood (`state.RewardState`): its average
    reward over its last ~`brain.MOOD_FEEDBACKS` feedbacks, the feedbacks so
    far, and whether a reply awaits one."""
    rs = state.reward
    if rs is None:
        return "mood -- (this brain has no reward synapses: start one with --reward)"
    n, held = int(rs.feedbacks), bool(rs.held)
    return (
        f"mood {float(rs.mood):+.3f} (average reward of the last ~{brain.MOOD_FEEDBACKS} of {n} "
        f"feedback{'s' if n != 1 else ''}; {'a reply awaits /good or /bad' if held else 'no reply held'})"
    )


def piped_lines(stream) -> Iterator[str]:
    """Lines of a binary stream, split on b"\\n" only (a lone CR or any other
    control character stays in the line); bytes that are not UTF-8 survive as
    surrogate escapes, so the encoder sees the original bytes."""
    while True:
        raw = stream.readline()
        if not raw:
            return
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        yield raw.decode("utf-8", "surrogateescape")


def terminal_lines(history: str | None) -> Iterator[str]:
    """`You: ` prompts with readline editing and history (saved to `history`)."""
    try:
        import readline
    except ImportError:  # e.g. a Python built without it: plain input()
        readline = None
    if readline is not None and history:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
        readline.set_history_length(1000)
    try:
        while True:
            try:
                yield input("You: ")
            except EOFError:
                print(flush=True)
                return
    finally:
        if readline is not None and history:
            with contextlib.suppress(OSError):
                readline.write_history_file(history)
