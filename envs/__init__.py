"""Gymnasium environments of the LRAM, Algorithm-Distillation and RATE papers.

Importing this package registers every environment under the ``lram_agents/`` namespace.
"""

from .vizdoom_two_colors import register as _register_vizdoom_two_colors

_register_vizdoom_two_colors()
