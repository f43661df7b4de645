"""Choosing episodes by return: the top p% (LRAM appendix C.3 fine-tunes on the top 5%; multi-domain training may keep a top share per task)."""

from __future__ import annotations

import math

import numpy as np

from lram_agents.data.dataset import TrajectoryDataset

TIE_BREAK_SEED = 0


def every_kth_episode(dataset: TrajectoryDataset, k: int, every_phase: bool = False) -> TrajectoryDataset:
    """Algorithm Distillation's downsampling, applied at load time: of each learning history (episodes in
    ``episode_index`` order) keep the 1st, (k+1)-th, (2k+1)-th ... episode.

    Histories recorded with ``keep_every=r`` and loaded with ``k`` train like histories recorded with
    ``keep_every=r*k``: one recording serves several downsampling rates. ``k = 1`` keeps everything.
    Episodes outside any history (``history_id == -1``) are kept. The result is a view sharing the files.

    With ``every_phase``, each of the k offsets (episodes p, p+k, p+2k ... for p < k) becomes a history of
    its own (``history_id = k * old + p``): every episode is kept, in k times as many downsampled histories
    that improve as fast per episode as the first one alone.
    """
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if k == 1:
        return dataset
    if not every_phase:
        rows = np.sort(np.concatenate([history[::k] for history in dataset.histories()]))
        return dataset.subset(rows, name=f"{dataset.name}[every {k}th episode of each history: {rows.size} of {len(dataset.table)}]")
    view = dataset.subset(np.arange(len(dataset.table)), name=f"{dataset.name}[each history as {k} histories of every {k}th episode]")
    old = dataset.table.history_id
    for history in dataset.histories():
        if old[history[0]] >= 0:
            view.table.history_id[history] = k * old[history] + np.arange(history.size) % k
    return view


def top_episodes(dataset: TrajectoryDataset, fraction: float, per_task: bool = False) -> TrajectoryDataset:
    """The ``ceil(fraction * N)`` episodes of ``dataset`` with the highest returns (at least one).

    Args:
        fraction: in (0, 1]; 1 keeps every episode.
        per_task: select the top ``fraction`` within each task (the episodes' ``task`` field), so that
            a task with high returns does not crowd out the others.

    Ties at the cut are broken by a fixed pseudo-random order (seed 0), not by the episodes' order
    in the files: data recorded in a systematic order (e.g. by corridor length, with returns of 0
    or 1) would otherwise give a top share of one kind only. The selection, and hence a resumed
    run's data, is still the same every time. The result is a view sharing the files.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction <= 1.0):
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return dataset
    table = dataset.table
    groups = [np.flatnonzero(table.task == task) for task in np.unique(table.task)] if per_task else [np.arange(len(table))]
    chosen = [_best(rows, table.total_return[rows], fraction) for rows in groups]
    rows = np.sort(np.concatenate(chosen))
    where = " per task" if per_task else ""
    return dataset.subset(rows, name=f"{dataset.name}[top {fraction:.0%}{where}: {rows.size} of {len(table)} episodes]")


def _best(rows: np.ndarray, returns: np.ndarray, fraction: float) -> np.ndarray:
    count = max(1, math.ceil(fraction * len(rows) - 1e-9))  # 5% of 100 is 5, not 6 after float error
    shuffled = np.random.default_rng(TIE_BREAK_SEED).permutation(len(rows))
    order = shuffled[np.argsort(-returns[shuffled], kind="stable")]  # equal returns stay in the shuffled order
    return rows[order[:count]]
