"""A tiny synthetic stage-two corpus for tests and smoke runs, in the real layout.

Each character token has a fixed latent vector (plus a per-speaker offset); an utterance's latents are
those vectors held for 2-6 frames each, plus a little noise. A model that learns the alignment and the
token vectors reproduces them, so MAS, the duration predictor and the flow can all be checked quickly.

    python -m stage2_flow.fake --root /tmp/s2fake

writes ``ROOT/data/{train,dev,test}`` (text, token, utt2spk, wav.scp placeholders), ``ROOT/exp/tokens.txt``
+ ``frontend.yaml``, a stand-in codec exp dir ``ROOT/exp/stage1/fake`` with ``latent_stats.json``, and
``ROOT/dump/fake/<set>`` latent dumps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from shared.io import write_json, write_kv
from shared.latents import LatentDumpWriter

WORDS = "the a cat dog sat ran on mat big red sun hot cold blue sea sky far near fast slow".split()


def make_fake_corpus(root: str | Path, n_train: int = 48, n_dev: int = 6, n_test: int = 4, latent_dim: int = 8,
                     n_speakers: int = 2, seed: int = 0) -> dict[str, Path]:
    from shared.text import Frontend, Vocab

    root = Path(root)
    g = torch.Generator().manual_seed(seed)
    fe = Frontend.from_config({"frontend": "char"})
    exp = root / "exp"
    s1 = exp / "stage1" / "fake"
    s1.mkdir(parents=True, exist_ok=True)
    write_json(s1 / "standin_codec.json", {"type": "mel", "sample_rate": 16000, "hop_length": 256, "latent_dim": latent_dim, "gl_iters": 4})
    (exp / "frontend.yaml").write_text("frontend: char\n")
    sets = {"train": n_train, "dev": n_dev, "test": n_test}
    texts = {}
    for name, n in sets.items():
        for i in range(n):
            k = 2 + int(torch.randint(3, (1,), generator=g))
            words = [WORDS[int(j)] for j in torch.randint(len(WORDS), (k,), generator=g)]
            texts[(name, f"{name}_s{i % n_speakers}_{i:03d}")] = " ".join(words)
    all_tokens = {key: fe.tokens(t) for key, t in texts.items()}
    vocab = Vocab.build(v for (name, _), v in all_tokens.items() if name == "train")
    vocab.save(exp / "tokens.txt")
    table = torch.randn(len(vocab), latent_dim, generator=g) * 2.0 + 1.0
    spk_off = torch.randn(n_speakers, latent_dim, generator=g) * 0.5
    all_z = []
    for name in sets:
        data = root / "data" / name
        dump = root / "dump" / "fake" / name
        keys = [k for k in texts if k[0] == name]
        writer = LatentDumpWriter(dump)
        for _, utt in keys:
            ids = torch.tensor(vocab.encode(all_tokens[(name, utt)], map_unknown=True))
            dur = torch.randint(2, 7, (len(ids),), generator=g)
            spk = int(utt.split("_s")[1].split("_")[0])
            z = (table[ids] + spk_off[spk]).repeat_interleave(dur, 0).T
            z = z + 0.1 * torch.randn(z.shape, generator=g)
            writer.add(utt, z)
            if name == "train":
                all_z.append(z)
        writer.finish()
        write_kv(data / "text", {u: texts[(name, u)] for _, u in keys})
        write_kv(data / "token", {u: " ".join(all_tokens[(name, u)]) for _, u in keys})
        write_kv(data / "utt2spk", {u: f"spk{u.split('_s')[1].split('_')[0]}" for _, u in keys})
        write_kv(data / "wav.scp", {u: f"/nonexistent/{u}.wav" for _, u in keys})
    cat = torch.cat(all_z, dim=1)
    write_json(s1 / "latent_stats.json", {"mean": cat.mean(1).tolist(), "std": cat.std(1).tolist()})
    return {"root": root, "stage1": s1, "tokens": exp / "tokens.txt"}


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m stage2_flow.fake", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True)
    p.add_argument("--latent-dim", type=int, default=8)
    a = p.parse_args()
    print(make_fake_corpus(a.root, latent_dim=a.latent_dim))
