"""Latency and throughput of recurrent inference (LRAM section 4.4 and appendix C.5).

For each backbone at matched size (the Table-6 presets) this measures, in one run:

* latency per timestep vs context length C at batch 1 and 16 — the recurrent state or KV cache holds
  C timesteps (3C tokens) when the timed steps start;
* throughput (timesteps/s over the batch) vs batch size at C = 1600;
* the memory of the state / cache, and the process's resident memory;
* the floor: one pass of the same weights (a matmul per weight matrix with the same number of rows)
  plus one read of the state, at that batch size — no implementation can step faster than that;
* the `xlstm` package's own recurrent ``step`` loop (token by token), for reference.

How the state is brought to C timesteps: by default it is *filled* with random values of the shape
it has after C timesteps (``fill="synthetic"``). A step's cost depends only on shapes, and filling
takes seconds where stepping through 25,600 timesteps takes minutes; ``fill="rollout"`` steps
through C real timesteps instead (the paper's protocol), and the two give the same per-step latency
(compare them on small C with ``--fill rollout``).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lram_agents.backbones import BACKBONES, State
from lram_agents.config import LRAMConfig
from lram_agents.model import LRAMModel, Timesteps
from lram_agents.presets import preset

CONTEXTS = (50, 100, 400, 1600, 6400, 25600)
BATCHES = (1, 16)
THROUGHPUT_BATCHES = (1, 8, 32, 64, 128)
THROUGHPUT_CONTEXT = 1600
STATE_DIM = 17  # a HalfCheetah-sized observation


@dataclass
class Measurement:
    kind: str  # "latency" or "throughput"
    model: str
    batch: int
    context: int
    median_ms: float
    p95_ms: float
    floor_ms: float
    state_mb: float
    rss_mb: float
    note: str = ""

    @property
    def steps_per_s(self) -> float:
        return self.batch * 1e3 / self.median_ms if self.median_ms > 0 else float("nan")

    @property
    def ratio_to_floor(self) -> float:
        return self.median_ms / self.floor_ms if self.floor_ms > 0 else float("nan")


def benchmark_models(size: str = "16m") -> dict[str, LRAMConfig]:
    """The backbones compared, at the same Table-6 size, for vector observations.

    The Transformer gets sinusoidal positions (no 77k-row position table) and room for the
    longest context, so its cache is never slid during a measurement.
    """
    longest = 3 * (max(CONTEXTS) + 64)
    models = {
        "xlstm-1:0": preset("xlstm", size, "1:0", image_shape=None),
        "xlstm-7:1": preset("xlstm", size, "7:1", image_shape=None),
        "transformer": preset("transformer", size, image_shape=None),
    }
    tf = models["transformer"]
    models["transformer"] = dataclasses.replace(
        tf, backbone=dataclasses.replace(tf.backbone, position_embedding="sinusoidal", max_positions=longest)
    )
    if "mamba" in BACKBONES:
        models["mamba"] = preset("mamba", size, image_shape=None)
    return models


# ---- state -------------------------------------------------------------------------------------
def filled_state(model: LRAMModel, batch: int, context: int, fill: str = "synthetic") -> State:
    """A state that has seen ``context`` timesteps."""
    if fill == "rollout":
        state = None
        inputs = step_inputs(batch)
        with torch.inference_mode():
            for _ in range(context):
                state = model(inputs, state).state
        return state
    state = model.init_state(batch)
    with torch.no_grad():
        for name, tensor in state.items():
            if name == "length":
                tensor.fill_(3 * context)
            elif name.endswith(".m"):
                tensor.uniform_(0.0, 5.0)  # a finite stabiliser, as after real steps
            elif tensor.is_floating_point():
                tensor.uniform_(-0.1, 0.1)
    return state


def state_bytes(state: State, context: int | None = None) -> int:
    """Bytes the state holds; for a KV cache only the part filled with ``context`` timesteps."""
    total = 0
    for name, tensor in state.items():
        if name in ("inputs",) or name.endswith((".k", ".v")):
            filled = 3 * context if context is not None else tensor.shape[-2]
            per_token = tensor.numel() // tensor.shape[-2] if name != "inputs" else tensor.numel() // tensor.shape[1]
            total += per_token * min(filled, tensor.shape[-2 if name != "inputs" else 1]) * tensor.element_size()
        else:
            total += tensor.numel() * tensor.element_size()
    return total


def estimated_state_bytes(model: LRAMModel, batch: int) -> int:
    """Bytes ``init_state(batch)`` will allocate (computed on the meta device)."""
    with torch.device("meta"):
        state = model.backbone.init_state(batch, device="meta", dtype=torch.float32)
    return sum(t.numel() * t.element_size() for t in state.values())


def step_inputs(batch: int) -> Timesteps:
    return Timesteps(torch.randn(batch, 1, STATE_DIM), torch.ones(batch, 1), torch.zeros(batch, 1))


# ---- timing ------------------------------------------------------------------------------------
def time_steps(model: LRAMModel, state: State, batch: int, steps: int, warmup: int = 3) -> np.ndarray:
    """Seconds per model step (one timestep: 3 tokens) with the carried state."""
    inputs = step_inputs(batch)
    times = []
    with torch.inference_mode():
        for i in range(warmup + steps):
            begin = time.perf_counter()
            state = model(inputs, state).state
            if i >= warmup:
                times.append(time.perf_counter() - begin)
    return np.array(times)


def streaming_floor(model: LRAMModel, batch: int, state: State, context: int, repeats: int = 7) -> float:
    """Seconds for one pass over the weights a step uses (matmuls of 3*batch rows) and one read of
    the state it holds after ``context`` timesteps — a lower bound on a step's cost."""
    skip = {id(p) for p in model.image_encoder.parameters()} if model.image_encoder is not None else set()
    matrices = [p.detach() for p in model.parameters() if id(p) not in skip and p.dim() == 2 and p.shape[0] > 1]
    others = [p.detach() for p in model.parameters() if id(p) not in skip and not (p.dim() == 2 and p.shape[0] > 1)]
    rows = {w.shape[1]: torch.randn(3 * batch, w.shape[1]) for w in matrices}
    held = _held_state(state, context)

    def once():
        for w in matrices:
            torch.mm(rows[w.shape[1]], w.t())
        for t in others + held:
            t.sum()

    with torch.inference_mode():
        once()
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            once()
            times.append(time.perf_counter() - begin)
    return float(np.median(times))


