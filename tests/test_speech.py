"""jbrain.speech: eSpeak NG -> WAV -> pocketsphinx round trips, bad audio, the flag helpers,
and `jbrain chat --speak/--listen` end to end (subprocesses, like tests/test_chat.py).

The round trips need the speech extra (CI installs it with .[test]); the pure parts (how a
reply is spoken, the flag parsers, the voice-activity segmenter, the chat without the extra)
run without it.
"""

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
import wave

import numpy as np
import pytest

from jbrain import speech

CUES = ["hello brain", "red", "green", "blue"]


@pytest.fixture(scope="module")
def extra():
    for module in ("espeakng_loader", "pocketsphinx", "soundfile"):
        if importlib.util.find_spec(module) is None:  # absent: skip; present but broken: fail
            pytest.importorskip(module, reason=f"the speech extra is not installed ({speech.INSTALL})")
        importlib.import_module(module)
    return speech


def _one_line(message: str) -> str:
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- without the extra


def test_import_loads_no_engine():
    code = (
        "import sys, jbrain.speech; "
        "print(sorted(m for m in ('pocketsphinx', 'soundfile', 'sounddevice', 'espeakng_loader') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    def absent(name, *args, **kwargs):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(speech.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(speech.importlib, "import_module", absent)
    monkeypatch.setattr(speech._ESpeak, "_instance", None)
    monkeypatch.setattr(speech._Recognizer, "_cache", {})
    calls = {
        "espeakng-loader": lambda: speech.synthesize("red"),
        "pocketsphinx": lambda: speech.recognize_file(tmp_path / "x.wav"),
        "sounddevice": lambda: speech.check_microphone(),
    }
    for package, call in calls.items():
        with pytest.raises(speech.SpeechUnavailable) as e:
            call()
        msg = _one_line(str(e.value))
        assert msg.startswith("speech needs the optional extra: pip install 'jbrain[speech]' (missing: ")
        assert package in msg and isinstance(e.value, ValueError)


def test_gibberish_is_read_as_words_or_spelled():
    assert speech.spoken_tokens("red, xq3!") == [("word", "red"), ("spell", "xq"), ("spell", "3")]
    assert speech.spoken_tokens("Hello brain") == [("word", "hello"), ("word", "brain")]
    assert speech.spoken_tokens("qwerty a") == [("word", "qwerty"), ("spell", "a")]
    assert speech.spoken_tokens("!?., ;") == []
    assert speech.to_ssml("") == "" and speech.to_ssml("..") == ""
    assert speech.to_ssml("ok 42") == '<speak>ok <say-as interpret-as="characters">42</say-as></speak>'
    assert "SPEAK" not in speech.SPEAK_HELP and "spelled" in speech.SPEAK_HELP


def test_parse_listen(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    assert speech.parse_listen(None) is None and speech.parse_listen(" ") is None
    assert speech.parse_listen("mic") == "mic" and speech.parse_listen("MIC") == "mic"
    assert speech.parse_listen(f"{a}, {b}") == [a, b]
    with pytest.raises(ValueError) as e:
        speech.parse_listen(f"{a},{tmp_path / 'nope.wav'}")
    msg = _one_line(str(e.value))
    assert msg.startswith("--listen=") and "no such file" in msg and "--listen=mic" in msg
    with pytest.raises(ValueError, match="empty file name"):
        speech.parse_listen(f"{a},,{b}")
    with pytest.raises(ValueError, match="not a file"):
        speech.parse_listen(str(tmp_path))


def test_parse_speak_and_bare_flag(tmp_path):
    assert speech.parse_speak(None) is None and speech.parse_speak("false") is None
    assert speech.parse_speak("play") == "play" and speech.parse_speak("true") == "play"
    assert speech.parse_speak(str(tmp_path / "out")) == tmp_path / "out"
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError, match="--speak=.*not a directory"):
        speech.parse_speak(str(f))
    argv = ["chat", "--speak", "--live=false"]
    assert speech.expand_bare_speak(argv) == ["chat", "--speak=play", "--live=false"]
    assert speech.expand_bare_speak(["chat", "--speak"]) == ["chat", "--speak=play"]
    assert speech.expand_bare_speak(["chat", "--speak", "dir"]) == ["chat", "--speak", "dir"]


def test_segmenter_cuts_at_pauses():
    rate = 16000
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * rate)) / rate
    burst = 0.3 * np.sin(2 * np.pi * 220 * t)
    pause = np.zeros(rate)
    signal = np.concatenate([pause, burst, pause, burst, pause])
    signal += rng.normal(0, 1e-3, signal.size)
    blocks = np.array_split(signal.astype(np.float32), 97)  # odd block sizes
    cuts = list(speech.segment_utterances(blocks, rate))
    assert len(cuts) == 2
    for cut in cuts:  # the burst, plus the pre-roll and a little of the pause
        assert 0.4 * rate <= cut.size <= 1.2 * rate
    noise = rng.normal(0, 0.05, 3 * rate).astype(np.float32)
    assert list(speech.segment_utterances([noise], rate)) == []
    assert speech.speech_spans(noise) == []


