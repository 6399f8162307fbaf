"""Training with sharded weights (FSDP2): sampling, equal micro-batch counts, and
whole-optimizer checkpoints.

With FSDP2 every rank holds 1/world of each weight; each module's forward first
all-gathers its weights, a collective that every rank must call in step. Training
forwards are in step when every rank runs the same number of micro-batches
(`padded_micro_batches`). Sampling is not: each rank decodes its own prompts for
its own number of tokens. So for sampling and the no-grad scoring pass the trainer
gathers the whole model once (`full_weights`: one all-gather per module, on every
rank in the same order), keeps it through every forward (no re-shard after forward,
hence no further collectives), then re-shards. That costs the full weights' memory
on each rank during the rollout — as TRL's and verl's gathered generation do — and
none during the update, where the optimizer state and gradients live.

Optimizer checkpoints: each rank's optimizer holds only its shard. `optimizer_state`
gathers the whole state (collective) into one file, keyed by parameter name (an
unsharded run's is keyed by position); `load_optimizer_state` scatters it back.
Resume with the same accelerate config that wrote it.

Everything here is the identity for a model that FSDP2 does not shard.
"""

from __future__ import annotations

from contextlib import contextmanager


def fsdp_modules(model) -> list:
    """The FSDP2-sharded modules of `model` (empty when it is not sharded)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        return []
    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def is_sharded(model) -> bool:
    return bool(fsdp_modules(model))


@contextmanager
def full_weights(model, reshard_after_forward: bool = True):
    """Every rank holds the whole model inside the block, and its forwards run no
    collectives (so ranks may run different numbers of them: sampling). All ranks
    must enter and leave together. `reshard_after_forward` is the setting to
    restore (the FSDP config's)."""
    modules = fsdp_modules(model)
    if not modules:
        yield
        return
    root = modules[0]
    root.set_reshard_after_forward(False)  # recursive: every module keeps what it gathered
    for module in modules:  # the same order on every rank: the all-gathers pair up
        module.unshard()
    try:
        yield
    finally:
        for module in modules:
            module.reshard()
        root.set_reshard_after_forward(reshard_after_forward)
        # FSDP2's own default for the root: keep its weights (embeddings, head) gathered from
        # forward to backward instead of all-gathering them again for the backward.
        root.set_reshard_after_forward(False, recurse=False)


def padded_micro_batches(batches: list, processes) -> list:
    """`batches` and as many repeats of the first as make every rank run the same number (the most
    any rank has: under FSDP2 each forward is a collective). A repeat is a padding micro-batch:
    its loss counts zero times (the caller multiplies it by 0), index >= len(batches)."""
    if not batches:
        raise RuntimeError("a rank has no rows to train on; under FSDP2 it cannot join the update")
    return batches + [batches[0]] * (processes.maximum(len(batches)) - len(batches))


def _registered_sharded(model) -> None:
    """Make the module's parameters the sharded ones the optimizer holds again (a
    forward without a backward leaves the root's gathered copies registered).
    Local: frees gathered copies, no communication."""
    for module in fsdp_modules(model):
        module.reshard()


def optimizer_state(model, optimizer) -> dict:
    """The optimizer's state dict; under FSDP2 the whole state, gathered (collective)."""
    if not is_sharded(model):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    _registered_sharded(model)

    return get_optimizer_state_dict(model, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model, optimizer, state: dict) -> None:
    """Inverse of `optimizer_state` (every rank passes the whole state; under FSDP2
    each keeps its shard)."""
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    _registered_sharded(model)

    set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True))