def _held_state(state: State, context: int) -> list[torch.Tensor]:
    """The state tensors, cut to the filled part of a KV cache."""
    held = []
    for name, tensor in state.items():
        if name.endswith((".k", ".v")):
            held.append(tensor[:, :, : 3 * context])
        elif name == "inputs":
            continue  # kept only for sliding the window, not read by a step
        elif tensor.is_floating_point():
            held.append(tensor)
    return held


def xlstm_package_step_ms(config: LRAMConfig, batch: int = 1, steps: int = 5) -> float:
    """Median ms per timestep (3 tokens) of the `xlstm` package's own ``step``, token by token."""
    model = LRAMModel(config).eval()
    stack = model.backbone.stack
    x = torch.randn(batch, 1, config.d_model)
    state, times = None, []
    with torch.inference_mode():
        for i in range(steps + 2):
            begin = time.perf_counter()
            for _ in range(3):
                _, state = stack.step(x, state)
            if i >= 2:
                times.append(time.perf_counter() - begin)
    return 1e3 * float(np.median(times))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


# ---- suite -------------------------------------------------------------------------------------
def measure(name: str, model: LRAMModel, kind: str, batch: int, context: int, steps: int, fill: str,
            memory_budget: float) -> Measurement:
    need = estimated_state_bytes(model, batch)
    if need > memory_budget:
        note = f"skipped: the state needs {need / 2**30:.1f} GiB > budget {memory_budget / 2**30:.1f} GiB"
        return Measurement(kind, name, batch, context, float("nan"), float("nan"), float("nan"), need / 2**20, float("nan"), note)
    state = filled_state(model, batch, context, fill)
    times = time_steps(model, state, batch, steps)
    floor = streaming_floor(model, batch, state, context)
    m = Measurement(kind, name, batch, context, 1e3 * np.median(times), 1e3 * np.percentile(times, 95), 1e3 * floor,
                    state_bytes(state, context) / 2**20, rss_mb())
    del state
    return m


