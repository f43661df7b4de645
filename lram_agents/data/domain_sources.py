"""Data sources for multi-domain training: every task folder of the LRAM domains, balanced per domain.

The domains' data lives in ``<root>/<domain>/<task>/`` (what ``examples/domains/generate_data.py``
writes). LRAM samples every domain in equal proportion; here a domain with n tasks becomes n sources of
weight ``weight / n``, and :class:`~lram_agents.data.sampler.TrajectorySampler` gives every run of
consecutive sources its share of each batch, so each domain gets ``batch_size / domains`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.format import DatasetError
from lram_agents.data.sampler import DataSource, WindowKind
from lram_agents.data.selection import top_episodes


def domain_sources(root: str | Path, domains: Sequence[str], split: str = "train", context: int = 50,
                   windows: WindowKind = "subtrajectory", weight: float = 1.0,
                   tasks: Mapping[str, Sequence[str]] | None = None, top_fraction: float = 1.0) -> list[DataSource]:
    """One :class:`DataSource` per task of ``domains`` in ``split`` ("train", "holdout" or "all"),
    read from ``root/<domain>/<task>``; each task's reward scale is its domain's and its target return
    the best return in its data (LRAM).

    ``tasks``: for some domains, the tasks to use instead of all of the split's (e.g. the 8 Atari games
    recorded here of LRAM's 41); each must belong to the split.
    ``top_fraction``: keep each task's best episodes only, this share of them by return (1 keeps all);
    the target return is the best return either way.

    Raises:
        ValueError: an unknown domain, split or task.
        DatasetError: a task folder is missing (the error names the command that writes it).
    """
    from lram_agents.envs import domains as registry  # imports no simulator

    if not domains:
        raise ValueError("domains must name at least one domain")
    tasks = dict(tasks or {})
    unknown = sorted(set(tasks) - set(domains))
    if unknown:
        raise ValueError(f"tasks are given for {unknown}, which are not among domains {list(domains)}")
    sources = []
    for name in domains:
        in_split = registry.get(name).tasks(split)
        chosen = tuple(tasks.get(name, in_split))
        outside = [t for t in chosen if t not in in_split]
        if outside or not chosen:
            raise ValueError(f"{name} tasks {outside or chosen} are not {split} tasks of the domain; they are {list(in_split)}")
        tasks[name] = chosen
    for name in domains:
        tasks_of_domain = tasks[name]
        missing = [t for t in tasks_of_domain if not (Path(root) / name / t).is_dir()]
        if missing:
            raise DatasetError(f"no data for {name} tasks {missing} in {Path(root) / name}: record it with "
                               f"python examples/domains/generate_data.py examples/domains/{name}.yaml")
        for task in tasks_of_domain:
            dataset = top_episodes(TrajectoryDataset(Path(root) / name / task, domain=name, name=f"{name}/{task}"), top_fraction)
            sources.append(DataSource(dataset, context, windows, weight=weight / len(tasks_of_domain)))
    return sources
