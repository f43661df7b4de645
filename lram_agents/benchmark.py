"""Latency and throughput of recurrent inference (LRAM section 4.4 and appendix C.5).

For each backbone at matched size (the Table-6 presets) this measures, in one run:

* latency per timestep vs context length C at batch 1 and 16 — the recurrent state or KV cache holds
  C timesteps (3C tokens) when the timed steps start;
* throughput (timesteps/s over the batch) vs batch size at C = 1600;
* the memory of the state / cache, and the process's resident memory;
* the floor: the bytes a step must read (every weight it uses and the state or filled KV cache) over
  the read bandwidth, or the FLOPs it must do over the matmul peak, whichever is larger, both measured
  in the same run between the timed steps with the same thread count — no implementation can step
  faster than that. (An earlier floor, a matmul per weight matrix, was
  itself ~3x above streaming the same bytes and flattered every ratio.);
* the `xlstm` package's own recurrent ``step`` loop (token by token), for reference;
* with ``compile=True``, every model's compiled step (:func:`lram_agents.inference.make_step`) as extra
  rows ``<model>+compile`` (the Transformer's attends over its whole preallocated cache, so that its
  shapes do not change from step to step; the cache holds C + the timed steps, so it never slides
  while timed).

Caches. This machine's L3 holds a 16M model's weights, so a tight loop re-reads them from cache.
By default every timed step *and* every bandwidth read starts from flushed caches (a 512 MiB buffer is
written first), as in an agent loop where the simulator runs between steps and the weights stream
from DRAM; ``cold=False`` measures both hot instead.

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
from lram_agents.inference import make_step
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
    cpu_ms: float = float("nan")  # median CPU time per step (time.process_time)
    slide_ms: float = float("nan")  # Transformer: one step that slides its full window (re-encodes half of it)

    @property
    def amortized_ms(self) -> float:
        """A step with the window's slide spread over the C/2 timesteps until the next one (the Transformer;
        an upper bound: between slides the cache holds C/2 to C timesteps, timed here at C)."""
        if self.slide_ms != self.slide_ms:
            return self.median_ms
        return self.median_ms + self.slide_ms / max(1, self.context // 2)

    @property
    def steps_per_s(self) -> float:
        return self.batch * 1e3 / self.median_ms if self.median_ms > 0 else float("nan")

    @property
    def ratio_to_floor(self) -> float:
        return self.median_ms / self.floor_ms if self.floor_ms > 0 else float("nan")


def benchmark_models(size: str = "16m") -> dict[str, LRAMConfig]:
    """The backbones compared, at the same Table-6 size, for vector observations.

    The Transformer gets sinusoidal positions (no 77k-row position table); :func:`with_capacity`
    gives it room for the context of each measurement, so its cache is never slid while timed.
    """
    models = {
        "xlstm-1:0": preset("xlstm", size, "1:0", image_shape=None),
        "xlstm-7:1": preset("xlstm", size, "7:1", image_shape=None),
        "transformer": preset("transformer", size, image_shape=None),
    }
    tf = models["transformer"]
    models["transformer"] = dataclasses.replace(tf, backbone=dataclasses.replace(tf.backbone, position_embedding="sinusoidal"))
    if "mamba" in BACKBONES:
        models["mamba"] = preset("mamba", size, image_shape=None)
    return models


def with_capacity(model: LRAMModel, context: int, steps: int) -> LRAMModel:
    """The same model with a KV cache that holds ``context + steps`` timesteps (recurrent: itself)."""
    if model.config.backbone.type != "transformer":
        return model
    tokens = 3 * (context + steps)
    if model.config.backbone.max_positions == tokens:
        return model
    config = dataclasses.replace(model.config, backbone=dataclasses.replace(model.config.backbone, max_positions=tokens))
    resized = LRAMModel(config).eval()
    resized.load_state_dict(model.state_dict())
    return resized


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
    # made in inference mode, as an agent's state is: a compiled step guards on it, and a state made outside
    # would make the step compile twice (its outputs are inference tensors; a 16M model's frozen step: ~100 s each)
    with torch.inference_mode():
        state = model.init_state(batch)
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
class CacheFlusher:
    """Writes a buffer larger than the caches, so the next operation reads from DRAM."""

    def __init__(self, mib: int = 512):
        self.buffer = torch.ones(mib * 2**20 // 4)

    def __call__(self) -> None:
        self.buffer.add_(1.0)


def _timed(fn, repeats: int, flush: CacheFlusher | None) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU seconds of each of ``repeats`` calls (caches flushed before each when ``flush``)."""
    wall, cpu = [], []
    for _ in range(repeats):
        if flush is not None:
            flush()
        begin, begin_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    return np.array(wall), np.array(cpu)


