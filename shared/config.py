"""YAML configuration: one file per stage, ``a.b.c=value`` overrides from the command line, and the
resolved configuration written into the experiment directory.

    cfg = load_config("conf/stage1.yaml", ["model.latent_dim=32", "trainer.max_steps=2000"])
    save_config(cfg, exp_dir / "config.yaml")

Config files and the values in overrides are read by YAML 1.2's rules: ``true`` / ``false`` are booleans,
``null`` / ``~`` None, ``010`` is ten, ``1e-3`` a float, ``[8,8,2,2]`` a list, ``{kind: rvq}`` a mapping, ``'32'`` a
quoted string, and anything else a string (``no`` is espeak-ng's Norwegian, ``1:00:00:00`` Lightning's ``max_time``, where YAML 1.1 read False and a
base-60 integer). An override keeps the type the config holds: a number for a number (int or float), a string for
a string, a mapping for a section; ``null`` replaces anything and anything replaces a None. An override of a key
that does not exist is an error unless it is prefixed with ``+`` (``+model.new=1``), which also lets a value change
its type (``+trainer.devices=auto``), so a typo never silently does nothing.

A config may name another as its ``base`` (a path relative to itself) and hold only what differs:

    # conf/stage1_rvq.yaml
    base: stage1.yaml
    model:
      bottleneck: {kind: rvq, num_quantizers: 8, codebook_size: 1024}

Mappings are merged key by key, everything else is replaced; a mapping whose ``kind`` differs from the
base's is replaced whole (another kind takes other options). Bases may chain; a cycle is an error. A key of the
child that the base lacks but nearly has (``ema_decy`` beside ``ema_decay``) is an error; write ``+ema_decy:`` to
add it all the same (a base does not list every option the code takes, so other new keys are taken as they are).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from shared.io import PathLike, atomic_write


class ConfigError(ValueError):
    pass


class _Yaml12Loader(yaml.SafeLoader):
    """Config files and command-line values by YAML 1.2's core schema: PyYAML's YAML 1.1 read ``010`` as the octal
    8, ``no`` / ``on`` as booleans, ``1:00:00:00`` as a base-60 integer and ``1e-3`` as a string, none of which
    anyone writing a config or typing an override means (files were read by YAML 1.1 until 2026-12-07, overrides
    by 1.2; every shipped config reads the same by both)."""

    yaml_implicit_resolvers: dict = {}  # not SafeLoader's: only the resolvers below


_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                    ["~", "n", "N", ""])
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
# int before float: the first resolver that matches wins, and the float pattern also matches "10"
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)
# decimal: SafeLoader's constructor reads a leading 0 as octal and 1:30 as base 60
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node)))


def read_yaml(stream: Any) -> Any:
    """A YAML (or JSON) document by YAML 1.2's rules: every config file the toolkit reads, its frontend's too."""
    return yaml.load(stream, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)


def _parse_value(text: str) -> Any:
    """A command-line value by YAML 1.2's rules (see the module's docstring); a list, mapping or quoted string that
    does not parse is an error (not a string that silently replaces the section), other text that YAML refuses or
    reads as nothing (``@x``, ``#x``) is that text."""
    try:
        value = read_yaml(text)
    except (yaml.YAMLError, ValueError) as e:
        if text.lstrip()[:1] in ("[", "{", "'", '"'):
            raise ConfigError(f"value {text!r} is not valid YAML: {str(e).splitlines()[0]}") from None
        return text
    return text if value is None and text.strip() not in ("~", "null", "Null", "NULL") else value


def _type_name(value: Any) -> str:
    """What an override must give to replace ``value``: int and float are one kind (``train.lr=1``,
    ``trainer.val_check_interval=0.5``)."""
    if isinstance(value, bool):  # before int: bool is an int to Python
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "a section"}.get(type(value), type(value).__name__)


