"""Speech in and out, offline: eSpeak NG speaks, pocketsphinx listens.

Everything ships in pip wheels (the optional extra, ``pip install 'jbrain[speech]'``):

    espeakng-loader   libespeak-ng and its data, driven here through ctypes (synthesis)
    pocketsphinx      the recogniser with its en-US acoustic model, dictionary and language model
    soundfile         reads WAV (and FLAC/OGG/AIFF) recordings
    sounddevice       microphone and speakers; on Linux it needs the system's PortAudio
                      (``apt-get install libportaudio2``), only for ``--listen=mic`` and
                      for playing on speakers: files work without it

Importing this module needs only NumPy; each function imports its engine on first use and
raises `SpeechUnavailable` (one line naming the pip command) when the extra is missing.

Speaking: `synthesize` turns text into 16-bit mono samples at `SYNTH_SAMPLE_RATE` (22050 Hz),
`speak` plays them or writes one WAV per call (reply-0001.wav, reply-0002.wav, ...). How a
reply of gibberish is read is `SPEAK_HELP` (and `spoken_tokens`, its implementation).

Listening: `recognize` (samples) and `recognize_file` (a recording) return the words heard;
`listen_mic` yields utterances from the default microphone, cut by an energy voice-activity
detector (`segment_utterances`, pure NumPy). The recogniser hears 16 kHz mono; any other
rate or channel count is mixed down and resampled (band-limited, NumPy FFT). Two modes:

    words=None   open dictation with pocketsphinx's bundled en-US language model
    words=[...]  a grammar that accepts exactly one of the listed words/phrases per stretch
                 of speech between pauses (>= 0.5 s): far more accurate for short commands
                 such as the taught cues; "red <pause> green" is heard as "red green". It
                 cannot say "none of these": other speech comes out as the nearest phrase.

Bad audio raises `AudioError` (a ValueError) with a one-line message: a missing or empty
file, a file that is not audio, a truncated WAV (the header announces more audio than the
file holds), a rate below 8 kHz. Silence or noise only raises its subclass `NoSpeech`
("no speech heard"), and so does speech in which no words were recognised: the caller
catches `AudioError`, prints the message on one line and goes on. `listen_mic` instead
yields "" for a sound in which no words were recognised, and skips silence and noise.

Flags (wired by the chat): `parse_speak` for ``--speak[=DIR]``, `parse_listen` for
``--listen=mic|FILE.wav[,FILE2.wav...]``, `load_words` for ``--listen_words=FILE``, and
`hear`, which turns a parsed ``--listen`` into a stream of `Heard` utterances.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import importlib.util
import os
import queue
import re
import struct
import threading
import wave
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

INSTALL = "pip install 'jbrain[speech]'"

SPEAK_HELP = (
    "Speak each reply too (eSpeak NG, en-us voice, offline): --speak plays it on the speakers, "
    "--speak=DIR writes one WAV per reply (DIR/reply-0001.wav, ...) instead. "
    "Gibberish is read like this: a run of 2+ letters with a vowel is read as a word ('red', "
    "'qwerty'); any other letters and all digits are spelled out one by one ('xq3' -> 'ex queue "
    "three'); punctuation and spaces are not spoken; a reply with nothing to speak is a short silence."
)
LISTEN_HELP = (
    "Talk instead of typing (pocketsphinx, offline): --listen=mic records from the default "
    "microphone, one utterance per pause; --listen=FILE.wav[,FILE2.wav...] recognises the files "
    "in order (any rate, mono or stereo: resampled to 16 kHz mono). Each one heard is printed "
    "as 'You (heard): TEXT' and sent to the brain. Open dictation unless --listen_words is given."
)
LISTEN_WORDS_HELP = (
    "A text file with one word or phrase per line ('#' starts a comment): --listen hears only "
    "these, one listed word or phrase per stretch of speech between pauses, which is far more "
    "accurate than open dictation for short commands such as the taught cues (other speech comes "
    "out as the nearest listed phrase). Words must be in pocketsphinx's English dictionary."
)

SAMPLE_RATE = 16000  # what the recogniser hears
SYNTH_SAMPLE_RATE = 22050  # what eSpeak NG speaks (checked when it starts)
MIN_SAMPLE_RATE = 8000
REPLY_PATTERN = "reply-{:04d}.wav"


class SpeechUnavailable(ValueError):
    """The optional extra (or part of it) is not installed."""


class AudioError(ValueError):
    """Audio that cannot be used: missing, empty, not audio, truncated, no device."""


class NoSpeech(AudioError):
    """Audio that was read but held no recognisable speech (silence, noise, no words)."""


class UnknownWord(ValueError):
    """A listed word that is not in the recogniser's dictionary (`word` names it)."""

    def __init__(self, word: str) -> None:
        super().__init__(
            f"{word!r} is not in the recogniser's English dictionary (cmudict); use common English words"
        )
        self.word = word


