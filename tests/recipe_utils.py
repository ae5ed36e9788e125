"""Helpers for tests that run recipes: a private copy of egs/ so outputs never land in the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = ("data", "dump", "exp", "corpus")


def copy_egs(dst: Path) -> Path:
    """Copy ``egs/`` (scripts and configs only) to ``dst/egs``; return it."""
    def outputs(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n in OUTPUTS] if Path(directory).name == "tts1" else []

    shutil.copytree(REPO / "egs", dst / "egs", ignore=outputs)
    return dst / "egs"


def recipe_env() -> dict[str, str]:
    """The environment a recipe's scripts run in: this interpreter first on PATH and the repo importable."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def stub_python_env(tmp: Path) -> dict[str, str]:
    """:func:`recipe_env` with ``python`` a stub that only appends its arguments to ``tmp/python.log`` (and, for the
    decoder fine-tuning, touches its ``model.pt``): a recipe then runs its own logic (options, markers, paths) in
    seconds, with no stage's work done."""
    bin_dir = tmp / "stub_bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    stub = bin_dir / "python"
    stub.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{tmp / "python.log"}"\n'
                    # the decoder fine-tuning leaves its model.pt: stage 8 of that system requires it
                    'if [[ " $* " == *" --decoder-latents "* ]]; then\n'
                    '  prev=; for a in "$@"; do [ "$prev" != --exp-dir ] || { mkdir -p "$a" && touch "$a/model.pt"; }; prev=$a; done\n'
                    'fi\n')
    stub.chmod(0o755)
    env = recipe_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def run_recipe(recipe_dir: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    """``recipe_dir/run.sh ARGS`` in ``env`` (default :func:`recipe_env`)."""
    return subprocess.run(["bash", str(recipe_dir / "run.sh"), *args], cwd=recipe_dir, env=env or recipe_env(),
                          capture_output=True, text=True, timeout=timeout)
