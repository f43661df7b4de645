"""LRAM's training domains as Gymnasium tasks: Atari, Procgen, DMControl, Meta-World and robosuite.

Every task of every domain is registered as ``lram_agents/<Domain>-<task>-v0``, with the task named as
in the LRAM paper's appendix A (lower case, words joined by ``-``)::

    import gymnasium as gym, lram_agents
    env = gym.make("lram_agents/MetaWorld-reach-v0")
    env = gym.make("lram_agents/Atari-breakout-v0", clip_rewards=True, terminal_on_life_loss=True)  # as for data
    env = gym.make("lram_agents/DMControl-cartpole-swingup-v0")
    env = gym.make("lram_agents/Procgen-bigfish-v0")
    env = gym.make("lram_agents/Robosuite-lift-v0")

    from lram_agents.envs import domains
    domains.list_domains()                      # ("atari", "procgen", "dmcontrol", "metaworld", "robosuite")
    domains.get("metaworld").tasks("holdout")   # MT5
    domains.env_id("dmcontrol", "walker-walk")  # "lram_agents/DMControl-walker-walk-v0"
    domains.task_of(env)                        # (Domain, task) of an env made from one of these ids

Each domain lives in one module of this package that defines ``DOMAIN`` (a :class:`Domain`) and a
``make_env(task, **options)`` entry point; the simulator is imported inside ``make_env`` only, so
listing and registering never needs an optional extra. Adding a domain: write ``<name>.py`` after the
pattern of its siblings and add its name to :data:`DOMAIN_MODULES`.
"""

from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym

#: The domain modules of this package, in the order the LRAM paper lists the domains.
DOMAIN_MODULES = ("atari", "procgen", "dmcontrol", "metaworld", "robosuite")
NAMESPACE = "lram_agents"
VERSION = 0

Split = Literal["all", "train", "holdout"]


class MissingExtraError(ImportError):
    """A domain's simulator is not installed; the message names the extra that installs it."""


@dataclass(frozen=True)
class Domain:
    """One LRAM domain: its tasks, its split, how its scores are normalised and what installs it.

    Attributes:
        name: the domain's key (stored in trajectory files; selects the reward scale).
        id_prefix: the ``<Domain>`` part of its Gymnasium ids.
        train_tasks, holdout_tasks: the paper's split (appendix A), task names in the paper's spelling.
        extra: ``pip install 'lram_agents[<extra>]'`` installs its simulator.
        packages: the modules that must import for the domain to work.
        entry_point: ``module:function`` building one task's env (:func:`make` wraps it in :class:`DomainTask`).
        max_episode_steps: the time limit Gymnasium adds (``None``: the simulator ends episodes).
        score: ``"human"`` (Atari: (R - random) / (human - random)) or ``"data"`` (the task's minimum
            and maximum return in its data).
        note: what differs from the paper, in one sentence.
        system_libraries: (``ctypes.util.find_library`` name, Debian package) of each shared library it
            needs beyond its packages.
    """

    name: str
    id_prefix: str
    train_tasks: tuple[str, ...]
    holdout_tasks: tuple[str, ...]
    extra: str
    packages: tuple[str, ...]
    entry_point: str
    max_episode_steps: int | None
    score: Literal["human", "data"] = "data"
    note: str = ""
    system_libraries: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"Domain({self.name!r}: {len(self.train_tasks)} train / {len(self.holdout_tasks)} hold-out tasks)"

    def __post_init__(self):
        overlap = set(self.train_tasks) & set(self.holdout_tasks)
        if overlap:
            raise ValueError(f"domain {self.name!r}: tasks {sorted(overlap)} are in both splits")

    @property
    def reward_scale(self) -> float:
        """LRAM's reward scale of the domain (Meta-World 200, DMControl 100, Atari 20, else 1)."""
        from lram_agents.preprocessing import reward_scale_for  # imports torch: not at package import

        return reward_scale_for(self.name)

    def tasks(self, split: Split = "all") -> tuple[str, ...]:
        """The task names of ``split`` ("train", "holdout" or "all": train first)."""
        if split == "train":
            return self.train_tasks
        if split == "holdout":
            return self.holdout_tasks
        if split == "all":
            return self.train_tasks + self.holdout_tasks
        raise ValueError(f"split must be 'all', 'train' or 'holdout', got {split!r}")

    def split_of(self, task: str) -> str:
        """``"train"`` or ``"holdout"``; ValueError naming the task when it is not one of the domain's."""
        if task in self.train_tasks:
            return "train"
        if task in self.holdout_tasks:
            return "holdout"
        raise ValueError(f"{task!r} is not a {self.name} task; known: {list(self.tasks())}")

    def env_id(self, task: str) -> str:
        """The Gymnasium id of ``task``, e.g. ``lram_agents/MetaWorld-reach-v0``."""
        self.split_of(task)
        return f"{NAMESPACE}/{self.id_prefix}-{task}-v{VERSION}"

    def missing(self) -> str:
        """What is missing for the domain to run, with how to install it ("" when nothing is)."""
        packages = [p for p in self.packages if importlib.util.find_spec(p) is None]
        if packages:
            return f"the {self.name} domain needs {', '.join(packages)}: pip install 'lram_agents[{self.extra}]'"
        libraries = [debian for library, debian in self.system_libraries if ctypes.util.find_library(library) is None]
        if libraries:
            return f"the {self.name} domain needs the system package(s) {', '.join(libraries)}: apt-get install {' '.join(libraries)}"
        return ""

    def available(self) -> bool:
        """Whether the domain's simulator and system libraries are installed (nothing is imported)."""
        return not self.missing()

    def require(self) -> None:
        """Raise :class:`MissingExtraError` saying what to install when the domain cannot run."""
        if self.missing():
            raise MissingExtraError(self.missing())


