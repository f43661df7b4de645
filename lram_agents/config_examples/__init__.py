"""Commented example configs with every field (``lram config --example train|record|finetune``)."""

from __future__ import annotations

from pathlib import Path

KINDS = ("train", "record", "finetune")


def example(kind: str) -> str:
    """The commented YAML example of ``kind``'s config file."""
    if kind not in KINDS:
        raise ValueError(f"no example config {kind!r}; there are {list(KINDS)}")
    return (Path(__file__).parent / f"{kind}.yaml").read_text()
