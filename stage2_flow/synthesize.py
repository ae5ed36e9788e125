"""Text -> waveform with a trained stage-two exp dir (and the stage-one codec it names).

Python::

    from stage2_flow.synthesize import Synthesizer
    synth = Synthesizer.from_exp_dir("exp/stage2/flow", device="cpu")
    wavs = synth.synthesize(["Hello world."], speaker="enusf2", nfe=4, solver="euler", seed=0)

CLI (also the bulk generator of synthetic corpora; batched by length, tqdm progress)::

    python -m stage2_flow.synthesize --exp-dir exp/stage2/flow --data-dir data/test --out-dir exp/stage2/flow/synth/test
    python -m stage2_flow.synthesize --exp-dir EXP --text-file lines.txt --out-dir OUT   # '<utt> text' or plain lines

writes ``OUT/wav/<utt>.wav`` and a Kaldi data dir (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``,
``utt2dur``, ``token``, and ``utt2lang``: the language each utterance was phonemised in, or of tokens taken as they
are the input's), and ``OUT/synth.json``: the models (paths,
SHA-256) and sampling options; with ``--save-latents`` also the generated latents as a latent dump
(:mod:`shared.latents`; with ``codec.json`` naming the codec that decoded them), to work on a synthetic corpus's
latents without encoding its audio again (stage two trains on OUT as on a real corpus's dump). Utterances whose wav exists already are skipped unless ``--overwrite``
(which first removes the old wavs and latent dump, so an interrupted overwrite is not resumed into them); existing
wavs made with other settings are an error, not mixed with new ones. Each utterance's start noise has its own
seed (``--seed`` and the utterance id), so the corpus does not depend on batching, resuming or splitting it
into jobs (``python -m shared.datadir split`` / ``combine``, which joins the jobs' latent dumps too).

A zero-shot model (``model.speaker.use_prompt``) speaks in the voice of a reference: ``--prompt-wav`` for every
utterance, or ``--prompt-from-data``, each utterance's reference another utterance of its speaker in the data
dir (``OUT/utt2prompt``), the default for such a model without speaker ids: the recipe's evaluation of unseen
voices. A data dir's speaker that the model was not trained on is then the prompt's voice alone (no speaker id); for a
model whose voices are speaker ids it is an error (``--speaker NAME`` speaks every utterance in one trained voice).
"""

from __future__ import annotations

import argparse
import hashlib
import numbers
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from shared.config import positive_int
from shared.device import add_device_arg
from shared.io import MODEL_FILE, read_json, read_kv, remove_outputs, write_json, write_kv
from shared.latents import LatentDumpWriter, codec_fingerprint, codec_info
from shared.text import Frontend, Vocab
from shared.text.tokenize import TokenizeError, tokenize_by_language
from stage2_flow import solvers
from stage2_flow.data import PROMPT_SECONDS, LatentNormalizer, pad_prompts
from stage2_flow.flow import utterance_seed
from stage2_flow.model import FlowTTS, check_rate, codec_dir, load_trained, stage1_dir, trained_continuous, validation_temperature


