"""The evaluation's F0 analysis (pYIN) per utterance: librosa's dense Viterbi against shared.metrics.viterbi's.

    python benchmarks/bench_pitch.py [--wav-scp data/test/wav.scp --num-utts 30]   # default: generated speech

On one thread, for the same utterances: librosa.pyin at 0.2-semitone bins (the evaluation's setting until
2026-12-07), at 0.1 (since) with librosa's Viterbi, and at 0.1 with the sparse one the evaluation uses; prints the
seconds per utterance and the ratios to the 0.1-dense baseline, and checks that the sparse decoding gave librosa's F0
and voicing. The settings take turns (``--repeats``), figures are medians.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import librosa
import numpy as np
from machine_load import report_load

from shared.config import positive_int


def utterances(args: argparse.Namespace) -> list[np.ndarray]:
    if args.wav_scp:
        from shared.audio import load_audio
        from shared.io import read_kv

        paths = sorted(read_kv(args.wav_scp).values())[: args.num_utts]
        return [load_audio(p, 16000).numpy() for p in paths]
    from shared.phone_recognizer.toy import random_phones, toy_utterance

    rng = np.random.default_rng(0)
    return [toy_utterance(*random_phones(rng, 15, 25), f0=float(rng.uniform(90, 250)), seed=k) for k in range(args.num_utts)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wav-scp", default=None, help="a data dir's wav.scp (default: generated speech-like audio)")
    p.add_argument("--num-utts", type=positive_int, default=30)
    p.add_argument("--repeats", type=positive_int, default=2)
    args = p.parse_args()
    import numba

    from shared.metrics.spectral import DEFAULT_ANALYSIS, F0_FMAX, F0_FMIN, pyin_kwargs
    from shared.metrics.viterbi import faster_pyin_viterbi

    from threadpoolctl import threadpool_limits  # librosa's (scikit-learn's) dependency

    numba.set_num_threads(1)
    threadpool_limits(1)  # BLAS and OpenMP pools too, not only numba's: one thread, as the docstring says
    wavs = utterances(args)
    seconds = sum(w.size for w in wavs) / 16000
    kw = pyin_kwargs(DEFAULT_ANALYSIS)  # the evaluation's, but for the pitch bins, which vary below
    kw.pop("resolution")
    with faster_pyin_viterbi():
        librosa.pyin(wavs[0], resolution=0.1, **kw)  # compiled before it is timed

    def run(resolution: float, sparse: bool) -> tuple[float, list]:
        t = time.perf_counter()
        with faster_pyin_viterbi() if sparse else contextlib.nullcontext():
            out = [librosa.pyin(w, resolution=resolution, **kw) for w in wavs]
        return (time.perf_counter() - t) / len(wavs), out

    settings = {"0.2 dense (before)": (0.2, False), "0.1 dense (baseline)": (0.1, False), "0.1 sparse (now)": (0.1, True)}
    report_load("before")
    times = {name: [] for name in settings}
    outputs = {}
    for _ in range(args.repeats):
        for name, (resolution, sparse) in settings.items():
            sec, outputs[name] = run(resolution, sparse)
            times[name].append(sec)
    report_load("after")
    same = all(np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0], equal_nan=True)
               for a, b in zip(outputs["0.1 dense (baseline)"], outputs["0.1 sparse (now)"]))
    base = statistics.median(times["0.1 dense (baseline)"])
    print(f"{len(wavs)} utterances, {seconds / len(wavs):.2f} s of audio each, pYIN from {F0_FMIN:g} to {F0_FMAX:g} Hz")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:22s} {med:.3f} s per utterance, {base / med:.2f}x the 0.1-dense speed")
    print(f"  sparse decoding gave librosa's F0 and voicing: {same}")


if __name__ == "__main__":
    main()
