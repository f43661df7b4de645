"""lram_agents: recurrent large action models for reinforcement learning.

    agent = lram_agents.load("xlstm-206m", pretrained=False)   # a zoo name or a saved directory
    action = agent.act(obs, reward)                            # memory lives inside the agent
    result = lram_agents.evaluate(agent, env, n_episodes=10)

Importing the package registers the Gymnasium environments under the ``lram_agents/`` namespace
(Gymnasium >= 1.0 has no plugin autoload). The public API below is imported on first use, so that
``import lram_agents`` stays fast (torch is not imported until it is needed).
"""

from importlib import import_module

from lram_agents import envs as _envs  # noqa: F401  (registers the environments)

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "lram_agents.agent",
    "AgentMemory": "lram_agents.agent",
    "load": "lram_agents.pretrained",
    "list_models": "lram_agents.pretrained",
    "model_info": "lram_agents.pretrained",
    "evaluate": "lram_agents.evaluation",
    "EvaluationResult": "lram_agents.evaluation",
    "evaluate_suite": "lram_agents.suite",
    "SB3Policy": "lram_agents.sb3",
    "PreviousRewardWrapper": "lram_agents.sb3",
    "LRAMModel": "lram_agents.model",
    "LRAMConfig": "lram_agents.config",
    "Preprocessing": "lram_agents.preprocessing",
    "preset": "lram_agents.presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'lram_agents' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
