import dataclasses

import gymnasium as gym
import pytest

from conftest import small_config
from lram_agents.agent import Agent
from lram_agents.demo import main, zoo_name
from lram_agents.model import LRAMModel


def test_zoo_names_of_the_presets():
    assert zoo_name("xlstm", "16m", None) == "xlstm-16m"
    assert zoo_name("xlstm", "206m", "1:0") == "xlstm-206m-mlstm"
    assert zoo_name("transformer", "48m", None) == "dt-48m"
    with pytest.raises(ValueError, match="'1:0'"):
        zoo_name("transformer", "16m", "1:0")


def test_the_demo_runs_a_saved_agent(tmp_path, capsys):
    env = gym.make("CartPole-v1")
    Agent(LRAMModel(small_config("xlstm-1:0"))).bind(env).save_pretrained(tmp_path)
    main(["--model", str(tmp_path), "--episodes", "1"])
    out = capsys.readouterr().out
    assert "(trained), env CartPole-v1" in out and "1 episodes: return" in out and "latency median" in out


def test_the_default_demo_plays_the_zoo_tmaze_agent(capsys):
    main(["--segments", "1", "3", "--seeds", "3", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.startswith("xlstm-tmaze:") and "T-Maze, 3 seeds per length" in out
    assert "   1 segment(s) (corridor   28,    30 steps): success rate" in out and "   3 segment(s)" in out
    assert "latency per step median" in out and "p95" in out


def test_the_generalist_demo_plays_each_task_with_its_domains_numbers(tmp_path, capsys):
    from lram_agents.envs import domains
    from lram_agents.preprocessing import Preprocessing, multi_task_preprocessing

    domain = domains.get("metaworld")
    if not domain.available():
        pytest.skip(domain.missing())
    env_id = domain.env_id("reach")
    table = multi_task_preprocessing([(env_id, "metaworld", Preprocessing(reward_scale=200.0, target_return=1800.0))])
    config = dataclasses.replace(small_config("xlstm-1:0"), max_state_dim=39)
    Agent(LRAMModel(config), table).save_pretrained(tmp_path)
    main(["--generalist", "--model", str(tmp_path), "--tasks", env_id, "lram_agents/MetaWorld-hand-insert-v0"])
    out = capsys.readouterr().out
    assert "one model for every task below, 1 episode(s) each" in out
    assert f"{env_id}: return" in out and "lram_agents/MetaWorld-hand-insert-v0: return" in out and "success" in out
    assert out.count("latency per step median") == 2


def test_a_tmaze_model_without_env_plays_tmaze_and_segments_are_never_ignored(capsys):
    main(["--model", "xlstm-tmaze-long", "--segments", "2", "--seeds", "2"])
    out = capsys.readouterr().out
    assert out.startswith("xlstm-tmaze-long:") and "   2 segment(s) (corridor   58,    60 steps): success rate" in out
    with pytest.raises(SystemExit):  # argparse's error: --segments with a non-T-Maze env
        main(["--backbone", "xlstm", "--size", "16m", "--env", "CartPole-v1", "--segments", "3"])
    assert "--segments sets T-Maze lengths" in capsys.readouterr().err
