"""The one place where the espeak-ng library and data from the ``espeakng-loader`` wheel are wired up.

Every user of espeak-ng in flowtts (the phonemiser in :mod:`shared.text.frontend`, the synthesiser in
:mod:`shared.corpora.espeak_synth`) calls :func:`setup_espeak` first. It

* points ``phonemizer`` at the wheel's ``libespeak-ng.so`` (``EspeakWrapper.set_library``) and at the
  wheel's ``espeak-ng-data`` directory (``EspeakWrapper.set_data_path``); without the data path
  espeak-ng looks in its compile-time prefix and fails with ``Error processing file .../phontab``;
* exports ``PHONEMIZER_ESPEAK_LIBRARY``, ``PHONEMIZER_ESPEAK_DATA_PATH`` and ``ESPEAK_DATA_PATH`` so that
  worker processes (and any espeak-ng started from them) find the same files.

Overrides: set ``FLOWTTS_ESPEAK_LIBRARY`` / ``FLOWTTS_ESPEAK_DATA`` to use another espeak-ng build.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EspeakPaths:
    library: str
    data: str


class EspeakSetupError(RuntimeError):
    pass


@functools.lru_cache(maxsize=1)
def espeak_paths() -> EspeakPaths:
    """Library and data paths: ``FLOWTTS_ESPEAK_LIBRARY``/``FLOWTTS_ESPEAK_DATA`` or the wheel's."""
    lib = os.environ.get("FLOWTTS_ESPEAK_LIBRARY")
    data = os.environ.get("FLOWTTS_ESPEAK_DATA")
    if lib is None or data is None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - dependency of the project
            raise EspeakSetupError(
                "the 'espeakng-loader' package is required (pip install espeakng-loader)"
            ) from exc
        lib = lib or espeakng_loader.get_library_path()
        data = data or espeakng_loader.get_data_path()
    if not Path(lib).is_file():
        raise EspeakSetupError(f"espeak-ng library not found: {lib}")
    if not (Path(data) / "phontab").is_file():
        raise EspeakSetupError(f"espeak-ng data directory has no phontab: {data}")
    return EspeakPaths(library=str(lib), data=str(data))


@functools.lru_cache(maxsize=1)
def setup_espeak() -> EspeakPaths:
    """Configure phonemizer + environment once per process; returns the paths used."""
    paths = espeak_paths()
    os.environ.setdefault("PHONEMIZER_ESPEAK_LIBRARY", paths.library)
    os.environ.setdefault("PHONEMIZER_ESPEAK_DATA_PATH", paths.data)
    os.environ.setdefault("ESPEAK_DATA_PATH", paths.data)
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    EspeakWrapper.set_library(paths.library)
    EspeakWrapper.set_data_path(paths.data)
    return paths


def list_voice_names() -> list[str]:
    """Voice (language) names available in the data directory, e.g. ``en-us``, ``de``, ``fr-fr``."""
    lang_dir = Path(espeak_paths().data) / "lang"
    return sorted(p.name.lower() for p in lang_dir.rglob("*") if p.is_file())


def list_variants() -> list[str]:
    """Voice variants usable as ``<voice>+<variant>``, e.g. ``m3``, ``f2``, ``klatt``."""
    return sorted(p.name for p in (Path(espeak_paths().data) / "voices" / "!v").iterdir() if p.is_file())


@functools.lru_cache(maxsize=1)
def _language_to_voice_file() -> dict[str, str]:
    """``{'en-gb': 'en', 'fr-fr': 'fr', 'en-us': 'en-us', ...}`` from the ``language`` lines of lang/*."""
    best: dict[str, tuple[int, str]] = {}
    for path in (Path(espeak_paths().data) / "lang").rglob("*"):
        if not path.is_file():
            continue
        best.setdefault(path.name.lower(), (-1, path.name))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "language":
                prio = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 5
                code = parts[1].lower()
                if code not in best or prio < best[code][0]:
                    best[code] = (prio, path.name)
    return {code: name for code, (_, name) in best.items()}


def resolve_voice(voice: str) -> str:
    """Map a language code with an optional variant (``en-gb+f2``, ``fr-fr``) to an espeak-ng voice name
    that ``espeak_SetVoiceByName`` accepts (``en+f2``, ``fr``). Raises ValueError for unknown ones."""
    base, plus, variant = voice.partition("+")
    table = _language_to_voice_file()
    name = table.get(base.lower())
    if name is None:
        raise ValueError(f"espeak-ng has no voice or language {base!r}; known: {' '.join(sorted(table))}")
    if plus and variant not in list_variants():
        raise ValueError(f"espeak-ng has no voice variant {variant!r}; known: {' '.join(list_variants())}")
    return name + plus + variant
