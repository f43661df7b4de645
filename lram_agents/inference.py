"""Fast recurrent inference: the model's step, optionally compiled and in reduced precision.

The plain path is ``model(steps, state, episode_start)``. :func:`make_step` returns a callable with
the same signature that can be

* compiled with ``torch.compile`` (one graph for a step with and one without episode starts, C++ wrapper on
  CPU; the Transformer attends over its whole preallocated cache so that its shapes stay the same, and
  slides its window outside the graph). It fuses the few hundred small element-wise ops of a step: the
  zoo's T-Maze xLSTM acts in 0.41 ms instead of 1.23 ms; a 16M xLSTM [1:0] step at batch 1 goes from
  5.3x to 2.0x its floor, the bytes it reads over the measured read bandwidth, and Mamba's from 4.5x to 1.6x
  (one thread, 2026-12-02, ``benchmarks/latency.py``; README "Speed").
  On CPU the weights are compiled in as constants (:class:`FrozenStep`): another 0.73x (xLSTM [1:0]) and 0.61x
  (Mamba) of the step's time at batch 1 of the 16M preset, no change at batch 16. Compiling takes seconds to
  tens of seconds (a 16M model's frozen step: 60-95 s, most of it timing GEMM kernels), so agents compile
  only after :data:`AUTO_COMPILE_AFTER` steps by default. On CUDA, ``mode="reduce-overhead"`` adds CUDA graphs.
  With ``donate_state`` (as agents step) the compiled xLSTM step writes its new matrix memories into the state it
  was given, reading and updating each row of the memory in one pass (:mod:`lram_agents.backbones.mlstm_chunk`).
* run with bf16 weights (``precision="bf16"``): linear layers keep bf16 weights and run under
  autocast; recurrent state and element-wise math stay fp32. It halves the bytes streamed per step;
  whether that is faster depends on the hardware (on CPUs without fast bf16 GEMV it is not).

Tests check each variant against the plain path.
"""

from __future__ import annotations

import operator
import warnings
import weakref
from typing import Callable, Literal

import torch
import torch._inductor.config
from torch import nn
from torch.nn.modules.module import (register_module_buffer_registration_hook, register_module_module_registration_hook,
                                     register_module_parameter_registration_hook)

from lram_agents.backbones import State
from lram_agents.backbones.base import donating_state
from lram_agents.model import LRAMModel, ModelOutput, Timesteps

StepFn = Callable[..., ModelOutput]
PRECISIONS = ("fp32", "bf16")


def make_step(model: LRAMModel, compile: bool = False, precision: Literal["fp32", "bf16"] = "fp32",
              mode: str | None = None, freeze: bool = True, donate_state: bool = False) -> StepFn:
    """``step(steps, state=None, episode_start=None) -> ModelOutput``, equal to ``model(...)``.

    Args:
        compile: wrap the step in ``torch.compile``.
        precision: ``"bf16"`` converts the model's linear layers to bf16 *in place*.
        mode: ``torch.compile`` mode, e.g. ``"reduce-overhead"`` for CUDA graphs.
        freeze: with ``compile`` on CPU in fp32, compile the weights in as constants (:class:`FrozenStep`);
            the step stays correct when they change (it recompiles without freezing).
        donate_state: with ``compile``, the step may write the new state into the tensors of the state it is
            given (:func:`~lram_agents.backbones.base.donating_state`), so that state must not be used again;
            :class:`lram_agents.Agent` steps this way. The plain path never writes into its input state.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    step: StepFn = model
    if precision == "bf16":
        _linears_to(model, torch.bfloat16)
        step = _autocast(model, torch.bfloat16)
    if compile:
        _allow_graphs_for_many_models()
        device_type = next(model.parameters()).device.type
        if freeze and not mode and device_type == "cpu" and precision == "fp32":
            return FrozenStep(model, donate_state)
        step = torch.compile(step, mode=mode) if mode else torch.compile(step, options=compile_options(device_type))
        if donate_state:
            step = _donating(step)
    return step


#: Graphs ``torch.compile`` may make of one function. Every compiled step is graphs of the same
#: ``LRAMModel.forward`` (one with and one without episode starts, per model and batch size), and dynamo's default
#: of 8 per function let only a few agents in one process run compiled: the next ones ran eager, without a word.
STEP_GRAPHS_PER_FUNCTION = 64


def _allow_graphs_for_many_models() -> None:
    import torch._dynamo.config

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, STEP_GRAPHS_PER_FUNCTION)


def _donating(step: StepFn) -> StepFn:
    """``step`` called inside :func:`donating_state`, where it is traced and guarded."""

    def donating_step(*args, **kwargs) -> ModelOutput:
        with donating_state():
            return step(*args, **kwargs)

    return donating_step


_VERSION = operator.attrgetter("_version")


def weights_version(parameters) -> int:
    """The sum of the parameters' version counters: it grows with every in-place change of a weight."""
    return sum(map(_VERSION, parameters))

