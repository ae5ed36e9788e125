"""Write a system's ``RESULTS.md`` from what the recipe's stages left in the experiment tree.

    python -m shared.results --exp-root exp --stage1-exp-dir exp/stage1/vae --stage2-exp-dir exp/stage2/flow_reflow \
        --nfe-sweep-dir exp/nfe_sweep/flow_reflow --stage-tags vae flow flow_reflow --test-set test --out exp/RESULTS.md

Reads (each optional; a missing one is listed as "not run", never an error):
``<stage2>/eval/<test>/metrics.json`` (TTS metrics and PER), the sampling settings of the synthesis it scored
(``<stage2>/synth/<test>``'s ``synth.json``, or a job's: :func:`synthesis_record`), ``<stage1>/eval/<test>/metrics.json``
(codec resynthesis), ``<nfe-sweep-dir>/summary.json`` (quality and RTF against NFE; also drawn to
``<nfe-sweep-dir>/quality_vs_nfe.png``; default ``<exp-root>/nfe_sweep``), ``<exp-root>/asr/train_summary.json``
(phone recogniser), ``<exp-root>/stage_times.tsv`` (``<n> <name> <seconds>``; with ``--stage-tags``, only the
untagged stages, this system's own and the reflow training of the final model it decodes: :func:`read_stage_times`), the exp dirs' ``config.yaml`` and, where stage 7 made one, ``<stage2>/decoder/`` (the decoder fine-tuned
on stage two's output). Where the evaluations have a per-speaker breakdown (the test set's ``utt2spk``), a table
puts each voice's phone errors of the real audio, the codec and the synthesis side by side with its codec and TTS
scores.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from shared.compare import MEAN, name_sides
from shared.config import load_config
from shared.io import MODEL_FILE, PathLike, read_json, read_kv
from shared.metrics.report import DISPLAY, format_metric, summary_row, write_results_md

SWEEP_METRICS = ("mcd_dtw", "f0_rmse_cents", "vuv_error", "per_gen", "path_gap", "rtf")
# what decides a synthesis's audio besides its models and texts, as stage2_flow.synthesize records it: these always,
# and the others where they are not its defaults
SAMPLING = ("nfe", "solver", "temperature")
SAMPLING_DEFAULTS = {"cfg_scale": 0.0, "rate": 1.0, "sway": None, "seed": 0}


def synthesis_record(synth_dir: PathLike) -> Path:
    """The ``synth.json`` of the synthesis that made the audio ``synth_dir/wav.scp`` names (it may be missing): the
    dir's own, or with ``run.sh --synth-nj N`` a job's, ``synth_dir/splitN/<k>/synth.json`` (combining the jobs
    writes none, so the dir's own is then an earlier run's, or none). ``wav.scp``'s paths are absolute, perhaps of
    where the recipe dir was: the job is the ``splitN/<k>`` right after the dir's own name, before ``/wav/``."""
    synth_dir = Path(synth_dir)
    first = next(iter(read_kv(synth_dir / "wav.scp").values()), "")
    job = re.search(rf"/{re.escape(synth_dir.name)}/(split\d+/\d+)/wav/[^/]+$", first)
    return synth_dir / (job.group(1) if job else "") / "synth.json"


def sampling_settings(synth_dir: PathLike) -> dict[str, Any] | None:
    """The sampling settings (``nfe``, ``solver``, ``temperature``, and ``cfg_scale``, ``rate``, ``sway``, ``seed``
    where they are not the defaults) of the synthesis in ``synth_dir`` (:func:`synthesis_record`); None where it has
    no ``wav.scp`` or no record."""
    if not (Path(synth_dir) / "wav.scp").is_file() or not synthesis_record(synth_dir).is_file():
        return None
    record = read_json(synthesis_record(synth_dir))
    shown = [k for k in SAMPLING if record.get(k) is not None]  # a temperature of None: the model's own
    shown += [k for k, default in SAMPLING_DEFAULTS.items() if record.get(k, default) != default]
    return {k: record[k] for k in shown}


def describe_sampling(sampling: dict[str, Any]) -> str:
    """``NFE 4, euler solver, temperature 0.2`` (and any other setting, as ``cfg_scale 1.5``)."""
    named = {"nfe": "NFE {}", "solver": "{} solver", "temperature": "temperature {}"}
    return ", ".join(named.get(k, f"{k} {{}}").format(v) for k, v in sampling.items())


