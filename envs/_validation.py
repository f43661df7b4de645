"""Input checks shared by the environments: each error names the offending value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

#: The only key ``reset(options=...)`` accepts in this package.
RESET_OPTIONS = frozenset({"task"})


def check_reset_options(options: Mapping[str, Any] | None) -> Any:
    """Validate ``reset(options=...)`` and return the requested task (``None`` when absent).

    Raises:
        TypeError: ``options`` is not a mapping.
        ValueError: ``options`` holds a key other than ``"task"``.
    """
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError(f"reset options must be a dict or None, got {options!r}")
    unknown = sorted(set(options) - RESET_OPTIONS, key=str)
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown!r}; allowed: {sorted(RESET_OPTIONS)!r}")
    return options.get("task")


def check_discrete_action(space: spaces.Discrete, action: Any) -> int:
    """Return ``action`` as an ``int`` or raise ``ValueError`` naming it.

    Accepts Python / NumPy integers and 0-d integer arrays (what SB3 and vector envs pass).
    """
    if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
        value = int(action)  # fast path: this runs at every step of long T-Maze episodes
    else:
        array = np.asarray(action)
        if array.shape != () or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"action {action!r} is not an integer of the action space {space}")
        value = int(array)
    if not space.start <= value < space.start + space.n:
        raise ValueError(
            f"action {action!r} is not in the action space {space} "
            f"(an integer in [{space.start}, {space.start + space.n - 1}])"
        )
    return value


def check_box_action(space: spaces.Box, action: Any) -> np.ndarray:
    """Return ``action`` as an array of the space's dtype or raise ``ValueError`` naming it.

    Unlike ``Box.contains`` this accepts float64 input (e.g. a Python list), but it still
    rejects a wrong shape, a non-finite entry, or an entry outside ``[low, high]``.
    """
    try:
        array = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"action {action!r} is not numeric") from error
    if array.shape != space.shape:
        raise ValueError(
            f"action {action!r} has shape {array.shape}, the action space {space} expects {space.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"action {action!r} has a non-finite entry")
    outside = (array < space.low) | (array > space.high)
    if np.any(outside):
        index = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"action {action!r} is outside the action space: entry {index} = "
            f"{array.flat[index]!r} is not in [{space.low.flat[index]}, {space.high.flat[index]}]"
        )
    return array.astype(space.dtype)
