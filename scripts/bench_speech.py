"""Speech latency on the CPU: eSpeak NG synthesis of short replies, pocketsphinx's real-time factor.

    python scripts/bench_speech.py --out runs/bench_speech.json

Measures (needs the extra: pip install 'jbrain[speech]'):
  * synthesis: the first call (loads libespeak-ng), then the latency of 8-character replies
    (random strings of the reply alphabet, and cue words), synthesize() alone and speak() to a
    WAV directory (synthesis + write), with the length of the audio they make;
  * recognition: model load times, then the real-time factor (wall time / audio length, and
    CPU time of this process / audio length, which other load on the machine disturbs less) of
    recognize_file() on short utterances (the cues spoken by eSpeak NG, 0.4-1.5 s), with the
    word-list grammar and with open dictation;
  * accuracy: the cues spoken by two voices at three rates, clean and with white noise at
    20 dB SNR, recognised with the grammar (exact match of the whole utterance).
Writes JSON to --out and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from jbrain import speech

ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()/&+=*#@%$<>_~^[]"  # jbrain.text.ALPHABET
SENTENCES = ["what is your name", "how are you doing", "good morning", "please turn on the light"]
CUES = ["hello brain", "red", "green", "blue", "yes", "no", "stop", "go", "left", "right", "up", "down"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 3),
        "max_ms": round(ms[-1], 3),
        "n": len(ms),
    }


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def bench_synthesis(rng: np.random.Generator, n: int, tmp: Path) -> dict:
    first, t_first = timed(speech.synthesize, "hello")
    replies = ["".join(rng.choice(list(ALPHABET), 8)) for _ in range(n)]
    words = [(c + " " * 8)[:8] for c in CUES]
    result = {"first_call_ms": round(1000 * t_first, 3)}
    for name, texts in (("random_8_chars", replies), ("cue_words_8_chars", words)):
        times, seconds = [], []
        for text in texts:
            samples, dt = timed(speech.synthesize, text)
            times.append(dt)
            seconds.append(samples.size / speech.SYNTH_SAMPLE_RATE)
        result[name] = {**stats_ms(times), "audio_median_s": round(statistics.median(seconds), 3)}
    out_dir = tmp / "replies"
    times = [timed(speech.speak, text, out_dir)[1] for text in replies[: max(1, n // 4)]]
    result["speak_to_wav_random_8_chars"] = stats_ms(times)
    return result


def utterance_wavs(tmp: Path, texts: list[str]) -> list[tuple[str, Path, float]]:
    out = []
    for cue in texts:
        path = tmp / f"{cue.replace(' ', '_')}.wav"
        samples = speech.synthesize(cue, path)
        out.append((cue, path, samples.size / speech.SYNTH_SAMPLE_RATE))
    return out


def bench_recognition(tmp: Path, repeats: int) -> dict:
    result = {}
    _, t = timed(speech._Recognizer.get, CUES)
    result["load_grammar_ms"] = round(1000 * t, 1)
    _, t = timed(speech._Recognizer.get, None)
    result["load_dictation_ms"] = round(1000 * t, 1)
    cues, sentences = utterance_wavs(tmp, CUES), utterance_wavs(tmp, SENTENCES)
    for mode, words, wavs in (
        ("grammar", CUES, cues),
        ("dictation", None, cues),
        ("dictation_sentences", None, sentences),
    ):
        rtfs, cpu_rtfs, times, correct = [], [], [], 0
        for _ in range(repeats):
            for cue, path, seconds in wavs:
                t, cpu = time.perf_counter(), time.process_time()
                try:
                    text = speech.recognize_file(path, words)
                except speech.NoSpeech:
                    text = ""
                dt, cpu = time.perf_counter() - t, time.process_time() - cpu
                times.append(dt)
                rtfs.append(dt / seconds)
                cpu_rtfs.append(cpu / seconds)
                correct += text == cue
        result[mode] = {
            "rtf_median": round(statistics.median(rtfs), 4),
            "rtf_max": round(max(rtfs), 4),
            "cpu_time_rtf_median": round(statistics.median(cpu_rtfs), 4),
            "cpu_time_rtf_max": round(max(cpu_rtfs), 4),
            **stats_ms(times),
            "utterance_s": [round(min(w[2] for w in wavs), 2), round(max(w[2] for w in wavs), 2)],
            "exact_match": f"{correct}/{len(rtfs)}",
        }
    return result


def bench_accuracy(rng: np.random.Generator) -> dict:
    result = {}
    for voice in ("en-us", "en"):
        for wpm in (140, 175, 210):
            for snr in (None, 20):
                hits, misses = 0, []
                for cue in CUES:
                    x = speech.synthesize(cue, voice=voice, wpm=wpm).astype(np.float64) / 32768
                    x = np.concatenate([np.zeros(4000), x, np.zeros(4000)])
                    if snr is not None:
                        level = np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2))
                        x = x + rng.normal(0, level / 10 ** (snr / 20), x.size)
                    try:
                        text = speech.recognize(x, speech.SYNTH_SAMPLE_RATE, CUES)
                    except speech.NoSpeech:
                        text = ""
                    if text == cue:
                        hits += 1
                    else:
                        misses.append(f"{cue}->{text or '(nothing)'}")
                key = f"{voice} {wpm}wpm {'clean' if snr is None else f'snr{snr}dB'}"
                result[key] = {"correct": hits, "of": len(CUES), "misses": misses}
    total = sum(r["correct"] for r in result.values())
    result["total"] = {"correct": total, "of": len(CUES) * (len(result))}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the JSON")
    parser.add_argument("--replies", type=int, default=200, help="random 8-character replies to synthesize")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the cue utterances")
    args = parser.parse_args()
    speech.require("speak", "listen")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        report = {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(),
            "synthesis": bench_synthesis(rng, args.replies, tmp),
            "recognition": bench_recognition(tmp, args.repeats),
            "accuracy_grammar": bench_accuracy(rng),
        }
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    s, r, a = report["synthesis"], report["recognition"], report["accuracy_grammar"]
    load = f"load average {report['load_average_before'][0]} -> {report['load_average_after'][0]}"
    print(f"CPU: {report['cpu']} ({report['cores']} cores), Python {report['python']}, {load}")
    print(f"{'measure':44} {'median':>10} {'p95':>10} {'max':>10}")
    print(f"{'synthesis: first call (loads eSpeak NG)':44} {s['first_call_ms']:>8.1f}ms")
    for key, label in (
        ("random_8_chars", "synthesis: 8 random reply chars"),
        ("cue_words_8_chars", "synthesis: a cue word (8 chars)"),
        ("speak_to_wav_random_8_chars", "speak(DIR): synthesis + WAV write"),
    ):
        v = s[key]
        print(f"{label:44} {v['median_ms']:>8.2f}ms {v['p95_ms']:>8.2f}ms {v['max_ms']:>8.2f}ms")
    loads = f"{r['load_grammar_ms']:>8.0f}ms {r['load_dictation_ms']:>8.0f}ms"
    print(f"{'recognition: load grammar / dictation':44} {loads}")
    for mode in ("grammar", "dictation", "dictation_sentences"):
        v = r[mode]
        lo, hi = v["utterance_s"]
        label = f"RTF {mode} ({lo}-{hi} s)"
        wall = f"{v['rtf_median']:>10.4f} {'':>10} {v['rtf_max']:>10.4f}"
        print(f"{label:44} {wall}   exact {v['exact_match']}")
        cpu = f"{v['cpu_time_rtf_median']:>10.4f} {'':>10} {v['cpu_time_rtf_max']:>10.4f}"
        print(f"{'  the same in CPU time of this process':44} {cpu}")
    for key, v in a.items():
        if key != "total":
            print(f"{'accuracy ' + key:44} {v['correct']:>7}/{v['of']}   {' '.join(v['misses'])}")
    print(f"{'accuracy total (grammar)':44} {a['total']['correct']:>7}/{a['total']['of']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
