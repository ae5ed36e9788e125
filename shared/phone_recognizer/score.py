"""Decode a data dir with a trained phone recogniser and score the phone error rate (PER).

    python -m shared.phone_recognizer.score --exp-dir exp/asr --data-dir exp/.../synth/test \
        --ref-token-file data/test/token --out exp/.../eval/test/per.json

``--data-dir`` needs only ``wav.scp``. Greedy CTC decoding; PER = (substitutions + insertions +
deletions) / reference phones, summed over the corpus. ``per.json`` holds the corpus counts and rate;
per-utterance hypotheses and rates go to ``<out stem>_utt.tsv`` beside it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch

from shared.io import MODEL_FILE, PathLike, atomic_write, write_json
from shared.metrics.text import edit_distance, error_rate
from shared.phone_recognizer.data import iter_wavs, phone_filter, read_token_file, utterance_ids
from shared.phone_recognizer.model import PhoneRecognizer, RecognizerConfig, greedy_ctc_decode
from shared.text.vocab import Vocab


class LoadedRecognizer:
    """A trained recogniser from its exp dir: ``model``, ``vocab`` and the ``keep`` phone filter."""

    def __init__(self, exp_dir: PathLike):
        exp = Path(exp_dir)
        if not (exp / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{exp}: no model.pt (train it with python -m shared.phone_recognizer.train)")
        saved = torch.load(exp / MODEL_FILE, map_location="cpu", weights_only=False)
        self.vocab = Vocab.load(exp / "tokens.txt")
        self.model = PhoneRecognizer(RecognizerConfig(**saved["config"]))
        self.model.load_state_dict(saved["state_dict"])
        self.model.eval()
        tc = saved.get("tokens_cfg", {})
        self.keep = phone_filter(tc.get("drop_stress", True), tc.get("drop", []))
        self.sample_rate = self.model.cfg.sample_rate

    @torch.no_grad()
    def transcribe(self, wavs: Iterable[torch.Tensor]) -> list[list[str]]:
        """Phone sequences of waveforms ``(T,)`` at ``self.sample_rate``.

        One utterance at a time, so a hypothesis never depends on what it was batched with; ``wavs`` may be a
        generator (:func:`~shared.phone_recognizer.data.iter_wavs`), so a corpus is never held in memory whole.
        """
        out = []
        for w in wavs:
            feats, frames = self.model.features(w.reshape(1, -1).float(), torch.tensor([w.numel()]))
            # filtered as the references are (a recogniser trained before the filter stripped attached stress
            # has classes such as 'ˈoʊ', which would never match a reference's 'oʊ')
            out.extend(self.keep(h) for h in _decode(self.model, feats, frames, self.vocab))
        return out


def _decode(model: PhoneRecognizer, feats: torch.Tensor, frames: torch.Tensor, vocab: Vocab) -> list[list[str]]:
    logp, out_len = model(feats, frames)
    return [vocab.decode(ids, skip_special=True) for ids in greedy_ctc_decode(logp, out_len, vocab.blank_id)]


@torch.no_grad()
def decode_features(model: PhoneRecognizer, feats: list[torch.Tensor], vocab: Vocab) -> list[list[str]]:
    """Decode precomputed features ``(n_mels, F)`` (as made in training), one utterance at a time as
    :meth:`LoadedRecognizer.transcribe` does: padded frames would pass through BatchNorm and the GRU and make a
    hypothesis depend on what it was batched with."""
    was_training = model.training
    model.eval()
    out = [_decode(model, f[None], torch.tensor([f.shape[-1]]), vocab)[0] for f in feats]
    model.train(was_training)
    return out


def unknown_phones(refs: dict[str, list[str]], utts: Sequence[str], known: Iterable[str]) -> dict[str, int]:
    """``{phone: count}`` of the reference phones of ``utts`` outside ``known`` (the recogniser's vocabulary), most
    frequent first."""
    known = set(known)
    counts = Counter(p for u in utts for p in refs[u] if p not in known)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def score_dir(exp_dir: PathLike, data_dir: PathLike, ref_token_file: PathLike, out: PathLike | None = None,
              recognizer: LoadedRecognizer | None = None, utts: Sequence[str] | None = None) -> dict:
    """Recognise every utterance of ``data_dir`` and score it against ``ref_token_file``.

    Returns ``{"per", "sub", "ins", "del", "ref_len", "errors", "num_utts", "utts": {utt: {...}}}``;
    writes ``out`` (without the per-utterance part) and ``<out stem>_utt.tsv`` when ``out`` is given.
    ``utts`` restricts scoring to those ids (default: all of ``wav.scp``).
    Raises ValueError for a data dir without utterances (a PER of 0 over nothing would read as perfect) and
    listing utterances that have no reference tokens or no audio.
    """
    rec = recognizer or LoadedRecognizer(exp_dir)
    refs = read_token_file(ref_token_file, rec.keep)
    have = utterance_ids(data_dir)  # wav.scp's keys, or those of segments where there is one
    if not have or (utts is not None and not utts):
        raise ValueError(f"no utterances in {data_dir}" + (" (an empty list of utterances to score)" if have else ""))
    no_audio = sorted(set(utts or []) - set(have))
    if no_audio:
        raise ValueError(f"{data_dir}: no audio for {len(no_audio)} utterance(s): {', '.join(no_audio[:20])}")
    utts = sorted(utts) if utts is not None else have
    missing = [u for u in utts if u not in refs]
    if missing:
        raise ValueError(f"{ref_token_file}: no reference tokens for {len(missing)} utterance(s) of {data_dir}: "
                         f"{', '.join(missing[:20])}")
    unknown = unknown_phones(refs, utts, rec.vocab.stoi)
    if unknown:  # each an error no recognition can avoid: tokens of another frontend, or a phone training never had
        print(f"[phone_recognizer.score] WARNING: {ref_token_file}: {sum(unknown.values())} reference phone(s) of "
              f"{data_dir} are not among the recogniser's ({Path(exp_dir) / 'tokens.txt'}), each an error it cannot "
              f"avoid: {', '.join(f'{p} x{n}' for p, n in unknown.items())}", file=sys.stderr, flush=True)
    hyps = rec.transcribe(iter_wavs(data_dir, utts, rec.sample_rate))  # streamed: one waveform in memory at a time
    total = error_rate([refs[u] for u in utts], hyps)
    per_utt = {}
    for u, h in zip(utts, hyps):
        c = edit_distance(refs[u], h)
        per_utt[u] = {"per": c.rate, "errors": c.errors, "ref_len": c.ref_len, "hyp": " ".join(h)}
    result = {"per": total.rate, **{k: v for k, v in total.as_dict().items() if k != "rate"}, "num_utts": len(utts),
              "unknown_ref_phones": unknown, "exp_dir": str(exp_dir), "data_dir": str(data_dir),
              "ref_token_file": str(ref_token_file)}
    if out is not None:
        out = Path(out)
        write_json(out, result)
        with atomic_write(out.with_name(out.stem + "_utt.tsv")) as f:
            f.write("utt\tper\terrors\tref_len\tref\thyp\n")
            for u, r in per_utt.items():
                f.write(f"{u}\t{r['per']:.4f}\t{r['errors']}\t{r['ref_len']}\t{' '.join(refs[u])}\t{r['hyp']}\n")
    return {**result, "utts": per_utt}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="trained recogniser (exp/asr)")
    p.add_argument("--data-dir", required=True, help="dir with wav.scp (real or synthesised)")
    p.add_argument("--ref-token-file", required=True, help="'<utt> tok ...' reference tokens")
    p.add_argument("--out", required=True, help="per.json to write")
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # per-utterance decoding of a small GRU: threads only spin-wait
    res = score_dir(a.exp_dir, a.data_dir, a.ref_token_file, a.out)
    print(f"[phone_recognizer.score] {a.data_dir}: PER {res['per']:.2%} ({res['errors']}/{res['ref_len']}, "
          f"{res['num_utts']} utts) -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
