#!/usr/bin/env python3
"""A larger held-out set for intelligibility experiments: sentences no split of the corpus contains.

    python local/screen_set.py --out-dir data/screen [--num-sentences 380] [--seed 11]

The 150 test sentences (4620 phones, on which the real audio makes only 8-32 errors) are too few for the smaller
differences between stage-two systems; 380 sentences (about 12000 phones, 76 per voice) score 2.6 times the phones.
The sentences come from the corpus's own generator with another seed, are spoken by the same voices, and every one
that also occurs in ``data/{train,dev,test}/text`` is dropped (with a count printed), so the set is unseen by every model. It is built in
``.<name>.tmp`` beside ``OUT_DIR`` and renamed into place when whole: an interrupted build leaves no ``OUT_DIR`` for
local/score_screen.sh to stop at, and the next one starts afresh.
``OUT_DIR`` is a Kaldi data dir with ``token`` written with the recipe's ``exp/tokens.txt``, ready for::

    python -m stage2_flow.synthesize --exp-dir exp/stage2/flow --data-dir data/screen --out-dir OUT \\
        --nfe 4 --temperature 0.2
    python -m shared.phone_recognizer.score --exp-dir exp/asr --data-dir OUT --ref-token-file data/screen/token \\
        --out OUT/per.json
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.datadir import DataDir
from shared.io import read_kv


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default="data/screen")
    p.add_argument("--num-sentences", type=int, default=380)
    p.add_argument("--seed", type=int, default=11, help="sentence seed; the corpus itself uses 0")
    p.add_argument("--splits", nargs="+", default=["data/train", "data/dev", "data/test"], help="data dirs to exclude")
    p.add_argument("--tokens", default="exp/tokens.txt", help="the recipe's token list (stage 2)")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    if out.exists():
        raise SystemExit(f"{out} exists; remove it first")
    if args.seed == 0:
        raise SystemExit("--seed 0 is the corpus's own seed: its sentences would be the training sentences")
    seen = {t.strip().lower() for d in args.splits for t in read_kv(Path(d) / "text").values()}
    staging = out.parent / f".{out.name}.tmp"  # beside it: renamed into place on the same file system
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted build's
    staging.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=staging) as tmp:
        # the corpus builder needs a non-empty training split: NUM_SENTENCES of NUM_SENTENCES + 20 generated
        # sentences go to "test", the set kept; the other 20 are synthesised too, into OUT_DIR/wav, and unused
        subprocess.run([sys.executable, "-m", "shared.corpora.espeak_mini", "--data-dir", tmp, "--wav-dir",
                        str(staging / "wav"), "--num-sentences", str(args.num_sentences + 20), "--num-dev", "0",
                        "--num-test", str(args.num_sentences), "--seed", str(args.seed)], check=True)
        text = read_kv(Path(tmp) / "test" / "text")
        keep = sorted(u for u, t in text.items() if t.strip().lower() not in seen)
        print(f"{len(text) - len(keep)} of {len(text)} sentences occur in {', '.join(args.splits)}: dropped")
        data = DataDir.load(Path(tmp) / "test").subset(keep)
    # wav.scp's paths are absolute: where the wavs will be once the dir is in place
    here, there = str(staging.resolve()), str(out.resolve())
    data.wav_scp = {u: there + p[len(here):] if p.startswith(here + "/") else p for u, p in data.wav_scp.items()}
    data.save(staging)
    # --vocab without --config: tokenised with the frontend.yaml beside the token list, like dev and test
    subprocess.run([sys.executable, "-m", "shared.text.tokenize", "--data-dir", str(staging), "--out",
                    str(staging / "token"), "--vocab", args.tokens], check=True)
    staging.rename(out)
    print(f"{out}: {len(keep)} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