def _check_type(item: str, key: str, old: Any, new: Any) -> None:
    """Refuse an override whose value is of another type than the config's (``trainer.max_steps=2k``,
    ``model.bottleneck=rvq``): the training would fail much later, or take the text for something else."""
    if old is None or new is None or _type_name(old) == _type_name(new):
        return
    if isinstance(old, dict):
        first = next(iter(old), "key")
        raise ConfigError(f"override '{item}': '{key}' is a section ({', '.join(map(str, old))}); set its keys "
                          f"({key}.{first}=...), give a whole mapping ({key}={{{first}: ...}}), or replace it with "
                          f"+{key}=...")
    hint = {"a string": f"quote it ({key}='{item.split('=', 1)[1]}')", "true or false": "write true or false",
            "a number": "write a decimal number (2000, 0.5, 1e-3)"}.get(_type_name(old), f"give {_type_name(old)}")
    raise ConfigError(f"override '{item}': '{key}' is {_type_name(old)} in the config ({old!r}), not "
                      f"{_type_name(new)} ({new!r}); {hint}, or write +{key}=... to change its type")


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """A copy of ``cfg`` with each ``dotted.key=value`` (``+dotted.key=value`` to add a new key) applied."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, value = item.split("=", 1)
        if not value.strip():  # an unset shell variable ("x=$nope"): None would pass every type check
            raise ConfigError(f"override '{item}' has no value (write {key}=null for None, {key}='' for an "
                              f"empty string)")
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
        new = _parse_value(value)
        if not add and path[-1] in node:
            _check_type(item, ".".join(path), node[path[-1]], new)
        node[path[-1]] = new
    return cfg


def check_known_keys(cfg: dict, known: dict[str, tuple[str, ...] | None], what: str,
                     hints: dict[str, str] | None = None) -> None:
    """Refuse (ConfigError) a top-level section of ``cfg`` that is not in ``known``, and a key of a section whose
    ``known`` entry lists its keys (None: the section is not listed here, e.g. one read by a constructor, whose
    unknown keyword is an error there anyway). A config is read section by section with defaults, so a misspelt
    section or key (``validaton:``, ``validation.num_utt``) would otherwise silently leave its defaults in force.
    ``what`` names the config in the message ("stage one"); ``hints`` (``{"section.key": text}``) are said beside an
    unknown key they name (the other stage's name for a setting). A known section that is not a mapping (an empty
    ``train:``, which YAML reads as null) is refused too: the code reads its keys."""
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise ConfigError(f"{what} config: unknown section(s) {', '.join(map(str, unknown))}; the sections are "
                          f"{', '.join(known)}")
    for section, keys in known.items():
        if section in cfg and not isinstance(cfg[section], dict):
            empty = " (YAML reads a section with no keys as null: give it keys or remove it)" if cfg[section] is None else ""
            raise ConfigError(f"{what} config: '{section}' must be a section of keys, not {cfg[section]!r}{empty}")
        if keys is None or section not in cfg:
            continue
        unknown = sorted(set(cfg[section]) - set(keys))
        if unknown:
            said = [hints[f"{section}.{k}"] for k in unknown if f"{section}.{k}" in (hints or {})]
            raise ConfigError(f"{what} config: {section}: unknown key(s) {', '.join(map(str, unknown))}; the keys are "
                              f"{', '.join(keys)}" + (f" ({'; '.join(said)})" if said else ""))


def check_keys_against(cfg: dict, defaults: dict, what: str, where: str = "") -> None:
    """Refuse (ConfigError) a key of ``cfg``, at any depth, that ``defaults`` lacks: for a config whose every key has a
    default (the phone recogniser's), where a misspelt one (``train.max_step``) would be read by nothing."""
    for key, value in cfg.items():
        if key not in defaults:
            section = f" of {where.rstrip('.')}" if where else ""
            raise ConfigError(f"{what}: unknown key '{where}{key}'; the keys{section} are "
                              f"{', '.join(map(str, defaults))}")
        if isinstance(value, dict) and isinstance(defaults[key], dict):
            check_keys_against(value, defaults[key], what, f"{where}{key}.")


def merge(base: dict, over: dict) -> dict:
    """``base`` updated by ``over``: mappings merged recursively (unless their ``kind`` differs), other
    values replaced. Neither argument is modified."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        b = out.get(k)
        same_kind = isinstance(b, dict) and isinstance(v, dict) and v.get("kind", b.get("kind")) == b.get("kind")
        out[k] = merge(b, v) if same_kind else copy.deepcopy(v)
    return out


def _check_child_keys(base: dict, child: dict, path: Path, base_path: Path, where: str = "") -> None:
    """Refuse a key of ``child`` that ``base`` lacks but nearly has (``train: {ema_decy: ...}`` over ``ema_decay``):
    merged, it would be a stray key beside the one meant, which stays as it was. Only near misses: a base does not
    list every option the code takes (stage1_fsq.yaml's ``model.pitch.quantize_bits``), so a key unlike any of the
    base's is taken as new. ``+key`` adds a key unchecked; a section of another ``kind`` replaces the base's whole."""
    for key, value in child.items():
        if isinstance(key, str) and key.startswith("+") and len(key) > 1:
            continue
        dotted = f"{where}{key}"
        if key not in base:
            names = [k for k in base if isinstance(k, str)]
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.8) if isinstance(key, str) else []
            if close:
                raise ConfigError(f"{path}: '{dotted}' is not a key of its base {base_path}: did you mean "
                                  f"'{close[0]}'? (write '+{key}:' to add a new key)")
            continue
        b = base[key]
        if isinstance(b, dict) and isinstance(value, dict) and value.get("kind", b.get("kind")) == b.get("kind"):
            _check_child_keys(b, value, path, base_path, f"{dotted}.")  # merged (see merge), so checked too


def _strip_plus(cfg: dict, path: Path, where: str = "") -> dict:
    """``cfg`` with each ``+key`` (a key added on purpose, see _check_child_keys) renamed ``key``, at every depth."""
    out = {}
    for key, value in cfg.items():
        name = key[1:] if isinstance(key, str) and key.startswith("+") and len(key) > 1 else key
        if name in out or (name != key and name in cfg):
            section = where.rstrip(".") or "the top level"
            raise ConfigError(f"{path}: '{section}' holds both '{name}' and '+{name}': keep one")
        out[name] = _strip_plus(value, path, f"{where}{name}.") if isinstance(value, dict) else value
    return out


def _read_mapping(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    if path.resolve() in chain:
        raise ConfigError(f"{path}: 'base' cycle: {' -> '.join(str(p) for p in (*chain, path.resolve()))}")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = read_yaml(f) or {}
    except FileNotFoundError:
        where = f" (the base of {chain[-1]})" if chain else ""
        raise ConfigError(f"{path}: config file not found{where}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = cfg.pop("base", None)
    if base is None:
        return _strip_plus(cfg, path)
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file name, got {base!r}")
    parent = _read_mapping(path.parent / base, (*chain, path.resolve()))
    _check_child_keys(parent, cfg, path, path.parent / base)
    return merge(parent, _strip_plus(cfg, path))


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


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 1 (a ``--batch-size 0`` failed deep inside, as ``range()``'s error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number above 0 (a duration, a number of seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{value:g}: must be above 0")
    return value