class Synthesizer:
    def __init__(self, model: FlowTTS, normalizer: LatentNormalizer, vocab: Vocab, frontend: Frontend | None, codec: Any,
                 speakers: list[str], rate_info: dict[str, float] | None, device: str | torch.device = "cpu",
                 codec_source: Path | None = None) -> None:
        self.model, self.norm, self.vocab, self.frontend, self.codec = model.eval(), normalizer, vocab, frontend, codec
        self.speakers, self.rate_info, self.device = speakers, rate_info or {}, torch.device(device)
        self.codec_source = codec_source  # the exp dir the codec was loaded from (None: given as an object)
        self.prompt_seconds = PROMPT_SECONDS[1]  # a data-dir reference is cut to this (training's longest prompt)
        self.temperature = 1.0  # the default; from_exp_dir's: the one the model was validated at (validation_temperature)
        # whether the model was trained on pre-quantisation latents (encode --continuous; from_exp_dir: stage1.json's):
        # its speech prompts are then encoded so too, and a --save-latents dump says so
        self.continuous = False
        self._frontends: dict[str, Frontend] = {}  # one per language met, kept between calls
        self._warned_no_prompt = False

    @classmethod
    def from_exp_dir(cls, exp_dir: str | Path, device: str | torch.device = "cpu", codec: Any = None,
                     stage1_exp_dir: str | Path | None = None) -> "Synthesizer":
        """Load everything from the self-describing exp dir (the codec: :func:`~stage2_flow.model.codec_dir`);
        ``codec`` or ``stage1_exp_dir`` override it."""
        from stage2_flow.codec import load_codec

        exp = Path(exp_dir)
        model, cfg = load_trained(exp)
        model.to(device)
        fe = Frontend.from_config(exp / "frontend.yaml") if (exp / "frontend.yaml").is_file() else None
        source = None if codec is not None else Path(stage1_exp_dir or codec_dir(exp))
        if codec is None:
            codec = load_codec(source, device)
        speakers = (exp / "speakers.txt").read_text().split() if (exp / "speakers.txt").is_file() else []
        rate = read_json(exp / "speaking_rate.json") if (exp / "speaking_rate.json").is_file() else None
        if rate is None and model.mode == "alignfree":
            raise FileNotFoundError(f"{exp / 'speaking_rate.json'}: not found, and this alignment-free model takes each "
                                    "utterance's length from the training set's speaking rate recorded there (training "
                                    "writes it): copy it from the exp dir the model was trained in")
        synth = cls(model, LatentNormalizer.load(exp / "latent_stats.json"), Vocab.load(exp / "tokens.txt"), fe, codec, speakers, rate,
                    device, source)
        synth.prompt_seconds = float(cfg.get("data", {}).get("prompt_seconds", PROMPT_SECONDS)[1])
        synth.temperature = validation_temperature(cfg)
        synth.continuous = trained_continuous(exp)
        return synth

    # ---- inputs ------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], utts: Sequence[str] | None = None,
                 languages: Sequence[str | None] | None = None) -> list[list[int]]:
        """Token ids of ``texts``, phonemised with the training frontend, each in its ``languages`` entry where
        given (a voice trained on ``utt2lang`` tokens speaks its own language's phones: en-gb-x-rp for a
        British one), else in the frontend's language."""
        if self.frontend is None:
            self.frontend = Frontend.from_config({})
        utts = list(utts or [f"<text {i}>" for i in range(len(texts))])
        default = self.frontend.config.language
        utt2lang = {u: lang or default for u, lang in zip(utts, languages)} if languages is not None else None
        toks = tokenize_by_language(self.frontend, dict(zip(utts, texts)), utt2lang, self._frontends)
        return list(encode_tokens(self.vocab, toks).values())

    def language_for(self, speaker: str | int | None, language: str | None = None) -> str | None:
        """``language`` if given, else the speaker's training language (``frontend.yaml``'s ``speaker_languages``,
        from a data dir's utt2lang), else None (the frontend's own)."""
        known = self.frontend.config.speaker_languages if self.frontend is not None else {}
        return language or known.get(self.speaker_name(speaker))

    def speaker_name(self, speaker: str | int | None) -> str | None:
        """The training speaker ``speaker`` stands for (None: the first, as :meth:`speaker_id`), None if unknown."""
        if isinstance(speaker, str):
            return speaker
        k = 0 if speaker is None else speaker
        return self.speakers[k] if 0 <= k < len(self.speakers) else None

    def reference(self, data: Any, utt: str) -> torch.Tensor:
        """Utterance ``utt`` of the data dir ``data`` (a :class:`~shared.datadir.DataDir`) as a voice reference: at the
        codec's rate, cut as :meth:`cut_prompts` cuts (silently: ``--prompt-from-data`` says so in its help)."""
        return self.cut_prompts([data.load_audio(utt, int(self.codec.sample_rate))])[0]

    def cut_prompts(self, wavs: Sequence[torch.Tensor], names: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Reference waveforms (T,) at the codec's rate, each cut to its first ``prompt_seconds`` (training's longest
        prompt, :class:`~stage2_flow.data.TTSDataset`): the prompt encoder's attention pooling never saw a longer
        one. The start, not the middle: the span ``--prompt-from-data`` has always taken, and the one a user chooses
        by trimming the file. Shorter ones are kept whole. With ``names``, one warning on stderr names those cut."""
        sr = int(self.codec.sample_rate)
        n = int(self.prompt_seconds * sr)
        cut = [f"{name} ({w.shape[-1] / sr:.1f} s)" for name, w in zip(names or [], wavs) if w.shape[-1] > n]
        if cut:
            print(f"warning: {len(cut)} speech prompt(s) longer than the {self.prompt_seconds:g} s the prompt encoder was trained "
                  f"on (data.prompt_seconds), each cut to its first {self.prompt_seconds:g} s: "
                  f"{', '.join(cut[:3])}{' ...' if len(cut) > 3 else ''}", file=sys.stderr, flush=True)
        return [w[..., :n] for w in wavs]

    @property
    def needs_prompt(self) -> bool:
        """A zero-shot model without speaker ids: its voice comes from a speech prompt alone."""
        return self.model.speaker.prompt is not None and self.model.speaker.table is None

    def speaker_id(self, speaker: str | int | None) -> int:
        """The id of a training voice (its name, or its id), -1 for none (a prompt's voice alone); None: the first
        training voice (-1 for a model without any). An id outside -1 .. len(speakers) - 1 is a ValueError."""
        if speaker is None:
            return 0 if self.speakers else -1
        if isinstance(speaker, numbers.Integral) and not isinstance(speaker, bool):
            if not -1 <= int(speaker) < len(self.speakers):
                known = ", ".join(f"{i} {name}" for i, name in enumerate(self.speakers)) or "none (a single-speaker model)"
                raise ValueError(f"speaker id {speaker}: out of range; this model's voices are {known}, "
                                 "and -1 is no speaker id (the voice of a speech prompt alone)")
            return int(speaker)
        if speaker not in self.speakers:
            raise KeyError(f"unknown speaker {speaker!r}; known: {self.speakers}")
        return self.speakers.index(speaker)

    @torch.no_grad()
    def prompt_latents(self, wav: torch.Tensor) -> torch.Tensor:
        """Reference waveform (T,) at the codec rate -> normalised latents (D, P), encoded as the training latents were:
        pre-quantisation (``encode_continuous``) for a model trained on ``--continuous`` latents (:attr:`continuous`)."""
        if self.continuous and not hasattr(self.codec, "encode_continuous"):
            raise ValueError(f"the model was trained on pre-quantisation latents (stage1.json continuous: true), but the "
                             f"codec of {self.codec_source or 'this synthesizer'} has no encode_continuous to encode a "
                             "speech prompt so: decode with the stage-one codec it was trained on")
        encode = self.codec.encode_continuous if self.continuous else self.codec.encode
        return self.norm.normalize(encode(wav.float().to(self.device)[None])[0])

    # ---- generation --------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(
        self,
        texts: Sequence[str] | Sequence[Sequence[int]] | str,
        speaker: str | int | Sequence[str | int] | None = None,
        prompt: torch.Tensor | None = None,
        nfe: int = 4,
        solver: str = "euler",
        rate: float = 1.0,
        temperature: float | None = None,
        cfg_scale: float = 0.0,
        sway: float | None = None,
        seed: int | Sequence[int] = 0,
        batch_size: int = 16,
        return_latents: bool = False,
        language: str | None = None,
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Texts (or token-id lists) -> waveforms (T_i,) float32 at ``codec.sample_rate``.

        ``prompt``: a reference waveform (T,) for zero-shot models, or one per text (each its own voice), cut to
        training's longest prompt (:meth:`cut_prompts`); a model without a prompt encoder refuses one, a zero-shot
        model without speaker ids needs one, and one with speaker ids, trained with prompts too, warns (once) without
        one. ``speaker``: one for all texts, or one per text. Speaker -1: no speaker id (an unseen voice: the prompt's alone). Text
        is phonemised in ``language``, else in the speaker's training language (``frontend.yaml``'s
        ``speaker_languages``), else in the frontend's. Items are batched by length; the result keeps the input order.

        ``temperature`` scales the prior's noise (``x0 = mu + T sigma eps``); default :attr:`temperature`, the one the
        model was validated at (the recipes': the one they synthesise and make reflow pairs at). ``seed``: one per
        item, or an int ``s`` meaning ``s + i`` for item i. Each item's start noise comes from its own seed alone
        (:func:`~stage2_flow.flow.start_noise`), so its audio does not depend on what else is synthesised with it or
        on ``batch_size``."""
        if isinstance(texts, str):
            texts = [texts]
        temperature = self.temperature if temperature is None else temperature
        check_sampling(solver, nfe, rate, sway)
        spk = list(speaker) if isinstance(speaker, (list, tuple)) else [speaker] * len(texts)
        if len(spk) != len(texts):  # a shorter list failed deep inside (IndexError), a longer one was cut silently
            raise ValueError(f"{len(spk)} speakers for {len(texts)} texts: give one speaker, or one per text")
        spk_ids = [self.speaker_id(s) for s in spk]
        if texts and not isinstance(texts[0], str):
            ids = [list(t) for t in texts]
        else:
            langs = [self.language_for(s, language) for s in spk]
            ids = self.tokenize(texts, languages=langs if any(langs) else None)
        require_tokens({f"text {i} ({t!r})" if isinstance(t, str) else f"item {i}": x for i, (t, x) in enumerate(zip(texts, ids))})
        seeds = [int(seed) + i for i in range(len(ids))] if isinstance(seed, numbers.Integral) else [int(x) for x in seed]
        if len(seeds) != len(ids):
            raise ValueError(f"{len(seeds)} seeds for {len(ids)} texts")
        if prompt is not None and self.model.speaker.prompt is None:
            raise ValueError("this model has no speech-prompt encoder (model.speaker.use_prompt: false): a prompt would be ignored")
        if prompt is None and self.needs_prompt:
            raise ValueError("a zero-shot model without speaker ids (model.speaker.use_prompt, use_id: false) speaks in the "
                             "voice of a speech prompt: give one (CLI: --prompt-wav, or --prompt-from-data)")
        if prompt is None and self.model.speaker.prompt is not None and not self._warned_no_prompt:
            # its speaker vector is the id's plus the prompt's, and training always gave a prompt
            self._warned_no_prompt = True
            print("warning: this model conditions on speaker ids and a speech prompt (model.speaker.use_id, use_prompt) and "
                  "was trained with a prompt for every utterance; without one its voices are the ids' part alone, which it "
                  "never saw: give a reference (python -m stage2_flow.synthesize: --prompt-from-data or --prompt-wav; "
                  "Synthesizer.synthesize: prompt=)", file=sys.stderr, flush=True)
        if isinstance(prompt, torch.Tensor):
            p_lats = [self.prompt_latents(self.cut_prompts([prompt], ["the prompt"])[0])] * len(ids)
        elif prompt is not None:
            if len(prompt) != len(ids):
                raise ValueError(f"{len(prompt)} prompts for {len(ids)} texts")
            p_lats = [self.prompt_latents(w) for w in self.cut_prompts(prompt, [f"prompt {i}" for i in range(len(prompt))])]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        wavs: list[torch.Tensor | None] = [None] * len(ids)
        lats: list[torch.Tensor | None] = [None] * len(ids)
        for k in range(0, len(order), batch_size):
            chunk = order[k : k + batch_size]
            out = self._batch([ids[i] for i in chunk], [spk_ids[i] for i in chunk], [p_lats[i] for i in chunk] if prompt is not None else None,
                              nfe, solver, rate, temperature, cfg_scale, sway, [seeds[i] for i in chunk])
            for i, (w, z) in zip(chunk, out):
                wavs[i], lats[i] = w, z
        return (wavs, lats) if return_latents else wavs  # type: ignore[return-value]

    def _batch(self, ids, spk_ids, p_lats, nfe, solver, rate, temperature, cfg_scale, sway, seeds):
        dev = self.device
        lens = torch.tensor([len(x) for x in ids], device=dev)
        tokens = torch.zeros(len(ids), int(lens.max()), dtype=torch.long, device=dev)
        for i, x in enumerate(ids):
            tokens[i, : len(x)] = torch.tensor(x, device=dev)
        kw: dict[str, Any] = {}
        if p_lats is not None:  # one prompt per item, padded and masked
            prompt, mask = pad_prompts([z.to(dev) for z in p_lats])
            kw.update(prompt=prompt, prompt_mask=mask.to(dev))
        if self.model.mode == "alignfree":
            if "tokens_per_frame" not in self.rate_info:
                raise ValueError("an alignment-free model takes each utterance's length from the training set's speaking "
                                 "rate: give rate_info with its tokens_per_frame (the exp dir's speaking_rate.json)")
            kw["tokens_per_frame"] = float(self.rate_info["tokens_per_frame"])
        gen = [torch.Generator().manual_seed(s) for s in seeds]  # on the CPU: the same noise on any device
        out = self.model.generate(tokens, lens, spk=torch.tensor(spk_ids, device=dev), nfe=nfe, solver=solver, rate=rate,
                                  temperature=temperature, cfg_scale=cfg_scale, sway=sway, generator=gen, **kw)
        z = self.norm.denormalize(out["latents"])
        # each utterance decoded at its own length: in a padded batch the frames past its end (decoded from
        # zeros) would leak into its last frames, and it would end one frame later than when decoded alone
        lats = [z[i, :, : int(n)].clone() for i, n in enumerate(out["frm_lens"])]  # each its own, not the batch's view
        return [(self.codec.decode(zi[None])[0].float().cpu(), zi.cpu()) for zi in lats]


def check_sampling(solver: str, nfe: int, rate: float, sway: float | None) -> None:
    """A ValueError for sampling options that cannot work: a speaking rate <= 0, an NFE < 1 of a fixed-step solver,
    a sway whose time grid is not increasing within [0, 1] (:func:`~stage2_flow.solvers.time_grid`), or any sway
    with ``dopri5``, which has no grid to warp (it chooses its own steps; the sway was recorded and did nothing)."""
    check_rate(rate)
    if solver != "dopri5":
        steps = solvers.steps_for_nfe(solver, nfe)
        if sway is not None:
            solvers.time_grid(steps, sway)
    elif sway is not None:
        raise ValueError(f"sway {sway} warps a fixed-step solver's time grid; dopri5 chooses its own steps")


def encode_tokens(vocab: Vocab, utt2tokens: dict[str, Sequence[str]]) -> dict[str, list[int]]:
    """Token ids of each utterance's tokens. A symbol the model was not trained on becomes ``<unk>``, which
    training never saw either: a warning on stderr (once per call) names the symbols and a few utterances."""
    unknown = {u: vocab.unknown(toks) for u, toks in utt2tokens.items()}
    unknown = {u: syms for u, syms in unknown.items() if syms}
    if unknown:
        symbols = list(dict.fromkeys(x for syms in unknown.values() for x in syms))
        utts = list(unknown)
        print(f"warning: {len(utts)} utterance(s) hold {len(symbols)} symbol(s) the model was not trained on, synthesised "
              f"as <unk> (unseen in training too): {' '.join(repr(x) for x in symbols[:20])}{' ...' if len(symbols) > 20 else ''} "
              f"(in {', '.join(utts[:3])}{', ...' if len(utts) > 3 else ''})", file=sys.stderr, flush=True)
    return vocab.encode_all(utt2tokens, map_unknown=True)


def require_tokens(ids: dict[str, Sequence[int]]) -> None:
    """A ValueError naming the items (utterances) of ``ids`` without a token: there is nothing to synthesise (a
    batch would give them NaN latents, alone a convolution error)."""
    empty = [name for name, x in ids.items() if len(x) == 0]
    if empty:
        raise ValueError(f"{len(empty)} item(s) have no tokens to synthesise (empty text, or text the frontend makes "
                         f"nothing of): {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}")


def check_speaker(synth: Synthesizer, speaker: str) -> None:
    """``--speaker``: a voice of the model, or an error naming the ones it has."""
    if speaker not in synth.speakers:
        raise SystemExit(f"--speaker {speaker}: not a voice of this model; it knows "
                         f"{', '.join(synth.speakers) or 'none (a single-speaker model)'}")


def speakers_of(synth: Synthesizer, utts: list[str], utt2spk: dict[str, str], speaker: str | None = None,
                prompted: bool = False, remedy: str = "") -> dict[str, str]:
    """Each utterance's voice when synthesising a data dir (the CLI, the NFE sweep): ``speaker`` for all where given,
    else its ``utt2spk`` speaker, the first training voice where it has none. A speaker the model was not trained on
    keeps its name where a speech prompt gives each utterance its voice (``prompted``; its id is then -1, see
    :func:`voice`); for a model whose voices are speaker ids it is an error naming the speakers and ``remedy`` (another
    voice, silently, before); for a model with one voice, or no speaker conditioning, it is that voice."""
    first = synth.speakers[0] if synth.speakers else "spk"
    if speaker:
        check_speaker(synth, speaker)
        return {u: speaker for u in utts}
    unknown = sorted({utt2spk[u] for u in utts if u in utt2spk and utt2spk[u] not in synth.speakers})
    if unknown and not prompted and synth.model.speaker.table is not None and len(synth.speakers) > 1:
        remedy = remedy or ("give --speaker NAME (one trained voice for every utterance), or use a zero-shot model "
                            "(model.speaker.use_prompt), which takes each voice from a speech prompt")
        raise SystemExit(f"{len(unknown)} speaker(s) of the input are not voices of this model: "
                         f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} (it knows {', '.join(synth.speakers)}); "
                         f"its voices are speaker ids, so they would speak in another voice: {remedy}")
    return {u: utt2spk[u] if u in utt2spk and (prompted or utt2spk[u] in synth.speakers) else first for u in utts}


