"""Agents: an LRAM model acting in an environment one step at a time, its memory inside.

Token layout (see :mod:`lram_agents.model`): one call feeds one timestep ``(r_{t-1}, s_t, R̂_t)`` (and
``a_{t-1}`` when the model includes actions), so the ``reward`` given with an observation is the reward
received for the *previous* action. The return-to-go starts at the target return and follows
``R̂_{t+1} = R̂_t - r_t / reward_scale``.

Episode boundaries. At a new episode the return-to-go goes back to the target. What happens to the
memory depends on ``keep_memory``:

* cleared (the default for single-episode models): the model's state is emptied, the first step
  sees ``r_{t-1} = 0`` (and no previous action), and the reward passed with the first observation
  is ignored: it belongs to an episode the model has forgotten.
* kept (in-context agents): the state carries on, and the reward passed with the first observation
  of the new episode is fed as ``r_{t-1}``: it is the last reward of the previous episode, the one
  signal of how that episode ended (in T-Maze-like tasks the only one). This is the token a model
  sees when it is trained on consecutive episodes laid end to end. Only the return-to-go restarts.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import torch

from lram_agents.action_head import CONTINUOUS_DECODINGS
from lram_agents.backbones import State
from lram_agents.inference import StepFunction
from lram_agents.model import LRAMModel, Timesteps
from lram_agents.preprocessing import ActionAdapter, ObservationAdapter, Preprocessing
from lram_agents.spaces import space_from_json, space_to_json


@dataclass(frozen=True)
class AgentMemory:
    """What an agent carries from one call to the next for N envs.

    The Transformer's KV cache is preallocated and written in place (copying it every step would
    cost as much as attending over it), and a compiled xLSTM step updates its matrix memory in place
    (one pass over it instead of a read and a fresh write), so the ``model_state`` of a snapshot taken from
    :attr:`Agent.memory` is advanced by the agent's next step. Handing the *latest* snapshot back
    (what the Stable-Baselines3 adapter does) is always right; to rewind to an older one later,
    keep ``memory.clone()``.
    """

    model_state: State  # the backbone's recurrent state (or KV cache), batch first
    returns_to_go: torch.Tensor  # (N,) R̂ of the last step, divided by the reward scale
    prev_actions: torch.Tensor  # (N,) head classes or (N, d) in [-1, 1]: a_{t-1} of the next step
    acted: np.ndarray  # (N,) bool: the env has acted since its memory was last emptied
    prev_states: torch.Tensor | None = None  # (N, ...) model-space s_{t-1} (transition-token models only)

    @property
    def num_envs(self) -> int:
        return int(self.acted.shape[0])

    def clone(self) -> AgentMemory:
        """A copy that later steps of the agent cannot change."""
        return AgentMemory(
            {name: tensor.clone() for name, tensor in self.model_state.items()},
            self.returns_to_go.clone(),
            self.prev_actions.clone(),
            self.acted.copy(),
            None if self.prev_states is None else self.prev_states.clone(),
        )

    def save(self, path: str | Path) -> None:
        """Write the memory to a safetensors file (atomically), to resume an agent mid-episode later::

            agent.memory.save("memory.safetensors")
            agent.memory = AgentMemory.load("memory.safetensors")   # same agent, or one loaded from the same weights
        """
        from lram_agents.serialization import atomic_save_tensors

        tensors = {f"{_STATE_PREFIX}{name}": t.detach().contiguous().cpu() for name, t in self.model_state.items()}
        tensors.update(returns_to_go=self.returns_to_go.cpu(), prev_actions=self.prev_actions.cpu(),
                       acted=torch.from_numpy(self.acted.astype(np.uint8)))
        if self.prev_states is not None:
            tensors["prev_states"] = self.prev_states.contiguous().cpu()
        atomic_save_tensors(Path(path), tensors, metadata={"format": _MEMORY_FORMAT})

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> AgentMemory:
        """A memory written by :meth:`save`, on ``device`` (the agent's: ``agent.device``)."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device=str(device)) as f:
            if (f.metadata() or {}).get("format") != _MEMORY_FORMAT:
                raise ValueError(f"{path} is not an agent memory written by AgentMemory.save")
            tensors = {key: f.get_tensor(key) for key in f.keys()}
        state = {key[len(_STATE_PREFIX):]: t for key, t in tensors.items() if key.startswith(_STATE_PREFIX)}
        return cls(state, tensors["returns_to_go"], tensors["prev_actions"], tensors["acted"].cpu().numpy().astype(bool),
                   tensors.get("prev_states"))


_STATE_PREFIX = "model_state."
_MEMORY_FORMAT = "lram_agents.AgentMemory/1"


class Agent:
    """An :class:`LRAMModel` with its :class:`Preprocessing`, acting in Gymnasium envs.

    Args:
        model: the sequence model.
        preprocessing: reward scale, target return, normalisation, ``keep_memory`` default and (when
            recorded) the env's spaces.
        observation_space, action_space: the env's spaces; default: those saved in ``preprocessing``,
            or bind later with :meth:`bind` (``evaluate`` and ``SB3Policy`` bind to their env).
        keep_memory: keep the recurrent memory across episodes; default ``preprocessing.keep_memory``.
        target_return: the (unscaled) return to condition on; default ``preprocessing.target_return``,
            or for a multi-task agent (``preprocessing.tasks``) the task's of the env it is bound to.
        deterministic: argmax actions (True) or sampled ones at ``temperature``; default
            ``preprocessing.deterministic``.
        continuous_decoding: deterministic continuous actions from a binned head: ``"argmax"`` (the most
            likely bin) or ``"mean"`` (the expected value over the bins); default ``preprocessing.continuous_decoding``.
        seed: seeds the sampling of actions.
        compile: ``"auto"`` (default): the plain model call for the agent's first
            :data:`~lram_agents.inference.AUTO_COMPILE_AFTER` steps, then the step compiled with
            ``torch.compile`` (a one-time pause of seconds; an ``act`` of the zoo's T-Maze agent goes from ~1.2 ms
            to ~0.41 ms); ``True``: compiled from the first step; ``False``: never. Where compiling fails
            (e.g. no C++ compiler) the agent warns once and stays on the plain path.
        precision: ``"bf16"`` weights (:func:`lram_agents.inference.make_step`).
    """

    def __init__(
        self,
        model: LRAMModel,
        preprocessing: Preprocessing | None = None,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        *,
        keep_memory: bool | None = None,
        target_return: float | None = None,
        deterministic: bool | None = None,
        continuous_decoding: str | None = None,
        temperature: float = 1.0,
        seed: int | None = None,
        compile: bool | str = "auto",
        precision: str = "fp32",
    ):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
        self.model = model.eval()
        self._compile, self._precision, self._seed = compile, precision, seed
        self._step_fn = StepFunction(self.model, compile, precision)
        self._first_parameter = next(self.model.parameters())  # the same object after model.to(...): device, dtype
        self.preprocessing = preprocessing or Preprocessing()
        self.keep_memory = self.preprocessing.keep_memory if keep_memory is None else bool(keep_memory)
        self.target_return = float(self.preprocessing.target_return if target_return is None else target_return)
        self.reward_scale = self.preprocessing.reward_scale
        self._target_given = target_return is not None  # a multi-task agent's bind() leaves it alone
        self.deterministic = self.preprocessing.deterministic if deterministic is None else bool(deterministic)
        self.continuous_decoding = self.preprocessing.continuous_decoding if continuous_decoding is None else continuous_decoding
        if self.continuous_decoding not in CONTINUOUS_DECODINGS:
            raise ValueError(f"continuous_decoding must be one of {CONTINUOUS_DECODINGS}, got {self.continuous_decoding!r}")
        self.temperature = temperature
        self._generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        self.observation_space: gym.Space | None = None
        self.action_space: gym.Space | None = None
        self._memory: AgentMemory | None = None
        self._pending_start = True
        self._episode_limit: int | None = None  # the bound env's longest episode, if known (see _check_episode_length)
        self._steps_in_episode = np.zeros(0, dtype=np.int64)
        self._warned_long_episode = False
        self._bound_env = None  # weak reference to the env of bind(env): predict taps its rewards (SB3 does not pass them)
        if observation_space is None:
            observation_space = _saved_space(self.preprocessing.observation_space, "observation_space")
        if action_space is None:
            action_space = _saved_space(self.preprocessing.action_space, "action_space")
        if observation_space is not None and action_space is not None:  # spaces given here are a deliberate choice
            self.bind(observation_space=observation_space, action_space=action_space, new_spaces=True)

    # ---- spaces ----------------------------------------------------------------------------------
    def bind(self, env: Any = None, *, observation_space: gym.Space | None = None, action_space: gym.Space | None = None,
             new_spaces: bool = False) -> Agent:
        """Act in ``env``'s spaces (a Gymnasium env or vector env, or an SB3 VecEnv), or in the given ones.

        An agent whose preprocessing records the spaces it was trained in refuses others (ValueError
        naming both: a T-Maze agent does not play CartPole) unless ``new_spaces=True``, the opt-in for
        transfer (e.g. before fine-tuning on a new task). Changing the spaces clears the memory.

        Binding to an env also lets the agent read that env's rewards, so that it can be SB3's policy
        (:meth:`predict`, ``evaluate_policy(agent, env)``; see :mod:`lram_agents.sb3`). Returns the agent.
        """
        if env is not None:
            from lram_agents.sb3 import inner_space

            vector = hasattr(env, "single_observation_space")  # Gymnasium vector envs
            observation_space = inner_space(env.single_observation_space if vector else env.observation_space)
            action_space = env.single_action_space if vector else env.action_space
            self._select_task(env)
            self._episode_limit = _episode_limit(env)
            self._bound_env = _weak(env)
        if observation_space is None or action_space is None:
            raise ValueError("bind() needs an env, or both observation_space and action_space")
        if observation_space == self.observation_space and action_space == self.action_space:
            return self
        if not new_spaces:
            self._check_trained_spaces(observation_space, action_space)
        config = self.model.config
        self._observations = ObservationAdapter(observation_space, config.image_shape, config.max_state_dim, self.preprocessing)
        self._actions = ActionAdapter(action_space)
        self.model.head.check_spec(self._actions.spec)
        self.observation_space, self.action_space = observation_space, action_space
        self.forget()
        return self

    def _check_trained_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        for name, new in (("observation_space", observation_space), ("action_space", action_space)):
            trained = _saved_space(getattr(self.preprocessing, name), name)
            if trained is not None and trained != new:
                raise ValueError(f"this agent was trained with {name} {trained} and the env has {new}: it would act on inputs it "
                                 "never saw. Use an env of its task, or pass new_spaces=True to bind() to transfer it on purpose "
                                 "(e.g. to fine-tune it)")

    def _select_task(self, env: Any) -> None:
        """A multi-task agent (``preprocessing.tasks``) takes the reward scale and target return of
        ``env``'s task (by env id, else its domain's); ValueError when it knows neither."""
        if self.preprocessing.tasks is None:
            return
        env_id = _env_id(env)
        task = self.preprocessing.for_env(env_id) if env_id else None
        if task is None:
            known = sorted(k for k in self.preprocessing.tasks if k.startswith("domain:"))
            raise ValueError(f"this agent was trained on {len(self.preprocessing.tasks)} tasks and has no reward scale or target "
                             f"return for env {env_id or env!r} (it knows the env ids it trained on and the domains {known}); "
                             "pass target_return= to Agent/load and set agent.reward_scale")
        self.reward_scale = task.reward_scale
        if not self._target_given:
            self.target_return = task.target_return

    @property
    def device(self) -> torch.device:
        return self._first_parameter.device

    def to(self, device: str | torch.device) -> Agent:
        """Move the model to ``device`` ("cpu", "cuda", "auto", ...; checked first) and forget the memory
        (it lives on the old device); the step is rebuilt for the new device. Returns the agent."""
        from lram_agents.devices import resolve_device

        device = resolve_device(device)
        self.model.to(device)
        self._step_fn = StepFunction(self.model, self._compile, self._precision)
        if self._seed is not None:
            self._generator = torch.Generator(device=device).manual_seed(self._seed)
        self.forget()
        return self

    # ---- episodes and memory ---------------------------------------------------------------------
    def reset(self) -> None:
        """The next call starts a new episode in every env: target return restored, memory kept or
        cleared according to :attr:`keep_memory`."""
        self._pending_start = True

    def forget(self) -> None:
        """Drop all memory: the next call starts fresh (and may use another number of envs)."""
        self._memory = None
        self._pending_start = True

    @property
    def memory(self) -> AgentMemory | None:
        """A snapshot of the agent's memory (``None`` before the first step or after :meth:`forget`)."""
        return self._memory

    @memory.setter
    def memory(self, memory: AgentMemory | None) -> None:
        if memory is not None and not isinstance(memory, AgentMemory):
            raise TypeError(f"memory must be an AgentMemory or None, got {type(memory).__name__}")
        self._memory = memory
        self._pending_start = memory is None

    # ---- acting ----------------------------------------------------------------------------------
    def act(self, observation: Any, reward: float | None = None, *, deterministic: bool | None = None) -> Any:
        """The action for one env's observation, an element of the action space.

        ``reward`` is the reward the previous action received (``None`` is allowed only where there
        was no previous action to be rewarded, e.g. the first step). Call :meth:`reset` between
        episodes.
        """
        self._require_spaces()
        observation = np.asarray(observation)
        if observation.shape != self.observation_space.shape:
            raise ValueError(
                f"observation of shape {observation.shape} does not match the observation space's shape "
                f"{self.observation_space.shape}"
            )
        return self.act_batch(observation[None], [reward], deterministic=deterministic)[0]

    def act_batch(
        self,
        observations: Any,
        rewards: Any = None,
        episode_start: Any = None,
        *,
        active: Any = None,
        deterministic: bool | None = None,
    ) -> np.ndarray:
        """Actions for N envs at once, (N,) or (N, d) in the env's action space.

        Args:
            observations: (N, *observation_space.shape).
            rewards: (N,) the reward each env's previous action received (entries may be ``None``
                where there was none); ``None``: no rewards (only valid at fresh starts).
            episode_start: (N,) bool, True where the observation is the first of a new episode
                (besides, every env starts after :meth:`reset` and at the first call).
            active: (N,) bool, False for envs that do not step now: their memory stays as it was, their
                ``episode_start`` is ignored and their action is a placeholder (Gymnasium's next-step
                autoreset ignores it).
            deterministic: overrides the agent's setting for this call.
        """
        self._require_spaces()
        states = self._observations(observations)
        n = states.shape[0]
        memory = self._memory_for(states)
        starts = self._mask(episode_start, n, "episode_start", default=False) | self._pending_start | ~memory.acted
        active = self._mask(active, n, "active", default=True)
        forget = starts & memory.acted & (not self.keep_memory)  # rows whose state the model must empty
        fresh = starts & ~(memory.acted & self.keep_memory)  # rows at an empty start: r_{t-1} = 0, no a_{t-1}
        prev_rewards = self._previous_rewards(rewards, n, needed=active & ~fresh)
        with torch.inference_mode():
            # a step that updates the state in place would leave no old rows to keep: it gets a copy
            stepped = memory.clone() if self._step_fn.donates_state and not active.all() else memory
            new = self._step(stepped, states, prev_rewards, starts, fresh, forget, deterministic)
            if not active.all():
                new = self._keep(memory, new, ~active)
        self._memory, self._pending_start = new, False
        self._check_episode_length(starts, active)
        return self._actions.to_env(new.prev_actions)

    def predict(self, observation: Any, state: AgentMemory | None = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, AgentMemory | None]:
        """Stable-Baselines3's policy API, so that ``evaluate_policy(agent, env)`` works after
        ``agent.bind(env)``: actions for (N, ...) observations (or one), the memory snapshot as SB3's
        ``state``. Rewards come from the bound env's last step (or from a
        :class:`~lram_agents.sb3.PreviousRewardWrapper` observation); ``episode_start`` marks new
        episodes; SB3's ``deterministic`` is obeyed. See :mod:`lram_agents.sb3`.
        """
        from lram_agents.sb3 import RewardTap, predict

        env = self._bound_env() if self._bound_env is not None else None
        tap = RewardTap.on(env) if env is not None else None  # installed at the first predict: only SB3 loops pay for it
        return predict(self, observation, state, episode_start, deterministic, tap)

    def _check_episode_length(self, starts: np.ndarray, active: np.ndarray) -> None:
        """Warn once when an env acts longer than its episodes can last: the caller forgot :meth:`reset`
        (or ``episode_start``) between episodes, and the agent conditions on a stale return-to-go."""
        if self._steps_in_episode.shape != starts.shape:
            self._steps_in_episode = np.zeros(starts.shape, dtype=np.int64)
        self._steps_in_episode = np.where(starts, 0, self._steps_in_episode) + active
        limit = self._episode_limit
        if limit is not None and not self._warned_long_episode and (self._steps_in_episode > limit).any():
            self._warned_long_episode = True
            warnings.warn(f"the agent has acted {int(self._steps_in_episode.max())} steps since its last episode start, but the "
                          f"env's episodes last at most {limit}: call agent.reset() (or pass episode_start) when an episode "
                          "ends, or the return-to-go and memory carry over from the last one", stacklevel=3)

    def _step(self, memory, states, prev_rewards, starts, fresh, forget, deterministic) -> AgentMemory:
        device, dtype = self.device, self._first_parameter.dtype
        scale = self.reward_scale
        prev_r = torch.as_tensor(prev_rewards / scale, dtype=dtype, device=device)
        starts_t = torch.as_tensor(starts, device=device)
        rtg = torch.where(starts_t, torch.full_like(prev_r, self.target_return / scale), memory.returns_to_go - prev_r)
        states = states.to(device) if states.dtype == torch.uint8 else states.to(device, dtype)
        steps = self._inputs(memory, states, rtg, prev_r, torch.as_tensor(fresh, device=device))
        # resetting no row still costs a pass over the state: pass the mask only when a row starts
        reset = torch.as_tensor(forget, device=device) if forget.any() else None
        out = self._step_fn(steps, memory.model_state, episode_start=reset)
        deterministic = self.deterministic if deterministic is None else deterministic
        actions = self.model.head.decode(out.logits[:, -1], self._actions.spec, deterministic, self.temperature, self._generator,
                                         self.continuous_decoding)
        prev_states = states if self.model.config.needs_prev_states else None
        return AgentMemory(out.state, rtg, actions, np.ones(len(starts), dtype=bool), prev_states)

    def _inputs(self, memory: AgentMemory, states, rtg, prev_r, fresh: torch.Tensor) -> Timesteps:
        """One timestep of the fields the model's token layout takes (``config.input_fields``)."""
        config, dtype = self.model.config, rtg.dtype
        rows = lambda t: fresh.view(-1, *([1] * (t.dim() - 1)))  # noqa: E731  (fresh rows, broadcastable)
        inputs = {"states": states[:, None]}
        if config.needs_returns_to_go:
            inputs["returns_to_go"] = rtg[:, None]
        if config.needs_prev_rewards:
            inputs["prev_rewards"] = prev_r[:, None]
        if config.needs_prev_actions:
            prev_a = torch.where(rows(memory.prev_actions), self._no_actions(len(fresh)), memory.prev_actions)
            inputs["prev_actions"] = (prev_a.to(dtype) if prev_a.is_floating_point() else prev_a)[:, None]
        if config.needs_prev_states:  # zeros at an empty start, as the sampler feeds them
            inputs["prev_states"] = torch.where(rows(memory.prev_states), 0, memory.prev_states).to(states.dtype)[:, None]
        return Timesteps(**inputs)

    def _keep(self, old: AgentMemory, new: AgentMemory, mask: np.ndarray) -> AgentMemory:
        """``new`` with the rows of ``mask`` back at ``old`` (they did not step)."""
        m = torch.as_tensor(mask, device=self.device)
        shaped = lambda t: m.view(-1, *([1] * (t.dim() - 1)))  # noqa: E731
        return AgentMemory(
            self.model.keep_rows(old.model_state, new.model_state, m),
            torch.where(m, old.returns_to_go, new.returns_to_go),
            torch.where(shaped(new.prev_actions), old.prev_actions, new.prev_actions),
            np.where(mask, old.acted, new.acted),
            None if new.prev_states is None else torch.where(shaped(new.prev_states), old.prev_states, new.prev_states),
        )

    # ---- helpers ---------------------------------------------------------------------------------
    def _require_spaces(self) -> None:
        if self.observation_space is None:
            raise RuntimeError(
                "the agent does not know the env's spaces: pass observation_space and action_space, "
                "call agent.bind(env), or use lram_agents.evaluate(agent, env)"
            )

    def _memory_for(self, states: torch.Tensor) -> AgentMemory:
        n = states.shape[0]
        if self._memory is None:
            # inference tensors, like every memory a step returns: a compiled step is specialised on that too, and a
            # first memory of plain tensors would compile the steps after it again
            with torch.inference_mode():
                state = self.model.init_state(n, self.device)
                rtg = torch.zeros(n, device=self.device, dtype=self._first_parameter.dtype)
                prev_states = torch.zeros_like(states, device=self.device) if self.model.config.needs_prev_states else None
                self._memory = AgentMemory(state, rtg, self._no_actions(n), np.zeros(n, dtype=bool), prev_states)
        elif self._memory.num_envs != n:
            raise ValueError(
                f"got {n} observations but the agent's memory holds {self._memory.num_envs} envs; "
                "call agent.forget() to start over with another number of envs"
            )
        return self._memory

    def _no_actions(self, n: int) -> torch.Tensor:
        """a_{t-1} at an empty start: the 'none' class, or zeros for continuous actions."""
        spec = self._actions.spec
        if spec.kind == "discrete":
            return torch.full((n,), self.model.config.num_discrete_actions, dtype=torch.long, device=self.device)
        return torch.zeros(n, spec.size, device=self.device)

    @staticmethod
    def _mask(values: Any, n: int, name: str, default: bool) -> np.ndarray:
        if values is None:
            return np.full(n, default, dtype=bool)
        mask = np.asarray(values).reshape(-1)
        if mask.shape != (n,):
            raise ValueError(f"{name} has {mask.size} entries for {n} envs")
        return mask.astype(bool)

    @staticmethod
    def _previous_rewards(rewards: Any, n: int, needed: np.ndarray) -> np.ndarray:
        """(N,) float64 rewards r_{t-1}, zero where not needed; errors name the missing or bad value."""
        if rewards is not None:  # the common case, all numbers and finite, without a Python loop
            try:
                fast = np.asarray(rewards, dtype=np.float64).reshape(-1)  # a None becomes NaN: left to the loop below
            except (TypeError, ValueError):
                fast = None
            if fast is not None and fast.shape == (n,) and np.isfinite(fast).all():
                return np.where(needed, fast, 0.0)
        raw = np.asarray([None] * n if rewards is None else rewards, dtype=object).reshape(-1)
        if raw.shape != (n,):
            raise ValueError(f"got {raw.size} rewards for {n} envs")
        values = np.zeros(n)
        for i in np.flatnonzero(needed):
            if raw[i] is None:
                raise ValueError(
                    f"reward None for env {i}: the agent acted before this observation, so it needs the reward "
                    "that action received (r_{t-1}; with memory kept across episodes, the last reward of the "
                    "previous episode); pass 0.0 if the env gave none. If this observation starts a new episode, "
                    "call agent.reset() first"
                )
            try:
                values[i] = float(raw[i])
            except (TypeError, ValueError):
                raise TypeError(f"reward {raw[i]!r} for env {i} is not a number") from None
            if not np.isfinite(values[i]):
                raise ValueError(f"reward {raw[i]!r} for env {i} is not finite")
        return values

    # ---- persistence -----------------------------------------------------------------------------
    def saved_preprocessing(self) -> Preprocessing:
        """The preprocessing as it would be saved: this agent's settings and spaces included."""
        spaces = {}
        if self.observation_space is not None:
            spaces = {"observation_space": space_to_json(self.observation_space), "action_space": space_to_json(self.action_space)}
        return dataclasses.replace(self.preprocessing, keep_memory=self.keep_memory, target_return=self.target_return,
                                   deterministic=self.deterministic, continuous_decoding=self.continuous_decoding, **spaces)

    def save_pretrained(self, directory: str | Path, *, name: str | None = None, results: Mapping[str, Any] | None = None) -> None:
        """Write config.json, model.safetensors, preprocessing.json and a model card (README.md).

        ``results``: measured numbers for the card (e.g. ``evaluate(...).summary()``); without them
        the card says that the model has not been evaluated.
        """
        from lram_agents.pretrained import save_agent

        save_agent(self, directory, name=name, results=results)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None, commit_message: str | None = None,
                    results: Mapping[str, Any] | None = None) -> str:
        """Upload the files of :meth:`save_pretrained` to the Hugging Face Hub repository ``repo_id``
        ("owner/name", created if needed); ``lram_agents.load("hf://owner/name")`` loads it back.
        Returns the commit's URL. See :mod:`lram_agents.hub`."""
        from lram_agents.hub import push

        return push(self, repo_id, private=private, token=token, commit_message=commit_message, results=results)

    def __repr__(self) -> str:
        from lram_agents.model_card import parameter_count

        backbone = self.model.config.backbone
        return (
            f"Agent({backbone.type}, {parameter_count(self.model.num_parameters())} parameters, "
            f"target_return={self.target_return}, keep_memory={self.keep_memory}, "
            f"spaces={'bound' if self.observation_space is not None else 'unbound'})"
        )


def _weak(env: Any):
    """A weak reference to ``env`` (the agent must not keep a user's env alive), or a strong one where it has none."""
    try:
        return weakref.ref(env)
    except TypeError:
        return lambda: env


def _episode_limit(env: Any) -> int | None:
    """The longest an episode of ``env`` can last: its spec's ``max_episode_steps`` or the env's own
    ``episode_length`` (T-Maze), for a single env or the first of a vector env; ``None`` if unknown."""
    single = env.envs[0] if hasattr(env, "envs") else env
    spec = getattr(single, "spec", None)
    limit = getattr(spec, "max_episode_steps", None) or getattr(getattr(single, "unwrapped", single), "episode_length", None)
    return int(limit) if isinstance(limit, (int, np.integer)) and limit > 0 else None


def _env_id(env: Any) -> str:
    """The Gymnasium id of an env, a Gymnasium vector env or an SB3 VecEnv ("" when it has none)."""
    spec = getattr(env, "spec", None)
    if spec is None and hasattr(env, "envs"):  # SB3's DummyVecEnv
        spec = getattr(env.envs[0], "spec", None)
    return getattr(spec, "id", "") or ""


def _saved_space(data: dict | None, field: str) -> gym.Space | None:
    return None if data is None else space_from_json(data, field)