# --------------------------------------------------------------------------- round trips


@pytest.fixture(scope="module")
def cue_wavs(extra, tmp_path_factory):
    d = tmp_path_factory.mktemp("cues")
    paths = {}
    for cue in CUES:
        paths[cue] = d / f"{cue.replace(' ', '_')}.wav"
        samples = extra.synthesize(cue, paths[cue])
        assert samples.dtype == np.int16 and samples.size > 0.2 * extra.SYNTH_SAMPLE_RATE
    return paths


@pytest.mark.parametrize("cue", CUES)
def test_round_trip_with_word_list(extra, cue_wavs, cue):
    with wave.open(str(cue_wavs[cue])) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 22050, 2)
    assert extra.recognize_file(cue_wavs[cue], words=CUES) == cue


def test_round_trip_stereo_44k_two_cues_and_a_pause(extra, tmp_path):
    import soundfile as sf

    def cue(text):
        return extra.synthesize(text).astype(np.float32) / 32768

    pause = np.zeros(int(0.8 * extra.SYNTH_SAMPLE_RATE), np.float32)
    x = extra.resample(
        np.concatenate([cue("red"), pause, cue("hello brain")]), extra.SYNTH_SAMPLE_RATE, 44100
    )
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 44100, subtype="FLOAT")
    assert extra.recognize_file(path, words=CUES) == "red hello brain"  # one cue per stretch of speech


def test_dictation_runs(extra, cue_wavs):
    text = extra.recognize_file(cue_wavs["hello brain"])  # the bundled language model
    assert isinstance(text, str) and text