def voice(synth: Synthesizer, name: str, prompted: bool) -> str | int | None:
    """What :meth:`Synthesizer.synthesize` takes as the speaker of an utterance of ``name``: the name of a training
    voice, -1 (no speaker id) for another speaker whose voice a speech prompt gives, else None (the first voice)."""
    if name in synth.speakers:
        return name
    return -1 if prompted else None


def read_inputs(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, list[str]] | None, dict[str, str], dict[str, str]]:
    """-> (utt2text, utt2tokens or None, utt2spk, utt2lang); the last two empty where the input has none."""
    if args.data_dir:
        d = Path(args.data_dir)
        text = read_kv(d / "text")
        tokens = {u: v.split() for u, v in read_kv(d / "token").items()} if (d / "token").is_file() and not args.retokenize else None
        if tokens is not None:
            missing = sorted(set(text) - set(tokens))
            if missing:
                raise SystemExit(f"{d / 'token'} has no tokens for {len(missing)} utterance(s) of {d / 'text'}, e.g. "
                                 f"{', '.join(missing[:3])}: tokenise the data dir again (python -m shared.text.tokenize), "
                                 "or give --retokenize to phonemise its text")
            if args.language:
                raise SystemExit(f"--language {args.language}: {d / 'token'}'s tokens are synthesised as they are; give "
                                 "--retokenize to phonemise the data dir's text in that language")
        utt2spk = read_kv(d / "utt2spk") if (d / "utt2spk").is_file() else {}
        utt2lang = read_kv(d / "utt2lang") if (d / "utt2lang").is_file() else {}
        return text, tokens, utt2spk, utt2lang
    return read_text_file(args.text_file, args.text_format), None, {}, {}


