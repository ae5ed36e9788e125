"""The default corpus: our own sentences spoken by several espeak-ng voices, as Kaldi data dirs.

::

    python -m shared.corpora.espeak_mini --data-dir data [--wav-dir data/local/wav] [--num-sentences 800]
        [--num-dev 40] [--num-test 40] [--voices en-us,en-us+f2,...] [--voices-per-sentence 1]
        [--sample-rate 16000] [--seed 0] [--nj 2]

Writes ``data/{train,dev,test}/{wav.scp,text,utt2spk,spk2utt,utt2dur,utt2lang}`` and
``data/local/corpus_report.json`` (time, hours, per-speaker counts, phone coverage). ``utt2lang`` holds each
utterance's voice language (``en-gb-x-rp+m1`` -> ``en-gb-x-rp``), the phonemisation espeak-ng spoke it with,
so the tokens can say what the audio says (:mod:`shared.text.tokenize`). Sentences are split
*before* voices are assigned, so no dev/test sentence is ever in train, for any voice. Speaker ids are the
voice names without punctuation (``en-us+f2`` -> ``enusf2``); utterance ids are ``<spk>-<sentence id>``.
The same arguments always give the same corpus, sample for sample (see :mod:`espeak_synth`).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from shared.audio import save_audio
from shared.corpora.espeak_synth import synthesize
from shared.corpora.sentences import generate_sentences
from shared.datadir import DataDir
from shared.io import write_json
from shared.text.espeak import resolve_voice
from shared.text.inventory import EN_US_INVENTORY

DEFAULT_VOICES = ("en-us", "en-us+f2", "en-us+m8", "en-us+f4", "en-gb-x-rp+m1")
SPLITS = ("train", "dev", "test")



def speaker_id(voice: str) -> str:
    """``en-us+f2`` -> ``enusf2`` (letters and digits only: sorts cleanly as an utterance prefix)."""
    return re.sub(r"[^A-Za-z0-9]", "", voice).lower()


def voice_language(voice: str) -> str:
    """``en-gb-x-rp+m1`` -> ``en-gb-x-rp``: the language whose rules espeak-ng speaks the voice with (a variant
    after ``+`` changes the sound, not the phonemes)."""
    return voice.split("+", 1)[0]


def split_sentences(num_sentences: int, num_dev: int, num_test: int, seed: int) -> dict[str, list[int]]:
    """Disjoint sentence indices per split (a seeded shuffle; test first, then dev, the rest train)."""
    if num_dev + num_test >= num_sentences:
        raise ValueError(f"--num-dev {num_dev} + --num-test {num_test} must be < --num-sentences {num_sentences}")
    order = np.random.default_rng(seed + 1).permutation(num_sentences).tolist()
    test, dev, train = order[:num_test], order[num_test : num_test + num_dev], order[num_test + num_dev :]
    return {"train": sorted(train), "dev": sorted(dev), "test": sorted(test)}


def assign_voices(indices: list[int], voices: list[str], per_sentence: int) -> list[tuple[int, str]]:
    """Round-robin (sentence, voice) pairs: each sentence gets ``per_sentence`` consecutive voices."""
    if not 1 <= per_sentence <= len(voices):
        raise ValueError(f"--voices-per-sentence must be in 1..{len(voices)}")
    n = len(voices)
    return [(s, voices[(k * per_sentence + j) % n]) for k, s in enumerate(indices) for j in range(per_sentence)]


def _synth_job(job: tuple[str, str, str, str, int]) -> tuple[str, float]:
    utt, text, voice, path, sample_rate = job
    wav = synthesize(text, voice, sample_rate)
    save_audio(path, wav, sample_rate)
    return utt, len(wav) / sample_rate


def phone_coverage(sentences: list[str], language: str = "en-us") -> dict:
    """Counts of each phone (stress off) over ``sentences`` against :data:`EN_US_INVENTORY`."""
    from shared.text.frontend import Frontend, SPACE
    from shared.text.normalize import PUNCTUATION

    fe = Frontend.from_config(frontend="phoneme", language=language, stress="none", punctuation=False)
    counts = Counter(t for toks in fe.tokens_batch(sentences) for t in toks if t != SPACE and t not in PUNCTUATION)
    inventory = EN_US_INVENTORY
    covered = [p for p in inventory if counts[p] > 0]
    return {
        "inventory": f"espeak-ng en-us ({len(inventory)} phones)",
        "covered": len(covered),
        "inventory_size": len(inventory),
        "missing": [p for p in inventory if counts[p] == 0],
        "extra": sorted(p for p in counts if p not in inventory),
        "counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
    }


def make_corpus(
    data_dir: Path, wav_dir: Path | None = None, num_sentences: int = 800, num_dev: int = 40, num_test: int = 40,
    voices: tuple[str, ...] | list[str] = DEFAULT_VOICES, voices_per_sentence: int = 1, sample_rate: int = 16000,
    seed: int = 0, nj: int = 2,
) -> dict:
    """Generate the corpus (see module docstring); returns the report also written to
    ``data_dir/local/corpus_report.json``."""
    t0 = time.time()
    data_dir = Path(data_dir)
    wav_dir = Path(wav_dir or data_dir / "local" / "wav").resolve()
    voices = list(voices)
    for v in voices:
        resolve_voice(v)  # fail early, naming the bad voice
    spk_of = {v: speaker_id(v) for v in voices}
    if len(set(spk_of.values())) != len(voices):
        raise ValueError(f"voices map to duplicate speaker ids: {spk_of}")
    sentences = generate_sentences(num_sentences, seed)
    splits = split_sentences(num_sentences, num_dev, num_test, seed)

    jobs, utt_split, texts, spks, langs = [], {}, {}, {}, {}
    for split, indices in splits.items():
        for s, voice in assign_voices(indices, voices, voices_per_sentence):
            utt = f"{spk_of[voice]}-s{s:05d}"
            path = wav_dir / spk_of[voice] / f"{utt}.wav"
            jobs.append((utt, sentences[s], voice, str(path), sample_rate))
            utt_split[utt], texts[utt], spks[utt], langs[utt] = split, sentences[s], spk_of[voice], voice_language(voice)
    durations: dict[str, float] = {}
    if nj > 1:
        with ProcessPoolExecutor(nj) as pool:
            durations.update(pool.map(_synth_job, jobs, chunksize=max(1, len(jobs) // (8 * nj))))
    else:
        durations.update(map(_synth_job, jobs))

    report: dict = {"args": {"num_sentences": num_sentences, "num_dev": num_dev, "num_test": num_test,
                             "voices": voices, "voices_per_sentence": voices_per_sentence,
                             "sample_rate": sample_rate, "seed": seed},
                    "speakers": {spk_of[v]: v for v in voices}, "splits": {}}
    jobs_of = {j[0]: j for j in jobs}
    for split in SPLITS:
        utts = sorted(u for u, sp in utt_split.items() if sp == split)
        DataDir(wav_scp={u: jobs_of[u][3] for u in utts}, text={u: texts[u] for u in utts},
                utt2spk={u: spks[u] for u in utts}, utt2dur={u: durations[u] for u in utts},
                utt2lang={u: langs[u] for u in utts}).save(data_dir / split)
        per_spk = Counter(spks[u] for u in utts)
        report["splits"][split] = {
            "utterances": len(utts), "sentences": len(splits[split]),
            "minutes": round(sum(durations[u] for u in utts) / 60, 2),
            "per_speaker": dict(sorted(per_spk.items())),
        }
    total = sum(durations.values())
    report["total_minutes"] = round(total / 60, 2)
    report["total_hours"] = round(total / 3600, 4)
    report["mean_utt_seconds"] = round(total / max(1, len(durations)), 2)
    report["phone_coverage"] = phone_coverage([sentences[s] for s in splits["train"]])
    report["phone_coverage_all_splits"] = {k: v for k, v in phone_coverage(sentences).items() if k != "counts"}
    report["seconds_to_make"] = round(time.time() - t0, 2)
    write_json(data_dir / "local" / "corpus_report.json", report)
    return report


def _summary(report: dict) -> str:
    cov = report["phone_coverage"]
    lines = [f"espeak_mini: {report['total_minutes']} min ({report['total_hours']} h) of audio, "
             f"mean {report['mean_utt_seconds']} s/utt, made in {report['seconds_to_make']} s"]
    for split, info in report["splits"].items():
        lines.append(f"  {split}: {info['utterances']} utts, {info['sentences']} sentences, {info['minutes']} min, "
                     f"per speaker {info['per_speaker']}")
    lines.append(f"  train phone coverage: {cov['covered']}/{cov['inventory_size']} of {cov['inventory']}; "
                 f"missing {cov['missing']}; rarest {list(cov['counts'].items())[-5:]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.corpora.espeak_mini", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", "--out-dir", dest="data_dir", type=Path, default=Path("data"))
    p.add_argument("--wav-dir", type=Path, default=None, help="where wavs go (default DATA_DIR/local/wav)")
    p.add_argument("--num-sentences", type=int, default=800)
    p.add_argument("--num-dev", type=int, default=40)
    p.add_argument("--num-test", type=int, default=40)
    p.add_argument("--voices", default=",".join(DEFAULT_VOICES), help="comma-separated espeak-ng voices")
    p.add_argument("--voices-per-sentence", type=int, default=1)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="synthesis processes")
    args = p.parse_args(argv)
    try:
        report = make_corpus(args.data_dir, args.wav_dir, args.num_sentences, args.num_dev, args.num_test,
                             [v for v in args.voices.split(",") if v], args.voices_per_sentence,
                             args.sample_rate, args.seed, args.nj)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(_summary(report))
    print(f"report: {args.data_dir / 'local' / 'corpus_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
