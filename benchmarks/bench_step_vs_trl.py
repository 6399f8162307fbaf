"""One Intuitor step: selftaught's Trainer against TRL's GRPOTrainer doing it the published way.

    pip install -e .[bench]                   # TRL ≥ 1.0, only for this script
    python benchmarks/bench_step_vs_trl.py    # CPU: tiny-random, 4 prompts × G 4, 64 new tokens, 3 × (1 warm-up + 6 timed steps)

The published Intuitor code is TRL's GRPOTrainer whose reward is self-certainty,
computed in an extra full forward pass over prompt + completion (full [B, L, V]
logits). Here that reward is a TRL reward function (`self_certainty_reward`),
online (the policy being trained), at the sampling temperature, over the tokens
up to and including EOS — what our Trainer computes inside its one scoring pass.

Equalised: the model (tiny-random saved once; both load the same weights and the
same EOS ids), the prompts (same JSONL rows, no chat template), prompts per step,
G, max completion length, temperature 0.9 / top_p 1 / top_k off, β = 0 (no
reference model), μ = 1, AdamW lr 1e-6 constant, no weight decay, clip 0.2,
grad-norm clip 1.0, token-mean loss (TRL's "dapo"), group-scaled advantages, the
micro-batch size and accumulation, the precision (fp32 on the CPU), gradient
checkpointing (off unless `--gradient-checkpointing`; TRL ≥ 1.0 turns it on by
default, so it is set explicitly on both sides), no checkpoints, no completion
logging. Sampled lengths are not forced; the mean completion length of each run is
printed next to its time.

Each trainer runs in its own child process on one torch thread (at this size a
second OpenMP thread only adds synchronisation, and the machine may be shared).
Seconds per step (`measure.py`): on the CPU, CPU seconds of the child (equal to wall
time on an idle core); on CUDA (`StepSettings.device`, as scripts/gpu_check.py runs
it), synchronised wall seconds. The median over the timed steps after a warm-up
step, and of `--rounds` alternating runs the least disturbed one. Memory: the
child's peak during training minus its size just before the first step (CPU:
resident set size; CUDA: the allocator's device memory), i.e. what training adds
on top of the loaded model and libraries (the largest over the runs); the absolute
peaks are printed as well.

Prints `RESULT step_time_vs_trl ratio=<TRL s/step ÷ ours>` (target ≥ 2) and
`RESULT step_memory_vs_trl ratio=<ours ÷ TRL>` (target ≤ 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import meter_for  # noqa: E402

TEMPERATURE = 0.9
LEARNING_RATE = 1e-6
TARGET_SPEED = 2.0  # TRL s/step ÷ ours


@dataclass
class StepSettings:
    """What both trainers run: the same model, prompts and step shape."""

    model_dir: str
    data: str
    steps: int = 6  # timed steps, after one warm-up step
    prompts_per_step: int = 4
    num_generations: int = 4
    max_completion_length: int = 64
    micro_batch: int | None = None  # completions per forward/backward; None = the whole step at once
    bf16: bool = False
    gradient_checkpointing: bool = False
    device: str = "cpu"

    @property
    def completions(self) -> int:
        return self.prompts_per_step * self.num_generations

    @property
    def per_device_batch(self) -> int:
        return self.micro_batch or self.completions

    @property
    def accumulation(self) -> int:
        if self.completions % self.per_device_batch:
            raise ValueError(f"micro-batch {self.per_device_batch} does not divide {self.completions} completions")
        return self.completions // self.per_device_batch


# ------------------------------------------------------------------ set-up


def write_prompts(path: Path, num_prompts: int) -> Path:
    """The benchmark's prompt file: built-in arithmetic problems as JSONL rows."""
    from selftaught.data import arithmetic

    with path.open("w") as f:
        for p in arithmetic.generate(num_prompts, split="train", seed=7):
            f.write(json.dumps({"prompt": f"Q: {p.prompt}\nA:", "answer": p.answer}) + "\n")
    return path