UTT_ID = re.compile(r"[\w.-]*\d[\w.-]*")  # what --text-format auto takes for an utterance id: a digit in it, no '/'
# ...but not a number, a year or a list number ("1990 was ...", "1. The birch canoe ..."): those start sentences
NOT_AN_ID = re.compile(r"[\d.,-]+")


class TextLines(dict):
    """``{utt: text}`` of a text file, with ``line_of[utt]``, the line it was on (for errors about it)."""

    def __init__(self, items: dict[str, str], line_of: dict[str, int]):
        super().__init__(items)
        self.line_of = line_of


def read_text_file(path: str | Path, text_format: str = "auto") -> TextLines:
    """``{utt: text}`` of a text file: ``keyed``, ``<utt> <text>`` lines; ``plain``, one sentence a line (ids
    ``utt000000``, ...); ``auto``, keyed when every line starts with an id (:data:`UTT_ID`, not a number such as a
    year or "1.") and text, plain when none does, said on stdout. A file with some of each, a keyed line without text,
    an id given twice or no text at all is a SystemExit naming the lines: a keyed file with one bad line was read as
    plain sentences, its ids spoken, and a repeated id kept its last line."""
    # lines end at '\n' only (with or without '\r'), as Kaldi's and read_kv's: str.splitlines also ends one at U+2028,
    # a form feed or U+0085, which made the rest of a sentence a line of its own. A BOM of each file joined into this
    # one goes too.
    raw = Path(path).read_text(encoding="utf-8").split("\n")
    lines = [(n, ln.strip().lstrip("\ufeff").strip()) for n, ln in enumerate(raw, 1)]
    lines = [(n, ln) for n, ln in lines if ln]
    if not lines:
        raise SystemExit(f"{path}: no text to synthesise")

    def looks_keyed(line: str) -> bool:
        parts = line.split(maxsplit=1)
        return len(parts) == 2 and UTT_ID.fullmatch(parts[0]) is not None and not NOT_AN_ID.fullmatch(parts[0])

    if text_format == "auto":
        keyed = [n for n, ln in lines if looks_keyed(ln)]
        if keyed and len(keyed) < len(lines):
            other = [n for n, ln in lines if not looks_keyed(ln)]
            raise SystemExit(f"{path}: {len(keyed)} of {len(lines)} lines start with an utterance id and text (e.g. line "
                             f"{keyed[0]}), line(s) {', '.join(map(str, other[:5]))}{' ...' if len(other) > 5 else ''} not: "
                             "give --text-format keyed (every line '<utt> <text>') or plain (every line a sentence)")
        text_format = "keyed" if keyed else "plain"
        print(f"{path}: read as {'<utt> <text> lines' if keyed else 'one sentence a line'} (--text-format {text_format})",
              flush=True)
    if text_format == "plain":
        ids = [f"utt{i:06d}" for i in range(len(lines))]
        return TextLines({u: ln for u, (_, ln) in zip(ids, lines)}, {u: n for u, (n, _) in zip(ids, lines)})
    text, line_of = {}, {}
    for n, ln in lines:
        parts = ln.split(maxsplit=1)
        if len(parts) < 2:
            raise SystemExit(f"{path}:{n}: '{ln}': an utterance id without text")
        utt, sentence = parts
        if "/" in utt:
            raise SystemExit(f"{path}:{n}: utterance id '{utt}' holds a '/' (it names the utterance's wav file)")
        if utt in line_of:
            raise SystemExit(f"{path}:{n}: utterance id '{utt}' again (line {line_of[utt]})")
        text[utt], line_of[utt] = sentence, n
    return TextLines(text, line_of)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from shared.audio import save_audio

    p = argparse.ArgumentParser(prog="python -m stage2_flow.synthesize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data-dir", help="data dir: its token file (or text) and utt2spk are used")
    src.add_argument("--text-file", help="'<utt> text' lines or plain sentence lines (see --text-format)")
    p.add_argument("--text-format", choices=["auto", "keyed", "plain"], default="auto",
                   help="--text-file's lines: '<utt> <text>' (keyed), one sentence each (plain; ids utt000000, ...), or "
                        "auto: keyed when every line starts with an id (a field with a digit) and text, plain when none does")
    p.add_argument("--language", help="phonemise the text in this espeak-ng language (default: a data dir's utt2lang, "
                   "else each speaker's training language, else the training frontend's); not with a data dir's tokens "
                   "(--retokenize). The output's utt2lang says what each utterance was phonemised in")
    p.add_argument("--out-dir", required=True)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--speaker", help="speaker for every utterance (default: utt2spk, else the first; a speaker the "
                     "model was not trained on is an error unless a speech prompt gives its voice)")
    who.add_argument("--speakers", help="a multi-speaker corpus: 'all' training voices or a comma-separated list; "
                     "each input utterance becomes '<speaker>-<utt>' (Kaldi's speaker prefix), in every one of them "
                     "(--assign every) or in one each, in turn (--assign cycle). Raw text is phonemised in each voice's "
                     "language; a data dir's tokens are used as they are unless --retokenize")
    p.add_argument("--assign", choices=["every", "cycle"], default="every", help="with --speakers (default: every)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--prompt-wav", help="reference audio of the voice, for every utterance (a zero-shot model); its first "
                     "data.prompt_seconds[1] seconds (training's longest prompt) where it is longer, with a warning")
    ref.add_argument("--prompt-from-data", action="store_true",
                     help="each utterance's reference is another utterance of its speaker in --data-dir (the next in sorted "
                          "order; its first data.prompt_seconds[1] seconds), as zero-shot TTS is evaluated; listed in "
                          "OUT/utt2prompt. The default for a zero-shot model without speaker ids given a data dir")
    p.add_argument("--prompt-pool", metavar="DATA_DIR", help="with --prompt-from-data: the data dir the references are "
                   "chosen from (default --data-dir); give the whole set when synthesising a part of it (one job of "
                   "many), so that each utterance's reference does not depend on the split")
    p.add_argument("--nfe", type=int, default=4)
    p.add_argument("--solver", default="euler", choices=["euler", "midpoint", "heun", "rk4", "dopri5"])
    p.add_argument("--rate", type=float, default=1.0, help="speaking-rate factor (>1 faster)")
    p.add_argument("--temperature", type=float, default=None,
                   help="scales the prior's noise, x0 = mu + T sigma eps (default: the model's validation.temperature, "
                        "the one it was validated at: espeak_mini's recipe validates at the 0.2 it samples at)")
    p.add_argument("--cfg-scale", type=float, default=0.0)
    p.add_argument("--sway", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=16)
    add_device_arg(p)
    p.add_argument("--stage1-exp-dir", help="decode with this codec exp dir instead of the exp dir's own (its decoder/, "
                   "the decoder fine-tuned on its output, where there is one, else the stage-one exp dir it was trained on)")
    p.add_argument("--retokenize", action="store_true", help="ignore DATA_DIR/token and run the frontend on text")
    p.add_argument("--save-latents", action="store_true", help="also keep the generated latents as a latent dump in "
                   "OUT (latents/, latents.scp, utt2frames, codec.json; the codec's scale, as stage one's encode writes)")
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        check_sampling(args.solver, args.nfe, args.rate, args.sway)
    except ValueError as e:
        p.error(f"--nfe / --rate / --sway: {e}")
    torch.set_num_threads(args.num_threads)
    out = Path(args.out_dir)
    if args.data_dir and Path(args.data_dir).resolve() == out.resolve():
        p.error("--out-dir is --data-dir: the synthetic data dir would replace its input")
    synth = Synthesizer.from_exp_dir(args.exp_dir, args.device, stage1_exp_dir=args.stage1_exp_dir)
    try:
        synth.model.check_guidance(args.cfg_scale)
    except ValueError as e:
        p.error(f"--cfg-scale: {e}")
    print(f"synthesising on {synth.device}, decoding with the codec of {synth.codec_source}", flush=True)
    implied = synth.needs_prompt and not (args.prompt_wav or args.prompt_from_data)
    if implied:
        if not (args.data_dir and (Path(args.data_dir) / "wav.scp").is_file()):
            raise SystemExit(f"{args.exp_dir} is a zero-shot model without speaker ids: give the voice's reference audio "
                             "(--prompt-wav), or a data dir with audio to take each utterance's reference from")
        args.prompt_from_data = True
        print(f"a zero-shot model: each utterance speaks in the voice of another utterance of its speaker in {args.data_dir}")
    if args.prompt_from_data and (args.speakers or not args.data_dir):
        raise SystemExit("--prompt-from-data takes each reference from --data-dir's own speakers (not with --speakers or --text-file)")
    if args.prompt_from_data and args.speaker:  # each voice is its reference's: --speaker would be recorded, not used
        raise SystemExit(f"--speaker {args.speaker} with --prompt-from-data"
                         f"{' (the default of a zero-shot model without speaker ids)' if implied else ''}: each utterance "
                         f"speaks in the voice of its reference, another utterance of its own speaker in --data-dir, so "
                         f"--speaker would be ignored; give --prompt-wav (a reference of that voice for every utterance) "
                         f"instead, or leave --speaker out")
    if args.temperature is None:
        args.temperature = synth.temperature
        print(f"temperature {args.temperature:g} (the model's validation.temperature)", flush=True)
    utts, utt2text, spk_of, utt2lang, ids = requests(args, synth)
    refs, pool = {}, None
    if args.prompt_from_data:
        from shared.datadir import DataDir

        pool = DataDir.load(args.prompt_pool or args.data_dir, validate=False)  # its audio by utterance (also segments)
        refs = reference_utterances(utts, spk_of, pool.utt2spk)
    check_resume(out, generation_settings(args, synth, inputs_digest(utts, spk_of, ids), references_digest(refs)), args.overwrite)
    dump = LatentDumpWriter(out) if args.save_latents else None

    def done(u: str) -> bool:
        return (out / "wav" / f"{u}.wav").is_file() and (dump is None or dump.path(u).is_file())

    todo = sorted((u for u in utts if args.overwrite or not done(u)), key=lambda u: len(ids[u]))
    from shared.audio import load_audio

    sr = int(synth.codec.sample_rate)
    prompt = synth.cut_prompts([load_audio(args.prompt_wav, sr)], [args.prompt_wav])[0] if args.prompt_wav else None
    t0, audio_s = time.time(), 0.0
    bs = args.batch_size
    for k in tqdm(range(0, len(todo), bs), desc="synthesize", unit="batch"):
        chunk = todo[k : k + bs]
        if refs:  # each its own reference
            prompt = [synth.reference(pool, refs[u]) for u in chunk]
        # a voice the model has no id for is the prompt's alone
        spk = [voice(synth, spk_of[u], prompt is not None) for u in chunk]
        wavs, lats = synth.synthesize([ids[u] for u in chunk], speaker=spk, prompt=prompt, nfe=args.nfe, solver=args.solver,
                                      rate=args.rate, temperature=args.temperature, cfg_scale=args.cfg_scale, sway=args.sway,
                                      seed=[utterance_seed(args.seed, u) for u in chunk], batch_size=bs, return_latents=True)
        for u, w, z in zip(chunk, wavs, lats):
            if dump is not None:
                dump.add(u, z)
            save_audio(out / "wav" / f"{u}.wav", w, sr)
            audio_s += w.shape[-1] / sr
    elapsed = time.time() - t0
    write_output_dir(out, utts, utt2text, spk_of, utt2lang, {u: synth.vocab.decode(ids[u]) for u in utts})
    if refs:
        write_kv(out / "utt2prompt", refs)
    else:  # an earlier run's references, which these wavs were not made from
        (out / "utt2prompt").unlink(missing_ok=True)
    if dump is not None:
        for u in set(utts) - set(dump.scp):
            dump.keep(u)
        write_json(out / "codec.json", dump_codec_info(synth, Path(args.exp_dir)))
        dump.finish()
    if todo:
        print(f"synthesised {len(todo)} utterances ({audio_s:.1f} s of audio) in {elapsed:.1f} s: "
              f"RTF {elapsed / max(audio_s, 1e-9):.4f}, {audio_s / max(elapsed, 1e-9):.1f} s audio per s -> {out}")
    else:
        print(f"{out}: all {len(utts)} utterances exist (use --overwrite to redo)")
    return 0


