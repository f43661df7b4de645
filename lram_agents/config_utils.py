"""Small helpers shared by the config dataclasses: validation and JSON round trips."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the value."""


def require(ok: bool, field: str, value: Any, why: str) -> None:
    """Raise :class:`ConfigError` naming ``field`` and ``value`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"config field {field!r} = {value!r}: {why}")


def from_dict(cls, data: dict[str, Any], where: str = ""):
    """Build dataclass ``cls`` from ``data``, rejecting unknown fields by name."""
    if not isinstance(data, dict):
        raise ConfigError(f"config{where} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}{where} for {cls.__name__}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        _check_type(name, value, hints[name], where)
    return cls(**data)


def _check_type(name: str, value: Any, hint: Any, where: str) -> None:
    """Reject JSON values of the wrong kind (e.g. a string for an int) before __post_init__ sees them."""
    kinds = _json_kinds(hint)
    if kinds is None:  # unions and nested configs are validated by the dataclass itself
        return
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        expected = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"config field {name!r}{where} = {value!r}: expected {expected}")


def _json_kinds(hint: Any) -> tuple[type, ...] | None:
    origin = typing.get_origin(hint)
    if hint in (bool, int, str):
        return (hint,)
    if hint is float:
        return (int, float)
    if origin is typing.Literal:
        return tuple({type(a) for a in typing.get_args(hint)})
    if origin in (list, tuple):
        return (list, tuple)
    return None
