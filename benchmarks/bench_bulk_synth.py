"""Bulk synthesis of a corpus: one job against N parallel jobs (Kaldi style: split the data dir, synthesise each
part, combine), on the same CPU cores, timed end to end (process start and model loading included).

    python benchmarks/bench_bulk_synth.py --exp-dir exp/stage2/flow_reflow --data-dir data/test \\
        [--nj 2 --threads 2 --nfe 4 --temperature 0.2 --rounds 3 --work-dir /tmp/bulk]

The single job gets all ``--threads``; each of the N jobs gets ``threads / N`` (at least 1), and no job more
threads than its share of the cores this process may use. The two setups run ``--rounds`` times in turn (one
job, N jobs, one job, ...: a change in the machine's load hits both alike). Prints the load average before and
after, the median and the fastest wall time of each setup, the speed-up of N jobs over one (medians), and how
close the two corpora are (the per-utterance seeds make them the same audio up to float rounding: the lowest
signal-to-difference ratio over utterances, in dB).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_load import report_load, usable_cores

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the toolkit without an install, as the other benchmarks
from shared.config import positive_int  # noqa: E402

MARK = ".bench_bulk_synth"  # in a work dir this script made: the only kind it deletes


def fresh_work_dir(path: Path) -> Path:
    """``path`` emptied for a run: made if absent; deleted and remade where it is one of this script's (it holds
    :data:`MARK`) or empty; anything else is refused, as it may be a user's data."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARK).is_file():
            raise SystemExit(f"--work-dir {path} exists and is not one this benchmark made (no {MARK} in it): "
                             "give a new or empty directory")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARK).touch()
    return path


def synth_cmd(args: argparse.Namespace, data_dir: Path, out_dir: Path, threads: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stage2_flow.synthesize", "--exp-dir", args.exp_dir, "--data-dir", str(data_dir),
            "--out-dir", str(out_dir), "--nfe", str(args.nfe), "--solver", args.solver, "--temperature",
            str(args.temperature), "--seed", str(args.seed), "--num-threads", str(threads), "--overwrite", *extra]


def run_jobs(cmds: list[list[str]]) -> float:
    """Run the commands in parallel; wall seconds until the last ends (a failing job is an error showing the end
    of its stderr). Each job writes its stderr to a file of its own: a pipe read only once the jobs before it had
    ended would fill up (64 KiB) and stall a job that logs much, in the middle of the timing."""
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(tmp) / f"job{k}.stderr" for k in range(len(cmds))]
        t0 = time.perf_counter()
        procs = []
        for cmd, log in zip(cmds, logs):
            with log.open("w") as err:  # the child keeps its own copy of the file
                procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err))
        for p in procs:
            p.wait()
        elapsed = time.perf_counter() - t0
        for cmd, p, log in zip(cmds, procs, logs):
            if p.returncode:
                raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{log.read_text()[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    from shared.audio import load_audio
    from shared.datadir import DataDir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--nj", type=positive_int, default=2)
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads in all (one job: all of them)")
    p.add_argument("--nfe", type=positive_int, default=4)
    p.add_argument("--solver", default="euler")
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=positive_int, default=3, help="times each setup runs, in turn with the other")
    p.add_argument("--work-dir", default="/tmp/bench_bulk_synth")
    args = p.parse_args(argv)
    report_load("start")
    cores = usable_cores()
    threads = min(args.threads, cores)
    per_job = min(max(1, args.threads // args.nj), max(1, cores // args.nj))  # never more threads than cores
    if threads < args.threads or per_job < max(1, args.threads // args.nj):
        print(f"note: --threads {args.threads} on {cores} usable cores: 1 job x {threads} threads, {args.nj} jobs x {per_job}")
    work = fresh_work_dir(Path(args.work_dir))
    data = DataDir.load(args.data_dir)
    parts = data.split(args.nj)
    for k, part in enumerate(parts, 1):
        part.save(work / "split" / str(k))

    one_job = [synth_cmd(args, Path(args.data_dir), work / "one", threads)]
    n_jobs = [synth_cmd(args, work / "split" / str(k), work / "jobs" / str(k), per_job, "--prompt-pool", args.data_dir)
              for k in range(1, args.nj + 1)]  # a zero-shot model's references: from the whole set, as in one job
    times: dict[str, list[float]] = {"one": [], "nj": []}
    for _ in range(args.rounds):  # A B A B ...
        times["one"].append(run_jobs(one_job))
        times["nj"].append(run_jobs(n_jobs))
    t_one, t_nj = statistics.median(times["one"]), statistics.median(times["nj"])
    combined = DataDir.combine([DataDir.load(work / "jobs" / str(k)) for k in range(1, args.nj + 1)])
    one = DataDir.load(work / "one")
    if combined.utts != one.utts:
        raise SystemExit("the N-job corpus holds other utterances than the one-job corpus")
    snr = []
    for u in one.utts:
        a, b = (load_audio(d.wav_scp[u], 16000).numpy() for d in (one, combined))
        if a.shape != b.shape:
            raise SystemExit(f"{u}: {a.shape} samples in one job, {b.shape} in {args.nj}")
        snr.append(10 * np.log10((a ** 2).sum() / max(((a - b) ** 2).sum(), 1e-20)))
    audio_s = sum(one.utt2dur.values())
    print(f"{len(one)} utterances, {audio_s:.1f} s of audio, NFE {args.nfe}, {threads} threads in all, "
          f"{args.rounds} round(s) (median, fastest)")
    print(f"1 job x {threads} threads: {t_one:.1f} s, {min(times['one']):.1f} s ({audio_s / t_one:.1f} s audio per s)")
    print(f"{args.nj} jobs x {per_job} thread(s): {t_nj:.1f} s, {min(times['nj']):.1f} s "
          f"({audio_s / t_nj:.1f} s audio per s)")
    print(f"speed-up of {args.nj} jobs: {t_one / t_nj:.2f}x; same audio: lowest signal/difference {min(snr):.1f} dB "
          f"(median {float(np.median(snr)):.1f} dB)")
    report_load("end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
