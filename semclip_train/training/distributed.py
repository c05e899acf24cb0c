"""Every `torch.distributed` call of the project lives in this module.

`torchrun` describes the job through environment variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). Without them, or with WORLD_SIZE=1, the run is a single process and
nothing here creates or touches a process group: single-process code never reaches a collective,
so it also runs where `torch.distributed` is unavailable.

Backend: NCCL when CUDA is available, gloo on CPU (the tests run two gloo processes on a CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from semclip_train.errors import SemClipError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job; `world_size == 1` means no process group exists."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SemClipError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(backend: str | None = None) -> DistributedContext:
    """Join the torchrun job described by the environment, or describe a single process.

    Under torchrun each process gets the CUDA device of its LOCAL_RANK (NCCL), or the CPU (gloo).
    Calling this twice in one process returns the existing group's context.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank_ = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    cuda = torch.cuda.is_available()
    if world <= 1:
        return DistributedContext(0, 1, 0, torch.device("cuda" if cuda else "cpu"))
    if not 0 <= rank_ < world:
        raise SemClipError(f"RANK={rank_} is outside 0..{world - 1} (WORLD_SIZE={world})")
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise SemClipError("WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are not set: start with torchrun")
    if cuda:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend or ("nccl" if cuda else "gloo"),
            rank=rank_,
            world_size=world,
            device_id=device if cuda else None,
        )
    return DistributedContext(rank_, world, local, device)


def destroy_distributed() -> None:
    """Leave the process group (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if _initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if _initialized() else 1


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0) if _initialized() else 0


def is_main() -> bool:
    """Only rank 0 writes files, logs and checkpoints."""
    return rank() == 0


def barrier() -> None:
    if _initialized():
        dist.barrier()


def _require_group(world: int) -> None:
    if not _initialized():
        raise RuntimeError(f"world_size={world} but no process group: call init_distributed() first")
    if dist.get_world_size() != world:
        raise RuntimeError(f"world_size={world} but the process group has {dist.get_world_size()}")


def all_gather_with_grad(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    """Concatenate every rank's `tensor` along dim 0, keeping the autograd graph.

    [B, ...] -> [world_size * B, ...], rank r's rows at r*B:(r+1)*B. The backward sums, over ranks,
    the gradients that reach rank r's slice (reduce-scatter), as OpenCLIP's `gather_with_grad`:
    with a loss averaged over ranks (as DDP averages gradients) this gives exactly the gradient of
    the loss of the global batch. Every rank must pass the same shape (use drop_last).
    """
    if world_size == 1:
        return tensor
    _require_group(world_size)
    import torch.distributed.nn.functional as dist_nn

    return torch.cat(dist_nn.all_gather(tensor.contiguous()), dim=0)


def gather_features(*features: torch.Tensor, world_size: int) -> tuple[torch.Tensor, ...]:
    """Gather several [B, d] feature tensors with one collective instead of one per tensor."""
    if world_size == 1:
        return features
    widths = [f.shape[1] for f in features]
    packed = all_gather_with_grad(torch.cat(features, dim=1), world_size)  # [W*B, sum(d)]
    return tuple(torch.split(packed, widths, dim=1))


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of `tensor` over ranks, without gradient (for logging and for per-rank metrics)."""
    if not _initialized() or dist.get_world_size() == 1:
        return tensor.detach().clone()
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def all_reduce_gradients(module: torch.nn.Module) -> None:
    """Average `.grad` of every parameter over ranks, in place (what DDP does during backward).

    For parameters that live outside the DDP-wrapped model, such as a learnable SemCLIP basis.
    """
    if not _initialized() or dist.get_world_size() == 1:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= dist.get_world_size()


def wrap_ddp(model: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    """DistributedDataParallel around `model` when the job has several ranks, else `model` itself."""
    if not context.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)
