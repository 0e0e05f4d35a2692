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

Speech, offline (needs `pip install 'jbrain[speech]'`; without it these flags
print that command and exit 2): `--speak` plays each reply on the speakers,
`--speak=DIR` writes one WAV per reply into DIR (reply-0001.wav, ...; numbering
goes on after the files already there). `--listen=mic` or
`--listen=FILE.wav[,FILE2.wav...]` replaces typed input: each utterance heard
is printed as `You (heard): TEXT` and sent as a message; a bad file or a sound
without words gets one line on stderr and the chat goes on. After the last
file the chat ends as at end of input; with the microphone it runs until
Ctrl-C. `--listen_words=FILE` hears only the words/phrases listed in FILE.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from absl import flags

from experiments import common
from jbrain import speech
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

flags.DEFINE_string("speak", None, speech.SPEAK_HELP + " A bare --speak means --speak=play.")
flags.DEFINE_string(
    "listen",
    None,
    speech.LISTEN_HELP + " Typed or piped input is not read then: after the last file the chat "
    "ends as at end of input; with mic it runs until Ctrl-C.",
)
flags.DEFINE_string("listen_words", None, speech.LISTEN_WORDS_HELP)

HISTORY_NAME = "chat_history"


@dataclasses.dataclass(frozen=True)
class Voice:
    """The speech flags, checked: `speak` is "play", a directory or None; `listen` is "mic",
    the files or None; `words` the --listen_words list (None: open dictation)."""

    speak: str | Path | None = None
    listen: str | list[Path] | None = None
    words: list[str] | None = None


def voice_from_flags() -> Voice:
    """--speak, --listen and --listen_words, checked before the brain is born: a missing
    extra, a bad file or word list, no microphone or speakers raise a one-line ValueError."""
    # The extra is checked first: without it, only the pip command is reported.
    try:
        speak = speech.parse_speak(FLAGS.speak)
    except ValueError:
        speech.require("speak")
        raise
    try:
        listen = speech.parse_listen(FLAGS.listen)
    except ValueError:
        speech.require("listen")
        raise
    if speak is not None:
        speech.require("speak", *(("device",) if speak == "play" else ()))
    if listen is not None:
        speech.require("listen", *(("device",) if listen == "mic" else ()))
    words = None
    if FLAGS.listen_words:
        if listen is None:
            raise ValueError(
                f"--listen_words={FLAGS.listen_words} is only used with --listen: "
                "add --listen=mic or --listen=FILE.wav"
            )
        words = speech.load_words(FLAGS.listen_words)
    if listen == "mic":
        speech.check_microphone()  # no input device: AudioError, one line
    if speak == "play":
        _check_speakers()
    return Voice(speak, listen, words)


def _check_speakers() -> None:
    fix = "use --speak=DIR to write WAV files instead"
    sd = speech._sounddevice("play the replies", fix)  # no PortAudio: AudioError with the fix
    try:
        info = sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError) as e:
        reason = " ".join(str(e).split())
        raise speech.AudioError(f"cannot play the replies: no audio output device ({reason}); {fix}") from e
    if int(info.get("max_output_channels", 0)) < 1:
        raise speech.AudioError(f"cannot play the replies: {info.get('name')} has no output channels; {fix}")


class _Speaker:
    """Chat's on_reply for --speak: plays or writes each reply; on the first failure
    (the device went away, the disk is full) one warning, then the chat goes on silent."""

    def __init__(self, target: str | Path) -> None:
        self.out_dir = None if target == "play" else target
        self.on = True

    def __call__(self, text: str) -> None:
        if not self.on:
            return
        try:
            speech.speak(text, self.out_dir)
        except (speech.AudioError, OSError) as e:
            self.on = False
            reason = " ".join(str(e).split())
            print(
                f"jbrain chat: warning: {reason}; replies are no longer spoken", file=sys.stderr, flush=True
            )


def heard_lines(chat: Chat, voice: Voice) -> Iterator[str]:
    """--listen as the chat's input lines: prints `You (heard): TEXT` and yields TEXT; an
    utterance without words (a bad file, noise) gets one line on stderr and is skipped."""
    for heard in speech.hear(voice.listen, voice.words):
        if not heard.text:
            chat.note(heard.error if heard.source != "mic" else f"microphone: {heard.error}")
            continue
        chat.say(f"You (heard): {heard.text}")
        yield heard.text


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
    voice = voice_from_flags()
    config = common.brain_config_from_flags()
    codec = Codec.for_circuit(config.circuit(), reply_steps=FLAGS.reply_steps, reply_chars=FLAGS.reply_chars)
    workdir = common.prepare_workdir(FLAGS.workdir)
    interactive = sys.stdin.isatty()
    live_on = interactive if FLAGS.live is None else FLAGS.live
    sys.exit(chat_loop(config, codec, workdir, interactive=interactive, live_on=live_on, voice=voice))


def chat_loop(
    config, codec: Codec, workdir: str, *, interactive: bool, live_on: bool, voice: Voice | None = None
) -> int:
    """Run the conversation on stdin/stdout (or `voice.listen`); returns the exit code."""
    voice = voice or Voice()
    sigint = _Sigint()
    sigint.busy = True  # Ctrl-C while the brain is born: stop once it is
    session, live, lines, start_step, start_messages = None, None, None, 0, 0
    how, error, saved = "done", None, None
    try:
        # Restores WORKDIR/checkpoints unless --fresh; plasticity is the chat's flag.
        session = common.open_session("chat", config, workdir, always=("plasticity",))
        config = session.config  # a restored brain's own, and so its ports (a teachable one, say)
        codec = Codec.for_circuit(
            session.circuit, reply_steps=codec.reply_steps, reply_chars=codec.reply_chars
        )
        start_step, start_messages = session.step, session.messages
        if live_on:
            burst = FLAGS.live_burst or codec.reply_steps
            # Same length and an all-zero stimulus: the reply's compiled program.
            same = burst == codec.reply_steps
            stims = np.zeros((burst, session.circuit.input_channels), np.float32) if same else None
            live = LiveLoop(session, burst=burst, stims=stims, steps_per_s=FLAGS.live_steps_per_s).start()
        speaker = _Speaker(voice.speak) if voice.speak is not None else None
        chat = Chat(session, codec, max_input_chars=FLAGS.max_input_chars, live=live, on_reply=speaker)
        if isinstance(voice.speak, Path):
            chat.note(f"replies are written to {voice.speak}/reply-NNNN.wav")
        mode = "live" if live else "paused between messages"
        intro = f"jbrain chat: {config.n_neurons:,} neurons, seed {session.seed}, {mode}; "
        if voice.listen is not None:
            if interactive:
                where = "the microphone" if voice.listen == "mic" else _plural(len(voice.listen), "file")
                chat.say(intro + f"listening to {where}; Ctrl-C to leave.")
            lines = heard_lines(chat, voice)
        elif interactive:
            chat.say(intro + "/help for commands, /quit or Ctrl-D to leave.")
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
    except speech.AudioError as e:  # the microphone went away: the end of input
        print(f"jbrain chat: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
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
    common.run_app("chat", main, speech.expand_bare_speak(argv))


if __name__ == "__main__":
    launch(sys.argv)
