"""Gymnasium environments of the LRAM, Algorithm-Distillation and RATE papers.

Importing this package registers every environment under the ``lram_agents/`` namespace.
"""
