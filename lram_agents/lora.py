"""LoRA adapters (Hu et al., 2022) on the backbone's linear projections, for parameter-efficient fine-tuning.

An adapted projection computes ``W x + b + (alpha / rank) * B (A dropout(x))`` with a trainable
low-rank pair ``A`` (rank x in), ``B`` (out x rank); ``B`` starts at zero, so a freshly adapted model
computes exactly what the pretrained one did. The adapters are part of the model: ``config.lora``
(a :class:`LoRAConfig`) makes :class:`~lram_agents.model.LRAMModel` build them, so ``config.json`` +
``model.safetensors`` save and load an adapted model like any other. Adapted layers keep the original
parameter names (``...proj_up.weight``), and the adapters add ``...proj_up.lora_A`` / ``lora_B``, so a
pretrained checkpoint loads into an adapted model with :func:`load_base_weights`.

:func:`merge_lora` folds the adapters into the weights and returns a plain model (no extra cost per
step); it computes the same function as the adapted model (tested).

Which layers: every ``nn.Linear`` inside ``model.backbone`` whose name (relative to the backbone)
matches one of ``LoRAConfig.targets`` (``fnmatch`` patterns). Layers that a kernel reads by weight
instead of calling (Mamba's ``dt_proj`` under the CUDA kernel) are never adapted, since an adapter
there would be silently skipped.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.config_utils import require

# read through ``.weight`` by a kernel (mamba_cuda), so an adapter would not take part
NEVER_ADAPTED = ("*dt_proj",)


@dataclass
class LoRAConfig:
    """Low-rank adapters on the backbone's linear layers.

    Attributes:
        rank: r, the rank of every adapter.
        alpha: the adapter's output is scaled by ``alpha / rank``.
        dropout: dropout on the adapter's input while training.
        targets: ``fnmatch`` patterns over the names of ``nn.Linear`` modules inside the backbone
            (e.g. ``"stack.blocks.*.xlstm.proj_up"``); the default adapts all of them.
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["*"])

    def __post_init__(self):
        require(self.rank >= 1, "lora.rank", self.rank, "must be >= 1")
        require(math.isfinite(self.alpha) and self.alpha > 0, "lora.alpha", self.alpha, "must be > 0")
        require(0.0 <= self.dropout < 1.0, "lora.dropout", self.dropout, "must be in [0, 1)")
        self.targets = list(self.targets)
        require(len(self.targets) >= 1, "lora.targets", self.targets, "list at least one pattern")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


class LoRALinear(nn.Linear):
    """``nn.Linear`` plus a low-rank adapter; same ``weight``/``bias`` names, so base weights load unchanged."""

    def __init__(self, in_features: int, out_features: int, bias: bool, config: LoRAConfig, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.rank, self.scale = config.rank, config.scale
        self.lora_A = nn.Parameter(torch.empty(config.rank, in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(out_features, config.rank, device=device, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear's weight; B = 0 keeps the output
        self.lora_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.linear(x, self.weight, self.bias)
        update = F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B)
        return base + self.scale * update

    def merged_weight(self) -> torch.Tensor:
        """W + (alpha / r) B A: the weight of a plain layer computing the same function."""
        return self.weight + self.scale * (self.lora_B @ self.lora_A)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, lora_rank={self.rank}, lora_scale={self.scale:g}"


def target_names(backbone: nn.Module, config: LoRAConfig) -> list[str]:
    """Names (inside the backbone) of the linear layers ``config`` adapts."""
    names = []
    for name, module in backbone.named_modules():
        if not isinstance(module, nn.Linear) or isinstance(module, LoRALinear):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in NEVER_ADAPTED):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in config.targets):
            names.append(name)
    return names


def add_lora(backbone: nn.Module, config: LoRAConfig) -> list[str]:
    """Replace the targeted ``nn.Linear`` layers of ``backbone`` by :class:`LoRALinear` (in place).

    The base weights are kept (shared, not copied). Returns the adapted layers' names; raises
    :class:`~lram_agents.config_utils.ConfigError` when the patterns match none.
    """
    names = target_names(backbone, config)
    if not names:
        linears = [n for n, m in backbone.named_modules() if isinstance(m, nn.Linear)]
        require(False, "lora.targets", config.targets, f"match no linear layer of the backbone; its linear layers: {linears[:12]}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = backbone.get_submodule(parent_name)
        old: nn.Linear = getattr(parent, child)
        new = LoRALinear(old.in_features, old.out_features, old.bias is not None, config, old.weight.device, old.weight.dtype)
        new.weight, new.bias = old.weight, old.bias
        setattr(parent, child, new)
    return names


def lora_parameter_names(model: nn.Module) -> list[str]:
    """Qualified names of every adapter parameter (``lora_A`` / ``lora_B``) of ``model``."""
    return [name for name, _ in model.named_parameters() if name.rsplit(".", 1)[-1] in ("lora_A", "lora_B")]


def load_base_weights(model: nn.Module, base_state: dict[str, torch.Tensor]) -> None:
    """Load a model's weights saved without adapters into the adapted ``model`` (adapters untouched).

    Every weight of ``base_state`` must be used and every non-adapter weight of ``model`` given;
    the error names the first mismatches otherwise.
    """
    result = model.load_state_dict(base_state, strict=False)
    adapters = set(lora_parameter_names(model))
    missing = [name for name in result.missing_keys if name not in adapters]
    if missing or result.unexpected_keys:
        raise ValueError(f"the base weights do not fit the adapted model: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")


def merge_lora(model):
    """A plain :class:`~lram_agents.model.LRAMModel` (``config.lora = None``) with the adapters folded in.

    ``model`` is left unchanged; the result is in eval mode on ``model``'s device.
    """
    from lram_agents.model import LRAMModel

    if model.config.lora is None:
        raise ValueError("the model has no LoRA adapters to merge (config.lora is None)")
    plain = LRAMModel(dataclasses.replace(model.config, lora=None))
    weights = {}
    adapters = {name.rsplit(".", 1)[0] for name in lora_parameter_names(model)}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            owner, _, leaf = name.rpartition(".")
            if leaf in ("lora_A", "lora_B"):
                continue
            weights[name] = model.get_submodule(owner).merged_weight() if owner in adapters and leaf == "weight" else tensor
    plain.load_state_dict(weights, strict=True)
    return plain.to(next(model.parameters()).device).eval()
