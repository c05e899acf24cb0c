"""Two real torchrun processes (gloo, CPU) against one process on the same global batch.

Every loss gathers features across ranks with gradients; the losses averaged over ranks and the
gradients averaged over ranks (by hand and through DDP) must equal a single-process computation on
the whole global batch. Single-process code must never touch a process group.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from semclip_train.errors import SemClipError
from semclip_train.training import distributed

WORKER = Path(__file__).with_name("distributed_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _load_worker():
    spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("torchrun")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        str(WORKER), str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def _single_process(case: str) -> dict[str, torch.Tensor]:
    return _load_worker().run_case(case, rank=0, world_size=1)


CASES = [case for case, *_ in _load_worker().CASES]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["manual", "ddp"])
def test_two_ranks_equal_one_process_on_the_global_batch(two_rank_results, case, mode):
    reference = _single_process(case)
    for rank, results in enumerate(two_rank_results):
        for key, expected in reference.items():
            if key.startswith("local/"):
                continue
            got = results[f"{case}/{mode}/{key}"]
            torch.testing.assert_close(got, expected, msg=f"rank {rank} {key}")


@pytest.mark.slow
def test_ranks_compute_their_own_share_of_the_loss(two_rank_results):
    """Each rank's loss covers its own rows; only the mean over ranks is the global loss."""
    local = [results["semclip/manual/local/loss"] for results in two_rank_results]
    assert not torch.allclose(local[0], local[1])
    torch.testing.assert_close((local[0] + local[1]) / 2, _single_process("semclip")["term/loss"])


@pytest.mark.slow
def test_every_case_produced_gradients_for_the_towers(two_rank_results):
    for case in CASES:
        for tower in ("image", "text"):
            grad = two_rank_results[0][f"{case}/manual/grad/{tower}.weight"]
            assert torch.count_nonzero(grad) > 0, (case, tower)


def test_single_process_never_touches_a_process_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("a collective was called in a single process")

    for name in ("init_process_group", "all_gather", "all_reduce", "barrier", "get_rank", "get_world_size"):
        monkeypatch.setattr(torch.distributed, name, refuse)
    context = distributed.init_distributed()
    assert (context.rank, context.world_size, context.is_main) == (0, 1, True)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    distributed.barrier()
    x = torch.ones(3, 2, requires_grad=True)
    assert distributed.all_gather_with_grad(x, world_size=1) is x
    torch.testing.assert_close(distributed.all_reduce_mean(x), x.detach())
    result = _single_process("semclip")
    assert torch.isfinite(result["term/loss"])


def test_torchrun_environment_errors_are_clear(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(SemClipError, match="RANK='two' is not an integer"):
        distributed.init_distributed()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(SemClipError, match="start with torchrun"):
        distributed.init_distributed()


def test_gathering_without_a_process_group_is_refused():
    with pytest.raises(RuntimeError, match="no process group"):
        distributed.all_gather_with_grad(torch.ones(2, 2), world_size=2)
