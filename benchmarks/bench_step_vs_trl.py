"""One Intuitor step: selftaught's Trainer against TRL's GRPOTrainer doing it the published way (CPU).

    pip install -e .[bench]                   # TRL ≥ 1.0, only for this script
    python benchmarks/bench_step_vs_trl.py    # tiny-random, 4 prompts × G 4, 64 new tokens, 3 × (1 warm-up + 6 timed steps)

The published Intuitor code is TRL's GRPOTrainer whose reward is self-certainty,
computed in an extra full forward pass over prompt + completion (full [B, L, V]
logits). Here that reward is a TRL reward function (`self_certainty_reward`),
online (the policy being trained), at the sampling temperature, over the tokens
up to and including EOS — what our Trainer computes inside its one scoring pass.

Equalised: the model (tiny-random saved once; both load the same weights and the
same EOS ids), the prompts (same JSONL rows, no chat template), prompts per step,
G, max completion length, temperature 0.9 / top_p 1 / top_k off, β = 0 (no
reference model), μ = 1, AdamW lr 1e-6 constant, no weight decay, clip 0.2,
grad-norm clip 1.0, token-mean loss (TRL's "dapo"), group-scaled advantages,
fp32, no checkpoints, no completion logging. Sampled lengths are not forced;
the mean completion length of each run is printed next to its time.

Each trainer runs in its own child process on one torch thread (at this size a
second OpenMP thread only adds synchronisation, and the machine may be shared).
Seconds per step are CPU seconds of the child (time.process_time; equal to wall
time on an idle core): the median over the timed steps after a warm-up step, and
of `--rounds` alternating runs the least disturbed one; wall seconds are printed
too. Memory: the child's peak resident set size during
training minus its size just before the first step (VmHWM, reset through
/proc/self/clear_refs), i.e. what training adds on top of the loaded model and
libraries (the largest over the runs); the absolute peaks are printed as well.

Prints `RESULT step_time_vs_trl ratio=<TRL s/step ÷ ours>` (target ≥ 1.5) and
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
from pathlib import Path

TEMPERATURE = 0.9
LEARNING_RATE = 1e-6


# ------------------------------------------------------------------ memory


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> int:
    """Reset the peak-RSS counter (Linux: clear_refs 5) and return the current RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


# ------------------------------------------------------------------ set-up


def prepare(workdir: Path, num_prompts: int) -> tuple[Path, Path]:
    """Save tiny-random (with its full EOS list in generation_config) and a prompt file."""
    from selftaught.data import arithmetic
    from selftaught.models import load_model
    from selftaught.rollout import eos_token_ids

    model, tokenizer = load_model("tiny-random")
    model.generation_config.eos_token_id = eos_token_ids(tokenizer, model)  # TRL reads EOS ids from here
    model_dir = workdir / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = workdir / "prompts.jsonl"
    with data.open("w") as f:
        for p in arithmetic.generate(num_prompts, split="train", seed=7):
            f.write(json.dumps({"prompt": f"Q: {p.prompt}\nA:", "answer": p.answer}) + "\n")
    return model_dir, data


# ------------------------------------------------------------------ ours


def run_ours(args, model_dir: Path, data: Path, out: Path) -> dict:
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    config = build_config({
        "output_dir": str(out), "seed": 0, "max_steps": args.steps + 1,
        "model": {"name_or_path": str(model_dir)},
        "data": {"source": str(data), "prompt_template": "{prompt}", "use_chat_template": "never"},
        "rewards": [{"name": "self_certainty", "weight": 1.0}],
        "num_generations": args.num_generations,
        "per_device_train_batch_size": args.prompts_per_step * args.num_generations,
        "max_prompt_length": 256, "max_completion_length": args.max_completion_length,
        "temperature": TEMPERATURE, "top_p": 1.0, "top_k": 0, "beta": 0.0, "num_iterations": 1,
        "learning_rate": LEARNING_RATE, "lr_scheduler_type": "constant", "warmup_ratio": 0.0,
        "weight_decay": 0.0, "max_grad_norm": 1.0, "epsilon": 0.2, "loss_type": "token_mean",
        "scale_rewards": "group", "bf16": False, "save_steps": 10**6, "log_completions": 0,
        "progress_bar": False,
    })
    trainer = Trainer(config)
    before = reset_peak()
    steps = []
    for _ in range(args.steps + 1):
        start, cpu = time.perf_counter(), time.process_time()
        rows = trainer.train_step()
        steps.append({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - start,
                      "length": rows[0]["completion_length/mean"], "self_certainty": rows[0]["self_certainty/mean"]})
    return {"steps": steps, "peak_delta": peak_rss() - before, "peak": peak_rss()}


# ------------------------------------------------------------------ TRL


def self_certainty_reward(trainer_ref: dict, tokenizer, temperature: float):
    """Intuitor's reward as the published code computes it: one extra full forward pass of the policy."""
    import torch

    def self_certainty(prompts, completions, completion_ids, **kwargs):
        model = trainer_ref["trainer"].model
        device = next(model.parameters()).device
        tokenizer.padding_side = "left"
        prompt = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        T = max(len(c) for c in completion_ids)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([c + [pad] * (T - len(c)) for c in completion_ids])
        mask = torch.tensor([[1] * len(c) + [0] * (T - len(c)) for c in completion_ids])
        input_ids = torch.cat([prompt["input_ids"], ids], 1).to(device)
        attention = torch.cat([prompt["attention_mask"], mask], 1).to(device)
        P = prompt["input_ids"].shape[1]
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=attention).logits  # [B, P+T, V], all positions
            z = logits[:, P - 1:-1].float() / temperature  # position P-1+t predicts completion token t
            sc = torch.logsumexp(z, -1) - z.mean(-1) - math.log(z.shape[-1])
            mask = mask.to(device).float()
            return ((sc * mask).sum(-1) / mask.sum(-1).clamp(min=1)).tolist()

    return self_certainty