#: Weights from this size on get inductor's own GEMM kernels in a frozen step (``max_autotune`` with its C++ GEMM
#: template beside ATen's): with few rows per step they stream the weights ~2x faster than MKL's sgemm on this
#: machine's CPU. Tuning times each GEMM shape once at compile time (seconds each); smaller models skip it.
AUTOTUNE_GEMM_MIN_BYTES = 4 * 2**20


class FrozenStep:
    """The compiled step with the model's weights compiled in as constants (inductor's ``freezing``).

    Constants let inductor pack the weights once for its own GEMM kernels and fold what depends on weights
    only. 16M preset, one thread, caches flushed, CPU time of a step interleaved with the unfrozen compiled one
    in one run (2026-11-30): batch 1 xLSTM [1:0] 0.73x / 0.77x (two runs), Mamba 0.61x; batch 16 0.95x / 1.03x and
    0.99x (``benchmarks/frozen_step.py``; ``benchmarks/latency.py`` has the floor).

    Freezing reads the weights when it compiles, and the step checks the model itself instead of through
    torch.compile's guards (:func:`guards_on_step_inputs`). Every call compares the parameters' version counters
    (bumped by every in-place change: an optimizer step, ``load_state_dict``) and the model's ``training`` flag with
    those it compiled with, and :class:`ModelEdits` sees modules, parameters and buffers set on any of its modules
    (LoRA adapters); after any of these the step is compiled again without freezing, with torch.compile's own guards,
    so it always equals ``model(...)``. Only grad-free calls freeze (``torch.no_grad`` or ``inference_mode``, as
    :class:`lram_agents.Agent` acts); others compile unfrozen. Not seen: weights changed through ``param.data``
    (the step keeps the old ones) and hooks registered on the model's modules after it compiled (it does not run them).
    """

    def __init__(self, model: LRAMModel, donate_state: bool = False):
        self.model, self.donate_state = model, donate_state
        self.parameters = list(model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in self.parameters)
        # "freezing" in the options too: torch.compile tells backends apart by their options, and an unfrozen step of
        # the same model (after a weight change) must not run this one's graphs, whose guards no longer see the change
        options = {**compile_options("cpu"), "freezing": True, "guard_filter_fn": guards_on_step_inputs}
        if weight_bytes >= AUTOTUNE_GEMM_MIN_BYTES:
            options.update(max_autotune=True, max_autotune_gemm_backends="CPP,ATEN",
                           autotune_num_choices_displayed=0, max_autotune_report_choices_stats=False)  # quietly
        self.step: StepFn = torch.compile(model, options=options)
        if donate_state:
            self.step = _donating(self.step)
        self.frozen, self.version, self.training = True, weights_version(self.parameters), model.training
        self.edits = ModelEdits(model)

    def __call__(self, steps: Timesteps, state: State | None = None, episode_start: torch.Tensor | None = None) -> ModelOutput:
        # the cached list: walking model.parameters() costs ~0.1 ms a call
        if self.frozen and (weights_version(self.parameters) != self.version or self.model.training != self.training
                            or self.edits.seen):
            self.frozen, self.step = False, make_step(self.model, compile=True, freeze=False, donate_state=self.donate_state)
            self.edits.close()
        if not self.frozen:
            return self.step(steps, state, episode_start)
        # torch.compile reads the setting when it traces (weights as constants, not inputs), which may happen at any
        # call; one assignment each way costs less than inductor's config.patch context (~10 us a call)
        config = torch._inductor.config
        before, config.freezing = config.freezing, True
        try:
            return self.step(steps, state, episode_start)
        finally:
            config.freezing = before


def guards_on_step_inputs(guards: list) -> list[bool]:
    """torch.compile's ``guard_filter_fn`` for a frozen step: keeps the guards on its arguments (shapes, dtypes,
    ``episode_start`` given or ``None``), on global state (grad mode) and the identity of one weight (which model
    this is: another model's call must not run these constants), drops the rest of those on the model and those on
    module globals, which :class:`FrozenStep` checks itself. The model's guards are most of a step's ~1,500 (each
    module's type and hooks, each parameter); evaluating them cost ~0.5 ms a step from flushed caches (16M xLSTM
    [1:0], batch 1, the guard check alone: 0.78 ms for all of them, 0.12 ms for the arguments'). A trace without constants (a call with grad enabled)
    keeps every guard."""
    weights = [i for i, guard in enumerate(guards) if guard.guard_type == "ID_MATCH" and guard.name.startswith("self")]
    if not weights:
        return [True] * len(guards)
    keep = [not (guard.is_global or guard.name.startswith("self")) for guard in guards]
    keep[min(weights, key=lambda i: guards[i].name.count("._modules["))] = True  # the shallowest: cheapest to reach
    return keep


