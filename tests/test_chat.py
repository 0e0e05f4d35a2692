"""The chat: `jbrain.chat.Chat` in process (replies, commands, /save, input
limits, warnings), and `jbrain chat` end to end (piped stdin reproduces the
in-process transcript byte for byte, a restored chat answers as the one that
never stopped, bad flags, a pseudo-terminal, the live brain and Ctrl-C)."""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, cli_env, jbrain_cli, preset_config, small

from jbrain import checkpoint
from jbrain.chat import Chat, piped_lines
from jbrain.session import Session
from jbrain.text import ALPHABET, Codec, reply

SMALL = small(plasticity=True)  # what `jbrain chat --n_neurons=2000` runs (plasticity is on in chat)
BRAIN = ["--n_neurons=2000"]
REPLY = re.compile(r"Brain: [" + re.escape(ALPHABET) + r"]{8}")
STATS = re.compile(r"step (\d+), firing rate (0\.\d{4}), mean threshold (\d\.\d{4}), messages (\d+)")
HELP = [
    "Type a message; the brain answers with 8 characters after a 200-step reply.",
    "Commands:",
    "  /help    this help",
    "  /stats   step, firing rate, mean threshold, messages so far, mood",
    "  /save    save the brain (a checkpoint in the workdir)",
    "  /quit    leave (so do Ctrl-D and Ctrl-C)",
]