def run_trl(args, model_dir: Path, data: Path, out: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    dataset = Dataset.from_list([{"prompt": r["prompt"]} for r in rows])
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32")
    config = GRPOConfig(
        output_dir=str(out), seed=0, max_steps=args.steps + 1,
        per_device_train_batch_size=args.prompts_per_step * args.num_generations,
        gradient_accumulation_steps=1, num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=TEMPERATURE, top_p=1.0, top_k=0, beta=0.0, num_iterations=1,
        learning_rate=LEARNING_RATE, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        optim="adamw_torch", adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0,
        epsilon=0.2, loss_type="dapo", scale_rewards="group",
        bf16=False, fp16=False, use_cpu=True, save_strategy="no", report_to="none",
        logging_steps=1, log_completions=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    holder: dict = {}
    reward = self_certainty_reward(holder, tokenizer, TEMPERATURE)
    steps: list[dict] = []
    state: dict = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, *a, **k):
            state["before"] = reset_peak()

        def on_step_begin(self, *a, **k):
            state["start"], state["cpu"] = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **k):
            steps.append({"cpu": time.process_time() - state["cpu"], "wall": time.perf_counter() - state["start"]})

        def on_log(self, args_, st, control, logs=None, **k):
            if logs and "completions/mean_length" in logs and len(steps) >= 1:
                steps[-1]["length"] = logs["completions/mean_length"]
                steps[-1]["self_certainty"] = logs.get("rewards/self_certainty/mean")

    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[Timer()])
    holder["trainer"] = trainer
    trainer.train()
    return {"steps": steps, "peak_delta": peak_rss() - state["before"], "peak": peak_rss()}


# ------------------------------------------------------------------ driver


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    workdir = Path(args.workdir)
    run = run_ours if args.child == "ours" else run_trl
    result = run(args, workdir / "model", workdir / "prompts.jsonl", workdir / f"out-{args.child}")
    print("RESULT_JSON " + json.dumps(result))


def summarise(name: str, results: list[dict]) -> dict:
    """Per run: median over the timed steps (the first step warms up); across runs: the least disturbed."""
    runs = []
    for result in results:
        timed = result["steps"][1:]
        runs.append({
            "cpu": statistics.median(s["cpu"] for s in timed),
            "wall": statistics.median(s["wall"] for s in timed),
            "length": statistics.mean(s.get("length", float("nan")) for s in timed),
            "peak_delta": result["peak_delta"], "peak": result["peak"],
        })
    best = min(runs, key=lambda r: r["cpu"])
    summary = {**best, "peak_delta": max(r["peak_delta"] for r in runs), "peak": max(r["peak"] for r in runs),
               "all_cpu": [round(r["cpu"], 3) for r in runs]}
    print(f"  {name:5s} {summary['cpu']:.3f} CPU s/step (runs: {summary['all_cpu']})  {summary['wall']:.3f} wall s/step  "
          f"mean completion length {summary['length']:.1f}  "
          f"peak +{summary['peak_delta'] / 2**20:.0f} MiB during training (absolute {summary['peak'] / 2**20:.0f} MiB)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after one warm-up step)")
    parser.add_argument("--prompts-per-step", type=int, default=4)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each trainer")
    parser.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
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
          f"≤{args.max_completion_length} new tokens, TRL {trl.__version__}, {args.threads} thread(s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), num_prompts=max(64, args.prompts_per_step * (args.steps + 1)))
        results: dict[str, list[dict]] = {"ours": [], "trl": []}
        for name in [n for _ in range(args.rounds) for n in ("ours", "trl")]:
            cmd = [sys.executable, __file__, "--child", name, "--workdir", tmp, "--steps", str(args.steps),
                   "--prompts-per-step", str(args.prompts_per_step), "--num-generations", str(args.num_generations),
                   "--max-completion-length", str(args.max_completion_length), "--threads", str(args.threads)]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT_JSON ")]
            if done.returncode or not lines:
                sys.exit(f"{name} failed:\n{done.stderr[-4000:]}")
            results[name].append(json.loads(lines[-1][len("RESULT_JSON "):]))
        summaries = {name: summarise(name, runs) for name, runs in results.items()}
    ours, ref = summaries["ours"], summaries["trl"]
    speed = ref["cpu"] / ours["cpu"]
    memory = ours["peak_delta"] / max(ref["peak_delta"], 1)
    print(f"RESULT step_time_vs_trl ratio={speed:.2f} ours_s={ours['cpu']:.3f} trl_s={ref['cpu']:.3f} "
          f"wall_ratio={ref['wall'] / ours['wall']:.2f} ours_len={ours['length']:.1f} trl_len={ref['length']:.1f} "
          f"target>=1.5 met={speed >= 1.5}")
    print(f"RESULT step_memory_vs_trl ratio={memory:.2f} ours_mib={ours['peak_delta'] / 2**20:.0f} "
          f"trl_mib={ref['peak_delta'] / 2**20:.0f} abs_ratio={ours['peak'] / ref['peak']:.2f} "
          f"target<=1 met={memory <= 1}")


if __name__ == "__main__":
    main()
