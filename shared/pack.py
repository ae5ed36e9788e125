"""Pack a trained system into one self-contained directory with a model card.

    python -m shared.pack --stage1-exp-dir exp/stage1/vae --stage2-exp-dir exp/stage2/flow_reflow \
        --results exp/RESULTS.md --synth-dir exp/stage2/flow_reflow/synth/test --out-dir exp/packed/espeak_mini_flow_reflow

The output holds ``stage1/`` and ``stage2/`` (each experiment directory's top-level files: resolved config,
weights, token list, latent statistics, ...; no checkpoints, logs or samples; and ``stage2/decoder/``, the
decoder fine-tuned on stage two's output, where there is one), with ``stage2/stage1.json``
pointing at ``../stage1``, so ``Synthesizer.from_exp_dir(out_dir / "stage2")`` works wherever the directory
is copied; ``RESULTS.md`` with the figures it links to (at the same relative paths); and ``MODEL_CARD.md`` (what it
is, how it was trained, configs, metrics, use: with the sampling settings of the synthesis the results scored,
``--synth-dir``'s recorded ones, :func:`shared.results.sampling_settings`). A top-level
file of ``MAX_FILE_MB`` or more is left out (and named); one that the packed model needs (weights, a config, the
token list) is an error instead, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from shared.io import MODEL_FILE, PathLike, atomic_write, read_json, write_json
from shared.results import sampling_settings

MAX_FILE_MB = 200  # top-level files this large or larger are not packed (named on stderr)
NEEDED_SUFFIXES = (".yaml", ".json", ".txt")  # configs, statistics, links, token lists: with MODEL_FILE, what loads


def _top_level_files(src: Path) -> list[Path]:
    return [f for f in sorted(src.iterdir()) if f.is_file() and not f.name.startswith(".")]


def _left_out(src: Path) -> list[Path]:
    """``src``'s top-level files too large to pack; a ValueError if the packed model needs one of them."""
    big = [f for f in _top_level_files(src) if f.stat().st_size >= MAX_FILE_MB * 2**20]
    needed = [f.name for f in big if f.name == MODEL_FILE or f.name.endswith(NEEDED_SUFFIXES)]
    if needed:
        raise ValueError(f"{src}: {', '.join(needed)} of {MAX_FILE_MB:g} MB or more would be left out of the packed "
                         f"model (shared.pack.MAX_FILE_MB), which cannot load without it")
    return big


def _copy_top_level(src: Path, dst: Path, left_out: list[Path]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in _top_level_files(src):
        if f not in left_out:
            shutil.copy2(f, dst / f.name)


def _json_or_none(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def _yaml_or_none(path: Path) -> Any:
    from shared.config import load_config

    return load_config(path) if path.is_file() else None


def _figures(results: Path) -> list[Path]:
    """The images ``results`` links to (``![caption](path)``) by a path relative to it, inside its directory."""
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", results.read_text())
    return [Path(f) for f in links if not Path(f).is_absolute() and ".." not in Path(f).parts and "://" not in f]


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.strip()}\n\n"


PATHS_NOTE = ("_Paths in these results are those of the recipe that made the package (under its `exp/`): here stage one "
              "is `stage1/`, stage two `stage2/` and a fine-tuned decoder `stage2/decoder/`; the phone recogniser that "
              "scored it (`exp/asr`) is not packed._")


def packaged_results(results: Path) -> str:
    """``results`` (a recipe's RESULTS.md) as a package holds it: with :data:`PATHS_NOTE` after its title, as its
    paths name the recipe's ``exp/`` tree, which the package does not have."""
    title, _, rest = results.read_text().partition("\n")
    return f"{title}\n\n{PATHS_NOTE}\n{rest}" if title.startswith("# ") else f"{PATHS_NOTE}\n\n{title}\n{rest}"


def _demoted(markdown: str, levels: int = 2) -> str:
    """``markdown`` with every heading ``levels`` deeper (fenced code, where ``# `` is a comment, left as it is): a
    RESULTS.md inside the card's ``## Results`` (only its title was demoted, so its ``## TTS ...`` sections stood
    beside the card's own)."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


def _brief_json(report: dict[str, Any], name: str, limit: int = 4000) -> str:
    """``report`` as indented JSON; over ``limit`` characters (a corpus of many speakers), each long entry is said by
    its size instead, so the card stays short and its JSON whole (it was cut at ``limit`` characters, mid-entry)."""
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if len(text) <= limit or not isinstance(report, dict):
        return text

    def brief(value: Any) -> Any:
        if len(json.dumps(value, ensure_ascii=False)) <= limit // 10:
            return value
        return f"({len(value)} entries: see {name})" if isinstance(value, (dict, list)) else f"(long: see {name})"
    return json.dumps({k: brief(v) for k, v in report.items()}, indent=1, ensure_ascii=False)


def model_card(out_dir: Path, s1: Path, s2: Path, results: Path | None, corpus_report: Path | None,
               sampling: dict[str, Any] | None = None, decoder: Path | None = None) -> str:
    """The model card's Markdown. Its usage examples load the package by a path relative to where it lies (not
    ``out_dir``, where it was built), as it works wherever it is copied. ``sampling``: the synthesis settings the
    results were measured with (e.g. ``{"nfe": 4, "solver": "euler", "temperature": 0.2}``), shown in the usage
    examples; ``decoder``: the fine-tuned decoder packed with stage two, if any."""
    name = out_dir.name
    sampling = {k: v for k, v in (sampling or {}).items() if v is not None}
    kwargs = "".join(f", {k}={v!r}" for k, v in sampling.items())
    cli = "".join(f" --{k.replace('_', '-')} {v}" for k, v in sampling.items())
    speaker = ((_yaml_or_none(s2 / "config.yaml") or {}).get("model") or {}).get("speaker") or {}
    zero_shot = bool(speaker.get("use_prompt")) and not speaker.get("use_id", True)  # a voice from a prompt alone
    load, given = "", ""
    if zero_shot:
        load = '\nprompt = load_audio("reference.wav", tts.codec.sample_rate)  # a few seconds of the voice to speak in'
        kwargs, cli, given = ", prompt=prompt" + kwargs, " --prompt-wav reference.wav" + cli, "\nfrom shared.audio import load_audio"
    parts = [f"# {name}\n\nA two-stage flowtts text-to-speech system, packed {time.strftime('%Y-%m-%d %H:%M')} "
             f"from `{s1}` (stage one) and `{s2}` (stage two).\n\n"]
    # the package is meant to be copied: its paths are relative to its own directory, never where it was built
    usage = f"""```python
from stage2_flow.synthesize import Synthesizer{given}

tts = Synthesizer.from_exp_dir("stage2"){load}
wavs = tts.synthesize(["The quick brown fox jumps over the lazy dog."]{kwargs})
```