def new_chat(session: Session, **kw) -> tuple[Chat, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Chat(session, Codec.for_circuit(session.circuit), out=out, err=err, **kw), out, err


# ------------------------------------------------------------ in process ---


def test_a_message_gets_the_brains_reply_and_advances_it():
    s = Session.new(SMALL, seed=0)
    chat, out, err = new_chat(s)
    assert chat.handle("hello") is True
    twin = Session.new(SMALL, seed=0)
    assert out.getvalue() == f"Brain: {reply(twin, chat.codec, 'hello')}\n"
    assert REPLY.fullmatch(out.getvalue().strip())
    assert (s.step, s.messages, err.getvalue()) == (200, 1, "")


def test_commands_answer_without_stepping_the_brain():
    s = Session.new(SMALL, seed=0)
    chat, out, err = new_chat(s)
    chat.handle("hello")
    out.seek(0)
    out.truncate()
    for line in ("/stats", "  /STATS now", "/help", "/nonsense"):
        assert chat.handle(line) is True
    assert s.step == 200 and s.messages == 1
    lines = out.getvalue().splitlines()
    stats = f"step 200, firing rate {s.last_rate:.4f}, mean threshold {s.mean_threshold():.4f}, messages 1"
    assert STATS.fullmatch(stats)
    mood = "mood -- (this brain has no reward synapses: start one with --reward)"
    assert lines == [stats, mood, stats, mood, *HELP, "unknown command /nonsense", *HELP]
    assert chat.handle("/quit") is False
    assert chat.handle("/2 is not a command") is True  # a slash without a letter is text
    assert s.step == 400 and REPLY.fullmatch(out.getvalue().splitlines()[-1])
    assert err.getvalue() == ""


def test_save_writes_a_checkpoint_and_says_where(tmp_path):
    s = Session.open(SMALL, seed=0, workdir=str(tmp_path))
    chat, out, _ = new_chat(s)
    chat.handle("hello")
    chat.handle("/save")
    where = tmp_path / "checkpoints" / "200"
    assert out.getvalue().splitlines()[-1] == f"saved step 200 to {where}"
    assert checkpoint.restore(str(where)).meta["messages"] == 1
    s.close(save=False)
    # a brain without a workdir cannot save: the chat says so and why
    chat, out, err = new_chat(Session.new(SMALL, seed=0))
    chat.handle("/save")
    assert out.getvalue() == "nothing saved\n"
    assert err.getvalue() == (
        "jbrain chat: warning: nothing saved: this brain has no checkpoint folder (no workdir)\n"
    )


def test_long_input_is_cut_with_a_note_and_warnings_are_flushed():
    s = Session.new(SMALL, seed=0)
    chat, out, err = new_chat(s, max_input_chars=10)
    s.warnings.append("something the session noticed")
    chat.handle("abcdefghijklmnop")
    assert err.getvalue().splitlines() == [
        "jbrain chat: input cut from 16 to 10 characters (--max_input_chars)",
        "jbrain chat: warning: something the session noticed",
    ]
    assert s.warnings == []
    twin = Session.new(SMALL, seed=0)
    assert out.getvalue() == f"Brain: {reply(twin, chat.codec, 'abcdefghij')}\n"


def test_an_ei_brain_talks_through_its_excitatory_ports():
    s = Session.new(preset_config("ei", n_neurons=2000), seed=0)
    chat, out, _ = new_chat(s)
    chat.handle("hello")
    chat.handle("hello")
    first, second = out.getvalue().splitlines()
    assert REPLY.fullmatch(first) and REPLY.fullmatch(second) and s.step == 400


def test_piped_lines_split_on_newline_only_and_keep_raw_bytes():
    stream = io.BytesIO(b"one\r\ntwo\rthree\n\xff\xfe x\n\nlast")
    assert list(piped_lines(stream)) == ["one", "two\rthree", "\udcff\udcfe x", "", "last"]


# ------------------------------------------------------ `jbrain chat` CLI ---

FIRST = (
    b"\n".join(
        [
            b"hello",
            b"/stats",
            b"/help",
            b"/nonsense",
            b"",  # an empty line is a message too
            "caf\u00e9 \U0001f600\ttab and \x01 control".encode(),
            b"x" * 1500,  # over --max_input_chars
            b"\xff\xfe not UTF-8 \r",  # raw bytes and a lone CR
            b"dog",
            b"/save",
            b"/quit",
            b"never answered",
        ]
    )
    + b"\n"
)
SECOND = b"cat\nwhy?\n/stats"  # no newline at the end


def in_process(workdir: str, seed: int, *parts: bytes) -> list[str]:
    """The chat of `jbrain chat` piped `parts`, in this process and without
    stopping between them: the stdout of each part (up to its /quit)."""
    s = Session.open(SMALL, seed=seed, workdir=workdir)
    outs = []
    for part in parts:
        chat, out, _ = new_chat(s)
        for line in piped_lines(io.BytesIO(part)):
            if not chat.handle(line):
                break
        outs.append(out.getvalue())
    s.close()
    return outs


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """FIRST then SECOND piped through `jbrain chat` (two processes, one
    workdir), and the same conversation held in this process without a
    restart (run first in the same folder, then moved aside, so that the
    paths printed are the same)."""
    base = tmp_path_factory.mktemp("chat")
    workdir = str(base / "wd")
    whole = in_process(workdir, 0, FIRST, SECOND)
    os.rename(workdir, base / "in_process")
    first = jbrain_cli("chat", *BRAIN, f"--workdir={workdir}", stdin=FIRST)
    second = jbrain_cli("chat", *BRAIN, f"--workdir={workdir}", stdin=SECOND)
    return base, whole, first, second


def test_piped_chat_answers_each_line_and_runs_commands(conversation):
    base, whole, first, _ = conversation
    assert first.returncode == 0, first.stderr
    out = first.stdout.decode()
    lines = out.splitlines()
    brain = [ln for ln in lines if ln.startswith("Brain: ")]
    assert len(brain) == 6, out  # hello, empty, emoji, long, bytes, dog; nothing after /quit
    assert all(REPLY.fullmatch(ln) for ln in brain), brain
    assert "You:" not in out  # no prompts when piped
    assert STATS.fullmatch(lines[1]) and STATS.fullmatch(lines[1]).group(1, 4) == ("200", "1")
    assert lines[2].startswith("mood -- ")
    assert lines[3 : 3 + len(HELP)] == HELP
    assert lines[3 + len(HELP)] == "unknown command /nonsense"
    assert lines[-1] == f"saved step 1200 to {base}/wd/checkpoints/1200"
    err = first.stderr.decode()
    assert "Traceback" not in err
    assert "jbrain chat: input cut from 1,500 to 1,000 characters (--max_input_chars)" in err.splitlines()
    assert re.fullmatch(
        rf"jbrain chat done: 6 messages, 1200 steps \(now at step 1200\), firing rate 0\.\d{{4}}, "
        rf"log {base}/wd/brain_debug.log, checkpoint {base}/wd/checkpoints/1200",
        err.splitlines()[-1],
    )


def test_the_piped_transcript_is_the_in_process_one_byte_for_byte(conversation):
    _, whole, first, _ = conversation
    assert first.stdout.decode() == whole[0]
    # and the seed matters: another brain answers otherwise
    other = in_process(str(conversation[0] / "seed1"), 1, FIRST)
    assert other[0] != whole[0] and other[0].count("Brain: ") == whole[0].count("Brain: ")


def test_a_restored_chat_answers_as_the_chat_that_never_stopped(conversation):
    base, whole, _, second = conversation
    assert second.returncode == 0, second.stderr
    assert second.stdout.decode() == whole[1]
    lines = whole[1].splitlines()
    assert len(lines) == 4 and STATS.fullmatch(lines[2]).group(1, 4) == ("1600", "8")
    assert lines[3].startswith("mood -- ")
    err = second.stderr.decode()
    assert f"jbrain chat: restored step 1200 from {base}/wd/checkpoints/1200 (saved " in err
    # end of input without /quit: exit 0 and the summary
    assert re.fullmatch(
        rf"jbrain chat done: 2 messages, 400 steps \(now at step 1600\), .*, "
        rf"checkpoint {base}/wd/checkpoints/1600",
        err.splitlines()[-1],
    )
    assert (base / "wd" / "brain_debug.log").read_bytes() == (
        base / "in_process" / "brain_debug.log"
    ).read_bytes()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--reply_chars=500"], "--reply_chars=500 must be between 1 and 100 (half of --reply_steps=200, "),
        (["--live=maybe"], "flag --live=maybe: "),
        (
            ["--preset=coba"],
            "the coba circuit has no text input or readout to talk through: chat with --preset=seed or "
            "--preset=ei",
        ),
        (
            ["--stdp=deferred", "--propagation=gather"],
            "--stdp=deferred cannot run projection 'W' on the gather path: use --stdp=eager, or drop "
            "--propagation / --synaptic_scaling",
        ),
    ],
    ids=["reply_chars", "live", "coba", "deferred-gather"],
)
def test_bad_flags_give_one_line_errors(tmp_path, flags, message):
    p = jbrain_cli("chat", *BRAIN, f"--workdir={tmp_path}", *flags, stdin=b"hi\n")
    assert p.returncode == 2
    err = p.stderr.decode()
    assert len(err.splitlines()) == 1 and err.startswith("jbrain chat: error: "), err
    assert message in err
    assert p.stdout == b"" and os.listdir(tmp_path) == []  # no brain born, nothing written


