"""Runs inside `accelerate launch --num_processes 2` for tests/test_multiprocess.py (and,
imported, in one process for the reference side).

    python tests/multiprocess_worker.py OUT_DIR

Equivalence scenarios: the real Trainer and the real PromptEpisodes (Intuitor) on a
`CannedSampler`, whose completions depend only on (prompt, index in the group), so
one process with the whole batch and two processes with half each see the same
global batch. Rank 0 saves the gradient (after DDP's all-reduce) and the parameters
after one optimizer step.

AZR scenario: one self-play step with the scripted policy on every rank; each rank
writes what it proposed and what its buffers hold, so the test can check that there
is one global buffer.

Preemption scenarios (Intuitor, AZR): a straight run; the same run stopped by a SIGTERM
that reaches rank 0 only, while step 2 is collected; then `resume=True` to the end. Rank 0
saves both runs' final parameters; every rank writes where it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import zlib
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import azr_overrides, tiny_overrides  # noqa: E402
from fixed_rollout import record_optimizer_steps  # noqa: E402

from selftaught.config import build_config  # noqa: E402
from selftaught.rollout import Rollout, RolloutSampler, rollout_from_token_rows  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

GLOBAL_COMPLETIONS = 8  # per optimizer step, over all processes
ACCUMULATION = 2
# Adam's first step is lr·g/(|g| + ε): with ε = 1e-8 a gradient entry of ~1e-9 moves by
# ~lr/10 and its float32 rounding noise (~1e-10, which depends on how the sum was split)
# by ~lr·5%. ε = 1e-6 keeps the comparison about the gradient, not about that division.
ADAM_EPSILON = 1e-6

SCENARIOS = {
    "token_mean": {"loss_type": "token_mean", "beta": 0.01, "scale_rewards": "group"},
    "seq_mean": {"loss_type": "seq_mean", "beta": 0.0, "scale_rewards": "batch"},
    "dr_grpo": {"loss_type": "dr_grpo", "beta": 0.01, "scale_rewards": "batch"},
    "lora": {"loss_type": "token_mean", "beta": 0.01, "scale_rewards": "group",
             "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}},
    # TRL's knobs that do not depend on the split: GSPO with two-sided clipping, truncated rows out of
    # the loss, the bias-corrected KL, and the top-entropy mask, whose quantile is taken over one
    # micro-batch of every rank (TRL's choice): with one micro-batch per step that is the whole batch.
    "trl_knobs": {"loss_type": "dapo", "importance_sampling_level": "sequence", "delta": 1.5, "beta": 0.01,
                  "use_bias_correction_kl": True, "mask_truncated_completions": True, "top_entropy_quantile": 0.5,
                  "gradient_accumulation_steps": 1},
}


class CannedSampler(RolloutSampler):
    """`SelftaughtSampler.sample` with completions fixed by (prompt text, index in group): random token ids of
    varied lengths, some ending in EOS, so padding and masks differ between rows and ranks."""

    def __init__(self, tokenizer, max_prompt_length: int, max_completion_length: int):
        self.tokenizer = tokenizer
        self.max_prompt_length, self.max_completion_length = max_prompt_length, max_completion_length

    def sample(self, prompts, num_generations=1, greedy=False, extras=None) -> Rollout:
        tok = self.tokenizer
        rows = []
        for prompt in prompts:
            for j in range(num_generations):
                key = zlib.crc32(prompt.encode()) * 7 + j
                length = 2 + key % (self.max_completion_length - 1)
                ids = torch.randint(3, len(tok), (length,), generator=torch.Generator().manual_seed(key)).tolist()
                if key % 3 == 0:
                    ids[-1] = tok.eos_token_id
                rows.append(ids)
        return rollout_from_token_rows(tok, prompts, rows, num_generations, self.max_prompt_length, extras)


def equivalence_step(output_dir, scenario: str, processes: int) -> dict | None:
    """One optimizer step of `scenario` on GLOBAL_COMPLETIONS split over `processes`.

    Returns (on rank 0) the all-reduced gradient and the parameters after the step.
    """
    settings = {"gradient_accumulation_steps": ACCUMULATION, **SCENARIOS[scenario]}
    raw = tiny_overrides(output_dir, max_steps=1, num_generations=2, max_completion_length=12, learning_rate=1e-3,
                         per_device_train_batch_size=GLOBAL_COMPLETIONS // processes
                         // settings["gradient_accumulation_steps"], adam_epsilon=ADAM_EPSILON, **settings)
    trainer = Trainer(build_config(raw), sampler=lambda t: CannedSampler(t.tokenizer, t.config.max_prompt_length,
                                                                         t.config.max_completion_length))
    assert trainer.processes.world == processes, (trainer.processes, processes)
    model = trainer.accelerator.unwrap_model(trainer.model)
    seen = record_optimizer_steps(trainer)
    row = trainer.train()[0]
    if not trainer.accelerator.is_main_process:
        return None
    return {"grads": seen[0][0], "params": {n: p.detach().clone() for n, p in model.named_parameters()},
            "loss": row["loss"], "reward/mean": row["reward/mean"], "kl/mean": row.get("kl/mean")}


def azr_step(output_dir) -> None:
    from selftaught.azr.scripted import ScriptedSampler

    raw = azr_overrides(output_dir, max_steps=1, per_device_train_batch_size=6, **{
        "azr.learnability_rollouts": 2, "azr.executor_workers": 1, "azr.executor_timeout_s": 5.0})

    def scripted(trainer):
        rank = trainer.processes.rank
        sampler = ScriptedSampler(trainer.tokenizer, max_prompt_length=1024, max_completion_length=160, seed=rank,
                                  invalid_proposal_prob=0.0, malformed_prob=0.0)
        sampler._next = 2 * rank  # the ranks propose different programs
        return sampler

    trainer = Trainer(build_config(raw), sampler=scripted)
    rank = trainer.processes.rank
    episodes = trainer.episodes
    proposed = []
    evaluate = episodes.evaluate_proposals

    def record(requests, completions, step):
        outcomes = evaluate(requests, completions, step)
        proposed.extend([list(o.task.key()) for o in outcomes if o.valid])
        return outcomes

    episodes.evaluate_proposals = record
    try:
        rows = trainer.train()
    finally:
        episodes.close()
    buffers = {t: [list(task.key()) for task in b.tasks()] for t, b in episodes.buffers.items()}
    (Path(output_dir) / f"azr_rank{rank}.json").write_text(json.dumps(
        {"proposed": proposed, "buffers": buffers, "rows": rows if rank == 0 else None,
         "rng": float(torch.rand(1))}, default=str))


class SignalDuringStep(RolloutSampler):
    """The trainer's own sampler, which sends `signum` to this process (rank 0 only) the first time
    it samples for step `step` (the trainer's step counter is `step - 1` then)."""

    def __init__(self, trainer, step: int, signum: int = signal.SIGTERM):
        self.trainer, self.inner, self.step, self.signum, self.sent = trainer, trainer.sampler, step, signum, False

    def sample(self, *args, **kwargs):
        if not self.sent and self.trainer.step == self.step - 1 and self.trainer.processes.rank == 0:
            self.sent = True
            os.kill(os.getpid(), self.signum)
        return self.inner.sample(*args, **kwargs)

    def close(self):
        self.inner.close()


def preemption_raw(name: str, output_dir) -> dict:
    if name == "intuitor":
        return tiny_overrides(output_dir, max_steps=4, save_steps=100, beta=0.01)
    return azr_overrides(output_dir, max_steps=3, save_steps=100, max_completion_length=24, **{
        "azr.tasks_per_type_role": 2, "azr.learnability_rollouts": 2, "azr.seed_proposals": 1,
        "azr.executor_workers": 1})


def preempted_then_resumed(output_dir: Path, name: str) -> None:
    from selftaught.errors import Preempted

    def final_parameters(trainer):
        return {n: p.detach().clone() for n, p in trainer.accelerator.unwrap_model(trainer.model).named_parameters()}

    straight = Trainer(build_config(preemption_raw(name, output_dir / "straight")))
    straight.train()
    stopped = Trainer(build_config(preemption_raw(name, output_dir / "stopped")))
    stopped.sampler = SignalDuringStep(stopped, step=2)
    try:
        stopped.train()
        stop = None
    except Preempted as preempted:
        stop = {"signum": preempted.signum, "step": preempted.step, "checkpoint": str(preempted.checkpoint),
                "exit_code": preempted.exit_code, "executor_closed": getattr(stopped.episodes, "_executor", None) is None}
    resumed = Trainer(build_config(preemption_raw(name, output_dir / "stopped")), resume=True)
    resumed_from = resumed.step
    resumed.train()
    rank = resumed.processes.rank
    (output_dir / f"stop_rank{rank}.json").write_text(json.dumps({"stop": stop, "resumed_from": resumed_from}))
    if rank == 0:
        torch.save({"straight": final_parameters(straight), "resumed": final_parameters(resumed)},
                   output_dir / "parameters.pt")


def main(out: str) -> None:
    out_dir = Path(out)
    for scenario in SCENARIOS:
        result = equivalence_step(out_dir / scenario, scenario, processes=2)
        if result is not None:
            torch.save(result, out_dir / f"{scenario}.pt")
    azr_step(out_dir / "azr")
    for name in ("intuitor", "azr"):
        preempted_then_resumed(out_dir / f"preempt_{name}", name)


if __name__ == "__main__":
    main(sys.argv[1])