or, for a whole text file or data dir, `python -m stage2_flow.synthesize --exp-dir stage2{cli} ...`.
`stage2` is this package's own, relative to its directory (the one holding this card), which works wherever it was
copied: run from there, or give that directory's path before it."""
    if sampling:
        usage += "\n\nThese are the sampling settings the results below were measured with."
    parts.append(_section("Use", usage))
    report = _json_or_none(corpus_report) if corpus_report else None
    if report:
        parts.append(_section("Training data", "```json\n" + _brief_json(report, corpus_report.name) + "\n```"))
    parts_of = [("Stage one", s1, "stage1"), ("Stage two", s2, "stage2")]
    base = _base_model(s2)
    if base is not None:  # a reflow fine-tune: the card said only how the 400 fine-tuning steps went
        parts_of.append((f"Stage two's base model (the model {s2.name} was fine-tuned from: {base}; not packed)", base,
                         str(base)))
    if decoder is not None:
        parts_of.append(("Stage two's decoder (stage one's, fine-tuned on stage two's ground-truth-aligned output)",
                         decoder, "stage2/decoder"))
    for label, d, rel in parts_of:
        body = []
        for fname, title in (("params.json", "Parameters"), ("train_summary.json", "Training summary")):
            data = _json_or_none(d / fname)
            if data is not None:
                body.append(f"{title}:\n\n```json\n{json.dumps(data, indent=1)}\n```\n")
        cfg = d / "config.yaml"
        if cfg.is_file():
            body.append(f"Resolved config (`{rel}/config.yaml`):\n\n```yaml\n"
                        f"{cfg.read_text().strip()}\n```\n")
        parts.append(_section(label, "\n".join(body) or "(no description files found)"))
    if results and results.is_file():
        parts.append(_section("Results", _demoted(packaged_results(results))))
    parts.append(_section("Limitations", "Trained on the corpus above only: expect it to speak like that corpus "
                          "(for the default recipe, espeak-ng voices), and nothing else."))
    return "".join(parts)


def _base_model(s2: Path) -> Path | None:
    """The exp dir ``s2`` was fine-tuned from (its config's ``data.init_from``, as given, or relative to the recipe dir
    two levels above ``s2``'s ``exp/``), where it is found; None for a model trained from scratch."""
    init_from = ((_yaml_or_none(s2 / "config.yaml") or {}).get("data") or {}).get("init_from")
    if not init_from:
        return None
    for candidate in (Path(init_from), s2.parent.parent.parent / init_from):
        if (candidate / "config.yaml").is_file():
            return candidate
    return None


def check_out_dir(out: Path, sources: tuple[Path, ...]) -> None:
    """Refuse an ``out`` that packing would replace but is not a package (``exp/packed``, the folder of packages, was
    deleted whole), or that holds a directory being packed."""
    for src in sources:
        if out.resolve() == src.resolve() or out.resolve() in src.resolve().parents:
            raise ValueError(f"--out-dir {out} holds {src}, which packing it would delete")
    if out.is_dir() and any(out.iterdir()) and not ((out / "MODEL_CARD.md").is_file() and (out / "stage2").is_dir()):
        raise ValueError(f"--out-dir {out} exists and is not a package (no MODEL_CARD.md and stage2/), which packing "
                         "would replace whole: give a directory of its own for this package")


