"""One rank of the 2-process equivalence test (tests/train/test_distributed.py).

Run under torchrun, each rank encodes its slice of a fixed global batch with a small encoder
(linear layers and a logit scale), computes every loss with features gathered across ranks, and
averages the gradients over ranks, once by hand (`all_reduce_gradients`) and once through DDP.
The test imports `run_case` to compute the same thing in one process on the whole global batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from semclip_train.training import distributed
from semclip_train.training.losses import build_loss

GLOBAL_BATCH, IN_DIM, EMBED_DIM = 8, 5, 4
# (case name, loss name, loss options, whether distractor images are passed)
CASES = [
    ("clip", "clip", {}, False),
    ("semclip", "semclip", {}, False),
    ("semclip-learnable", "semclip", {"learnable_projections": True, "gamma": 0.5}, False),
    ("semclip-hardneg", "semclip-hardneg", {}, False),
    ("paraphrase-only", "paraphrase-only", {}, False),
    ("negation-only", "negation-only", {"n_projections": 1}, False),
    ("negclip", "negclip", {}, False),
    ("conclip", "conclip", {}, False),
    ("conclip-distractors", "conclip", {}, True),
]


class Encoder(nn.Module):
    """Stands in for CLIP's towers: images and texts each through their own linear layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Linear(IN_DIM, EMBED_DIM).double()
        self.text = nn.Linear(IN_DIM, EMBED_DIM).double()
        self.logit_scale = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {key: self.text(inputs[key]) for key in ("text", "paraphrase", "negation")}
        out["image"] = self.image(inputs["image"])
        out["distractor"] = self.image(inputs["distractor"])
        out["scale"] = self.logit_scale.exp()
        return out


def global_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    keys = ("image", "text", "paraphrase", "negation", "distractor")
    return {k: torch.randn(GLOBAL_BATCH, IN_DIM, generator=generator, dtype=torch.float64) for k in keys}


def run_case(case: str, rank: int, world_size: int, use_ddp: bool = False) -> dict[str, torch.Tensor]:
    """Loss terms averaged over ranks and gradients averaged over ranks, for one case."""
    _, name, options, with_distractors = next(c for c in CASES if c[0] == case)
    local = GLOBAL_BATCH // world_size
    inputs = {k: v[rank * local : (rank + 1) * local] for k, v in global_batch().items()}
    encoder = Encoder()
    context = distributed.DistributedContext(rank, world_size)
    model = distributed.wrap_ddp(encoder, context) if use_ddp else encoder
    loss = build_loss(name, rank=rank, world_size=world_size, embed_dim=EMBED_DIM, seed=3, **options).double()
    f = model(inputs)
    extra = {"distractor_features": f["distractor"]} if with_distractors else {}
    terms = loss(f["image"], f["text"], f["paraphrase"], f["negation"], f["scale"], **extra)
    terms["loss"].backward()
    if not use_ddp:
        distributed.all_reduce_gradients(encoder)
    distributed.all_reduce_gradients(loss)  # the learnable basis lives outside the model
    result = {f"term/{k}": distributed.all_reduce_mean(v) for k, v in terms.items()}
    result["local/loss"] = terms["loss"].detach()
    for module in (encoder, loss):
        for pname, parameter in module.named_parameters():
            result[f"grad/{pname}"] = parameter.grad.detach().clone()
    return result


def main(out_dir: Path) -> None:
    context = distributed.init_distributed()
    assert distributed.world_size() == context.world_size == 2
    assert distributed.rank() == context.rank and distributed.is_main() == (context.rank == 0)
    results = {}
    for case, *_ in CASES:
        for use_ddp in (False, True):
            for key, value in run_case(case, context.rank, context.world_size, use_ddp).items():
                results[f"{case}/{'ddp' if use_ddp else 'manual'}/{key}"] = value
    distributed.barrier()
    torch.save(results, out_dir / f"rank{context.rank}.pt")
    distributed.destroy_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
