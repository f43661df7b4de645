"""lram_agents: recurrent large action models for reinforcement learning.

Importing the package registers the Gymnasium environments under the
``lram_agents/`` namespace (Gymnasium >= 1.0 has no plugin autoload).
"""

from lram_agents import envs as _envs  # noqa: F401  (registers the environments)

__version__ = "0.1.0"