class ModelEdits:
    """Sees modules, parameters and buffers set on any module of ``model`` after it is made (``seen``), through
    torch's global registration hooks: what a frozen step would otherwise miss without torch.compile's guards
    on the model. :meth:`close` removes the hooks (also when this object is collected)."""

    def __init__(self, model: nn.Module):
        self.seen = False
        module_ids = frozenset(id(module) for module in model.modules())
        this = weakref.ref(self)

        def hook(module: nn.Module, name: str, value) -> None:
            edits = this()
            if edits is not None and id(module) in module_ids:
                edits.seen = True

        registrations = (register_module_module_registration_hook, register_module_parameter_registration_hook,
                         register_module_buffer_registration_hook)
        handles = [register(hook) for register in registrations]
        self._remove = weakref.finalize(self, _remove_all, handles)

    def close(self) -> None:
        self._remove()


def _remove_all(handles) -> None:
    for handle in handles:
        handle.remove()


def compile_options(device_type: str) -> dict:
    """``torch.compile`` options for a step. On CPU the generated wrapper is C++ (``cpp_wrapper``): a small
    model's step is a few dozen kernels, and the Python wrapper that allocates and checks their buffers
    cost as much as the kernels (zoo ``xlstm-tmaze``, ``act`` median: 0.53 ms with the Python wrapper,
    0.47 ms with the C++ one; the plain path 1.3 ms)."""
    return {"cpp_wrapper": True} if device_type == "cpu" else {}


def _linears_to(model: nn.Module, dtype: torch.dtype) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.to(dtype)


def _autocast(model: LRAMModel, dtype: torch.dtype) -> StepFn:
    device_type = next(model.parameters()).device.type

    def step(steps: Timesteps, state: State | None = None, episode_start: torch.Tensor | None = None) -> ModelOutput:
        with torch.autocast(device_type, dtype=dtype):
            out = model(steps, state, episode_start)
        return ModelOutput(out.logits.float(), out.state)

    return step


#: Steps an agent with ``compile="auto"`` takes on the plain path before it compiles its step: runs shorter
#: than this never pay the compile time (3-20 s on CPU), longer ones run at the compiled speed.
AUTO_COMPILE_AFTER = 5000


class StepFunction:
    """An agent's model step: plain, compiled, or plain until :data:`AUTO_COMPILE_AFTER` calls (``"auto"``).

    A step that fails to compile (``torch.compile`` raises, e.g. without a C++ compiler) warns once and
    falls back to the plain path for good; an error the plain path raises too is the caller's and propagates.
    The compiled step updates the state it is given in place where the backbone can (:attr:`donates_state`;
    ``make_step``'s ``donate_state``): the caller keeps a copy of any state it still needs.
    """

    def __init__(self, model: LRAMModel, compile: bool | str = "auto", precision: str = "fp32"):
        self.model, self.mode, self.precision = model, compile, precision
        self.donates_state = getattr(model.backbone, "state_donation", False)
        self.plain = make_step(model, compile=False, precision=precision)
        self.compiled: StepFn | None = self._compile() if compile is True else None
        self.calls, self.version_at_start = 0, weights_version(model.parameters())

    def __call__(self, steps: Timesteps, state: State | None = None, episode_start: torch.Tensor | None = None) -> ModelOutput:
        self.calls += 1
        if self.compiled is None and self.mode == "auto" and self.calls > AUTO_COMPILE_AFTER:
            # weights that changed while acting (online fine-tuning) will change again: freezing them would only
            # buy a second compile at the next change
            static = weights_version(self.model.parameters()) == self.version_at_start
            self.compiled = self._compile(freeze=static)
        if self.compiled is None:
            return self.plain(steps, state, episode_start)
        try:
            return self.compiled(steps, state, episode_start)
        except Exception as err:  # noqa: BLE001  (inductor raises many types; the plain path below re-raises real errors)
            out = self.plain(steps, state, episode_start)
            warnings.warn(f"the compiled step failed ({type(err).__name__}: {err}); acting on the plain path from now on",
                          RuntimeWarning, stacklevel=3)
            self.compiled, self.mode = None, False
            return out

    def _compile(self, freeze: bool = True) -> StepFn:
        return make_step(self.model, compile=True, precision=self.precision, freeze=freeze, donate_state=self.donates_state)