def run_suite(size: str = "16m", quick: bool = True, fill: str = "synthetic", models: list[str] | None = None,
              memory_budget_gb: float = 8.0, progress=None) -> list[Measurement]:
    """All latency and throughput cells for the chosen models; ``progress`` is called per cell."""
    configs = benchmark_models(size)
    names = models or list(configs)
    steps = 20 if quick else 200
    cells = [("latency", b, c) for b in BATCHES for c in CONTEXTS] + [
        ("throughput", b, THROUGHPUT_CONTEXT) for b in THROUGHPUT_BATCHES
    ]
    results = []
    for name in names:
        torch.manual_seed(0)
        model = LRAMModel(configs[name]).eval()
        for kind, batch, context in cells:
            results.append(measure(name, model, kind, batch, context, steps, fill, memory_budget_gb * 2**30))
            if progress:
                progress(results[-1])
    return results


def write_csv(results: list[Measurement], path: Path) -> None:
    fields = [f.name for f in dataclasses.fields(Measurement)] + ["steps_per_s", "ratio_to_floor"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for r in results:
            writer.writerow([getattr(r, k) for k in fields])


def markdown_tables(results: list[Measurement], reference: str = "transformer") -> str:
    """Latency vs C per batch (with ratio to the floor and to the reference), throughput vs batch."""
    lines = []
    names = list(dict.fromkeys(r.model for r in results))
    for batch in BATCHES:
        lines += [f"\n**Latency per timestep (ms), batch {batch}** — in brackets: × floor; last columns: {reference} / model\n"]
        lines.append("| C | " + " | ".join(names) + " | " + " | ".join(f"{reference}/{n}" for n in names if n != reference) + " |")
        lines.append("|---" * (1 + len(names) + len(names) - 1) + "|")
        for context in CONTEXTS:
            row = {r.model: r for r in results if r.kind == "latency" and r.batch == batch and r.context == context}
            cells = [f"{row[n].median_ms:.1f} ({row[n].ratio_to_floor:.2f}×)" if n in row and row[n].median_ms == row[n].median_ms else "—" for n in names]
            ratios = [_ratio(row.get(reference), row.get(n)) for n in names if n != reference]
            lines.append(f"| {context} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += [f"\n**Throughput (timesteps/s), C = {THROUGHPUT_CONTEXT}**\n", "| batch | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for batch in THROUGHPUT_BATCHES:
        row = {r.model: r for r in results if r.kind == "throughput" and r.batch == batch}
        lines.append(f"| {batch} | " + " | ".join(f"{row[n].steps_per_s:.0f}" if n in row and row[n].median_ms == row[n].median_ms else "—" for n in names) + " |")
    lines += ["\n**State / cache memory (MiB), batch 1**\n", "| C | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for context in CONTEXTS:
        row = {r.model: r for r in results if r.kind == "latency" and r.batch == 1 and r.context == context}
        lines.append(f"| {context} | " + " | ".join(f"{row[n].state_mb:.1f}" if n in row else "—" for n in names) + " |")
    return "\n".join(lines) + "\n"


def _ratio(reference: Measurement | None, other: Measurement | None) -> str:
    if reference is None or other is None or not (reference.median_ms > 0 and other.median_ms > 0):
        return "—"
    return f"{reference.median_ms / other.median_ms:.2f}"


def plot(results: list[Measurement], path: Path) -> None:
    """Latency vs C (batch 1 and 16), throughput vs batch, and state memory vs C, like LRAM figs 6–8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.model for r in results))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for ax, batch in zip(axes[:2], BATCHES):
        for n in names:
            rows = [r for r in results if r.kind == "latency" and r.batch == batch and r.model == n and r.median_ms == r.median_ms]
            ax.plot([r.context for r in rows], [r.median_ms for r in rows], marker="o", label=n)
        ax.set(xscale="log", yscale="log", xlabel="context C (timesteps)", ylabel="ms per timestep", title=f"Latency, batch {batch}")
    for n in names:
        rows = [r for r in results if r.kind == "throughput" and r.model == n and r.median_ms == r.median_ms]
        axes[2].plot([r.batch for r in rows], [r.steps_per_s for r in rows], marker="o", label=n)
        rows = [r for r in results if r.kind == "latency" and r.batch == 1 and r.model == n]
        axes[3].plot([r.context for r in rows], [r.state_mb for r in rows], marker="o", label=n)
    axes[2].set(xscale="log", yscale="log", xlabel="batch size", ylabel="timesteps / s", title=f"Throughput, C = {THROUGHPUT_CONTEXT}")
    axes[3].set(xscale="log", yscale="log", xlabel="context C (timesteps)", ylabel="MiB", title="State / KV-cache memory, batch 1")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@contextlib.contextmanager
def threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
