"""The PyTorch loop of deberta-train (the rest is framework-neutral: deberta_core.train).

One process, or one per device under ``torchrun --nproc_per_node N -m deberta_core.train ...``:
torch.distributed with gloo on CPU and nccl on CUDA, the model wrapped in DistributedDataParallel.
Every process builds the same global batch (deberta_core.train.data.BatchPlan) and trains on its own
slice of it; gradients are averaged by DDP (``no_sync`` on all but the last micro-batch of a step).
Each slice's loss is weighted by its share of the step's loss items, so any number of processes and
accumulation steps gives the gradient of the mean loss over the global batch. Only rank 0
evaluates and writes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as torch_dist

from deberta_core.train.data import shard
from deberta_core.train.job import OUTPUT_NAMES, build_model
from deberta_core.train.optim import BETAS, dropout_seed, uses_weight_decay

STATE_FILE = "optimizer.pt"


@dataclass
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    started_group: bool = False


def setup(args) -> Distributed:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (absent: one process) and start the process group."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    started = False
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
        started = True
    return Distributed(rank, world, local, device, started)


class Backend:
    """Model, AdamW and the step for one process."""

    framework = "pt"

    def __init__(self, args, spec, dist: Distributed):
        self.args, self.dist = args, dist
        torch.manual_seed(args.seed)  # the same initial weights in every process
        model = build_model(spec, "pt")
        self.model = model.to(dist.device).train()
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                (decay if uses_weight_decay(name) else no_decay).append(parameter)
        self.parameters = decay + no_decay
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}],
                                           lr=args.lr, betas=BETAS, eps=args.adam_epsilon)
        self.ddp = None
        if dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=[dist.device.index] if dist.device.type == "cuda"
                                               else None)
        self.autocast = (torch.autocast(dist.device.type, dtype=torch.bfloat16) if args.bf16
                         else contextlib.nullcontext())
        where = (f"DDP over {dist.world_size} processes ({'nccl' if dist.device.type == 'cuda' else 'gloo'})"
                 if dist.world_size > 1 else "1 process")
        self.description = (f"PyTorch {torch.__version__}, {where}, {dist.device}, {torch.get_num_threads()} "
                            f"thread(s){', bf16 autocast' if args.bf16 else ''}")

    def _tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.dist.device) for k, v in batch.items()}

    def train_step(self, batches, weights, lr: float, step: int) -> float:
        """One optimizer update from this process's slice of each micro-batch; returns the global mean loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        rank, world = self.dist.rank, self.dist.world_size
        module = self.ddp if self.ddp is not None else self.model
        total = torch.zeros((), dtype=torch.float64, device=self.dist.device)
        for m, (batch, weight) in enumerate(zip(batches, weights)):
            inputs = self._tensors(shard(batch, rank, world))
            torch.manual_seed(dropout_seed(self.args.seed, step, m, rank))
            sync = self.ddp is None or m == len(batches) - 1
            with contextlib.nullcontext() if sync else self.ddp.no_sync():
                with self.autocast:
                    loss = module(**inputs).loss
                loss = loss.float() * weight[rank]
                (loss * world).backward()  # DDP averages the processes' gradients
            total += loss.detach().double()
        if self.args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.args.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if world > 1:
            torch_dist.all_reduce(total)
        return float(total)

    def predict(self, batch: dict[str, np.ndarray], names=OUTPUT_NAMES) -> dict[str, np.ndarray]:
        """The model's outputs ``names`` (those it has) on one batch, in eval mode, as float32 numpy."""
        self.model.eval()
        try:
            with torch.inference_mode(), self.autocast:
                outputs = self.model(**self._tensors(batch))
        finally:
            self.model.train()
        return {name: outputs[name].detach().float().cpu().numpy() for name in names
                if getattr(outputs, name, None) is not None}

    def save_pretrained(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def save_state(self, directory: Path) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        if self.dist.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.dist.device)
        torch.save(state, Path(directory) / STATE_FILE)

    def load_state(self, directory: Path) -> None:
        """The optimizer (and RNG) of a checkpoint written by save_state; the weights came with from_pretrained."""
        path = Path(directory) / STATE_FILE
        if not path.is_file():
            raise ValueError(f"--resume: {path} is missing (was the run trained with --framework tf?)")
        state = torch.load(path, map_location=self.dist.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if "cuda_rng" in state and self.dist.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.dist.device)

    def agree(self, flag: bool) -> bool:
        """True when any process says so (the time budget is measured by each clock)."""
        if self.dist.world_size == 1:
            return bool(flag)
        value = torch.tensor([int(flag)], device=self.dist.device)
        torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.dist.world_size > 1:
            torch_dist.barrier()

    def close(self) -> None:
        if self.dist.started_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


__all__ = ["Backend", "Distributed", "setup"]