def check_codec(s1: Path, s2: Path, fine_tuned: Path | None) -> None:
    """Refuse a package whose codec is not the one the model decodes with: ``s1`` not the stage-one dir that ``s2``
    was trained on (its ``stage1.json``; the package would point the model at ``s1``), or a fine-tuned decoder made
    from an earlier model's output (:func:`stage2_flow.model.codec_dir` refuses to load it)."""
    from stage2_flow.model import codec_dir, stage1_dir

    if (s2 / "stage1.json").is_file():
        trained_on = stage1_dir(s2)
        if trained_on.resolve() != s1.resolve():
            raise ValueError(f"{s2} was trained on the latents of {trained_on}, not of {s1}: give that as the "
                             "stage-one exp dir")
    if fine_tuned is not None:
        codec_dir(s2)


def pack(stage1_exp_dir: PathLike, stage2_exp_dir: PathLike, out_dir: PathLike,
         results: PathLike | None = None, corpus_report: PathLike | None = None,
         sampling: dict[str, Any] | None = None, decoder: bool = True) -> Path:
    """``decoder``: pack ``<stage2>/decoder/`` where there is one (the package then decodes with it); False: the
    system decoded by stage one's own decoder."""
    s1, s2, out = Path(stage1_exp_dir), Path(stage2_exp_dir), Path(out_dir)
    for d, what in ((s1, "stage-one"), (s2, "stage-two")):
        if not (d / "config.yaml").is_file():
            raise FileNotFoundError(f"{d}: not a trained {what} experiment directory (no config.yaml)")
    for given, what in ((results, "results file"), (corpus_report, "corpus report")):
        if given is not None and not Path(given).is_file():
            raise FileNotFoundError(f"{given}: no such {what} to pack")
    fine_tuned = s2 / "decoder" if decoder and (s2 / "decoder" / MODEL_FILE).is_file() else None  # on its output
    check_codec(s1, s2, fine_tuned)
    check_out_dir(out, (s1, s2))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sources = [(s1, tmp / "stage1"), (s2, tmp / "stage2")]
    if fine_tuned:
        sources.append((fine_tuned, tmp / "stage2" / "decoder"))
    left_out = [f for src, _ in sources for f in _left_out(src)]  # raises before anything is written
    for src, dst in sources:
        _copy_top_level(src, dst, left_out)
    if left_out:
        print(f"not packed ({MAX_FILE_MB:g} MB or more each): {', '.join(map(str, left_out))}", file=sys.stderr)
    link = tmp / "stage2" / "stage1.json"
    if link.is_file():
        info = read_json(link)
        info["exp_dir"] = "../stage1"  # relative to the stage-two directory
        write_json(link, info)
    if results is not None:
        with atomic_write(tmp / "RESULTS.md") as f:
            f.write(packaged_results(Path(results)))
        for fig in _figures(Path(results)):  # its links (the NFE sweep's plot) then hold in the package too
            if (Path(results).parent / fig).is_file():
                (tmp / fig).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(results).parent / fig, tmp / fig)
    with atomic_write(tmp / "MODEL_CARD.md") as f:
        f.write(model_card(out, s1, s2, Path(results) if results else None,
                           Path(corpus_report) if corpus_report else None, sampling, fine_tuned))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)  # the packed directory appears whole or not at all
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.pack", description=__doc__.split("\n\n")[0])
    p.add_argument("--stage1-exp-dir", required=True)
    p.add_argument("--stage2-exp-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--results", help="RESULTS.md to include")
    p.add_argument("--corpus-report", help="corpus report JSON (e.g. data/local/corpus_report.json)")
    p.add_argument("--synth-dir", help="the synthesis the results scored (e.g. exp/stage2/flow_reflow/synth/test): "
                   "the card's examples use the sampling settings it recorded (its synth.json, or its jobs')")
    p.add_argument("--no-decoder", action="store_true",
                   help="leave STAGE2/decoder/ out: the system decoded by stage one's own decoder")
    args = p.parse_args(argv)
    sampling = sampling_settings(args.synth_dir) if args.synth_dir else None
    if args.synth_dir and sampling is None:
        print(f"shared.pack: {args.synth_dir} holds no synthesis with recorded settings (wav.scp and synth.json): "
              "the card gives none", file=sys.stderr)
    try:
        out = pack(args.stage1_exp_dir, args.stage2_exp_dir, args.out_dir, args.results, args.corpus_report, sampling,
                   decoder=not args.no_decoder)
    # not an experiment dir, or not this model's codec; a file it needs too large to pack; a stale decoder
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise SystemExit(f"shared.pack: {e}") from None
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(f"packed {out} ({size:.1f} MB): stage1/, stage2/, MODEL_CARD.md" + (", RESULTS.md" if args.results else "")
          + (", stage2/decoder/" if (out / "stage2" / "decoder").is_dir() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
