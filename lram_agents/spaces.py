"""A JSON form of the Gymnasium spaces an agent acts in (Box, Discrete, 1-D MultiDiscrete), saved in ``preprocessing.json``.

Saving the spaces with a model lets ``lram_agents.load("xlstm-tmaze").act(obs)`` work without an env
at hand. Uniform bounds are stored as one number; infinite bounds as the strings ``"inf"`` / ``"-inf"``
(plain JSON has no infinity).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from lram_agents.config_utils import ConfigError


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """The JSON form of a Box or Discrete space."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _bounds_to_json(space.low),
            "high": _bounds_to_json(space.high),
        }
    if isinstance(space, gym.spaces.MultiDiscrete) and len(space.shape) == 1:
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "start": space.start.tolist(), "dtype": np.dtype(space.dtype).name}
    raise TypeError(f"cannot save space {space}: only Box, Discrete and 1-D MultiDiscrete spaces are supported")


def space_from_json(data: Any, field: str = "space") -> gym.Space:
    """Rebuild a space written by :func:`space_to_json`; errors name ``field``."""
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "Discrete":
            return gym.spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
        if kind == "Box":
            dtype = np.dtype(data["dtype"])
            shape = tuple(int(s) for s in data["shape"])
            low = np.broadcast_to(np.asarray(data["low"], dtype=np.float64), shape).astype(dtype)
            high = np.broadcast_to(np.asarray(data["high"], dtype=np.float64), shape).astype(dtype)
            return gym.spaces.Box(low, high, shape=shape, dtype=dtype)
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(data["nvec"], dtype=np.dtype(data["dtype"]), start=data["start"])
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"config field {field!r} = {data!r}: not a valid {kind} space ({err})") from None
    raise ConfigError(f"config field {field!r} = {data!r}: expected a JSON object with type 'Box', 'Discrete' or 'MultiDiscrete'")


def _bounds_to_json(values: np.ndarray) -> float | str | list:
    flat = values.astype(np.float64).ravel()
    if flat.size and np.all(flat == flat[0]):
        return _number(flat[0])
    return np.vectorize(_number, otypes=[object])(values.astype(np.float64)).tolist()


def _number(value: float) -> float | str:
    return float(value) if np.isfinite(value) else str(float(value))
