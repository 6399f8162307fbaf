"""Runs under `torchrun --nproc_per_node 2` for tests/test_fsdp2.py: the tiny model
sharded with FSDP2 (torch's `fully_shard`) on the CPU (gloo), against an unsharded
copy of it in the same process.

    python -m torch.distributed.run --nproc_per_node 2 tests/fsdp2_worker.py OUT_DIR

Checks, on every rank: sampling inside `full_weights` gives exactly the unsharded
model's completions although the ranks sample different numbers of prompts (each
forward without the gather would be a collective the other rank never calls); the
weights are sharded again afterwards; a training step on the sharded model equals
one on the unsharded model, and so do the update's log-probs (logits path); the gathered optimizer state equals the unsharded
optimizer's and survives a save/load round trip. Rank 0 writes OUT_DIR/result.json.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.models.tiny_random import build_tiny_random  # noqa: E402
from selftaught.rollout import SelftaughtSampler  # noqa: E402
from selftaught.fsdp2 import full_weights, is_sharded, load_optimizer_state, optimizer_state  # noqa: E402
from selftaught.scoring import completion_token_statistics  # noqa: E402


def full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def main(out_dir: str) -> None:
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model, tokenizer = build_tiny_random(seed=0)
    reference = copy.deepcopy(model)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    assert is_sharded(model) and not is_sharded(reference)

    # Different prompt counts and completion lengths: the ranks run different numbers of forwards.
    settings = {"max_prompt_length": 32, "max_completion_length": 4 + 6 * rank, "temperature": 1.0}
    prompts = [f"Question: What is {rank} + {i}?\nAnswer:" for i in range(2 + 3 * rank)]  # 2 vs 5 prompts
    results = {}
    for round_ in range(2):  # twice: the block can be entered again after an update
        with full_weights(model):
            sampled = SelftaughtSampler(model, tokenizer, **settings).sample(prompts, greedy=True)
        expected = SelftaughtSampler(reference, tokenizer, **settings).sample(prompts, greedy=True).completions
        equal = [None, None]
        dist.all_gather_object(equal, sampled.completions == expected)
        results[f"sampling_equal_{round_}"] = all(equal)
        widths = [None, None]
        dist.all_gather_object(widths, (len(prompts), sampled.completion_ids.shape[1]))
        results[f"rollout_shapes_{round_}"] = widths
        weight = model.model.layers[0].mlp.up_proj.weight
        results[f"resharded_{round_}"] = weight.to_local().shape[0] < full(weight).shape[0]

        # One training step on the same batch on every rank: FSDP averages equal gradients.
        optimizers = getattr(main, "optimizers", None) or (
            torch.optim.AdamW(model.parameters(), lr=1e-2), torch.optim.AdamW(reference.parameters(), lr=1e-2))
        main.optimizers = optimizers
        batch = tokenizer(["Question: 2 + 3\nAnswer: 5", "def f(a):\n    return a"], return_tensors="pt",
                          padding=True)
        for net, optimizer in zip((model, reference), optimizers):
            optimizer.zero_grad()
            net(**batch, labels=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)).loss.backward()
            optimizer.step()
        difference = max(float((full(a) - b).abs().max())
                         for a, b in zip(model.parameters(), reference.parameters()))
        results[f"step_max_param_diff_{round_}"] = difference

    # The update's log-probs on the sharded model (logits path; the fused path reads the
    # head's weight after the forward, where FSDP2 has re-sharded it).
    rollout = SelftaughtSampler(reference, tokenizer, **settings).sample(prompts[:2], num_generations=2)
    rows = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
    options = {"temperature": 0.9, "chunk_size": 64, "fused": False}
    logp = completion_token_statistics(model, *rows, **options).logprobs
    expected = completion_token_statistics(reference, *rows, **options).logprobs
    results["update_logprobs_max_diff"] = float((logp - expected).abs().max())
    logp.sum().backward()
    try:
        fused = completion_token_statistics(model, *rows, **{**options, "fused": True}).logprobs
        results["fused_outside_gather"] = f"max diff {float((fused - expected).abs().max()):.3g}"
    except Exception as error:  # noqa: BLE001 - recorded for information; the trainer keeps fused off
        results["fused_outside_gather"] = f"{type(error).__name__}"

    sharded_optimizer, reference_optimizer = main.optimizers
    state = optimizer_state(model, sharded_optimizer)  # collective; the whole state lands on rank 0
    names = dict(reference.named_parameters())
    if rank == 0:
        results["optimizer_state_max_diff"] = max(
            float((state["state"][name][key] - reference_optimizer.state[names[name]][key]).abs().max())
            for name in names for key in ("exp_avg", "exp_avg_sq"))
        results["optimizer_state_entries"] = len(state["state"])
    shared = [state]
    dist.broadcast_object_list(shared, src=0)  # as every rank reads the checkpoint file
    model.zero_grad(set_to_none=True)  # a resumed run starts without gradients
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    load_optimizer_state(model, fresh, shared[0])
    again = optimizer_state(model, fresh)
    if rank == 0:
        results["optimizer_round_trip_max_diff"] = max(
            float((again["state"][n][key] - state["state"][n][key]).abs().max())
            for n in names for key in ("exp_avg", "exp_avg_sq"))
    if rank == 0:
        Path(out_dir, "result.json").write_text(json.dumps(results))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