def save_with_eos_ids(model, tokenizer, model_dir: Path) -> Path:
    """Save a model for both trainers, with its full EOS list in generation_config (TRL reads it there)."""
    from selftaught.rollout import eos_token_ids

    model.generation_config.eos_token_id = eos_token_ids(tokenizer, model)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def prepare(workdir: Path, num_prompts: int) -> tuple[Path, Path]:
    """tiny-random saved for both trainers, and a prompt file."""
    from selftaught.models import load_model

    model_dir = save_with_eos_ids(*load_model("tiny-random"), workdir / "model")
    return model_dir, write_prompts(workdir / "prompts.jsonl", num_prompts)


# ------------------------------------------------------------------ ours


def run_ours(settings: StepSettings, out: Path) -> dict:
    """Our Trainer, one warm-up + `steps` timed steps; per step the meter's time, the wall time and
    its generate / score split (the trainer's own wall clock), the mean completion length and the
    prompt and completion lengths trained on."""
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    s, meter = settings, meter_for(settings.device)
    config = build_config({
        "output_dir": str(out), "seed": 0, "max_steps": s.steps + 1,
        "model": {"name_or_path": s.model_dir},
        "data": {"source": s.data, "prompt_template": "{prompt}", "use_chat_template": "never"},
        "rewards": [{"name": "self_certainty", "weight": 1.0}],
        "num_generations": s.num_generations, "per_device_train_batch_size": s.per_device_batch,
        "gradient_accumulation_steps": s.accumulation,
        "max_prompt_length": 256, "max_completion_length": s.max_completion_length,
        "temperature": TEMPERATURE, "top_p": 1.0, "top_k": 0, "beta": 0.0, "num_iterations": 1,
        "learning_rate": LEARNING_RATE, "lr_scheduler_type": "constant", "warmup_ratio": 0.0,
        "weight_decay": 0.0, "max_grad_norm": 1.0, "epsilon": 0.2, "loss_type": "token_mean",
        "scale_rewards": "group", "bf16": s.bf16, "gradient_checkpointing": s.gradient_checkpointing,
        "save_steps": 10**6, "log_completions": 0, "progress_bar": False,
    })
    trainer = Trainer(config)
    rollouts: list[dict] = []
    sample = trainer.sampler.sample

    def counted_sample(*args, **kwargs):  # the rows the update trains on
        rollout = sample(*args, **kwargs)
        rollouts.append({"prompt_lengths": rollout.prompt_mask.sum(1).tolist(),
                         "completion_lengths": rollout.completion_mask.sum(1).tolist()})
        return rollout

    trainer.sampler.sample = counted_sample
    before = meter.reset_peak()
    steps = []
    for _ in range(s.steps + 1):
        start, wall = meter.now(), time.perf_counter()
        row = trainer.train_step()[0]
        steps.append({"seconds": meter.now() - start, "wall_s": time.perf_counter() - wall,
                      "generate_s": row["time/generate_s"],
                      "score_s": row["time/score_s"], "length": row["completion_length/mean"],
                      "self_certainty": row["self_certainty/mean"], **rollouts[-1]})
    return {"steps": steps, "peak_delta": meter.peak() - before, "peak": meter.peak(), "clock": meter.clock,
            "decode_path": trainer.sampler.decode_path}


# ------------------------------------------------------------------ TRL


def self_certainty_reward(trainer_ref: dict, tokenizer, temperature: float, batch_size: int | None = None,
                          bf16: bool = False):
    """Intuitor's reward as the published code computes it: one extra full forward pass of the policy,
    `batch_size` rows at a time (None: all at once), under bf16 autocast when training is bf16."""

    def self_certainty(prompts, completions, completion_ids, **kwargs):
        model = trainer_ref["trainer"].model
        device = next(model.parameters()).device
        tokenizer.padding_side = "left"
        step = batch_size or len(prompts)
        rewards = []
        for start in range(0, len(prompts), step):
            rows = slice(start, start + step)
            rewards += _self_certainty_rows(model, tokenizer, prompts[rows], completion_ids[rows], device,
                                            temperature, bf16)
        return rewards

    return self_certainty