def step_bytes(model: LRAMModel, state: State, context: int) -> int:
    """Bytes a step must read at least: every weight it uses (all but an unused image encoder) and the
    state it holds after ``context`` timesteps (a KV cache only as far as it is filled)."""
    skip = {id(p) for p in model.image_encoder.parameters()} if model.image_encoder is not None else set()
    weights = sum(p.numel() * p.element_size() for p in model.parameters() if id(p) not in skip)
    return weights + sum(t.numel() * t.element_size() for t in _held_state(state, context))


def step_flops(model: LRAMModel, state: State, context: int, batch: int) -> int:
    """Floating-point operations a step must do at least: a multiply-add per weight of every matrix for each
    of its 3 tokens per env, and one per state element per token (a recurrent state is read against the
    query and updated; a KV cache is attended over)."""
    tokens = 3 * batch
    skip = {id(p) for p in model.image_encoder.parameters()} if model.image_encoder is not None else set()
    matrices = sum(p.numel() for p in model.parameters() if id(p) not in skip and p.dim() >= 2)
    state_elements = sum(t.numel() for t in _held_state(state, context)) // max(1, batch)
    return 2 * tokens * (matrices + state_elements)


def matmul_peak(size: int = 512, repeats: int = 5) -> float:
    """FLOP/s of a square fp32 matmul from warm caches, with this run's thread count (the best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - begin)
    return 2 * size**3 / best


def read_bandwidth(buffer: torch.Tensor, flush: CacheFlusher | None) -> float:
    """Bytes per second of one plain read of ``buffer`` (a sum over it), from flushed caches when ``flush``:
    the rate at which a step can at best stream its weights and state, with this run's thread count."""
    if flush is not None:
        flush()
    begin = time.perf_counter()
    buffer.sum()
    return buffer.numel() * buffer.element_size() / (time.perf_counter() - begin)