def _load() -> dict[str, Domain]:
    found = {}
    for module_name in DOMAIN_MODULES:
        domain = importlib.import_module(f"{__name__}.{module_name}").DOMAIN
        found[domain.name] = domain
    return found


DOMAINS: dict[str, Domain] = _load()


def list_domains() -> tuple[str, ...]:
    """The names of the domains, in the paper's order."""
    return tuple(DOMAINS)


def get(name: str) -> Domain:
    """The :class:`Domain` called ``name`` (ValueError listing the known ones otherwise)."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; known: {list(DOMAINS)}")
    return DOMAINS[name]


def env_id(domain: str, task: str) -> str:
    """The Gymnasium id of ``task`` in ``domain``."""
    return get(domain).env_id(task)


def parse_env_id(env_id: str) -> tuple[Domain, str]:
    """``lram_agents/<Domain>-<task>-v0`` -> (Domain, task); ValueError when it is not a domain task's id."""
    for domain in DOMAINS.values():
        prefix, suffix = f"{NAMESPACE}/{domain.id_prefix}-", f"-v{VERSION}"
        if env_id.startswith(prefix) and env_id.endswith(suffix):
            task = env_id[len(prefix) : -len(suffix)]
            domain.split_of(task)
            return domain, task
    raise ValueError(f"{env_id!r} is not the id of a domain task (lram_agents/<Domain>-<task>-v0)")


class DomainTask(gym.Wrapper):
    """Marks an env as ``task`` of ``domain`` (read with :func:`task_of`); changes nothing else."""

    def __init__(self, env: gym.Env, domain: Domain, task: str):
        super().__init__(env)
        self.lram_domain, self.lram_task = domain, task

    @property
    def spec(self):
        # The registered id's spec (gym.make sets it on the unwrapped env): the wrappers the domain's
        # make_env applies are part of that entry point, so ``env.spec.make()`` rebuilds the same env.
        return self.env.unwrapped.spec


def make(domain: str, task: str, **options) -> gym.Env:
    """Build ``task`` of ``domain`` (the entry point of every registered domain id); ``options`` go to
    the domain module's ``make_env``. Raises :class:`MissingExtraError` naming the extra to install."""
    spec = get(domain)
    spec.split_of(task)
    module_name, function = spec.entry_point.split(":")  # each make_env checks its simulator (require())
    return DomainTask(getattr(importlib.import_module(module_name), function)(task, **options), spec, task)


def task_of(env: gym.Env) -> tuple[Domain, str]:
    """The (Domain, task) of an env made from a domain task's id (any wrappers around it)."""
    try:
        return env.get_wrapper_attr("lram_domain"), env.get_wrapper_attr("lram_task")
    except AttributeError:
        raise ValueError(f"{env} is not a domain task: make it with gym.make('lram_agents/<Domain>-<task>-v0')") from None


def all_env_ids(split: Split = "all") -> tuple[str, ...]:
    """The ids of every task of every domain in ``split``."""
    return tuple(d.env_id(t) for d in DOMAINS.values() for t in d.tasks(split))


def register_domains() -> None:
    """Register every domain task with Gymnasium (ids already registered are left alone)."""
    for domain in DOMAINS.values():
        for task in domain.tasks():
            env_id_ = domain.env_id(task)
            if env_id_ not in gym.registry:
                gym.register(id=env_id_, entry_point=f"{__name__}:make", max_episode_steps=domain.max_episode_steps,
                             kwargs={"domain": domain.name, "task": task})


__all__ = ["DOMAINS", "DOMAIN_MODULES", "Domain", "DomainTask", "MissingExtraError", "all_env_ids", "env_id", "get",
           "list_domains", "make", "parse_env_id", "register_domains", "task_of"]