def _self_certainty_rows(model, tokenizer, prompts, completion_ids, device, temperature, bf16) -> list[float]:
    import torch

    prompt = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    T = max(len(c) for c in completion_ids)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([c + [pad] * (T - len(c)) for c in completion_ids])
    mask = torch.tensor([[1] * len(c) + [0] * (T - len(c)) for c in completion_ids])
    input_ids = torch.cat([prompt["input_ids"], ids], 1).to(device)
    attention = torch.cat([prompt["attention_mask"], mask], 1).to(device)
    P = prompt["input_ids"].shape[1]
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=input_ids, attention_mask=attention).logits  # [B, P+T, V], all positions
        z = logits[:, P - 1:-1].float() / temperature  # position P-1+t predicts completion token t
        sc = torch.logsumexp(z, -1) - z.mean(-1) - math.log(z.shape[-1])
        mask = mask.to(device).float()
        return ((sc * mask).sum(-1) / mask.sum(-1).clamp(min=1)).tolist()


def run_trl(settings: StepSettings, out: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    s, meter = settings, meter_for(settings.device)
    rows = [json.loads(line) for line in Path(s.data).read_text().splitlines()]
    dataset = Dataset.from_list([{"prompt": r["prompt"]} for r in rows])
    tokenizer = PreTrainedTokenizerFast.from_pretrained(s.model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(s.model_dir, dtype="float32")
    config = GRPOConfig(
        output_dir=str(out), seed=0, max_steps=s.steps + 1,
        per_device_train_batch_size=s.per_device_batch, gradient_accumulation_steps=s.accumulation,
        num_generations=s.num_generations, max_completion_length=s.max_completion_length,
        temperature=TEMPERATURE, top_p=1.0, top_k=0, beta=0.0, num_iterations=1,
        learning_rate=LEARNING_RATE, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        optim="adamw_torch", adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0,
        epsilon=0.2, loss_type="dapo", scale_rewards="group",
        bf16=s.bf16, fp16=False, use_cpu=s.device == "cpu", gradient_checkpointing=s.gradient_checkpointing,
        save_strategy="no", report_to="none",
        logging_steps=1, log_completions=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    holder: dict = {}
    reward = self_certainty_reward(holder, tokenizer, TEMPERATURE, batch_size=s.micro_batch, bf16=s.bf16)
    steps: list[dict] = []
    state: dict = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, *a, **k):
            state["before"] = meter.reset_peak()

        def on_step_begin(self, *a, **k):
            state["start"] = meter.now()

        def on_step_end(self, *a, **k):
            steps.append({"seconds": meter.now() - state["start"]})

        def on_log(self, args_, st, control, logs=None, **k):
            if logs and "completions/mean_length" in logs and len(steps) >= 1:
                steps[-1]["length"] = logs["completions/mean_length"]
                steps[-1]["self_certainty"] = logs.get("rewards/self_certainty/mean")

    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[Timer()])
    holder["trainer"] = trainer
    trainer.train()
    return {"steps": steps, "peak_delta": meter.peak() - state["before"], "peak": meter.peak(), "clock": meter.clock}


# ------------------------------------------------------------------ driver


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    settings = StepSettings(**json.loads(args.settings))
    run = run_ours if args.child == "ours" else run_trl
    result = run(settings, Path(args.workdir) / f"out-{args.child}")
    print("RESULT_JSON " + json.dumps(result))


def run_in_child(name: str, settings: StepSettings, workdir: str, threads: int = 1,
                 timeout: float | None = None) -> dict:
    """One trainer ("ours" or "trl") in a fresh process: its own allocator and peaks, nothing
    shared with the other. Raises RuntimeError with the tail of the child's stderr if it fails."""
    cmd = [sys.executable, __file__, "--child", name, "--workdir", workdir, "--threads", str(threads),
           "--settings", json.dumps(asdict(settings))]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT_JSON ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT_JSON "):])


def summarise(name: str, results: list[dict]) -> dict:
    """Per run: median over the timed steps (the first step warms up); across runs: the least disturbed."""
    runs = []
    for result in results:
        timed = result["steps"][1:]
        runs.append({"seconds": statistics.median(s["seconds"] for s in timed),
                     "length": statistics.mean(s.get("length", float("nan")) for s in timed),
                     "peak_delta": result["peak_delta"], "peak": result["peak"]})
    best = min(runs, key=lambda r: r["seconds"])
    summary = {**best, "peak_delta": max(r["peak_delta"] for r in runs), "peak": max(r["peak"] for r in runs),
               "all": [round(r["seconds"], 3) for r in runs], "clock": results[0]["clock"]}
    print(f"  {name:5s} {summary['seconds']:.3f} {summary['clock']}/step (runs: {summary['all']})  "
          f"mean completion length {summary['length']:.1f}  "
          f"peak +{summary['peak_delta'] / 2**20:.0f} MiB during training (absolute {summary['peak'] / 2**20:.0f} MiB)")
    return summary


def compare(ours: dict, trl: dict) -> dict:
    """The two RESULT figures of summaries `ours` and `trl`: speed (TRL s ÷ ours) and training memory
    (ours ÷ TRL), printed and returned."""
    speed = trl["seconds"] / ours["seconds"]
    memory = ours["peak_delta"] / max(trl["peak_delta"], 1)
    print(f"RESULT step_time_vs_trl ratio={speed:.3f} ours_s={ours['seconds']:.3f} trl_s={trl['seconds']:.3f} "
          f"clock={ours['clock']} ours_len={ours['length']:.1f} trl_len={trl['length']:.1f} "
          f"target>={TARGET_SPEED:g} met={speed >= TARGET_SPEED}")
    print(f"RESULT step_memory_vs_trl ratio={memory:.2f} ours_mib={ours['peak_delta'] / 2**20:.0f} "
          f"trl_mib={trl['peak_delta'] / 2**20:.0f} abs_ratio={ours['peak'] / trl['peak']:.2f} "
          f"target<=1 met={memory <= 1}")
    return {"speed": speed, "memory": memory, "absolute_memory": ours["peak"] / trl["peak"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after one warm-up step)")
    parser.add_argument("--prompts-per-step", type=int, default=4)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each trainer")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on both sides (default: off on both)")
    parser.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    try:
        import trl
    except ImportError:
        print("this benchmark needs TRL: pip install -e .[bench]", file=sys.stderr)
        sys.exit(2)

    print(f"Intuitor step, tiny-random: {args.prompts_per_step} prompts × G {args.num_generations}, "
          f"≤{args.max_completion_length} new tokens, gradient checkpointing "
          f"{'on' if args.gradient_checkpointing else 'off'} on both, TRL {trl.__version__}, "
          f"{args.threads} thread(s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data = prepare(Path(tmp), num_prompts=max(64, args.prompts_per_step * (args.steps + 1)))
        settings = StepSettings(model_dir=str(model_dir), data=str(data), steps=args.steps,
                                prompts_per_step=args.prompts_per_step, num_generations=args.num_generations,
                                max_completion_length=args.max_completion_length,
                                gradient_checkpointing=args.gradient_checkpointing)
        results: dict[str, list[dict]] = {"ours": [], "trl": []}
        for name in [n for _ in range(args.rounds) for n in ("ours", "trl")]:
            try:
                results[name].append(run_in_child(name, settings, tmp, args.threads))
            except RuntimeError as error:
                sys.exit(str(error))
        summaries = {name: summarise(name, runs) for name, runs in results.items()}
    compare(summaries["ours"], summaries["trl"])


if __name__ == "__main__":
    main()