def time_step_and_floor(step, model: LRAMModel, state: State, batch: int, context: int, steps: int,
                        flush: CacheFlusher | None, rounds: int = 4, warmup: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wall seconds per step, CPU seconds per step and the floor's seconds, measured in alternating rounds so
    that both see the same machine (this 2-core machine's speed drifts by ~20% within a minute).

    The floor is the larger of :func:`step_bytes` over the read bandwidth and :func:`step_flops` over the
    matmul peak, both measured between the rounds: the bandwidth on a buffer as large as those bytes (at
    least 64 MiB, so that it comes from DRAM like the flushed step's weights). At batch 1 the bytes bound
    it; at batch 16 of a 16M model on one thread, the FLOPs."""
    inputs = step_inputs(batch)
    held = {"state": state}

    def one_step():
        held["state"] = step(inputs, held["state"]).state

    needed, flops = step_bytes(model, state, context), step_flops(model, state, context, batch)
    buffer = torch.ones(max(needed, 64 * 2**20) // 4)
    step_times, cpu_times, bandwidths, peaks = [], [], [], []
    with torch.inference_mode():
        _timed(one_step, warmup, None)
        read_bandwidth(buffer, None)
        for _ in range(rounds):
            wall, cpu = _timed(one_step, max(1, steps // rounds), flush)
            step_times.append(wall)
            cpu_times.append(cpu)
            bandwidths += [read_bandwidth(buffer, flush) for _ in range(2)]
            peaks += [matmul_peak()] * 2
    floor = np.maximum(needed / np.array(bandwidths), flops / np.array(peaks))
    return np.concatenate(step_times), np.concatenate(cpu_times), floor


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
            memory_budget: float, flush: CacheFlusher | None, compile: bool = False, precision: str = "fp32") -> Measurement:
    model = with_capacity(model, context, steps + 8)
    need = estimated_state_bytes(model, batch)
    label = name + ("+compile" if compile else "") + ("" if precision == "fp32" else f"+{precision}")
    if need > memory_budget:
        note = f"skipped: the state needs {need / 2**30:.1f} GiB > budget {memory_budget / 2**30:.1f} GiB"
        return Measurement(kind, label, batch, context, float("nan"), float("nan"), float("nan"), need / 2**20, float("nan"), note)
    state = filled_state(model, batch, context, fill)
    step = make_step(model, compile=compile, precision=precision, donate_state=compile)  # as an agent steps
    times, cpu, floor = time_step_and_floor(step, model, state, batch, context, steps, flush)
    m = Measurement(kind, label, batch, context, 1e3 * np.median(times), 1e3 * np.percentile(times, 95), 1e3 * np.median(floor),
                    state_bytes(state, context) / 2**20, rss_mb(), cpu_ms=1e3 * float(np.median(cpu)))
    del state
    if model.config.backbone.type == "transformer" and kind == "latency":
        m.slide_ms, note = slide_step_ms(model, step, batch, context, memory_budget)
        m.note = m.note or note
    return m


def slide_step_ms(model: LRAMModel, step, batch: int, context: int, memory_budget: float) -> tuple[float, str]:
    """Milliseconds of one Transformer step whose window is full, so that it slides: the newest half of the
    window is re-encoded from position 0 (:meth:`TransformerBackbone._drop_oldest`). NaN and a note where
    the re-encoding's attention scores would not fit ``memory_budget``."""
    cfg = model.config.backbone
    tokens = 3 * context // 2
    scores = batch * cfg.num_heads * tokens**2 * 4
    if scores > memory_budget:
        return float("nan"), f"window slide not timed: re-encoding {tokens} tokens needs {scores / 2**30:.0f} GiB of scores"
    full = with_capacity(model, context, 0)  # exactly C timesteps: the next step slides
    step = step if full is model else make_step(full)
    state = filled_state(full, batch, context)
    inputs = step_inputs(batch)
    with torch.inference_mode():
        begin = time.perf_counter()
        step(inputs, state)
        return 1e3 * (time.perf_counter() - begin), ""


def suite_cells(compile: bool, contexts=CONTEXTS, batches=BATCHES, throughput: bool = True) -> list[tuple[str, int, int, bool]]:
    """(kind, batch, context, compiled) of every measurement for one model."""
    cells = [("latency", b, c, False) for b in batches for c in contexts]
    if throughput:
        cells += [("throughput", b, THROUGHPUT_CONTEXT, False) for b in THROUGHPUT_BATCHES]
    if compile:  # one graph per batch size; contexts do not change a recurrent step's shapes
        cells += [("latency", b, c, True) for b in batches for c in contexts]
    return cells


def run_suite(size: str = "16m", quick: bool = True, fill: str = "synthetic", models: list[str] | None = None,
              memory_budget_gb: float = 8.0, cold: bool = True, compile: bool = False, precision: str = "fp32",
              progress=None, contexts=CONTEXTS, batches=BATCHES, throughput: bool = True) -> list[Measurement]:
    """All latency (``contexts`` x ``batches``) and throughput cells for the chosen models; ``progress`` is called per cell."""
    configs = benchmark_models(size)
    names = models or list(configs)
    steps = 20 if quick else 200
    flush = CacheFlusher() if cold else None
    results = []
    for name in names:
        torch.manual_seed(0)
        model = LRAMModel(configs[name]).eval()
        for kind, batch, context, compiled in suite_cells(compile, contexts, batches, throughput):
            results.append(measure(name, model, kind, batch, context, steps, fill, memory_budget_gb * 2**30, flush, compiled,
                                   precision))
            if progress:
                progress(results[-1])
        torch._dynamo.reset()
    return results


def write_csv(results: list[Measurement], path: Path) -> None:
    fields = [f.name for f in dataclasses.fields(Measurement)] + ["steps_per_s", "ratio_to_floor", "amortized_ms"]
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
        lines += [f"\n**Latency per timestep (ms, wall / CPU), batch {batch}** — in brackets: wall × floor; last columns: "
                  f"{reference} / model\n"]
        lines.append("| C | " + " | ".join(names) + " | " + " | ".join(f"{reference}/{n}" for n in names if n != reference) + " |")
        lines.append("|---" * (1 + len(names) + len(names) - 1) + "|")
        for context in CONTEXTS:
            row = {r.model: r for r in results if r.kind == "latency" and r.batch == batch and r.context == context}
            cells = [f"{row[n].median_ms:.2f} / {row[n].cpu_ms:.2f} ({row[n].ratio_to_floor:.2f}×)" if n in row and row[n].median_ms == row[n].median_ms else "—" for n in names]
            ratios = [_ratio(row.get(reference), row.get(n)) for n in names if n != reference]
            lines.append(f"| {context} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += _slide_table(results)
    lines += [f"\n**Throughput (timesteps/s), C = {THROUGHPUT_CONTEXT}**\n", "| batch | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for batch in THROUGHPUT_BATCHES:
        row = {r.model: r for r in results if r.kind == "throughput" and r.batch == batch}
        lines.append(f"| {batch} | " + " | ".join(f"{row[n].steps_per_s:.0f}" if n in row and row[n].median_ms == row[n].median_ms else "—" for n in names) + " |")
    lines += ["\n**State / cache memory (MiB), batch 1**\n", "| C | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for context in CONTEXTS:
        row = {r.model: r for r in results if r.kind == "latency" and r.batch == 1 and r.context == context}
        lines.append(f"| {context} | " + " | ".join(f"{row[n].state_mb:.1f}" if n in row else "—" for n in names) + " |")
    return "\n".join(lines) + "\n"


def _slide_table(results: list[Measurement]) -> list[str]:
    """The Transformer's window slide: its cost, and the step with it spread over the steps between slides."""
    rows = [r for r in results if r.kind == "latency" and r.slide_ms == r.slide_ms]
    if not rows:
        return []
    lines = ["\n**Transformer window slides** (cache full at C: the next step re-encodes the newest C/2 timesteps; "
             "amortized = step + slide / (C/2))\n", "| model | batch | C | step ms | slide ms | amortized ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.model} | {r.batch} | {r.context} | {r.median_ms:.2f} | {r.slide_ms:.0f} | {r.amortized_ms:.2f} |" for r in rows]
    return lines


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
    measured = [r for r in results if r.median_ms == r.median_ms]  # skipped cells are NaN
    panels = [
        ([r for r in measured if r.kind == "latency" and r.batch == b], "context", "median_ms",
         dict(xlabel="context C (timesteps)", ylabel="ms per timestep", title=f"Latency, batch {b}"))
        for b in BATCHES
    ]
    if any(r.kind == "throughput" for r in measured):  # --no-throughput runs have none
        panels.append(([r for r in measured if r.kind == "throughput"], "batch", "steps_per_s",
                       dict(xlabel="batch size", ylabel="timesteps / s", title=f"Throughput, C = {THROUGHPUT_CONTEXT}")))
    panels.append(([r for r in results if r.kind == "latency" and r.batch == 1], "context", "state_mb",
                   dict(xlabel="context C (timesteps)", ylabel="MiB", title="State / KV-cache memory, batch 1")))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2))
    for ax, (rows, x, y, labels) in zip(axes, panels):
        for n in names:
            mine = [r for r in rows if r.model == n]
            if mine:
                ax.plot([getattr(r, x) for r in mine], [getattr(r, y) for r in mine], marker="o", label=n)
        ax.set(**labels)
        if ax.lines:  # log scales need data; a partial run may leave a panel empty
            ax.set(xscale="log", yscale="log")
            ax.legend()
        ax.grid(True, which="both", alpha=0.3)
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


# ---- environment in the loop -------------------------------------------------------------------
@dataclass
class LoopResult:
    model: str
    steps: int
    agent_ms: float  # median time of agent.act (preprocessing + model step + decoding)
    env_ms: float  # median time of env.step
    total_p95_ms: float


def env_loop(name: str, config: LRAMConfig, env_id: str = "lram_agents/TMaze-v0", episodes: int = 3,
             env_kwargs: dict | None = None, compile: bool = False, seed: int = 0) -> LoopResult:
    """The paper's protocol with the simulator in the loop: an Agent acts for ``episodes`` episodes
    with its memory kept across them; the first episode is discarded (compilation, warm-up)."""
    import gymnasium as gym

    import lram_agents  # noqa: F401  (registers the environments)
    from lram_agents.agent import Agent
    from lram_agents.preprocessing import Preprocessing

    env = gym.make(env_id, **(env_kwargs or {}))
    torch.manual_seed(seed)
    model = LRAMModel(config).eval()
    limit = env.spec.max_episode_steps or getattr(env.unwrapped, "episode_length", 10_000)
    model = with_capacity(model, episodes * limit, 8)
    agent = Agent(model, Preprocessing(target_return=1.0), env.observation_space, env.action_space,
                  keep_memory=True, compile=compile)
    agent_times, env_times = [], []
    obs, _ = env.reset(seed=seed)
    reward = None
    for episode in range(episodes):
        done = False
        while not done:
            begin = time.perf_counter()
            action = agent.act(obs, reward)
            middle = time.perf_counter()
            obs, reward, terminated, truncated, _ = env.step(action)
            if episode > 0:
                agent_times.append(middle - begin)
                env_times.append(time.perf_counter() - middle)
            done = terminated or truncated
        obs, _ = env.reset()
        agent.reset()
    totals = np.array(agent_times) + np.array(env_times)
    return LoopResult(name + ("+compile" if compile else ""), len(totals), 1e3 * float(np.median(agent_times)),
                      1e3 * float(np.median(env_times)), 1e3 * float(np.percentile(totals, 95)))


def loop_table(results: list[LoopResult], env_id: str) -> str:
    lines = [f"\n**Environment in the loop** ({env_id}, memory kept across episodes, first episode discarded)\n",
             "| model | timed steps | agent.act ms (median) | env.step ms (median) | step total p95 ms |", "|---|---|---|---|---|"]
    lines += [f"| {r.model} | {r.steps} | {r.agent_ms:.2f} | {r.env_ms:.3f} | {r.total_p95_ms:.2f} |" for r in results]
    return "\n".join(lines) + "\n"