def test_help_describes_the_chat_and_its_flags():
    p = jbrain_cli("chat", "--help")
    assert p.returncode == 0
    text = p.stdout.decode()
    assert text.startswith("jbrain chat: talk to the brain.")
    for flag in ("--reply_steps", "--reply_chars", "--max_input_chars", "--[no]live", "--n_neurons",
                 "--propagation", "--spike_buffer", "--workdir"):  # fmt: skip
        assert flag in text, flag


def _chat_cmd(*flags: str) -> list[str]:
    return [sys.executable, "-m", "experiments.cli", "chat", *BRAIN, *flags]


def _read_until(stream, pattern: bytes, timeout: float) -> bytes:
    buf, end = b"", time.monotonic() + timeout
    fd = stream if isinstance(stream, int) else stream.fileno()
    while pattern not in buf and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_live_chat_keeps_stepping_and_ctrl_c_exits_0(tmp_path):
    p = subprocess.Popen(
        _chat_cmd(f"--workdir={tmp_path}", "--live", "--live_steps_per_s=0"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=ROOT,
    )
    try:
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        assert REPLY.search(_read_until(p.stdout, b"\n", 120).decode())
        log = tmp_path / "brain_debug.log"
        deadline = time.monotonic() + 60
        while len(log.read_text().splitlines()) < 1 + 3 * 200 and time.monotonic() < deadline:
            time.sleep(0.1)  # the brain lives on between messages
        assert len(log.read_text().splitlines()) >= 1 + 3 * 200
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    summary = err.decode().strip().splitlines()[-1]
    m = re.fullmatch(r"jbrain chat interrupted: 1 message, (\d+) steps \(now at step (\d+)\).*", summary)
    assert m, summary
    step = int(m.group(2))
    assert step % 200 == 0 and step >= 600  # whole bursts only
    lines = log.read_text().splitlines()
    assert len(lines) == step + 1 and lines[-1].startswith(f"{step}\t")  # flushed
    assert checkpoint.complete_steps(str(tmp_path / "checkpoints")) == [step]  # saved on the way out


def test_terminal_has_a_prompt_and_ctrl_d_leaves(tmp_path):
    fd, tty = os.openpty()  # chat on a pseudo-terminal: stdin is a tty
    p = subprocess.Popen(
        _chat_cmd(f"--workdir={tmp_path}", "--live_steps_per_s=200"),
        stdin=tty,
        stdout=tty,
        stderr=tty,
        env=cli_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(tty)
    try:
        banner = _read_until(fd, b"You: ", 120)
        assert b"jbrain chat: 2,000 neurons, seed 0, live;" in banner  # live by default
        os.write(fd, b"hi\r")
        answer = _read_until(fd, b"You: ", 60)
        assert REPLY.search(answer.decode()), answer
        os.write(fd, b"\x04")  # Ctrl-D
        rest = _read_until(fd, b"jbrain chat done", 60)
        assert b"jbrain chat done: 1 message" in rest, rest
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(fd)
    assert (tmp_path / "chat_history").read_text().splitlines()[-1] == "hi"