def requests(args: argparse.Namespace, synth: Synthesizer) -> tuple[list[str], dict[str, str], dict[str, str], dict[str, str],
                                                                    dict[str, list[int]]]:
    """What to synthesise: (sorted utterance ids, their text, speaker, utt2lang, token ids); utt2lang is the language
    each was phonemised in (every one's, where any is not the frontend's own; empty where none is), or, of tokens taken
    as they are, the input's. A text that gives no tokens is a SystemExit naming its line."""
    utt2text, utt2tok, utt2spk, utt2lang = read_inputs(args)
    source = {u: u for u in utt2text}  # each utterance's input utterance
    if args.speakers:
        before = utt2text
        utt2text, utt2tok, utt2spk = assign_speakers(utt2text, utt2tok, speaker_list(args.speakers, synth.speakers), args.assign)
        source = {f"{v}-{u}": u for v in set(utt2spk.values()) for u in before}
        if utt2tok is None:
            utt2lang = {}  # each voice speaks its own language
        else:  # tokens taken as they are keep the language they were phonemised in
            utt2lang = {k: utt2lang[source[k]] for k in utt2text if source[k] in utt2lang}
    utts = sorted(utt2text)
    if args.speaker:
        check_speaker(synth, args.speaker)
    if args.prompt_from_data:  # the voice is the data's own speaker's, by its reference
        missing = [u for u in utts if u not in utt2spk]
        if missing:
            raise SystemExit(f"--prompt-from-data: {args.data_dir}/utt2spk has no speaker for {len(missing)} utterance(s), e.g. {missing[:3]}")
        spk_of = {u: utt2spk[u] for u in utts}
    else:
        remedy = ("give --speaker NAME (one trained voice for every utterance), or "
                  + ("--prompt-from-data or --prompt-wav (this model has a prompt encoder: each voice from a speech prompt)"
                     if synth.model.speaker.prompt is not None else
                     "use a zero-shot model (model.speaker.use_prompt), which takes each voice from a speech prompt"))
        spk_of = speakers_of(synth, utts, utt2spk, args.speaker, prompted=bool(args.prompt_wav), remedy=remedy)
    if utt2tok is not None:
        ids = encode_tokens(synth.vocab, {u: utt2tok[u] for u in utts})
    else:
        langs = [synth.language_for(spk_of[u], args.language or utt2lang.get(u)) for u in utts]
        try:
            ids = dict(zip(utts, synth.tokenize([utt2text[u] for u in utts], utts, langs if any(langs) else None))) if utts else {}
        except TokenizeError as e:  # a line such as "* * *" (a scene break) normalises to nothing: say where it is
            line_of = getattr(before if args.speakers else utt2text, "line_of", {})
            where = args.text_file or Path(args.data_dir) / "text"
            lines = sorted({line_of[source[u]] for u in e.utts if source[u] in line_of})
            at = f" (line {', '.join(map(str, lines[:10]))}{' ...' if len(lines) > 10 else ''})" if lines else ""
            raise SystemExit(f"{where}{at}: {e}") from None
        # what each was phonemised in: none where every one was in the frontend's language, else every one's (a data
        # dir's utt2lang has each utterance or none)
        default = synth.frontend.config.language if synth.frontend is not None else None
        utt2lang = {u: lang or default for u, lang in zip(utts, langs)} if any(langs) else {}
    require_tokens(ids)
    return utts, utt2text, spk_of, utt2lang, ids


