"""Sequence backbones behind one interface: ``forward(x, state) -> (y, state)``."""
