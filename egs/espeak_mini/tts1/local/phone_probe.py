#!/usr/bin/env python3
"""What does the judge hear where the real audio has a given phone, and what differs there in the generated audio?

    python local/phone_probe.py --asr-dir exp/asr --real-dir data/screen --gen-dir exp/stage1/vae/resynth/screen \
        [--phone ɾ --rival d --context 8]

For a generated data dir time-aligned with the real one (codec resynthesis), finds the recogniser's output
frames (40 ms) where its CTC argmax on the real audio is ``--phone``, and prints the recogniser's mean
posterior of the phone there on the real and on the generated audio, of ``--rival`` on the generated, and
the share of those frames where the generated audio's argmax is still the phone; then the generated - real
difference of the recogniser's log-mel input (natural log, before its per-utterance normalisation), averaged
over the frames, as 8 groups of mel bands (low to high) by 10 ms frames from ``-context`` to ``context - 1``
around each frame (RESULTS.md: "Finer time in stage one's encoder").
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from shared.io import read_kv
from shared.phone_recognizer.data import iter_wavs
from shared.phone_recognizer.score import LoadedRecognizer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr-dir", required=True)
    p.add_argument("--real-dir", required=True)
    p.add_argument("--gen-dir", required=True, help="a data dir of audio time-aligned with --real-dir's")
    p.add_argument("--phone", default="ɾ")
    p.add_argument("--rival", default="d")
    p.add_argument("--context", type=int, default=8, help="10 ms log-mel frames each side")
    a = p.parse_args()
    judge = LoadedRecognizer(a.asr_dir)
    model, vocab = judge.model, judge.vocab
    for name in (a.phone, a.rival):
        if name not in vocab.stoi:
            raise SystemExit(f"{name!r} is not in {a.asr_dir}/tokens.txt")
    phone, rival = vocab.stoi[a.phone], vocab.stoi[a.rival]
    utts = sorted(set(read_kv(f"{a.real_dir}/wav.scp")) & set(read_kv(f"{a.gen_dir}/wav.scp")))
    posts, diffs = [], []
    with torch.no_grad():
        pairs = zip(iter_wavs(a.real_dir, utts, judge.sample_rate), iter_wavs(a.gen_dir, utts, judge.sample_rate))
        for real, gen in pairs:
            n = min(real.numel(), gen.numel())
            (lp_r, mel_r), (lp_g, mel_g) = [
                (model(*model.features(w[None, :n], torch.tensor([n])))[0][0], model.mel(w[None, :n])[0]) for w in (real, gen)]
            for t in torch.nonzero(lp_r.argmax(-1) == phone).flatten().tolist():
                posts.append((lp_r[t, phone].exp().item(), lp_g[t, phone].exp().item(), lp_g[t, rival].exp().item(),
                              float(lp_g[t].argmax() == phone)))
                c = 4 * t + 2  # the centre of the output frame's four 10 ms input frames
                if a.context <= c < mel_r.shape[-1] - a.context:
                    diffs.append((mel_g - mel_r)[:, c - a.context:c + a.context].numpy())
    if not posts:
        raise SystemExit(f"the judge hears no {a.phone!r} in {a.real_dir}")
    pr, pg, pv, kept = np.mean(posts, axis=0)
    print(f"{len(posts)} frames heard as {a.phone} in the real audio of {len(utts)} utterances: P({a.phone}) real {pr:.2f}, "
          f"generated {pg:.2f}; P({a.rival}) generated {pv:.2f}; still {a.phone} in {kept:.0%}")
    mean = np.stack(diffs).mean(0)
    print(f"generated - real log-mel by 10 ms frame, {-a.context} to {a.context - 1} around it:")
    for group in np.array_split(np.arange(mean.shape[0]), 8):
        print(f"mel {group[0]:2d}-{group[-1]:2d}: " + " ".join(f"{v:+.2f}" for v in mean[group].mean(0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