def reference_utterances(utts: list[str], utt2spk: dict[str, str], pool: dict[str, str] | None = None) -> dict[str, str]:
    """``--prompt-from-data``: each of ``utts``' reference, the utterance after it among its speaker's in ``pool``
    (the reference set's utt2spk, default ``utt2spk``; sorted, cyclically), so that it does not depend on how the set
    is split into jobs; itself only where its speaker has no other (a warning counts them)."""
    pool = utt2spk if pool is None else pool
    by_spk: dict[str, list[str]] = {}
    for u in sorted(pool):
        by_spk.setdefault(pool[u], []).append(u)
    position = {u: i for same in by_spk.values() for i, u in enumerate(same)}
    refs = {}
    for u in utts:
        same = by_spk.get(utt2spk[u])
        if not same:
            raise SystemExit(f"--prompt-from-data: no utterance of speaker {utt2spk[u]} (of {u}) in the reference set")
        refs[u] = same[(position[u] + 1) % len(same)] if pool.get(u) == utt2spk[u] else same[0]
    alone = sorted(u for u, r in refs.items() if u == r)
    if alone:
        print(f"warning: {len(alone)} utterance(s) are their speaker's only one and are their own reference (e.g. {alone[:3]})",
              file=sys.stderr)
    return refs


def speaker_list(spec: str, known: list[str]) -> list[str]:
    """``--speakers``: 'all' (the model's training voices) or a comma-separated list of them."""
    voices = list(known) if spec == "all" else [v for v in spec.split(",") if v]
    unknown = [v for v in voices if v not in known]
    if unknown or not voices:
        raise SystemExit(f"--speakers {spec}: {'unknown ' + ', '.join(unknown) if unknown else 'no voices'}; "
                         f"the model knows {', '.join(known) or 'none (a single-speaker model)'}")
    return voices


