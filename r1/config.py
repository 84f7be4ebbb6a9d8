"""Typed configuration: frozen dataclasses built from YAML, then overridden by environment and flags.

Precedence, lowest to highest: dataclass defaults < YAML file < environment (``R1_...``) < ``key=value``
overrides from the command line. Every layer is checked against the dataclass: an unknown key, or a value
of the wrong type, raises `InvalidArgument` naming the dotted key and what was expected, so a typo in a
recipe fails loudly instead of being ignored.

Choices:
- Nested sections are nested dataclasses; a component receives only its own section.
- Override values are parsed as YAML scalars (``port=8080`` is an int, ``tls.cert_file=a.pem`` a string,
  ``stop=[a, b]`` a list), then coerced to the field's declared type.
- Environment keys: ``R1_`` + the dotted key upper-cased with ``.`` written as ``__``
  (``R1_SERVER__AUTH_TOKEN`` sets ``server.auth_token``), the pydantic-settings convention.
- Deliberately not done: interpolation, includes, merging of lists. A recipe is a flat, readable file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from r1.errors import InvalidArgument

T = TypeVar("T")

ENV_PREFIX = "R1_"


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    *,
    base_overrides: Iterable[str] = (),
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> T:
    """Build `cls` from defaults, an optional YAML file, the environment and ``key=value`` overrides.

    base_overrides: ``key=value`` pairs applied *under* the file (a caller's own defaults).
    """
    data: dict[str, Any] = {}
    for item in base_overrides:
        set_dotted(data, *parse_override(item))
    for key, value in (read_yaml(path) if path else {}).items():
        _merge(data, key, value)
    env_pairs = env_overrides(cls, os.environ if environ is None else environ)
    for key, value in env_pairs:
        set_dotted(data, key, value)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    return from_dict(cls, data)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping document is a clear error."""
    p = Path(path)
    if not p.is_file():
        raise InvalidArgument("config", f"file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InvalidArgument("config", f"{p} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument("config", f"{p} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``"server.port=8080"`` -> ``("server.port", 8080)``; the value is read as a YAML scalar."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise InvalidArgument("override", f"{item!r} is not of the form key=value (e.g. server.port=50051)")
    return key.strip(), _yaml_scalar(raw)


def _yaml_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def env_overrides(cls: type, environ: Mapping[str, str]) -> list[tuple[str, Any]]:
    """The ``R1_*`` variables that name a field of `cls` (others are ignored: the prefix is shared)."""
    known = {key.upper().replace(".", "__"): key for key in field_paths(cls)}
    pairs = []
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):] in known:
            pairs.append((known[name[len(ENV_PREFIX):]], _yaml_scalar(raw)))
    return sorted(pairs)


def field_paths(cls: type, prefix: str = "") -> list[str]:
    """Every leaf field of a (nested) config dataclass as a dotted path."""
    paths = []
    for f in dataclasses.fields(cls):
        tp = _resolved_hints(cls)[f.name]
        if _is_dataclass_type(tp):
            paths.extend(field_paths(tp, f"{prefix}{f.name}."))
        else:
            paths.append(prefix + f.name)
    return paths


def _merge(data: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict) and isinstance(data.get(key), dict):
        for k, v in value.items():
            _merge(data[key], k, v)
    else:
        data[key] = value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating sections on the way."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InvalidArgument(key, f"{part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def from_dict(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build dataclass `cls` from a mapping, checking names and types; `path` prefixes error fields."""
    if not isinstance(data, Mapping):
        raise InvalidArgument(path or cls.__name__, f"expected a section (mapping), got {data!r}")
    hints = _resolved_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InvalidArgument(where, f"unknown field; valid fields here: {', '.join(names)}")
    kwargs = {name: coerce(hints[name], data[name], f"{path}.{name}" if path else name)
              for name in names if name in data}
    return cls(**kwargs)


def coerce(tp: Any, value: Any, path: str) -> Any:
    """Check `value` against annotation `tp`, converting where it is lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if _is_dataclass_type(tp):
        return value if isinstance(value, tp) else from_dict(tp, value or {}, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(arg, value, path)
            except InvalidArgument as e:
                errors.append(e.message)
        raise InvalidArgument(path, "; ".join(errors))
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise InvalidArgument(path, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InvalidArgument(path, f"expected a list, got {value!r}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise InvalidArgument(path, f"expected a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(tp, value, path)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise InvalidArgument(path, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InvalidArgument(path, f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):  # YAML 1.1 reads 3e-3 as a string
            return float(value)
        raise InvalidArgument(path, f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise InvalidArgument(path, f"expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise InvalidArgument(path, f"expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_dict(config: Any) -> dict[str, Any]:
    """The inverse of `from_dict`, for printing the effective configuration."""
    return dataclasses.asdict(config)
