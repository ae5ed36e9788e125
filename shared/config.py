"""YAML configuration: one file per stage, ``a.b.c=value`` overrides from the command line, and the
resolved configuration written into the experiment directory.

    cfg = load_config("conf/stage1.yaml", ["model.latent_dim=32", "trainer.max_steps=2000"])
    save_config(cfg, exp_dir / "config.yaml")

Values in overrides are parsed as YAML (``1e-3`` is a float, ``[8,8,2,2]`` a list, ``null`` is None). An
override of a key that does not exist is an error unless it is prefixed with ``+`` (``+model.new=1``),
so a typo never silently does nothing.

A config may name another as its ``base`` (a path relative to itself) and hold only what differs:

    # conf/stage1_rvq.yaml
    base: stage1.yaml
    model:
      bottleneck: {kind: rvq, num_quantizers: 8, codebook_size: 1024}

Mappings are merged key by key, everything else is replaced; a mapping whose ``kind`` differs from the
base's is replaced whole (another kind takes other options). Bases may chain; a cycle is an error.
"""

from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path
from typing import Any

import yaml

from shared.io import PathLike, atomic_write


class ConfigError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float (PyYAML's YAML 1.1 rules make it a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _yaml_load(stream: Any) -> Any:
    return yaml.load(stream, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def _parse_value(text: str) -> Any:
    """A command-line value as YAML reads it, but ``00:00:08:00`` stays a string (Lightning's ``max_time``, where
    YAML 1.1 would read a base-60 integer), and a list, mapping or quoted string that does not parse is an error
    (not a string that silently replaces the section)."""
    if _RE_CLOCK.fullmatch(text):
        return text
    try:
        return _yaml_load(text)
    except yaml.YAMLError as e:
        if text.lstrip()[:1] in ("[", "{", "'", '"'):
            raise ConfigError(f"value {text!r} is not valid YAML: {str(e).splitlines()[0]}") from None
        return text


_RE_CLOCK = re.compile(r"\d+(?::\d+)+")


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """A copy of ``cfg`` with each ``dotted.key=value`` (``+dotted.key=value`` to add a new key) applied."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, value = item.split("=", 1)
        add = key.startswith("+")
        path = key.lstrip("+").split(".")
        node = cfg
        for i, part in enumerate(path[:-1]):
            if part not in node:
                if not add:
                    raise ConfigError(f"override '{item}': no key '{'.'.join(path[: i + 1])}' in the config "
                                      f"(use +{key.lstrip('+')}=... to add one)")
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{'.'.join(path[: i + 1])}' is not a section")
        if path[-1] not in node and not add:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else ""
            raise ConfigError(f"override '{item}': no key '{key}' in the config (known here: {known}; "
                              f"use +{key}=... to add one)")
        node[path[-1]] = _parse_value(value)
    return cfg


def merge(base: dict, over: dict) -> dict:
    """``base`` updated by ``over``: mappings merged recursively (unless their ``kind`` differs), other
    values replaced. Neither argument is modified."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        b = out.get(k)
        same_kind = isinstance(b, dict) and isinstance(v, dict) and v.get("kind", b.get("kind")) == b.get("kind")
        out[k] = merge(b, v) if same_kind else copy.deepcopy(v)
    return out


def _read_mapping(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    if path.resolve() in chain:
        raise ConfigError(f"{path}: 'base' cycle: {' -> '.join(str(p) for p in (*chain, path.resolve()))}")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = _yaml_load(f) or {}
    except FileNotFoundError:
        where = f" (the base of {chain[-1]})" if chain else ""
        raise ConfigError(f"{path}: config file not found{where}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = cfg.pop("base", None)
    if base is None:
        return cfg
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file name, got {base!r}")
    return merge(_read_mapping(path.parent / base, (*chain, path.resolve())), cfg)


def load_config(path: PathLike, overrides: list[str] | None = None) -> dict:
    """Read a YAML config (a mapping, resolving its ``base`` chain) and apply overrides."""
    return apply_overrides(_read_mapping(Path(path)), overrides or [])


def save_config(cfg: dict, path: PathLike) -> None:
    with atomic_write(path) as f:
        yaml.safe_dump(cfg, f, sort_keys=False, default_flow_style=None)


def add_config_args(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--config FILE`` plus trailing ``key=value`` overrides."""
    parser.add_argument("--config", default=default, required=default is None, help="YAML config file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. trainer.max_steps=100")
