"""LRAM's training domains: the paper's task lists, ids, preprocessing, and check_env per domain."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.envs import domains

# The task lists of the LRAM paper's appendix A, quoted as printed (A.2 Atari, A.3 Meta-World,
# A.4 DMControl, A.7 Procgen). The one correction: the Atari list's "robottank" is ALE's "robotank"
# (the paper's Table 2 spells it so).
PAPER_LISTS = {
    "atari": (
        "amidar, assault, asterix, atlantis, bank-heist, battle-zone, beam-rider, boxing, breakout, carnival, centipede, "
        "chopper-command, crazy-climber, demon-attack, double-dunk, enduro, fishing-derby, freeway, frostbite, gopher, "
        "gravitar, hero, ice-hockey, jamesbond, kangaroo, krull, kung-fu-master, name-this-game, phoenix, pooyan, qbert, "
        "riverraid, road-runner, robottank, seaquest, time-pilot, up-n-down, video-pinball, wizard-of-wor, yars-revenge, zaxxon",
        "alien, pong, ms-pacman, space-invaders, star-gunner",
    ),
    "metaworld": (
        "reach, push, pick-place, door-open, drawer-open, drawer-close, button-press-topdown, peg-insert-side, window-open, "
        "window-close, door-close, reach-wall, pick-place-wall, push-wall, button-press, button-press-topdown-wall, "
        "button-press-wall, peg-unplug-side, disassemble, hammer, plate-slide, plate-slide-side, plate-slide-back, "
        "plate-slide-back-side, handle-press, handle-pull, handle-press-side, handle-pull-side, stick-push, stick-pull, "
        "basketball,soccer, faucet-open, faucet-close, coffee-push, coffee-pull, coffee-button, sweep, sweep-into, "
        "pick-out-of-hole, assembly, shelf-place, push-back, lever-pull, dial-turn",
        "bin-picking, box-close, door-lock, door-unlock, hand-insert",
    ),
    "dmcontrol": (
        "finger-turn_easy, fish-upright, hopper-stand, point_mass-easy, walker-stand, walker-run, ball_in_cup-catch, "
        "cartpole-swingup, cheetah-run, finger-spin, reacher-easy",
        "cartpole-balance, finger-turn_hard, pendulum-swingup, reacher-hard, walker-walk",
    ),
    "procgen": (
        "bigfish, bossfight, caveflyer, chaser, coinrun, dodgeball, fruitbot, heist, leaper, maze, miner, starpilot",
        "climber, ninja, plunder, jumper",
    ),
}
PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "lram-xlstm-large-recurrent-action-model.txt"


def names(text: str) -> list[str]:
    return [n.strip() for n in re.split(r"[,\s]+", text.replace("robottank", "robotank")) if n.strip()]


@pytest.mark.parametrize("domain", sorted(PAPER_LISTS))
def test_splits_are_the_papers(domain):
    train, holdout = PAPER_LISTS[domain]
    spec = domains.get(domain)
    assert list(spec.train_tasks) == names(train)
    assert list(spec.holdout_tasks) == names(holdout)
    assert len(set(spec.tasks())) == len(spec.tasks())


@pytest.mark.skipif(not PAPER.is_file(), reason=f"the paper's text is not at {PAPER}")
@pytest.mark.parametrize("domain", sorted(PAPER_LISTS))
def test_quoted_lists_are_in_the_papers_text(domain):
    text = " ".join(PAPER.read_text().split())
    for quoted in PAPER_LISTS[domain]:
        assert " ".join(quoted.split()) in text


def test_sizes_and_ids():
    sizes = {name: (len(d.train_tasks), len(d.holdout_tasks)) for name, d in domains.DOMAINS.items()}
    assert sizes == {"atari": (41, 5), "procgen": (12, 4), "dmcontrol": (11, 5), "metaworld": (45, 5), "robosuite": (6, 2)}
    assert domains.env_id("metaworld", "reach") == "lram_agents/MetaWorld-reach-v0"
    assert domains.parse_env_id("lram_agents/DMControl-finger-turn_easy-v0") == (domains.get("dmcontrol"), "finger-turn_easy")
    for env_id in domains.all_env_ids():
        assert env_id in gym.registry
    assert len(domains.all_env_ids("holdout")) == 5 + 4 + 5 + 5 + 2


def test_bad_names_are_named():
    with pytest.raises(ValueError, match="'minecraft'.*known"):
        domains.get("minecraft")
    with pytest.raises(ValueError, match="'reach-v2' is not a metaworld task"):
        domains.env_id("metaworld", "reach-v2")
    with pytest.raises(ValueError, match="split must be"):
        domains.get("atari").tasks("test")
    with pytest.raises(ValueError, match="not the id of a domain task"):
        domains.parse_env_id("lram_agents/DarkRoom-v0")
    with pytest.raises(ValueError, match="not a domain task"):
        domains.task_of(gym.make("CartPole-v1"))


def test_reward_scales_are_lrams():
    assert {n: d.reward_scale for n, d in domains.DOMAINS.items()} == {
        "atari": 20.0, "procgen": 1.0, "dmcontrol": 100.0, "metaworld": 200.0, "robosuite": 1.0}


def test_missing_extra_names_it(monkeypatch):
    spec = domains.get("metaworld")
    monkeypatch.setattr(domains.importlib.util, "find_spec", lambda name: None)
    assert not spec.available()
    with pytest.raises(domains.MissingExtraError, match=r"pip install 'lram_agents\[metaworld\]'"):
        gym.make("lram_agents/MetaWorld-reach-v0")


def requires(domain: str):
    spec = domains.get(domain)
    return pytest.mark.skipif(not spec.available(), reason=spec.missing())


# (domain, task, observation shape, action space) for one task per domain
ONE_TASK = [
    ("atari", "breakout", (1, 64, 64), gym.spaces.Discrete(18)),
    ("procgen", "bigfish", (1, 64, 64), gym.spaces.Discrete(15)),
    ("dmcontrol", "cartpole-swingup", (5,), (1,)),
    ("metaworld", "reach", (39,), (4,)),
    ("robosuite", "lift", None, (7,)),
]


def check(env: gym.Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Boxes and "check the unwrapped env" advice
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("domain, task, obs_shape, action", ONE_TASK, ids=[d for d, *_ in ONE_TASK])
def test_one_task_per_domain_passes_check_env(domain, task, obs_shape, action):
    if not domains.get(domain).available():
        pytest.skip(domains.get(domain).missing())
    env = gym.make(domains.env_id(domain, task))
    check(env)
    obs, _ = env.reset(seed=0)
    if obs_shape is not None:
        assert obs.shape == obs_shape
    assert obs.dtype == (np.uint8 if domain in ("atari", "procgen") else np.float32)
    if isinstance(action, gym.spaces.Discrete):
        assert env.action_space == action
    else:
        assert env.action_space.shape == action and np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    assert domains.task_of(env) == (domains.get(domain), task)
    env.close()


@requires("metaworld")
def test_metaworld_episodes_last_200_steps_and_report_success():
    env = gym.make("lram_agents/MetaWorld-reach-v0")
    from lram_agents.envs.domains.metaworld import expert_policy

    policy = expert_policy("reach")
    obs, _ = env.reset(seed=1)
    successes, steps = [], 0
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        successes.append(info["success"])
        steps += 1
        if terminated or truncated:
            break
    assert steps == 200 and truncated and not terminated
    assert max(successes) == 1.0  # the expert reaches


@requires("atari")
def test_atari_data_options_clip_rewards_and_end_at_life_loss():
    eval_env = gym.make("lram_agents/Atari-breakout-v0")
    data_env = gym.make("lram_agents/Atari-breakout-v0", clip_rewards=True, terminal_on_life_loss=True)
    assert data_env.reset(seed=0)[0].shape == (1, 64, 64)
    steps = 0
    while True:  # random play loses a life long before the game ends
        _, reward, terminated, truncated, info = data_env.step(data_env.action_space.sample())
        assert -1.0 <= reward <= 1.0
        steps += 1
        if terminated or truncated:
            break
    assert terminated and info["lives"] == 4
    eval_env.reset(seed=0)
    while True:
        _, _, terminated, truncated, info = eval_env.step(eval_env.action_space.sample())
        if terminated or truncated:
            break
    assert info["lives"] == 0


@requires("procgen")
def test_procgen_seeded_reset_replays_the_level():
    env = gym.make("lram_agents/Procgen-coinrun-v0")
    first = env.reset(seed=3)[0]
    env.step(1)
    again = env.reset(seed=3)[0]
    other = env.reset(seed=4)[0]
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    with pytest.raises(ValueError, match="distribution_mode"):
        gym.make("lram_agents/Procgen-coinrun-v0", distribution_mode="medium")


@pytest.mark.slow
@pytest.mark.parametrize("env_id", domains.all_env_ids())
def test_every_task_passes_check_env(env_id):
    domain, _ = domains.parse_env_id(env_id)
    if not domain.available():
        pytest.skip(domain.missing())
    env = gym.make(env_id)
    check(env)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()


@pytest.mark.parametrize("module_name", domains.DOMAIN_MODULES)
def test_every_domain_module_follows_the_pattern(module_name):
    import importlib

    module = importlib.import_module(f"lram_agents.envs.domains.{module_name}")
    spec = module.DOMAIN
    assert (spec.train_tasks, spec.holdout_tasks) == (module.TRAIN_TASKS, module.HOLDOUT_TASKS)
    assert spec.entry_point == f"lram_agents.envs.domains.{module_name}:make_env" and callable(module.make_env)
    assert spec.score in ("human", "data") and spec.extra and spec.packages
    assert spec.name in domains.DOMAINS and domains.DOMAINS[spec.name] is spec