def _one_line(x: object) -> str:
    return " ".join(str(x).split())


# --------------------------------------------------------------------------- availability

_PARTS = {
    "speak": ("espeakng_loader",),
    "listen": ("pocketsphinx", "soundfile"),
    "device": ("sounddevice",),
}
_DISTRIBUTIONS = {
    "espeakng_loader": "espeakng-loader",
    "pocketsphinx": "pocketsphinx",
    "soundfile": "soundfile",
    "sounddevice": "sounddevice",
}


def missing(*parts: str) -> list[str]:
    """The pip packages of `parts` ("speak", "listen", "device"; all when none given) that are absent."""
    names: list[str] = []
    for part in parts or tuple(_PARTS):
        if part not in _PARTS:
            raise ValueError(f"unknown speech part {part!r}; one of {', '.join(_PARTS)}")
        for module in _PARTS[part]:
            dist = _DISTRIBUTIONS[module]
            if dist not in names and importlib.util.find_spec(module) is None:
                names.append(dist)
    return names


def require(*parts: str) -> None:
    """Raise `SpeechUnavailable` (one line naming the pip command) unless `parts` are installed.

    The chat calls ``require("speak")`` for --speak and ``require("listen")`` for --listen at
    start-up, so a missing extra is reported before the brain is built (exit code 2).
    """
    absent = missing(*parts)
    if absent:
        raise SpeechUnavailable(f"speech needs the optional extra: {INSTALL} (missing: {', '.join(absent)})")


