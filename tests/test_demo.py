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
