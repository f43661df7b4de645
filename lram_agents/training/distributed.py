"""Multi-process training with DistributedDataParallel, launched by ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lram_agents.devices import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (``world_size == 1``: a plain single-process run)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device = "auto") -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), or describe a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device)
    if world_size == 1:
        return DistInfo(0, 1, 0, device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The sum of ``values`` over all ranks (``values`` itself on a single process)."""
    if info.world_size > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather(tensor: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """``tensor`` of every rank (same shape everywhere), in rank order."""
    if info.world_size == 1:
        return [tensor]
    out = [torch.empty_like(tensor) for _ in range(info.world_size)]
    dist.all_gather(out, tensor.contiguous())
    return out


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group (if this process joined one) once every rank is done. Exiting with a live gloo
    group can abort a rank at interpreter exit ("terminate called without an active exception", seen once in
    a CI-like run of the two-rank test)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