def read_stage_times(path: Path, tags: list[str] | None = None) -> dict[str, float]:
    """``{"<n> <name>": seconds}`` from ``stage_times.tsv``; a rerun stage keeps its latest time. With ``tags`` (the
    system's stage-one tag, stage-two tag and system, as the recipe names its stages: 3-5 ``stage1_train.<tag>``, 6
    the stage-two tag, 7-10 the system's), only the untagged stages (``corpus``) and the system's own, and stage 7's
    training of the final model the system decodes (``7 reflow.<final model>``: both of its systems count it,
    whichever run did it). Where that row is also the other system's (this one is ``<final>_s1decoder``, or such a
    system has stage times too), its name says so: ``7 reflow.flow_reflow (shared with flow_reflow_s1decoder)``."""
    rows = [parts for parts in (line.split("\t") for line in path.read_text().splitlines()) if len(parts) == 3] \
        if path.is_file() else []
    times: dict[str, float] = {}
    for n, name, seconds in rows:
        if tags is None or _own_stage(n, name, tags):
            times[f"{n} {name}{_shared_with(n, name, tags, rows)}"] = float(seconds)
    return dict(sorted(times.items(), key=lambda kv: int(kv[0].split()[0]) if kv[0].split()[0].isdigit() else 0))


def sweep_table(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """nfe_sweep's ``summary.json`` -> rows ``<exp> NFE <n>``. A mean over fewer utterances than the cell scored (a
    log-F0 RMSE where an utterance has no frame voiced in both) says over how many, ``99.8 (19)``: two cells' means
    over different utterances are not comparable as they stand."""
    rows = {}
    for exp, cells in summary.items():
        for nfe in sorted(cells, key=int):
            cell, scored = cells[nfe], cells[nfe].get("scored", {})
            rows[f"{exp} NFE {nfe}"] = {k: f"{format_metric(k, cell[k])} ({scored[k]})" if k in scored else cell[k]
                                        for k in SWEEP_METRICS if k in cell}
    return rows


def paired_tables(paired: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, str]]]:
    """nfe_sweep's ``paired.json`` -> one table per (base, other): rows NFE, cells ``diff [95% CI]`` with a
    mark where shared.compare gives a verdict (``+`` the other system better, ``-`` worse). A PER column says what its
    difference is of, from the comparison's ``statistic``: pooled (errors / phones) as the other tables' PERs, or the
    means over utterances (cells scored before their tables held phone counts, and a ``paired.json`` from before)."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    for c in paired:
        base, other, nfe = c["base"], c["other"], c["nfe"]
        row = {}
        for m, r in c["metrics"].items():
            mark = {"B better": " (+)", "A better": " (-)"}.get(r["verdict"], "")
            statistic = name_sides(r.get("statistic", MEAN), base, other)
            column = f"{DISPLAY.get(m, (m,))[0]} ({statistic})" if m.startswith("per_") else m
            row[column] = f"{r['diff']:+.3g} [{r['ci'][0]:+.2g}, {r['ci'][1]:+.2g}]{mark}"
        tables.setdefault(f"Paired difference {other} - {base} (same sentences and noise; 95% bootstrap CI; "
                          f"(+) {other} measurably better, (-) worse)", {})[f"NFE {nfe}"] = row
    return tables


# a system decoded by stage one's own decoder is <final model>_s1decoder (egs/utils/system_tags.sh)
S1DECODER = "_s1decoder"


def _final_model_row(n: str, name: str, tags: list[str]) -> bool:
    """Stage 7's reflow training of the final model the system decodes: a row of both of that model's systems."""
    model = tags[2].removesuffix(S1DECODER)
    return n == "7" and name == f"reflow.{model}" and model != tags[1]


def _own_stage(n: str, name: str, tags: list[str]) -> bool:
    if "." not in name or not n.isdigit() or not 3 <= int(n) <= 10 or _final_model_row(n, name, tags):
        return True
    stage1, stage2, final = tags
    return name.split(".", 1)[1] == (stage1 if int(n) <= 5 else stage2 if int(n) == 6 else final)


def _shared_with(n: str, name: str, tags: list[str] | None, rows: list[list[str]]) -> str:
    """`` (shared with <the final model's other system>)`` for the final model's row (:func:`_final_model_row`):
    always in an ``_s1decoder`` system's times, in the other's where the ``_s1decoder`` one has stage times;
    else ``""``."""
    if tags is None or not _final_model_row(n, name, tags):
        return ""
    model = tags[2].removesuffix(S1DECODER)
    if tags[2] != model:
        return f" (shared with {model})"
    other = model + S1DECODER
    return f" (shared with {other})" if any(r[1].endswith(f".{other}") for r in rows) else ""


def speaker_table(tts: dict[str, Any] | None, codec: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """Rows per speaker from the TTS and codec ``metrics.json`` ``speakers`` sections (either may be None):
    utterances, reference phones, phone errors real / codec / TTS, codec PESQ-WB and MCD-DTW, TTS MCD-DTW and
    log-F0 RMSE. Empty when neither has a breakdown."""
    by = {name: (m or {}).get("speakers", {}) for name, m in (("TTS", tts), ("codec", codec))}
    rows: dict[str, dict[str, str]] = {}
    for spk in sorted(set(by["TTS"]) | set(by["codec"])):
        t, c = by["TTS"].get(spk, {}), by["codec"].get(spk, {})
        either = t or c
        row = {"utts": str(either["num_utts"])}
        if "ref_phones" in either:
            row["phones"] = str(either["ref_phones"])
            counts = [either.get("phone_errors_ref"), c.get("phone_errors_gen"), t.get("phone_errors_gen")]
            row["phone errors real / codec / TTS"] = " / ".join(format_metric("phone_errors", n) for n in counts)
        for name, m, keys in (("codec", c, ("pesq_wb", "mcd_dtw")), ("TTS", t, ("mcd_dtw", "f0_rmse_cents"))):
            for k in keys:
                if k in m.get("metrics", {}):
                    row[f"{name} {DISPLAY[k][0]}"] = format_metric(k, m["metrics"][k])
        rows[spk] = row
    return rows


def collect(exp_root: Path, s1: Path | None, s2: Path | None, test_set: str, out: Path, sweep_dir: Path | None = None,
            stage_tags: list[str] | None = None, decoder: bool = True) -> dict[str, Any]:
    """Tables, figures, notes, stage times and configs for :func:`write_results_md` (``sweep_dir``: the NFE
    sweep's, default ``exp_root/nfe_sweep``; ``stage_tags``: see :func:`read_stage_times`; ``decoder``: the TTS was
    decoded by ``<s2>/decoder/`` where there is one, else by stage one's own decoder)."""
    sweep_dir = sweep_dir or exp_root / "nfe_sweep"
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    notes, figures = [], {}
    scored = {}
    sampling = sampling_settings(s2 / "synth" / test_set) if s2 else None
    tts_label = f"TTS (stage two) on {test_set}" + (f" ({describe_sampling(sampling)})" if sampling else "")
    for label, exp in ((tts_label, s2), ("Codec resynthesis (stage one) on " + test_set, s1)):
        m = exp / "eval" / test_set / "metrics.json" if exp else None
        if m and m.is_file():
            scored[exp] = read_json(m)
            tables[label] = {exp.name: summary_row(scored[exp])}
        else:
            notes.append(f"- {label}: not run ({m or 'no exp dir given'} missing)")
    speakers = speaker_table(scored.get(s2), scored.get(s1))
    key_headers = {}
    if speakers:
        tables[f"Per speaker on {test_set}"] = speakers
        key_headers[f"Per speaker on {test_set}"] = "speaker"
    sweep = sweep_dir / "summary.json"
    if sweep.is_file():
        summary = read_json(sweep)
        counts = {c["utterances"] for cells in summary.values() for c in cells.values() if "utterances" in c}
        # a sweep scores a subset (the recipe's: 20 sentences), so its rows differ from the tables of the whole set
        of = f" ({counts.pop()} utterances of {test_set})" if len(counts) == 1 else ""
        tables[f"Quality and speed against NFE{of}"] = sweep_table(summary)
        from shared.plots import plot_quality_vs_nfe

        curves = {e: {int(n): c["mcd_dtw"] for n, c in cells.items() if "mcd_dtw" in c} for e, cells in summary.items()}
        if any(curves.values()):
            png = plot_quality_vs_nfe(curves, sweep_dir / "quality_vs_nfe.png", metric="MCD-DTW (dB)")
            figures["MCD-DTW against NFE"] = os.path.relpath(png, out.parent)
    paired = sweep_dir / "paired.json"
    if paired.is_file():
        tables.update(paired_tables(read_json(paired)))
    asr = exp_root / "asr" / "train_summary.json"
    if asr.is_file():
        a = read_json(asr)
        notes.append(f"- Phone recogniser (exp/asr): dev PER {a.get('dev_per', float('nan')):.2%} after "
                     f"{a['steps']} steps / {a['train_seconds']:.0f} s on {a['num_train_utts']} utterances.")
        if a.get("dev_per_perturbed"):
            notes.append("  The same dev audio changed in ways a listener does not hear as other phones: "
                         + ", ".join(f"{name} {rate:.2%}" for name, rate in a["dev_per_perturbed"].items())
                         + ". A judge that errs more on these reads distance from the training voices, not intelligibility.")
    # a decoder is what stage2_flow.model.codec_dir decodes with: a trained one (a model.pt), not a directory
    decoder = s2 / "decoder" if s2 and decoder and (s2 / "decoder" / MODEL_FILE).is_file() else None
    if decoder is None and s2:
        notes.append(f"- The TTS audio is decoded by stage one's own decoder ({s1}).")
    if decoder and (decoder / "train_summary.json").is_file():
        summary = read_json(decoder / "train_summary.json")
        steps, this_run = summary["steps"], summary.get("steps_this_run", summary["steps"])
        seconds = f"{summary.get('seconds_this_run', float('nan')):.0f} s"
        trained = f"{steps} steps / {seconds}" if this_run == steps else \
            f"{steps} steps, the last {this_run} of them in a resumed run of {seconds}"
        notes.append(f"- The TTS audio is decoded by {decoder}: stage one's decoder fine-tuned on this model's "
                     f"ground-truth-aligned output ({trained}); the codec resynthesis by stage one's own.")
    roles = {"stage one": s1, "stage two": s2, "decoder": decoder, "phone recogniser": exp_root / "asr"}
    # keyed by role (an exp dir's name is its tag, and two stages may share a tag)
    configs = {f"{role} ({d.name})" if role in ("stage one", "stage two") else role: str(d / "config.yaml")
               for role, d in roles.items() if d and (d / "config.yaml").is_file()}
    scaled = {name: load_config(path).get("train", {}).get("budget_scale") for name, path in configs.items()}
    scaled = {name: f for name, f in scaled.items() if f not in (None, 1)}
    if scaled:
        notes.append("- Training budgets scaled (`--budget-scale`; wall-clock caps, step caps and LR schedules): "
                     + ", ".join(f"{name} x{f:g}" for name, f in scaled.items()) + ".")
    return {"tables": tables, "key_headers": key_headers, "figures": figures, "notes": "\n".join(notes) or None,
            "stage_times": read_stage_times(exp_root / "stage_times.tsv", stage_tags), "config_paths": configs}


def headline(s1: Path | None, s2: Path | None, test_set: str) -> str | None:
    """One line of the numbers the default recipe's targets are about (codec PESQ-WB / STOI / MCD, the
    system's MCD and its PER against the real audio's), for the end of a run; None when neither was scored."""
    parts = []
    for exp, keys in ((s1, ("pesq_wb", "stoi", "mcd_dtw", "per_ratio")), (s2, ("mcd_dtw", "per_gen", "per_ref", "per_ratio"))):
        m = exp / "eval" / test_set / "metrics.json" if exp else None
        if m and m.is_file():
            row = summary_row(read_json(m))
            label = {k: DISPLAY[k][0].split(" [")[0].rstrip(" ↑↓") for k in keys}  # the table's header, bare
            parts.append(f"{exp.name}: " + ", ".join(f"{label[k]} {row[k].split(' ± ')[0]}" for k in keys if k in row))
    return f"{test_set}: " + " | ".join(parts) if parts else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-root", default="exp")
    p.add_argument("--stage1-exp-dir", default=None)
    p.add_argument("--stage2-exp-dir", default=None)
    p.add_argument("--nfe-sweep-dir", default=None, help="the system's NFE sweep (default: EXP_ROOT/nfe_sweep)")
    p.add_argument("--stage-tags", nargs=3, default=None, metavar=("STAGE1", "STAGE2", "SYSTEM"),
                   help="the system's stage-one tag, stage-two tag and name (its final model, with _s1decoder when decoded "
                        "by stage one's decoder): other systems' stage times are left out (default: every stage)")
    p.add_argument("--test-set", default="test")
    p.add_argument("--title", default=None, help="default: Results: <corpus>, system <name> (from --stage-tags)")
    p.add_argument("--no-decoder", action="store_true",
                   help="the TTS was decoded by stage one's own decoder, not STAGE2/decoder/ (--decoder-finetune false)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    out = Path(a.out)
    c = collect(Path(a.exp_root), Path(a.stage1_exp_dir) if a.stage1_exp_dir else None,
                Path(a.stage2_exp_dir) if a.stage2_exp_dir else None, a.test_set, out,
                Path(a.nfe_sweep_dir) if a.nfe_sweep_dir else None, a.stage_tags, decoder=not a.no_decoder)
    recipe = Path.cwd()  # run from egs/<corpus>/tts1: name the corpus, not only tts1
    system = f", system {a.stage_tags[2]}" if a.stage_tags else ""
    title = a.title or f"Results: {recipe.parent.name}{system}"  # as tts.sh names it
    write_results_md(out, c.pop("tables"), title=title, **c)
    print(f"[results] wrote {out}")
    line = headline(Path(a.stage1_exp_dir) if a.stage1_exp_dir else None,
                    Path(a.stage2_exp_dir) if a.stage2_exp_dir else None, a.test_set)
    if line:
        print(f"[results] {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