def assign_speakers(utt2text: dict[str, str], utt2tok: dict[str, list[str]] | None, voices: list[str],
                    assign: str) -> tuple[dict[str, str], dict[str, list[str]] | None, dict[str, str]]:
    """Each utterance in every voice (``every``) or in one voice each, taking them in turn over the sorted
    utterances (``cycle``), as ``<voice>-<utt>`` -> (utt2text, utt2tok, utt2spk) of the new ids."""
    utts = sorted(utt2text)
    pairs = [(v, u) for u in utts for v in voices] if assign == "every" else [(voices[i % len(voices)], u) for i, u in enumerate(utts)]
    new: dict[str, tuple[str, str]] = {}
    for v, u in pairs:  # voice a with b-c and voice a-b with c are both a-b-c: one was lost
        key = f"{v}-{u}"
        if key in new:
            raise SystemExit(f"--speakers: voice {v!r} with utterance {u!r} and voice {new[key][0]!r} with utterance "
                             f"{new[key][1]!r} are both '{key}': rename the utterances (their ids are '<voice>-<utt>')")
        new[key] = (v, u)
    return ({k: utt2text[u] for k, (_, u) in new.items()}, {k: utt2tok[u] for k, (_, u) in new.items()} if utt2tok is not None else None,
            {k: v for k, (v, _) in new.items()})


def dump_codec_info(synth: Synthesizer, exp_dir: Path) -> dict[str, Any]:
    """``codec.json`` of synthesised latents: the codec whose latent space they are in, the stage-one codec the
    stage-two model was trained on (so that stage two trains on the dump: :func:`stage2_flow.data.check_latent_codec`),
    and, as ``decoded_by``, the codec that made the audio where that is another (the model's fine-tuned ``decoder/``,
    whose encoder is stage one's, frozen, and whose weights' hash is therefore not stage one's)."""
    space = stage1_dir(exp_dir)
    info = codec_info(synth.codec, space, continuous=synth.continuous)  # the kind of latent the model was trained on
    source = synth.codec_source
    if source is not None and Path(source).resolve() != space.resolve():
        info["decoded_by"] = {"exp_dir": str(Path(source).resolve()), "model_sha256": codec_fingerprint(source)}
    return info