def _import(module: str, part: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        require(part)
        raise


# --------------------------------------------------------------------------- speaking

_LETTERS_OR_DIGITS = re.compile(r"[^\W\d_]+|\d+")
_VOWELS = frozenset("aeiouy")
_CONSONANT_RUN = re.compile(r"[b-df-hj-np-tv-xz]{5,}")


def _is_word(run: str) -> bool:
    if len(run) < 2 or not run.isalpha():
        return False
    if not run.isascii():  # accented words: eSpeak knows how to read them
        return True
    return bool(_VOWELS & set(run)) and not _CONSONANT_RUN.search(run)


def spoken_tokens(text: str) -> list[tuple[str, str]]:
    """How `text` is spoken (SPEAK_HELP): a list of ("word", run) and ("spell", run), in order.

    >>> spoken_tokens("red, xq3!")
    [('word', 'red'), ('spell', 'xq'), ('spell', '3')]
    """
    tokens = []
    for match in _LETTERS_OR_DIGITS.finditer(text.lower()):
        run = match.group()
        tokens.append(("word" if _is_word(run) else "spell", run))
    return tokens


def to_ssml(text: str) -> str:
    """The SSML that eSpeak NG is given for `text` ("" when nothing is spoken)."""
    parts = []
    for kind, run in spoken_tokens(text):
        parts.append(run if kind == "word" else f'<say-as interpret-as="characters">{run}</say-as>')
    return f"<speak>{' '.join(parts)}</speak>" if parts else ""


class _ESpeak:
    """libespeak-ng from the espeakng-loader wheel, in synchronous mode, behind one lock."""

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    INITIALIZE_DONT_EXIT = 0x8000
    CHARS_UTF8 = 1
    SSML = 0x10
    POS_CHARACTER = 1
    RATE = 1

    _instance: _ESpeak | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        loader = _import("espeakng_loader", "speak")
        lib = ctypes.CDLL(loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data = os.fsencode(loader.get_data_path())
        rate = lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, data, self.INITIALIZE_DONT_EXIT)
        if rate != SYNTH_SAMPLE_RATE:
            raise AudioError(f"eSpeak NG did not start (it answered {rate}); reinstall: {INSTALL}")
        self._chunks: list[np.ndarray] = []

        def on_audio(wav: Any, n: int, _events: Any) -> int:
            if wav and n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(on_audio)  # kept alive as long as the library may call it
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self._voice: str | None = None
        self._wpm: int | None = None

    @classmethod
    def get(cls) -> _ESpeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def synth(self, ssml: str, voice: str, wpm: int) -> np.ndarray:
        with self._lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(f"eSpeak NG has no voice {voice!r}; try 'en-us' or 'en'")
                self._voice = voice
            if wpm != self._wpm:
                self._lib.espeak_SetParameter(self.RATE, int(wpm), 0)
                self._wpm = wpm
            self._chunks = []
            data = ssml.encode("utf-8") + b"\0"
            flags = self.CHARS_UTF8 | self.SSML
            err = self._lib.espeak_Synth(data, len(data), 0, self.POS_CHARACTER, 0, flags, None, None)
            chunks, self._chunks = self._chunks, []
        if err != 0:
            raise AudioError(f"eSpeak NG could not speak the text (error {err})")
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def synthesize(
    text: str, path: str | os.PathLike | None = None, *, voice: str = "en-us", wpm: int = 175
) -> np.ndarray:
    """Speak `text` with eSpeak NG: int16 mono samples at SYNTH_SAMPLE_RATE (22050 Hz).

    Gibberish is read as SPEAK_HELP says (`spoken_tokens`); a text with nothing to speak gives
    0.25 s of silence. With `path`, the samples are also written there as a 16-bit WAV.
    `wpm`: words per minute (80..450). eSpeak NG carries a little state from one call to the
    next (the same text may differ by a few samples), so a process that speaks the same
    sequence of texts makes the same audio, but one text alone is not bit-reproducible.
    """
    if not 80 <= wpm <= 450:
        raise ValueError(f"wpm={wpm} is out of range; eSpeak NG speaks 80..450 words per minute")
    ssml = to_ssml(text)
    samples = _ESpeak.get().synth(ssml, voice, wpm) if ssml else np.zeros(0, np.int16)
    if samples.size == 0:
        samples = np.zeros(SYNTH_SAMPLE_RATE // 4, np.int16)
    if path is not None:
        with open(path, "wb") as f:
            _write_wav(f, samples, SYNTH_SAMPLE_RATE)
    return samples


def _write_wav(f: Any, samples: np.ndarray, rate: int) -> None:
    with wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())


def _next_reply_number(out_dir: Path) -> int:
    numbers = [0]
    for p in out_dir.glob("reply-*.wav"):
        m = re.fullmatch(r"reply-(\d+)\.wav", p.name)
        if m:
            numbers.append(int(m.group(1)))
    return max(numbers) + 1


def speak(text: str, out_dir: str | os.PathLike | None = None, *, wait: bool = True) -> Path | None:
    """Speak `text`: play it on the speakers, or with `out_dir` write the next numbered WAV.

    `out_dir` is created if needed; files are reply-0001.wav, reply-0002.wav, ... continuing
    after the highest number already there (never overwriting); the path is returned. Playing
    needs sounddevice and the system's PortAudio (AudioError with the fix when absent, or when
    there is no output device); `wait` blocks until the audio has played. Returns None then.
    """
    samples = synthesize(text)
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AudioError(f"cannot write replies to {out}: {_one_line(e.strerror or e)}") from e
        n = _next_reply_number(out)
        while True:
            path = out / REPLY_PATTERN.format(n)
            try:
                with open(path, "xb") as f:
                    _write_wav(f, samples, SYNTH_SAMPLE_RATE)
                return path
            except FileExistsError:
                n += 1
    sd = _sounddevice("play the reply", "use --speak=DIR to write WAV files instead")
    try:
        sd.play(samples, SYNTH_SAMPLE_RATE)
        if wait:
            sd.wait()
    except (sd.PortAudioError, ValueError) as e:
        raise AudioError(
            f"cannot play the reply: no audio output device ({_one_line(e)}); "
            "use --speak=DIR to write WAV files instead"
        ) from e
    return None


def _sounddevice(what: str, fix: str) -> Any:
    require("device")
    try:
        import sounddevice
    except OSError as e:  # the wheel has no PortAudio on Linux
        raise AudioError(
            f"cannot {what}: the PortAudio library is not installed ({_one_line(e)}); "
            f"apt-get install libportaudio2, or {fix}"
        ) from e
    return sounddevice


# --------------------------------------------------------------------------- audio in


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of a 1-D signal (FFT; zero-padded ends), float32 out."""
    x = np.asarray(x, np.float64)
    if rate_in == rate_out or x.size == 0:
        return x.astype(np.float32)
    n_out = int(round(x.size * rate_out / rate_in))
    pad = 1024
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    n_padded_out = int(round(padded.size * rate_out / rate_in))
    spectrum = np.fft.rfft(padded)
    out_spectrum = np.zeros(n_padded_out // 2 + 1, np.complex128)
    k = min(spectrum.size, out_spectrum.size)
    out_spectrum[:k] = spectrum[:k]
    y = np.fft.irfft(out_spectrum, n_padded_out) * (n_padded_out / padded.size)
    start = int(round(pad * rate_out / rate_in))
    return y[start : start + n_out].astype(np.float32)


def _check_wav_complete(path: Path, size: int) -> None:
    """AudioError when a RIFF/WAVE file ends before the audio its header announces."""
    with open(path, "rb") as f:
        head = f.read(12)
        if not head.startswith(b"RIFF"):
            return  # not RIFF: soundfile decides
        if len(head) < 12:
            raise AudioError(f"{path}: truncated WAV: the file ends inside its {len(head)}-byte header")
        if head[8:12] != b"WAVE":
            return
        pos = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise AudioError(f"{path}: truncated WAV: the file ends before its audio (no 'data' chunk)")
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            pos += 8
            if name == b"data":
                if length in (0, 0xFFFFFFFF):  # written as a stream: the length was never filled in
                    return
                if pos + length > size:
                    raise AudioError(
                        f"{path}: truncated WAV: the header announces {length} bytes of audio, "
                        f"the file holds {size - pos}"
                    )
                return
            pos += length + (length & 1)
            if pos > size:
                label = name.decode("latin-1").strip()
                raise AudioError(f"{path}: truncated WAV: the file ends inside its '{label}' chunk")
            f.seek(pos)


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """A recording as float32 mono at 16 kHz (mixed down and resampled); AudioError if unusable."""
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    size = p.stat().st_size
    if size == 0:
        raise AudioError(f"{p}: empty file (0 bytes), not a recording")
    _check_wav_complete(p, size)
    sf = _import("soundfile", "listen")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as e:
        reason = _one_line(e).replace(f"Error opening {str(p)!r}: ", "").rstrip(".")
        raise AudioError(f"{p}: not a WAV file or other audio that libsndfile reads ({reason})") from e
    if data.shape[0] == 0:
        raise AudioError(f"{p}: the file holds no audio (0 samples)")
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(f"{p}: sample rate {rate} Hz is too low for speech (need >= {MIN_SAMPLE_RATE} Hz)")
    return resample(data.mean(axis=1), rate, SAMPLE_RATE)


# --------------------------------------------------------------------------- voice activity

FRAME_SECONDS = 0.02
MARGIN_DB = 9.0  # a frame is voiced when it is this much louder than the noise floor ...
MIN_LEVEL_DB = -55.0  # ... and louder than this (dB full scale)


def _frame_db(x: np.ndarray, frame: int) -> np.ndarray:
    n = x.size // frame
    if n == 0:
        return np.zeros(0)
    frames = np.asarray(x[: n * frame], np.float64).reshape(n, frame)
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)


def speech_spans(
    x: np.ndarray, rate: int = SAMPLE_RATE, *, gap_s: float = 0.4, min_speech_s: float = 0.1
) -> list[tuple[int, int]]:
    """Voiced stretches of a whole recording as (start, end) sample indices (energy VAD).

    The noise floor is the 10th percentile of 20 ms frame energies; voiced frames are
    MARGIN_DB above it and above MIN_LEVEL_DB; runs closer than `gap_s` merge, and runs with
    less than `min_speech_s` of voiced frames (clicks) are dropped. Steady noise has none.
    """
    frame = int(rate * FRAME_SECONDS)
    db = _frame_db(x, frame)
    if db.size == 0:
        return []
    floor = float(np.percentile(db, 10))
    voiced = db > max(floor + MARGIN_DB, MIN_LEVEL_DB)
    spans: list[list[int]] = []  # [first frame, last frame + 1, voiced frames]
    gap = max(1, int(round(gap_s / FRAME_SECONDS)))
    for i in np.flatnonzero(voiced):
        if spans and i - spans[-1][1] < gap:
            spans[-1][1] = i + 1
            spans[-1][2] += 1
        else:
            spans.append([i, i + 1, 1])
    min_frames = max(1, int(round(min_speech_s / FRAME_SECONDS)))
    return [(a * frame, b * frame) for a, b, n in spans if n >= min_frames]


def segment_utterances(
    blocks: Iterable[np.ndarray],
    rate: int = SAMPLE_RATE,
    *,
    start_s: float = 0.06,
    end_silence_s: float = 0.7,
    pre_roll_s: float = 0.3,
    min_speech_s: float = 0.15,
    max_s: float = 15.0,
) -> Iterator[np.ndarray]:
    """Cut a live stream of mono float blocks into utterances (energy VAD), pure NumPy.

    The noise floor follows the quietest frames (down at once, up by 1 dB/s while nobody
    speaks). An utterance starts after `start_s` of voiced frames (MARGIN_DB above the floor,
    above MIN_LEVEL_DB), keeps `pre_roll_s` before it and ends after `end_silence_s` of
    unvoiced frames (or at `max_s`); one with less than `min_speech_s` voiced is dropped.
    """
    frame = int(rate * FRAME_SECONDS)
    start_frames = max(1, int(round(start_s / FRAME_SECONDS)))
    end_frames = max(1, int(round(end_silence_s / FRAME_SECONDS)))
    pre_frames = int(round(pre_roll_s / FRAME_SECONDS))
    min_frames = max(1, int(round(min_speech_s / FRAME_SECONDS)))
    max_frames = int(round(max_s / FRAME_SECONDS))
    rise = 1.0 * FRAME_SECONDS
    floor: float | None = None
    pending = np.zeros(0, np.float32)
    history: list[np.ndarray] = []  # recent frames before speech (pre-roll + start run)
    utterance: list[np.ndarray] = []
    in_speech, run, quiet, voiced_count = False, 0, 0, 0
    for block in blocks:
        pending = np.concatenate([pending, np.asarray(block, np.float32).reshape(-1)])
        n = pending.size // frame
        frames, pending = pending[: n * frame].reshape(n, frame), pending[n * frame :]
        for f, db in zip(frames, _frame_db(frames.reshape(-1), frame), strict=True):
            floor = db if floor is None else floor
            is_voiced = db > max(floor + MARGIN_DB, MIN_LEVEL_DB)
            if not in_speech:
                floor = min(db, floor + rise)
                history.append(f)
                del history[: max(0, len(history) - pre_frames - start_frames)]
                run = run + 1 if is_voiced else 0
                if run >= start_frames:
                    in_speech, utterance, quiet, voiced_count = True, list(history), 0, run
                    history, run = [], 0
                continue
            utterance.append(f)
            voiced_count += is_voiced
            quiet = 0 if is_voiced else quiet + 1
            if quiet >= end_frames or len(utterance) >= max_frames:
                if voiced_count >= min_frames:
                    keep = len(utterance) - max(0, quiet - pre_frames)
                    yield np.concatenate(utterance[:keep])
                in_speech, utterance = False, []
    if in_speech and voiced_count >= min_frames:
        yield np.concatenate(utterance)


# --------------------------------------------------------------------------- recognising

_WORD_CHARS = re.compile(r"[a-z0-9][a-z0-9'.\-]*")


def _normalize_words(words: Iterable[str]) -> tuple[str, ...]:
    phrases: list[str] = []
    for item in words:
        phrase = " ".join(str(item).lower().split())
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        raise ValueError("the word list is empty; give at least one word or phrase")
    for phrase in phrases:
        for word in phrase.split():
            if not _WORD_CHARS.fullmatch(word):
                raise ValueError(
                    f"{word!r} is not a word the recogniser can listen for (letters, digits, ' . -)"
                )
    return tuple(phrases)


class _Recognizer:
    """One pocketsphinx decoder (dictation or one word list), behind a lock."""

    _cache: dict[tuple[str, ...] | None, _Recognizer] = {}
    _cache_lock = threading.Lock()

    def __init__(self, words: tuple[str, ...] | None) -> None:
        ps = _import("pocketsphinx", "listen")
        self.lock = threading.Lock()
        if words is None:
            # capped search (pocketsphinx's defaults: 30000 HMMs, no word cap): the same words on
            # the bench sentences, and no slow outliers on short utterances (scripts/bench_speech.py)
            self.decoder = ps.Decoder(loglevel="FATAL", maxhmmpf=10000, maxwpf=20)
            return
        decoder = ps.Decoder(loglevel="FATAL", lm=None)
        unknown = [w for p in words for w in p.split() if decoder.lookup_word(w) is None]
        if unknown:
            raise UnknownWord(unknown[0])
        rules = " | ".join(words)
        # exactly one phrase per decode: "<item>+" inserts short words ("up", "no") at the edges
        grammar = f"#JSGF V1.0;\ngrammar words;\npublic <utterance> = {rules};\n"
        decoder.add_jsgf_string("words", grammar)
        decoder.activate_search("words")
        self.decoder = decoder

    @classmethod
    def get(cls, words: Iterable[str] | None) -> _Recognizer:
        key = None if words is None else _normalize_words(words)
        with cls._cache_lock:
            if key not in cls._cache:
                if len(cls._cache) >= 8:
                    cls._cache.pop(next(iter(cls._cache)))
                cls._cache[key] = cls(key)
            return cls._cache[key]

    def decode(self, pcm: bytes) -> str:
        with self.lock:
            d = self.decoder
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None else ""


PAUSE_S = 0.5  # with a word list, stretches of speech this far apart are recognised one by one
EDGE_S = 0.25  # audio kept before and after a stretch of speech


def _pcm(x: np.ndarray, start: int, end: int) -> bytes:
    """x[start:end] plus EDGE_S each side, normalised, dithered, as 16-bit little-endian PCM.

    Digital silence (exact zeros) and long silent edges make the search drop or insert words,
    hence the trim and a fixed, seeded dither at about -66 dB full scale.
    """
    edge = int(EDGE_S * SAMPLE_RATE)
    y = np.asarray(x[max(0, start - edge) : end + edge], np.float64)
    y = y * (0.5 / max(float(np.max(np.abs(y))), 1e-9))
    y = y + np.random.default_rng(0).normal(0.0, 16.0 / 32768.0, y.size)
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2").tobytes()


def recognize(samples: np.ndarray, rate: int = SAMPLE_RATE, words: Sequence[str] | None = None) -> str:
    """The words heard in mono `samples` (float in [-1, 1] or int16) at `rate` Hz.

    `words`: None for open dictation of the whole voiced stretch; else the only words/phrases
    to listen for, exactly one per stretch of speech between pauses of PAUSE_S or more (joined
    with spaces). Raises NoSpeech (an AudioError) when there is no speech or no word was
    recognised, ValueError (UnknownWord) for a word that is not in the dictionary.
    """
    recognizer = _Recognizer.get(words)
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioError(f"expected mono samples (1-D), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / 32768.0
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(f"sample rate {rate} Hz is too low for speech (need >= {MIN_SAMPLE_RATE} Hz)")
    x = resample(x, rate, SAMPLE_RATE)
    spans = speech_spans(x, gap_s=PAUSE_S)
    if not spans:
        raise NoSpeech("no speech heard (silence or noise only)")
    if words is None:
        spans = [(spans[0][0], spans[-1][1])]
    text = " ".join(t for t in (recognizer.decode(_pcm(x, a, b)) for a, b in spans) if t)
    if not text:
        what = "open dictation" if words is None else "the word list"
        raise NoSpeech(f"a sound was heard but no words recognised ({what})")
    return text


def recognize_file(path: str | os.PathLike, words: Sequence[str] | None = None) -> str:
    """The words heard in a recording (WAV, any rate, mono or stereo); see `recognize`.

    Every failure is an AudioError with one line that starts with the path: no such file,
    empty file, not audio, truncated WAV, no speech heard (NoSpeech).
    """
    _Recognizer.get(words)  # a bad word list is reported before the audio is read
    x = read_audio(path)
    try:
        return recognize(x, SAMPLE_RATE, words)
    except NoSpeech as e:
        raise NoSpeech(f"{path}: {e}") from None


def _input_stream(device: int | str | None) -> tuple[Any, int]:
    """(sounddevice, rate) for the microphone, or AudioError with the reason and the fix."""
    fix = "record WAV files and use --listen=FILE.wav"
    sd = _sounddevice("listen to the microphone", fix)
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as e:
        raise AudioError(f"no microphone: no audio input device found ({_one_line(e)}); {fix}") from e
    if int(info.get("max_input_channels", 0)) < 1:
        raise AudioError(f"no microphone: {info.get('name', 'the device')} has no input channels; {fix}")
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=SAMPLE_RATE)
        rate = SAMPLE_RATE
    except (sd.PortAudioError, ValueError):
        rate = int(info["default_samplerate"])
    return sd, rate


def check_microphone(device: int | str | None = None) -> str:
    """The name of the input device that `listen_mic` would use, or AudioError (one line)."""
    sd, _ = _input_stream(device)
    return str(sd.query_devices(device, kind="input")["name"])


def listen_mic(words: Sequence[str] | None = None, *, device: int | str | None = None) -> Iterator[str]:
    """Utterances from the microphone, recognised one by one, until the caller stops iterating.

    Utterances are cut at pauses (`segment_utterances`). Yields the words heard, or "" for a
    sound in which no words were recognised (the caller may say so); silence is skipped.
    Audio that arrives while the caller is busy between two items (the brain answering, a
    reply being spoken) is dropped, so the brain does not hear itself. No input device, or no
    PortAudio, raises AudioError at the first next(); a bad word list raises ValueError.
    """
    _Recognizer.get(words)  # load the model (and check the words) before opening the microphone
    sd, rate = _input_stream(device)
    blocks: queue.Queue[np.ndarray] = queue.Queue()
    failed: list[str] = []

    def on_audio(indata: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
        blocks.put(indata[:, 0].copy())

    def stream_blocks() -> Iterator[np.ndarray]:
        while True:
            try:
                yield blocks.get(timeout=0.5)
            except queue.Empty:
                if not stream.active:
                    failed.append("the microphone stopped delivering audio")
                    return

    try:
        stream = sd.InputStream(
            device=device,
            channels=1,
            dtype="float32",
            samplerate=rate,
            blocksize=int(rate * FRAME_SECONDS),
            callback=on_audio,
        )
    except (sd.PortAudioError, ValueError) as e:
        raise AudioError(
            f"cannot open the microphone ({_one_line(e)}); record WAV files and use --listen=FILE.wav"
        ) from e
    with stream:
        while True:
            for utterance in segment_utterances(stream_blocks(), rate):
                try:
                    text = recognize(utterance, rate, words)
                except NoSpeech:
                    text = ""
                yield text
                while not blocks.empty():  # heard while the caller was busy: drop it
                    blocks.get_nowait()
                break  # a fresh segmenter: the dropped audio must not join the next utterance
            else:
                raise AudioError(failed[0] if failed else "the microphone stream ended")


# --------------------------------------------------------------------------- flags


def parse_speak(value: str | None) -> str | Path | None:
    """--speak: None when off (unset, "", false/no/off/0), "play" for the speakers
    (play/true/yes/on/1), else the directory for the WAV files (a Path; created on first reply).
    Raises ValueError when DIR exists and is not a directory."""
    if value is None:
        return None
    v = value.strip()
    if v.lower() in ("", "false", "no", "off", "0"):
        return None
    if v.lower() in ("play", "true", "yes", "on", "1"):
        return "play"
    path = Path(v).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"--speak={value}: {path} exists and is not a directory; give a directory for the WAVs"
        )
    return path


def expand_bare_speak(argv: Sequence[str]) -> list[str]:
    """absl string flags need a value: a bare ``--speak`` (last, or followed by another flag)
    becomes ``--speak=play``; ``--speak DIR`` and ``--speak=DIR`` are left alone."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in ("--speak", "-speak") and (i + 1 == len(out) or out[i + 1].startswith("-")):
            out[i] = "--speak=play"
    return out


def parse_listen(value: str | None) -> str | list[Path] | None:
    """--listen: None when unset or "", "mic" for the microphone, else the list of files
    (comma-separated, in order; each must exist). One-line ValueError naming the flag and fix."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if v.lower() == "mic":
        return "mic"
    paths = []
    for item in v.split(","):
        name = item.strip()
        if not name:
            raise ValueError(
                f"--listen={value}: an empty file name; use --listen=mic or --listen=A.wav,B.wav"
            )
        path = Path(name).expanduser()
        if not path.is_file():
            why = "no such file" if not path.exists() else "not a file"
            raise ValueError(
                f"--listen={value}: {why}: {name}; give WAV files (comma-separated) or --listen=mic"
            )
        paths.append(path)
    return paths


def load_words(path: str | os.PathLike) -> list[str]:
    """--listen_words=FILE: one word or phrase per line, '#' comments, blank lines skipped.

    Lowercased, duplicates dropped, checked against the recogniser's dictionary (so this needs
    the extra: SpeechUnavailable otherwise). One-line ValueError naming the flag and the fix.
    """
    p = Path(path)
    flag = f"--listen_words={path}"
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ValueError(f"{flag}: no such file; give a text file with one word or phrase per line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{flag}: cannot read it ({_one_line(e)}); give a UTF-8 text file") from None
    phrases: list[str] = []
    where: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        phrase = " ".join(line.split("#", 1)[0].lower().split())
        if phrase and phrase not in where:
            try:
                _normalize_words([phrase])
            except ValueError as e:
                raise ValueError(f"{flag}: line {number}: {e}") from None
            phrases.append(phrase)
            where[phrase] = number
    if not phrases:
        raise ValueError(f"{flag}: no words in the file; put one word or phrase per line")
    require("listen")
    try:
        _Recognizer.get(phrases)
    except UnknownWord as e:
        line = next(n for phrase, n in where.items() if e.word in phrase.split())
        raise ValueError(f"{flag}: line {line}: {e}") from None
    return phrases


@dataclasses.dataclass(frozen=True)
class Heard:
    """One utterance for the chat: its source (a path or "mic"), the text, or why there is none."""

    source: str
    text: str
    error: str | None = None


def hear(listen: str | Sequence[str | os.PathLike], words: Sequence[str] | None = None) -> Iterator[Heard]:
    """A parsed --listen as utterances: each file in order, or the microphone until stopped.

    Bad files and unrecognised sounds become Heard(source, "", error) so the chat prints the
    one line and goes on; a missing microphone raises AudioError (the chat exits 2).
    """
    if listen == "mic":
        for text in listen_mic(words):
            yield Heard("mic", text, None if text else "a sound was heard but no words recognised")
        return
    for path in listen:
        try:
            yield Heard(str(path), recognize_file(path, words))
        except AudioError as e:
            yield Heard(str(path), "", str(e))
