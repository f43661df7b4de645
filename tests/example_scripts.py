"""Import the scripts of an ``examples/<task>/`` folder as modules, for the example tests."""

import importlib
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def import_example_scripts(task: str, names: tuple[str, ...]) -> list:
    """The scripts ``examples/<task>/<name>.py`` as modules. They import each other by bare name (``from
    common import ...``), as examples do when run from their folder: import them on their own path, then
    take the bare names out of ``sys.modules`` again so that another folder's ``evaluate`` is not this one."""
    folder = str(EXAMPLES / task)
    for name in names:
        sys.modules.pop(name, None)
    sys.path.insert(0, folder)
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(folder)
        for name in names:
            sys.modules.pop(name, None)
