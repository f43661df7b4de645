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


def set_fields(data: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``data`` with ``KEY.PATH=VALUE`` assignments applied (the command line's ``--set``); VALUE is read
    as YAML, so ``3``, ``1e-4``, ``alibi``, ``[8, 20]`` and ``{a: 1}`` mean what they look like. A list
    element is addressed by its index (``data.0.context=100``). Missing dict keys are created."""
    import copy

    data = copy.deepcopy(data)
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep or not path:
            raise ConfigError(f"--set {assignment!r}: write KEY.PATH=VALUE, e.g. trainer.batch_size=32")
        keys, node = path.split("."), data
        for depth, key in enumerate(keys[:-1]):
            node = _child(node, key, ".".join(keys[: depth + 1]), assignment)
        last = keys[-1]
        if isinstance(node, list):
            node[_index(node, last, path, assignment)] = _yaml_value(text)
        elif isinstance(node, dict):
            node[last] = _yaml_value(text)
        else:
            raise ConfigError(f"--set {assignment!r}: {'.'.join(keys[:-1])} is {node!r}, not a mapping or a list")
    return data


def _yaml_value(text: str) -> Any:
    """YAML, except that ``1e-4`` is a number (PyYAML's YAML 1.1 reads it as a string)."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _child(node: Any, key: str, where: str, assignment: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, key, where, assignment)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {assignment!r}: {where} is inside {node!r}, not a mapping or a list")
    return node.setdefault(key, {})


def _index(node: list, key: str, where: str, assignment: str) -> int:
    if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
        raise ConfigError(f"--set {assignment!r}: {where} indexes a list of {len(node)} with {key!r}")
    return int(key)
