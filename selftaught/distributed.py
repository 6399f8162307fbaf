"""What an episode source and the trainer need to know about the other processes.

Under `accelerate launch` every process runs the same loop on its share of the
batch. The contract, for exactness (2 processes × half a batch == 1 process × the
whole batch) and for resumability:

- every rank draws the *global* prompt list (or AZR task list) from identically
  seeded streams, so their state is the same on all ranks and rank 0's checkpoint
  is everyone's; each rank then keeps its contiguous share (`share`);
- rewards, per-row keys and the few statistics that need the whole batch are
  gathered to every rank (`gather`), advantages are computed on the global batch
  and each rank keeps its rows;
- the loss of each rank is normalised by the gathered batch's counts, so DDP's average
  of the ranks' gradients is the full-batch gradient.

`Processes.single()` is the one-process case: every operation is the identity, so
the single-process path runs exactly as it does without this module.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1

    @staticmethod
    def single() -> "Processes":
        return Processes(0, 1)

    @staticmethod
    def from_accelerator(accelerator) -> "Processes":
        return Processes(accelerator.process_index, accelerator.num_processes)

    def share(self, total: int, what: str = "items") -> slice:
        """This rank's contiguous part of `total` items (which must split evenly)."""
        if total % self.world:
            raise UserError(f"{total} {what} per step do not split evenly over {self.world} processes; "
                            f"make it a multiple of {self.world}")
        size = total // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def gather(self, item) -> list:
        """`item` from every rank, in rank order (any picklable object)."""
        if self.world == 1:
            return [item]
        from accelerate.utils import gather_object

        return gather_object([item])

    def from_main(self, item):
        """Rank 0's `item`, on every rank (every rank also waits for rank 0 to get here)."""
        return self.gather(item)[0]

    def total(self, value):
        """Σ over ranks of a number, a tensor, a {key: number} (key-wise, over the keys any rank has)
        or a tuple of those (element-wise, in one gather). One process: `value` itself."""
        return value if self.world == 1 else _reduce(self.gather(value), sum)

    def maximum(self, value):
        """The largest over ranks, as `total` sums."""
        return value if self.world == 1 else _reduce(self.gather(value), max)

    def cat(self, tensor):
        """Every rank's [n_r, ...] tensor, concatenated in rank order."""
        if self.world == 1:
            return tensor
        import torch

        return torch.cat(self.gather(tensor))


def _reduce(parts: list, combine):
    """`combine` (sum or max) of the ranks' values; dicts key by key over the keys any rank has,
    tuples element by element."""
    if isinstance(parts[0], tuple):
        return tuple(_reduce(list(values), combine) for values in zip(*parts))
    if isinstance(parts[0], dict):
        keys = dict.fromkeys(key for part in parts for key in part)
        return {key: combine(part[key] for part in parts if key in part) for key in keys}
    return combine(parts)


@contextmanager
def accumulation_step(accelerator, model, last: bool):
    """One micro-batch of gradient accumulation: gradients are synchronised over ranks only at the
    `last` (DDP and FSDP: `no_sync` before it; DeepSpeed's engine steps at the backward accelerate
    marks as the boundary, so the flag is set for every micro-batch)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        accelerator.sync_gradients = last
    with nullcontext() if last else accelerator.no_sync(model):
        yield


def check_launch(accelerator) -> None:
    """Refuse a run `accelerate launch --num_processes N` silently started as one process.

    On a machine without GPUs accelerate's default launcher starts a single Python
    process (multi-CPU needs mpirun) but still exports MASTER_ADDR/MASTER_PORT;
    torchrun (`--multi_gpu`, or `configs/accelerate/cpu2.yaml`) starts them all.
    """
    env = os.environ
    launched_by_accelerate = "ACCELERATE_MIXED_PRECISION" in env and "MASTER_ADDR" in env
    ranked = any(k in env for k in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"))
    if accelerator.num_processes == 1 and launched_by_accelerate and not ranked:
        raise UserError("accelerate launch started one process although more were asked for (its CPU launcher "
                        "needs mpirun); add --multi_gpu (torchrun, gloo on CPU) or use "
                        "--config_file configs/accelerate/cpu2.yaml")