def inputs_digest(utts: list[str], spk_of: dict[str, str], ids: dict[str, list[int]]) -> str:
    """SHA-256 of what is said and by whom: each utterance's id, voice and token ids. A rerun on changed texts would
    otherwise keep the old wavs under the new texts' labels."""
    h = hashlib.sha256()
    for u in utts:
        h.update(f"{u}\t{spk_of[u]}\t{' '.join(map(str, ids[u]))}\n".encode("utf-8"))
    return h.hexdigest()


def references_digest(refs: dict[str, str]) -> str | None:
    """SHA-256 of ``--prompt-from-data``'s choice of each utterance's reference (:func:`reference_utterances`; None
    without): another ``--prompt-pool`` (or pool data dir) gives other voices to the utterances a rerun adds."""
    if not refs:
        return None
    return hashlib.sha256("".join(f"{u}\t{refs[u]}\n" for u in sorted(refs)).encode("utf-8")).hexdigest()


def model_hashes(exp_dir: str | Path, codec_source: Path | None) -> dict[str, str | None]:
    """Which trained models make the audio: the SHA-256 of the stage-two weights and the codec's
    (:func:`shared.latents.codec_fingerprint`; None for a codec given as an object or without weights, such as a
    stand-in). By content: the same dir re-trained (a fine-tuned ``decoder/``) is another model."""
    from shared.io import file_sha256

    weights = Path(exp_dir) / MODEL_FILE
    return {"model_sha256": file_sha256(weights) if weights.is_file() else None,
            "codec_sha256": codec_fingerprint(codec_source) if codec_source is not None else None}


def generation_settings(args: argparse.Namespace, synth: Synthesizer, inputs_sha256: str | None = None,
                        references_sha256: str | None = None) -> dict[str, Any]:
    """What decides the audio (recorded as ``OUT/synth.json``): the inputs' digest (:func:`inputs_digest`), the
    references' (:func:`references_digest`), the models' (:func:`model_hashes`) and prompt's SHA-256 and the sampling
    options, and under ``paths`` where they were (recorded, not compared: a model copied elsewhere makes the same
    audio). Batch size, device and threads are left out: they do not change the output."""
    from shared.io import file_sha256

    codec = synth.codec_source
    prompt = Path(args.prompt_wav) if args.prompt_wav else None
    # references_sha256 only where there are references: a synth.json from before it was recorded is then unchecked
    # for it (a warning) only where it could have mattered
    refs = {"references_sha256": references_sha256} if references_sha256 is not None else {}
    return {"inputs_sha256": inputs_sha256, **model_hashes(args.exp_dir, codec),
            "prompt_sha256": file_sha256(prompt) if prompt is not None and prompt.is_file() else None,
            "prompt_from": "data" if args.prompt_from_data else None, **refs, "nfe": args.nfe, "solver": args.solver, "rate": args.rate,
            "temperature": args.temperature, "cfg_scale": args.cfg_scale, "sway": args.sway, "seed": args.seed,
            "speaker": args.speaker, "speakers": args.speakers, "assign": args.assign if args.speakers else None,
            "language": args.language, "retokenize": args.retokenize,
            "paths": {"model": str(Path(args.exp_dir).resolve()), "codec": str(codec.resolve()) if codec else None,
                      "prompt_wav": str(prompt.resolve()) if prompt else None,
                      "prompt_pool": str(Path(args.prompt_pool or args.data_dir).resolve()) if args.prompt_from_data else None}}


def check_resume(out: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Record ``settings`` in ``OUT/synth.json``. Existing wavs (kept unless ``overwrite``) made with other
    settings are never mixed with new ones: that is an error naming what changed. ``overwrite`` removes the old
    output first (:func:`shared.io.remove_outputs`), so that a rerun after an interrupted ``--overwrite`` run, which finds the
    new settings in synth.json, does not count old wavs as done."""
    record = out / "synth.json"
    if overwrite:
        remove_outputs(out, OUTPUT_FILES)
    have_wavs = (out / "wav").is_dir() and any((out / "wav").glob("*.wav"))
    if have_wavs and not overwrite and record.is_file():
        old = read_json(record)
        changed = [f"{k}: {old[k]!r} -> {v!r}" for k, v in settings.items() if k != "paths" and k in old and old[k] != v]
        if changed:
            raise SystemExit(f"{out} holds wavs made with other settings ({'; '.join(changed)}); "
                             "use another --out-dir, or --overwrite to redo them all")
        unrecorded = [k for k in settings if k != "paths" and k not in old]
        if unrecorded:  # a synth.json from before these were recorded: as one from before synth.json (below)
            print(f"warning: {record} does not record {', '.join(unrecorded)} (made by an earlier version); keeping its "
                  "wavs, unchecked for them", flush=True)
    elif have_wavs and not overwrite:
        print(f"warning: {out} holds wavs but no synth.json (made before it was recorded); keeping them", flush=True)
    write_json(record, settings)


OUTPUT_FILES = ("wav", "wav.scp", "latents", "latents.scp", "utt2frames", "key2utt", "codec.json", "utt2prompt")


def write_output_dir(out: Path, utts: list[str], utt2text: dict[str, str], spk_of: dict[str, str], utt2lang: dict[str, str],
                     utt2token: dict[str, list[str]]) -> None:
    """The synthetic corpus as a Kaldi data dir (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``utt2dur``,
    ``utt2lang`` where known: :func:`requests`) with the tokens it was synthesised from (``token``)."""
    from shared.datadir import DataDir, compute_utt2dur

    data = DataDir(wav_scp={u: str((out / "wav" / f"{u}.wav").resolve()) for u in utts}, text={u: utt2text[u] for u in utts},
                   utt2spk={u: spk_of[u] for u in utts}, utt2lang={u: utt2lang[u] for u in utts if u in utt2lang},
                   token={u: " ".join(utt2token[u]) for u in utts})
    data.utt2dur = compute_utt2dur(data)
    data.save(out)


if __name__ == "__main__":
    raise SystemExit(main())
