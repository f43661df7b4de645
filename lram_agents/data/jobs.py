"""Helpers of the data-generation commands: shards across processes, and refusing mixed recipes.

Every data job is one command that can be rerun: it records item by item (a goal, a task), skips the
items already on disk and refuses to add to a folder recorded with other settings, because a data set
mixing two recipes trains a model that neither recipe describes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``: this process records items I, I+N, I+2N, ... (SystemExit on bad input)."""
    try:
        shard, num_shards = (int(part) for part in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text!r}: expected I/N, e.g. 0/2") from None
    if not 0 <= shard < num_shards:
        raise SystemExit(f"--shard {text!r}: need 0 <= I < N")
    return shard, num_shards


def different_settings(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (recorded, wanted)}`` for every key of ``wanted`` whose recorded value differs."""
    return {key: (recorded.get(key), value) for key, value in wanted.items() if recorded.get(key) != value}


def check_same_settings(path: Path, wanted: Mapping[str, Any]) -> None:
    """Exit with a message naming ``path`` and the differing values unless the JSON settings in ``path``
    (written when the item was recorded) equal ``wanted``; a missing file counts as different."""
    recorded = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    refuse_if_different(path, recorded, wanted)


def refuse_if_different(path: Path, recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    different = different_settings(recorded, wanted)
    if different:
        was = {key: old for key, (old, _) in different.items()}
        now = {key: new for key, (_, new) in different.items()}
        raise SystemExit(f"{path} was recorded with {was}, these settings ask for {now}: "
                         "delete it (or use another --output) and rerun")
