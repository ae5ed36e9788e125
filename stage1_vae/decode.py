"""Decode latents, or resynthesise a data dir, into a new data dir of audio.

    # resynthesis (encode + decode): reference metrics optional
    python -m stage1_vae.decode --exp-dir exp/stage1/vae --data-dir data/test --out-dir exp/stage1/vae/resynth/test \\
        [--metrics-out exp/stage1/vae/resynth/test/metrics.json]
    # latents (e.g. a dump, or stage two's output) -> audio
    python -m stage1_vae.decode --exp-dir exp/stage1/vae --latents-dir dump/vae/test --out-dir OUT [--data-dir data/test]

Writes ``<out>/wav/<utt>.wav`` and ``<out>/wav.scp`` (plus ``text``/``utt2spk``/``spk2utt``/``utt2dur`` when a
data dir is given, so the output is a data dir itself; a dump's keys are its utterances, or those its ``key2utt``
names). ``wav.scp`` is written last and, with the metrics, removed before anything is rewritten: its presence
marks a finished output, left alone unless ``--overwrite`` or unless ``decode.json`` (what it was decoded from:
:func:`decode_inputs`) names other inputs than this run's, which are then decoded again. The codec's own ``encode`` output (by the dump's
``codec.json``) is decoded as it is, other latents (stage two's, another codec's) snapped to its codebook; a dump
of another frame rate or latent size is refused.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from shared.audio import save_audio
from shared.datadir import DataDir
from shared.device import add_device_arg
from shared.io import PathLike, errors_named, file_sha256, read_json, read_kv, remove_files, write_json, write_kv
from shared.latents import codec_fingerprint, load_latent, read_latent_scp, same_codec
from stage1_vae.codec import load_codec


def own_latents(latents_dir: PathLike, exp_dir: PathLike, codec) -> bool:
    """Whether the dump ``latents_dir`` holds the ``exp_dir`` codec's own ``encode`` output (decoded as it is, not
    snapped), by its ``codec.json``. Latents of another codec of the same frame rate and size (stage two's, or a
    fine-tuned decoder's codec) are decoded with a note, snapped; of another frame rate or size refused."""
    path = Path(latents_dir) / "codec.json"
    if not path.is_file():
        return False
    info = read_json(path)
    shape = ("sample_rate", "hop_length", "latent_dim")
    if any(info.get(k) != getattr(codec, k) for k in shape):
        raise SystemExit(f"{path}: latents at {', '.join(f'{k} {info.get(k)}' for k in shape)}; the codec of --exp-dir "
                         f"{exp_dir} has {', '.join(f'{k} {getattr(codec, k)}' for k in shape)}")
    if not same_codec(info, exp_dir):
        print(f"note: {path} names the codec in {info['exp_dir']} (weights sha256 {info.get('model_sha256')}); decoding "
              f"with --exp-dir {exp_dir} (sha256 {codec_fingerprint(exp_dir)})", flush=True)
        return False
    return bool(info.get("encoded")) and not info.get("continuous")


def key_utterances(latents_dir: PathLike, keys: list[str]) -> dict[str, str]:
    """``{key: utterance}`` of a dump's ``keys``: its ``key2utt``, where it has one, else the keys themselves."""
    path = Path(latents_dir) / "key2utt"
    key2utt = read_kv(path) if path.is_file() else {}
    return {k: key2utt.get(k, k) for k in keys}


def data_tables(data: DataDir, key2utt: dict[str, str], data_dir: str, latents_dir: str) -> dict[str, dict[str, str]]:
    """``text``/``utt2spk`` of the output's keys, from the utterances ``key2utt`` maps them to in ``data``."""
    missing = sorted(k for k, u in key2utt.items() if u not in data.utt2spk)
    if missing:
        raise SystemExit(f"{latents_dir}/latents.scp: {len(missing)} key(s) not an utterance of --data-dir {data_dir} "
                         f"(nor mapped to one by {latents_dir}/key2utt), e.g. '{missing[0]}'")
    return {"text": {k: data.text[u] for k, u in key2utt.items()}, "utt2spk": {k: data.utt2spk[u] for k, u in key2utt.items()}}


def decode_inputs(exp_dir: PathLike, data_dir: PathLike | None, latents_dir: PathLike | None) -> dict[str, str | None]:
    """What an output is decoded from, recorded in ``<out>/decode.json``: the codec's weights, the dump's files and,
    by size and modification time, its latents (a dump synthesised again under the same keys), and the data dir's
    files, each by SHA-256 (None: absent)."""
    import hashlib

    def digest(path: Path) -> str | None:
        return file_sha256(path) if path.is_file() else None

    record = {"codec_sha256": codec_fingerprint(exp_dir)}
    if latents_dir is not None:
        for name in ("latents.scp", "codec.json", "key2utt", "utt2frames"):
            record[f"latents/{name}"] = digest(Path(latents_dir) / name)
        stamps = hashlib.sha256()
        for key, path in sorted(read_latent_scp(latents_dir).items()):
            st = Path(path).stat()
            stamps.update(f"{key} {st.st_size} {st.st_mtime_ns}\n".encode())
        record["latents/files"] = stamps.hexdigest()
    if data_dir is not None:
        for name in ("wav.scp", "segments", "text", "utt2spk"):
            record[f"data/{name}"] = digest(Path(data_dir) / name)
    return record


def finished(out: Path, metrics_out: str | None, inputs: dict[str, str | None]) -> bool:
    """Whether ``out`` holds a finished output (its ``wav.scp``, and the metrics asked for) decoded from ``inputs``.
    One decoded from others (a codec retrained in the same exp dir, a dump or data dir made again) is decoded again,
    with a note naming what changed; one from before ``decode.json`` was written is kept, with a note."""
    if not (out / "wav.scp").is_file() or (metrics_out is not None and not Path(metrics_out).is_file()):
        return False
    record = out / "decode.json"
    if not record.is_file():
        print(f"{out}/wav.scp exists (no decode.json: made by an earlier version, its inputs unchecked): nothing to do "
              "(use --overwrite to redo)")
        return True
    recorded = read_json(record)
    changed = [k for k, v in inputs.items() if recorded.get(k) != v]
    if changed:
        print(f"{out} was decoded from other inputs than this run's ({', '.join(changed)} differ): decoding again",
              flush=True)
        return False
    print(f"{out}/wav.scp exists, decoded from these inputs: nothing to do (use --overwrite to redo)")
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--data-dir", default=None, help="resynthesise this data dir (or take text/utt2spk from it)")
    p.add_argument("--latents-dir", default=None, help="decode <dir>/latents.scp instead of resynthesising")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--metrics-out", default=None, help="resynthesis: write mean PESQ-WB/STOI/mel distance here")
    add_device_arg(p)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.data_dir is None and args.latents_dir is None:
        p.error("give --data-dir (resynthesis) and/or --latents-dir (decode latents)")
    if args.metrics_out and args.latents_dir:
        p.error("--metrics-out scores resynthesis (--data-dir alone): decoded latents have no time-aligned reference")
    torch.set_num_threads(args.num_threads)
    out = Path(args.out_dir)
    inputs = decode_inputs(args.exp_dir, args.data_dir, args.latents_dir)
    if not args.overwrite and finished(out, args.metrics_out, inputs):
        return 0
    codec = load_codec(args.exp_dir, args.device)
    data = DataDir.load(args.data_dir) if args.data_dir else None
    latents = read_latent_scp(args.latents_dir) if args.latents_dir else None
    utts = sorted(latents) if latents is not None else data.utts
    encoded = own_latents(args.latents_dir, args.exp_dir, codec) if latents is not None else True
    key2utt = key_utterances(args.latents_dir, utts) if latents is not None else {u: u for u in utts}
    tables = data_tables(data, key2utt, args.data_dir, args.latents_dir) if data is not None else {}
    remove_files(out / "wav.scp", out / "decode.json", args.metrics_out)  # before anything is rewritten
    metrics_rows, wav_scp, utt2dur = [], {}, {}
    if args.metrics_out:
        from shared.metrics.signal import MultiResolutionMelDistance, codec_metrics

        mel_distance = MultiResolutionMelDistance(codec.sample_rate)
    for utt in utts:
        ref = None
        with errors_named(f"utterance '{utt}'"):
            if latents is not None:
                z = load_latent(latents[utt]).to(args.device)
                if z.dim() != 2 or z.shape[0] != codec.latent_dim:
                    raise ValueError(f"{latents[utt]}: latent of shape {tuple(z.shape)}, expected ({codec.latent_dim}, F)")
                wav = codec.decode(z[None].float(), encoded=encoded)[0]
            else:
                ref = data.load_audio(utt, codec.sample_rate)
                wav = codec.decode(codec.encode(ref[None].to(args.device)), encoded=True)[0, : ref.shape[-1]]
        wav = wav.float().cpu()
        path = (out / "wav" / f"{utt}.wav").resolve()
        save_audio(path, wav, codec.sample_rate)
        wav_scp[utt], utt2dur[utt] = str(path), wav.shape[-1] / codec.sample_rate
        if args.metrics_out and ref is not None:
            metrics_rows.append(codec_metrics(ref.numpy(), wav.numpy(), codec.sample_rate, mel_distance))
    if metrics_rows:
        summary = {k: float(np.nanmean([r[k] for r in metrics_rows])) for k in metrics_rows[0]}
        summary = {k: (None if math.isnan(v) else round(v, 4)) for k, v in summary.items()}
        summary["num_utts"] = len(metrics_rows)
        write_json(args.metrics_out, {"mean": summary, "per_utt": dict(zip(utts, metrics_rows))})
        print(f"metrics: {summary}")
    write_json(out / "decode.json", inputs)
    if tables:  # wav.scp last (DataDir.save): its presence marks a finished output
        DataDir(wav_scp=wav_scp, utt2dur=utt2dur, **tables).save(out)
    else:
        write_kv(out / "wav.scp", wav_scp)
    print(f"wrote {len(wav_scp)} utterances to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
