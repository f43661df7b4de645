"""The README's Python snippets, run top to bottom as a newcomer would paste them (one namespace, a fresh
working directory): each must run as written. A snippet may be skipped only with a marker line
``<!-- readme-test: skip: <reason> -->`` right above it, for an extra that is not installed or long data."""

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
SKIP = re.compile(r"<!-- readme-test: skip: (.+?) -->\s*$")


def snippets() -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason or None) of every ```python block."""
    text = README.read_text()
    found = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = SKIP.search(before)
        found.append((line, match.group(1), reason.group(1) if reason else None))
    return found


def test_the_readme_has_snippets_and_skips_only_with_a_reason():
    found = snippets()
    assert len(found) >= 10
    for line, _, reason in found:
        assert reason is None or re.search(r"extra|long|GPU|data", reason), f"README.md:{line} skipped without a valid reason"


def test_every_readme_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets write data/ and runs/ where they are run
    threads = torch.get_num_threads()
    namespace: dict = {"__name__": "__readme__"}
    try:
        for line, code, reason in snippets():
            if reason is not None:
                print(f"README.md:{line} skipped: {reason}")
                continue
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as err:  # noqa: BLE001  (name the snippet that failed)
                pytest.fail(f"the README snippet at line {line} fails: {type(err).__name__}: {err}")
    finally:
        torch.set_num_threads(threads)
