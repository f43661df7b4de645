"""Whether a pretrained model can act in a new task's spaces, and how the shared encoders and head map them.

Every model shares one state encoder (vectors zero-padded to ``max_state_dim``; uint8 images
grey-scaled and resized to ``image_shape``) and one action head (``num_discrete_actions`` classes,
of which a Discrete(n) task uses the first n, and ``max_action_dims`` groups of ``num_action_bins``
bins on [-1, 1], into which a bounded Box action is rescaled and discretised). A new task fits when
its spaces fit those; :func:`check_transfer` says how they map, or raises
:class:`IncompatibleSpaceError` naming what does not fit and what to do about it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from lram_agents.config import LRAMConfig


class IncompatibleSpaceError(ValueError):
    """A new task's observation or action space cannot be handled by the pretrained model."""


def check_transfer(config: LRAMConfig, observation_space: gym.Space, action_space: gym.Space) -> list[str]:
    """How the model's shared encoders and head handle these spaces, one line each.

    Raises:
        IncompatibleSpaceError: the spaces cannot be mapped (the message names the value and a way out).
    """
    return [_observations(config, observation_space), _actions(config, action_space)]


def _observations(config: LRAMConfig, space: gym.Space) -> str:
    if not isinstance(space, gym.spaces.Box):
        raise IncompatibleSpaceError(
            f"observation space {space} is not a Box: the shared encoders read vectors and uint8 images. Wrap the env "
            "(and record the data) with a Box observation, e.g. gymnasium.wrappers.FlattenObservation (one-hot for "
            "Discrete / MultiDiscrete, concatenation for Dict / Tuple)")
    if space.dtype == np.uint8 and len(space.shape) == 3:
        return _images(config, space)
    size = int(np.prod(space.shape))
    if size > config.max_state_dim:
        raise IncompatibleSpaceError(
            f"observations of {size} dims (shape {space.shape}) exceed the model's max_state_dim={config.max_state_dim}: the "
            "shared state encoder cannot take them (select or project features to at most that many)")
    shape = f"shape {space.shape} flattened to " if len(space.shape) != 1 else ""
    return f"observations: {shape}{size} dims, zero-padded to the shared encoder's {config.max_state_dim}"


def _images(config: LRAMConfig, space: gym.Box) -> str:
    if config.image_shape is None:
        raise IncompatibleSpaceError(f"image observations {space.shape} need an image encoder, but the model has none "
                                     "(config.image_shape is None)")
    c = space.shape[0] if space.shape[0] in (1, 3) else space.shape[-1]
    if c not in (1, 3) or (c == 1 and config.image_shape[0] == 3):
        raise IncompatibleSpaceError(f"images of shape {space.shape} ({c} channels) cannot be turned into the model's "
                                     f"{config.image_shape}: only RGB -> grey and resizing are supported")
    return f"observations: images {space.shape} converted to the image encoder's {config.image_shape} (grey-scaled / resized)"


def _actions(config: LRAMConfig, space: gym.Space) -> str:
    regression = config.action_head == "regression"
    if isinstance(space, gym.spaces.Discrete):
        if regression:
            raise IncompatibleSpaceError(f"action space {space} is discrete, but the model's regression head predicts "
                                         "continuous actions only")
        if space.n > config.num_discrete_actions:
            raise IncompatibleSpaceError(f"action space {space} has {space.n} actions, more than the shared head's "
                                         f"num_discrete_actions={config.num_discrete_actions}")
        return f"actions: Discrete({space.n}) uses the first {space.n} of the head's {config.num_discrete_actions} classes"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise IncompatibleSpaceError(f"action space {space} is unbounded: the head needs bounds to rescale actions to "
                                         "[-1, 1] (wrap the env with gymnasium.wrappers.ClipAction on a bounded space)")
        d = space.shape[0]
        if d > config.max_action_dims:
            raise IncompatibleSpaceError(f"action space {space} has {d} dimensions, more than the shared head's "
                                         f"max_action_dims={config.max_action_dims}")
        how = "regressed (tanh)" if regression else f"discretised into {config.num_action_bins} bins each"
        return f"actions: Box({d}) rescaled to [-1, 1], {how}, using {d} of the head's {config.max_action_dims} dimensions"
    raise IncompatibleSpaceError(
        f"action space {space} is neither Discrete nor a 1-D Box: the shared head predicts one discrete action or a vector "
        "of continuous ones (a small MultiDiscrete can be flattened into one Discrete of all combinations)")
