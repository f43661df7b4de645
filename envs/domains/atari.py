"""Atari (ale-py) as LRAM trains on it: 18 actions, grey 64 x 64 frames, frame skip 4, up to 30 no-ops.

``gym.make("lram_agents/Atari-<game>-v0")`` builds ``ALE/<Game>-v5`` with the full action set and
gymnasium's ``AtariPreprocessing`` (frame skip 4 with max-pooling of the last two frames, up to 30
no-ops at reset, grey-scale, 64 x 64 by area interpolation), frames shaped (1, 64, 64) uint8 as the
model takes them. ALE's v5 sticky actions (repeat probability 0.25, as in DQN-Replay) stay on.

Evaluation defaults: true rewards, episodes end at game over. For data, LRAM's recipe clips rewards to
[-1, 1] and ends an episode at each life loss: ``clip_rewards=True, terminal_on_life_loss=True``.

Scores are human-normalised, ``(R - random) / (human - random)``, with the random and human scores of
:data:`HUMAN_SCORES`.
"""

from __future__ import annotations

import gymnasium as gym

from lram_agents.envs.domains import Domain

# LRAM appendix A.2 (after Lee et al. 2022). The paper's list spells one game "robottank"; ALE's
# name (and the paper's own Table 2) is "robotank".
TRAIN_TASKS = (
    "amidar", "assault", "asterix", "atlantis", "bank-heist", "battle-zone", "beam-rider", "boxing", "breakout",
    "carnival", "centipede", "chopper-command", "crazy-climber", "demon-attack", "double-dunk", "enduro",
    "fishing-derby", "freeway", "frostbite", "gopher", "gravitar", "hero", "ice-hockey", "jamesbond", "kangaroo",
    "krull", "kung-fu-master", "name-this-game", "phoenix", "pooyan", "qbert", "riverraid", "road-runner",
    "robotank", "seaquest", "time-pilot", "up-n-down", "video-pinball", "wizard-of-wor", "yars-revenge", "zaxxon",
)
HOLDOUT_TASKS = ("alien", "pong", "ms-pacman", "space-invaders", "star-gunner")

# (random, human) episode scores: the table of Mnih et al. 2015 (Nature DQN, extended data table 2)
# as later used by Badia et al. 2020 (Agent57) and LRAM's own evaluation code. Carnival and Pooyan
# have no published human score: their human-normalised score is undefined (NaN).
HUMAN_SCORES: dict[str, tuple[float, float]] = {
    "alien": (227.8, 7127.7), "amidar": (5.8, 1719.5), "assault": (222.4, 742.0), "asterix": (210.0, 8503.3),
    "atlantis": (12850.0, 29028.1), "bank-heist": (14.2, 753.1), "battle-zone": (2360.0, 37187.5),
    "beam-rider": (363.9, 16926.5), "boxing": (0.1, 12.1), "breakout": (1.7, 30.5), "centipede": (2090.9, 12017.0),
    "chopper-command": (811.0, 7387.8), "crazy-climber": (10780.5, 35829.4), "demon-attack": (152.1, 1971.0),
    "double-dunk": (-18.6, -16.4), "enduro": (0.0, 860.5), "fishing-derby": (-91.7, -38.7), "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7), "gopher": (257.6, 2412.5), "gravitar": (173.0, 3351.4), "hero": (1027.0, 30826.4),
    "ice-hockey": (-11.2, 0.9), "jamesbond": (29.0, 302.8), "kangaroo": (52.0, 3035.0), "krull": (1598.0, 2665.5),
    "kung-fu-master": (258.5, 22736.3), "ms-pacman": (307.3, 6951.6), "name-this-game": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6), "pong": (-20.7, 14.6), "qbert": (163.9, 13455.0), "riverraid": (1338.5, 17118.0),
    "road-runner": (11.5, 7845.0), "robotank": (2.2, 11.9), "seaquest": (68.4, 42054.7),
    "space-invaders": (148.0, 1668.7), "star-gunner": (664.0, 10250.0), "time-pilot": (3568.0, 5229.2),
    "up-n-down": (533.4, 11693.2), "video-pinball": (16256.9, 17667.9), "wizard-of-wor": (563.5, 4756.5),
    "yars-revenge": (3092.9, 54576.9), "zaxxon": (32.5, 9173.3),
}

FRAME_SHAPE = (1, 64, 64)

DOMAIN = Domain(
    name="atari", id_prefix="Atari", train_tasks=TRAIN_TASKS, holdout_tasks=HOLDOUT_TASKS, extra="atari",
    packages=("ale_py",), entry_point="lram_agents.envs.domains.atari:make_env", max_episode_steps=None, score="human",
    note="ale-py's ROMs; data here comes from short PPO runs, not DQN-Replay",
)


def ale_id(task: str) -> str:
    """``"up-n-down"`` -> ``"ALE/UpNDown-v5"``."""
    DOMAIN.split_of(task)
    return "ALE/" + "".join(word.capitalize() for word in task.split("-")) + "-v5"


def make_env(task: str, clip_rewards: bool = False, terminal_on_life_loss: bool = False, noop_max: int = 30,
             repeat_action_probability: float = 0.25, **ale_kwargs) -> gym.Env:
    """One Atari game with LRAM's preprocessing (see the module docstring); ``ale_kwargs`` go to ALE."""
    DOMAIN.require()
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(ale_id(task), frameskip=1, full_action_space=True, repeat_action_probability=repeat_action_probability,
                   **ale_kwargs)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=4, screen_size=FRAME_SHAPE[1:],
                                          terminal_on_life_loss=terminal_on_life_loss, grayscale_obs=True, scale_obs=False)
    env = gym.wrappers.ReshapeObservation(env, FRAME_SHAPE)
    if clip_rewards:
        env = gym.wrappers.ClipReward(env, -1.0, 1.0)
    return env