def test_microphone_stream_is_cut_and_recognised(extra):
    rate = extra.SAMPLE_RATE
    parts = [np.zeros(rate // 2, np.float32)]
    for cue in ("red", "blue"):
        s = extra.synthesize(cue).astype(np.float32) / 32768
        parts += [extra.resample(s, extra.SYNTH_SAMPLE_RATE, rate), np.zeros(rate, np.float32)]
    stream = np.concatenate(parts) + np.random.default_rng(1).normal(0, 1e-3, sum(map(len, parts)))
    blocks = np.array_split(stream.astype(np.float32), len(stream) // 320)
    heard = [extra.recognize(u, rate, CUES) for u in extra.segment_utterances(blocks, rate)]
    assert heard == ["red", "blue"]


class _FakeMicrophone:
    """sounddevice's stand-in: each phase of audio is delivered (in 20 ms blocks) once its gate opens."""

    PortAudioError = RuntimeError

    def __init__(self, phases):
        self.phases = phases
        self.gates = [threading.Event() for _ in phases]

    def query_devices(self, device=None, kind=None):
        return {"name": "fake microphone", "max_input_channels": 1, "default_samplerate": 16000.0}

    def check_input_settings(self, **kwargs):
        return None

    def InputStream(self, *, callback, blocksize, **kwargs):
        mic = self

        class Stream:
            active = False

            def __enter__(self):
                self.active = True
                threading.Thread(target=self.run, daemon=True).start()
                return self

            def __exit__(self, *exc):
                self.active = False

            def run(self):
                for gate, audio in zip(mic.gates, mic.phases, strict=True):
                    gate.wait(10)
                    for i in range(0, audio.size, blocksize):
                        block = audio[i : i + blocksize].reshape(-1, 1)
                        callback(block, block.shape[0], None, None)
                self.active = False

        return Stream()


def test_listen_mic_with_a_fake_microphone(extra, monkeypatch):
    rate = extra.SAMPLE_RATE
    rng = np.random.default_rng(3)

    def phase(cue):
        s = extra.resample(extra.synthesize(cue).astype(np.float32) / 32768, extra.SYNTH_SAMPLE_RATE, rate)
        x = np.concatenate([np.zeros(rate // 2), s, np.zeros(rate)])
        return (x + rng.normal(0, 1e-3, x.size)).astype(np.float32)

    mic = _FakeMicrophone([phase("red"), phase("blue"), phase("green")])
    monkeypatch.setattr(extra, "_sounddevice", lambda what, fix: mic)
    utterances = extra.listen_mic(CUES)
    mic.gates[0].set()
    assert next(utterances) == "red"
    threading.Timer(0.2, mic.gates[1].set).start()  # spoken after the chat is listening again
    assert next(utterances) == "blue"
    mic.gates[2].set()  # spoken while the chat is busy (the brain answering): dropped
    time.sleep(0.3)
    with pytest.raises(extra.AudioError, match="the microphone stopped delivering audio"):
        next(utterances)


def test_speak_writes_numbered_wavs(extra, tmp_path):
    out = tmp_path / "replies"
    assert extra.speak("kq3 ,x!z", out) == out / "reply-0001.wav"
    assert extra.speak("", out) == out / "reply-0002.wav"  # nothing to say: a short silence
    (out / "reply-0007.wav").write_bytes(b"")
    assert extra.speak("red", out) == out / "reply-0008.wav"
    with wave.open(str(out / "reply-0002.wav")) as w:
        assert w.getnframes() == extra.SYNTH_SAMPLE_RATE // 4
    assert extra.recognize_file(out / "reply-0008.wav", CUES) == "red"


# --------------------------------------------------------------------------- bad audio


def _noise_wav(path, rate=16000, seconds=2.0):
    x = np.random.default_rng(2).normal(0, 3000, int(rate * seconds))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(x, -32768, 32767).astype("<i2").tobytes())


def test_bad_audio_gets_one_line(extra, cue_wavs, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    noise = tmp_path / "noise.wav"
    _noise_wav(noise)
    silence = tmp_path / "silence.wav"
    extra.synthesize("", silence)
    whole = cue_wavs["green"].read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole[: len(whole) // 2])
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(whole[:30])
    cases = {
        empty: "empty file (0 bytes)",
        text: "not a WAV file",
        noise: "no speech heard (silence or noise only)",
        silence: "no speech heard (silence or noise only)",
        truncated: "truncated WAV: the header announces",
        header_only: "truncated WAV: the file ends inside its 'fmt' chunk",
        tmp_path / "missing.wav": "no such file",
    }
    for path, expected in cases.items():
        for words in (CUES, None):
            with pytest.raises(extra.AudioError) as e:
                extra.recognize_file(path, words)
            msg = _one_line(str(e.value))
            assert msg.startswith(f"{path}: ") and expected in msg, msg
    with pytest.raises(extra.NoSpeech):
        extra.recognize_file(noise, CUES)


def test_hear_goes_on_after_bad_files(extra, cue_wavs, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    heard = list(extra.hear([cue_wavs["blue"], empty, cue_wavs["hello brain"]], CUES))
    assert [h.text for h in heard] == ["blue", "", "hello brain"]
    assert heard[1].error.endswith("empty file (0 bytes), not a recording") and heard[0].error is None


def test_load_words(extra, tmp_path):
    f = tmp_path / "words.txt"
    f.write_text("# cues\nHello   Brain\nred\n\nred  # again\ngreen\nblue\n")
    assert extra.load_words(f) == CUES
    f.write_text("red\nxyzzyq\n")
    with pytest.raises(ValueError) as e:
        extra.load_words(f)
    msg = _one_line(str(e.value))
    assert msg.startswith(f"--listen_words={f}: line 2: 'xyzzyq' is not in the recogniser's")
    f.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="no words in the file"):
        extra.load_words(f)
    with pytest.raises(ValueError, match="no such file"):
        extra.load_words(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="not in the recogniser's"):
        extra.recognize_file(tmp_path / "nope.wav", ["red", "xyzzyq"])


def test_no_microphone_is_one_line(extra):
    try:
        name = extra.check_microphone()
    except extra.AudioError as e:
        msg = _one_line(str(e))
        assert msg.startswith("cannot listen to the microphone") or msg.startswith("no microphone")
        assert "--listen=FILE.wav" in msg
        with pytest.raises(extra.AudioError):
            next(extra.listen_mic(CUES))
    except extra.SpeechUnavailable as e:  # sounddevice itself is absent
        assert speech.INSTALL in str(e)
    else:
        pytest.skip(f"this machine has a microphone ({name})")


# --------------------------------------------------------------------------- jbrain chat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAT = ["chat", "--flagfile=experiments/configs/small.flags", "--n_neurons=2000"]
REPLY = re.compile(r"Brain: .{8}")  # --reply_chars=8
HIDE_EXTRA = (  # the extra "not installed": find_spec() is None, import raises ImportError
    "import sys\n"
    "for m in ('pocketsphinx', 'espeakng_loader', 'soundfile', 'sounddevice'):\n"
    "    sys.modules[m] = None\n"
)
RUN_CLI = "from experiments import cli\ncli.main(['jbrain', *sys.argv[1:]])\n"


def _env() -> dict[str, str]:
    e = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    e.pop("OUT", None)
    return e


def _chat(*flags, workdir, code=None, timeout=120) -> subprocess.CompletedProcess:
    """`jbrain chat FLAGS` (stdin empty, not a terminal); `code` runs first, then the CLI."""
    head = [sys.executable, "-c", code + RUN_CLI] if code else [sys.executable, "-m", "experiments.cli"]
    return subprocess.run(
        [*head, *CHAT, f"--workdir={workdir}", *flags],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=timeout,
    )


def _error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert err.startswith("jbrain chat: error: ") and "\n" not in err and p.stdout == "", err
    return err


def test_chat_round_trip_hears_cues_and_speaks_replies(extra, cue_wavs, tmp_path):
    """The issue's CI round trip: eSpeak NG WAVs -> --listen with the cue word list -> one
    answer per utterance, each spoken to a WAV; bad files in between get one line each."""
    empty, noise = tmp_path / "empty.wav", tmp_path / "noise.wav"
    empty.write_bytes(b"")
    _noise_wav(noise)
    words = tmp_path / "words.txt"
    words.write_text("\n".join(CUES) + "\n")
    files = [cue_wavs["hello brain"], empty, cue_wavs["red"], noise, cue_wavs["green"], cue_wavs["blue"]]
    replies = tmp_path / "replies"
    p = _chat(
        "--fresh",
        f"--listen={','.join(map(str, files))}",
        f"--listen_words={words}",
        f"--speak={replies}",
        workdir=tmp_path / "brain",
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0::2] == [f"You (heard): {cue}" for cue in CUES], p.stdout
    assert len(lines) == 2 * len(CUES) and all(REPLY.fullmatch(line) for line in lines[1::2]), p.stdout
    err = p.stderr.splitlines()
    assert f"jbrain chat: {empty}: empty file (0 bytes), not a recording" in err, p.stderr
    assert f"jbrain chat: {noise}: no speech heard (silence or noise only)" in err, p.stderr
    assert "Traceback" not in p.stderr and "chat done: 4 messages" in err[-1]
    wavs = sorted(replies.iterdir())
    assert [w.name for w in wavs] == [f"reply-{i:04d}.wav" for i in range(1, 5)]
    for w in wavs:
        with wave.open(str(w)) as f:
            assert (f.getnchannels(), f.getframerate()) == (1, extra.SYNTH_SAMPLE_RATE) and f.getnframes() > 0


MIC_CODE = """
import sys, threading
sys.path.insert(0, {tests!r})
import numpy as np
from jbrain import chat, speech
from test_speech import _FakeMicrophone

rate = speech.SAMPLE_RATE
def phase(cue):
    s = speech.resample(speech.synthesize(cue).astype(np.float32) / 32768, speech.SYNTH_SAMPLE_RATE, rate)
    x = np.concatenate([np.zeros(rate // 2), s, np.zeros(rate)])
    return (x + np.random.default_rng(3).normal(0, 1e-3, x.size)).astype(np.float32)

mic = _FakeMicrophone([phase("red"), phase("hello brain")])
speech._sounddevice = lambda what, fix: mic
mic.gates[0].set()
handle, answered = chat.Chat.handle, []
def handle_then_talk(self, line):  # the next utterance once the chat listens again
    keep = handle(self, line)
    answered.append(line)
    if len(answered) < len(mic.gates):
        threading.Timer(0.3, mic.gates[len(answered)].set).start()
    return keep
chat.Chat.handle = handle_then_talk
"""


def test_chat_listens_to_a_microphone(extra, tmp_path):
    """--listen=mic with a stand-in for sounddevice: two utterances, two answers; when the
    microphone stops, one line and the chat ends as at end of input (exit 0)."""
    words = tmp_path / "words.txt"
    words.write_text("\n".join(CUES) + "\n")
    code = MIC_CODE.format(tests=os.path.dirname(os.path.abspath(__file__)))
    p = _chat("--listen=mic", f"--listen_words={words}", workdir=tmp_path, code=code)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0::2] == ["You (heard): red", "You (heard): hello brain"], p.stdout
    assert len(lines) == 4 and all(REPLY.fullmatch(line) for line in lines[1::2]), p.stdout
    assert "jbrain chat: the microphone stopped delivering audio" in p.stderr.splitlines()
    assert "chat done: 2 messages" in p.stderr


@pytest.mark.parametrize("flag", ["--speak", "--speak={tmp}/replies", "--listen={tmp}/a.wav"])
def test_chat_without_the_extra_names_the_pip_command(tmp_path, flag):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    p = _chat(flag.format(tmp=tmp_path), workdir=tmp_path / "brain", code=HIDE_EXTRA)
    err = _error_line(p)
    assert err.startswith(f"jbrain chat: error: speech needs the optional extra: {speech.INSTALL} (missing: ")
    assert not (tmp_path / "replies").exists() and not (tmp_path / "brain").exists()  # before anything


def _has_speakers() -> bool:
    try:
        import sounddevice as sd

        return sd.query_devices(kind="output")["max_output_channels"] > 0
    except Exception:  # no sounddevice, no PortAudio, no device
        return False


def _has_microphone() -> bool:
    try:
        speech.check_microphone()
        return True
    except ValueError:  # AudioError, SpeechUnavailable
        return False


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--listen_words={tmp}/words.txt"], "--listen_words=.* is only used with --listen"),
        (["--listen=mic"], "microphone.*--listen=FILE.wav"),
        (["--speak", "--live=false"], "cannot play the replies.*use --speak=DIR"),
    ],
)
def test_chat_speech_flags_fail_in_one_line(tmp_path, flags, message):
    if "--listen=mic" in flags and (speech.missing("listen") or _has_microphone()):
        pytest.skip("needs the extra and a machine without a microphone")
    if "--speak" in flags and (speech.missing("speak") or _has_speakers()):
        pytest.skip("needs the extra and a machine without speakers")
    (tmp_path / "words.txt").write_text("red\n")
    p = _chat(*(f.format(tmp=tmp_path) for f in flags), workdir=tmp_path / "brain")
    assert re.search(message, _error_line(p)), p.stderr


def test_chat_help_says_how_replies_are_spoken():
    p = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "chat", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert " ".join(speech.SPEAK_HELP.split()) in text
    for flag in ("--speak:", "--listen:", "--listen_words:", "pip install 'jbrain[speech]'"):
        assert flag in text
