"""The GPU check: one command that turns a short, offline loan of a CUDA machine into the figures
users ask for. Run it through `scripts/gpu_check.sh OUT_DIR` (which installs the wheels that
`scripts/gpu_wheels.sh` prepared); `--dry-run` runs every part with tiny shapes on the CPU
(CI does, so the check cannot rot before a GPU comes). docs/gpu.md says what it measures and
what it found.

Parts, each in its own child processes (fresh allocator peaks, nothing shared), run in the order
1, 2, 4, 3 (the step's timings last, taking whatever time is left):

1. cuda_tests: the test suite's `cuda`-marked tests (tests/test_cuda.py) on the device: bf16
   log-probs, self-certainty and entropy against an fp64 brute force, a GRPO step and a LoRA
   step against the same step in fp32 on the CPU, gradient checkpointing.
2. fused_logprobs: the fused log-prob path against the straightforward one at V = 151,936,
   H = 1536, T = 8,192 under bf16 autocast (benchmarks/bench_logprobs.py): time, memory,
   agreement, and the fused path at larger chunks than the default.
3. intuitor_step: an Intuitor step at Qwen2.5-1.5B's shapes (random weights from its config,
   no download; 8 prompts × G 8, completions of up to 512 tokens, micro-batches of 16, bf16),
   with and without gradient checkpointing: the time split (generate / score / update), peak
   memory, tokens/s and the update's model-FLOPs utilisation against the device's bf16 peak;
   TRL's GRPOTrainer plus the extra self-certainty pass on the same model and settings
   (benchmarks/bench_step_vs_trl.py), and the ratios. Skipped, with the reason, where TRL does
   not import (and always in a dry run: CI has no TRL).
4. recipe: the demo's GRPO recipe (configs/grpo_tiny.yaml) on `tiny-math` for 40 steps on the
   device and, at the same time, on the CPU (CUDA hidden from that process); each measures the
   base and its trained model on 200 held-out problems × 8 samples (`addition_figures`). The
   device's trained pass@1 must match the CPU's within their 95% intervals.

Writes OUT_DIR/gpu_check.json (every figure, each part's status and seconds) and
OUT_DIR/gpu_check.md (a short summary) after every part, so a run cut short keeps what it
measured; the children's output goes to OUT_DIR/logs/. Exit status 0 when no part failed (a
part skipped for a stated reason is not a failure), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

# Qwen2.5-1.5B's architecture (its config.json), initialised at random: the shapes, not the weights.
QWEN2_5_1_5B = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
                "num_key_value_heads": 2, "vocab_size": 151_936, "max_position_embeddings": 32_768,
                "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
TINY_QWEN2 = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 512,
              "rope_theta": 10_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}

# Dense bf16 tensor-core peaks (vendor data sheets, without sparsity), by device-name fragment; the
# first fragment the name contains wins (so "H100 PCIe" before "H100").
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.4), ("H200", 989.4), ("H100", 989.4),
                    ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.1), ("A10G", 70.0), ("L4", 121.0))


@dataclass(frozen=True)
class Shapes:
    """Everything the parts size: the full check's, or the dry run's tiny ones."""

    device: str
    model: dict
    prompts_per_step: int
    num_generations: int
    completion_tokens: int
    micro_batch: int
    timed_steps: int
    logprob_tokens: int
    logprob_hidden: int
    logprob_vocab: int
    logprob_rounds: int
    logprob_chunk_sweep: tuple
    recipe_steps: int
    heldout_problems: int
    heldout_samples: int
    child_threads: int


FULL = Shapes(device="cuda", model=QWEN2_5_1_5B, prompts_per_step=8, num_generations=8, completion_tokens=512,
              micro_batch=16, timed_steps=2, logprob_tokens=8192, logprob_hidden=1536, logprob_vocab=151_936,
              logprob_rounds=1, logprob_chunk_sweep=(1536, 4096), recipe_steps=40, heldout_problems=200,
              heldout_samples=8, child_threads=4)
DRY = Shapes(device="cpu", model=TINY_QWEN2, prompts_per_step=2, num_generations=2, completion_tokens=8,
             micro_batch=2, timed_steps=1, logprob_tokens=256, logprob_hidden=64, logprob_vocab=1000,
             logprob_rounds=1, logprob_chunk_sweep=(32,), recipe_steps=2, heldout_problems=6, heldout_samples=2,
             child_threads=1)


# ------------------------------------------------------------------ the report


@dataclass
class Check:
    """The run: where it writes, what it has found, how much time is left."""

    out: Path
    shapes: Shapes
    dry_run: bool
    deadline: float
    results: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def remaining(self) -> float:
        return self.deadline - time.time()

    def log(self, name: str) -> Path:
        (self.out / "logs").mkdir(parents=True, exist_ok=True)
        return self.out / "logs" / f"{name}.log"

    def run_part(self, name: str, part, minimum_s: float) -> None:
        """Run `part(check)` and record its figures; a part that raises is recorded as an error
        (its traceback in the JSON), one without `minimum_s` seconds left as skipped."""
        started = time.time()
        if self.remaining() < minimum_s:
            result = {"status": "skipped", "reason": f"out of time ({self.remaining():.0f} s left, needs "
                                                    f"{minimum_s:.0f} s)"}
        else:
            print(f"gpu_check: {name} ...", flush=True)
            try:
                result = part(self)
            except Exception as error:  # one part's failure must not lose the others' figures
                result = {"status": "error", "error": f"{type(error).__name__}: {error}"[-2000:],
                          "traceback": traceback.format_exc()[-4000:]}
        result["seconds"] = round(time.time() - started, 1)
        self.results[name] = result
        print(f"gpu_check: {name}: {result['status']} ({result['seconds']} s)", flush=True)
        self.write()

    def write(self) -> None:
        record = {"check": "gpu_check", "dry_run": self.dry_run, "shapes": self.shapes.__dict__,
                  "elapsed_s": round(time.time() - self.started, 1), "parts": self.results}
        (self.out / "gpu_check.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        (self.out / "gpu_check.md").write_text(summary_markdown(record))

    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if r["status"] in ("failed", "error")]


def child(check: Check, name: str, command: list[str], timeout: float, env: dict | None = None
          ) -> subprocess.CompletedProcess:
    """A child process with its output in logs/<name>.log; killed at `timeout` seconds."""
    with check.log(name).open("w") as log:
        return subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
                              timeout=max(1.0, timeout), env={**os.environ, **(env or {})})


# ------------------------------------------------------------------ 0. environment


def environment(check: Check) -> dict:
    code = ("import json, platform, torch, transformers, accelerate\n"
            "info = {'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda,\n"
            "        'transformers': transformers.__version__, 'accelerate': accelerate.__version__,\n"
            "        'device_available': torch.cuda.is_available(), 'cpus': __import__('os').cpu_count()}\n"
            "if torch.cuda.is_available():\n"
            "    p = torch.cuda.get_device_properties(0)\n"
            "    info.update(device=p.name, device_memory_gib=round(p.total_memory / 2**30, 1),\n"
            "                bf16_supported=torch.cuda.is_bf16_supported(), device_count=torch.cuda.device_count())\n"
            "for name in ('peft', 'trl', 'datasets', 'pyarrow', 'tensorboard'):\n"
            "    try:\n"
            "        info[name] = __import__(name).__version__\n"
            "    except Exception as error:\n"
            "        info[name] = None\n"
            "print(json.dumps(info))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode:
        return {"status": "error", "error": done.stderr[-2000:]}
    info = json.loads(done.stdout.strip().splitlines()[-1])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    info["commit"] = commit.stdout.strip() or None
    info["bf16_peak_tflops"] = bf16_peak_tflops(info.get("device"))
    if check.shapes.device == "cuda" and not info["device_available"]:
        return {"status": "failed", "error": "torch sees no CUDA device (run with --dry-run on a CPU)", **info}
    return {"status": "ok", **info}


def bf16_peak_tflops(device_name: str | None) -> float | None:
    for fragment, tflops in BF16_PEAK_TFLOPS:
        if device_name and fragment in device_name:
            return tflops
    return None


# ------------------------------------------------------------------ 1. the CUDA-marked tests


def cuda_tests(check: Check) -> dict:
    xml = check.out / "cuda_tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-q", "-s", "-rs",
               "-p", "no:cacheprovider", f"--junitxml={xml}"]
    done = child(check, "cuda_tests", command, timeout=min(300, check.remaining() - 30),
                 env={"SELFTAUGHT_TEST_DEVICE": check.shapes.device, "TOKENIZERS_PARALLELISM": "false"})
    cases = []
    if xml.is_file():
        for case in ElementTree.parse(xml).getroot().iter("testcase"):
            outcome = next((tag.tag for tag in case if tag.tag in ("failure", "error", "skipped")), "passed")
            cases.append({"test": case.get("name"), "outcome": outcome, "seconds": float(case.get("time", 0))})
    figures = [line.strip() for line in check.log("cuda_tests").read_text().splitlines() if ": relative" in line]
    passed = sum(c["outcome"] == "passed" for c in cases)
    ok = done.returncode == 0 and cases and passed == len(cases)  # a skip here means the device was missing
    return {"status": "ok" if ok else "failed", "device": check.shapes.device, "passed": passed,
            "total": len(cases), "exit_code": done.returncode, "figures": figures, "tests": cases}


# ------------------------------------------------------------------ 2. fused log-probs


def fused_logprobs(check: Check) -> dict:
    import bench_logprobs

    s = check.shapes
    args = bench_logprobs.parser().parse_args([
        "--device", s.device, "--autocast", "bf16", "--tokens", str(s.logprob_tokens), "--hidden",
        str(s.logprob_hidden), "--vocab", str(s.logprob_vocab), "--skip-chunked-op", "--rounds", str(s.logprob_rounds),
        "--fused-chunk-sizes", *map(str, s.logprob_chunk_sweep)])
    result = bench_logprobs.measure_paths(args)
    # The values must agree (correctness); time and memory are findings, with the CPU targets' met flags.
    agree = result["logprobs"]["met"]["values"] and result["logprobs_loss"]["met"]["values"]
    return {"status": "ok" if agree else "failed", "autocast": "bf16", "tokens": s.logprob_tokens,
            "hidden": s.logprob_hidden, "vocab": s.logprob_vocab, **result}


# ------------------------------------------------------------------ 3. an Intuitor step, and TRL's


def build_random_model(check: Check, directory: Path) -> Path:
    """A Qwen2 of the shapes' architecture with random weights, saved in bf16, with the built-in
    tokenizer (ids it does not know decode to nothing, which is what a random model's text is
    worth). Built in a child, on the device (initialising 1.5B parameters on a CPU is slow)."""
    if not (directory / "config.json").is_file():
        done = child(check, "build_model", [sys.executable, __file__, str(directory), "--build-model",
                                            json.dumps(check.shapes.model), "--device", check.shapes.device],
                     timeout=min(300, check.remaining() - 60))
        if done.returncode:
            raise RuntimeError(f"building the random model failed (logs/build_model.log): exit {done.returncode}")
    return directory


def build_model_child(directory: Path, architecture: dict, device: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from bench_step_vs_trl import save_with_eos_ids
    from selftaught.models import load_model

    _, tokenizer = load_model("tiny-random")
    config = Qwen2Config(**architecture, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    save_with_eos_ids(model.cpu(), tokenizer, directory)


def update_flops(model: dict, prompt_lengths: list[int], completion_lengths: list[int]) -> float:
    """Model FLOPs of one update (forward + backward = 3 × forward) over these rows.

    Per token of a sequence of n tokens, forward: 2 × the decoder's matmul parameters
    (q, k, v, o, and the gated MLP's three, in every layer), plus causal attention 2·n·H per
    layer (QKᵀ and AV, half the n² pairs each); the head (2·V·H) only for the completion
    tokens (only their positions reach it). Recomputation under gradient checkpointing is not
    counted (model FLOPs, not hardware FLOPs).
    """
    H, layers, inner = model["hidden_size"], model["num_hidden_layers"], model["intermediate_size"]
    kv = H // model["num_attention_heads"] * model["num_key_value_heads"]
    per_token = 2 * layers * (2 * H * H + 2 * H * kv + 3 * H * inner)
    forward = 0.0
    for p, c in zip(prompt_lengths, completion_lengths):
        n = p + c
        forward += per_token * n + 2 * layers * n * n * H + 2 * model["vocab_size"] * H * c
    return 3 * forward


def step_figures(result: dict, shapes: Shapes, peak_tflops: float | None) -> dict:
    """Medians over the timed steps of one run (the first step warms up) and what follows from them."""
    timed = result["steps"][1:]
    figures = {"seconds": statistics.median(s["seconds"] for s in timed),
               "completion_length": statistics.mean(s.get("length", float("nan")) for s in timed),
               "peak_gib": result["peak"] / 2**30, "training_gib": result["peak_delta"] / 2**30}
    if "generate_s" in timed[0]:  # ours: the trainer's own split
        update = [s["wall_s"] - s["generate_s"] - s["score_s"] for s in timed]  # wall clocks, all three
        flops = [update_flops(shapes.model, s["prompt_lengths"], s["completion_lengths"]) for s in timed]
        completion_tokens = [sum(s["completion_lengths"]) for s in timed]
        tokens = [sum(s["prompt_lengths"]) + c for s, c in zip(timed, completion_tokens)]
        figures.update(
            generate_s=statistics.median(s["generate_s"] for s in timed),
            score_s=statistics.median(s["score_s"] for s in timed), update_s=statistics.median(update),
            generated_tokens_per_s=statistics.median(c / s["generate_s"] for c, s in zip(completion_tokens, timed)),
            trained_tokens_per_s=statistics.median(t / u for t, u in zip(tokens, update)),
            step_tokens_per_s=statistics.median(t / s["seconds"] for t, s in zip(tokens, timed)),
            update_tflops=statistics.median(f / u / 1e12 for f, u in zip(flops, update)),
            decode_path=result.get("decode_path"))
        figures["update_mfu"] = None if peak_tflops is None else figures["update_tflops"] / peak_tflops
    return figures


def trl_unavailable(check: Check) -> str | None:
    """Why TRL's comparison cannot run here, or None."""
    if check.dry_run:
        return "dry run: the TRL comparison is not run (CI has no TRL environment)"
    done = subprocess.run([sys.executable, "-c", "import trl, datasets, pyarrow, pandas"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        return "TRL does not import here: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return None


def intuitor_step(check: Check) -> dict:
    from bench_step_vs_trl import StepSettings, run_in_child, write_prompts

    s, work = check.shapes, check.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    peak = check.results.get("environment", {}).get("bf16_peak_tflops")
    model_dir = build_random_model(check, work / "random-qwen2")
    data = write_prompts(work / "prompts.jsonl", s.prompts_per_step * (s.timed_steps + 1) * 4)
    skip_trl = trl_unavailable(check)
    runs, status = {}, "ok"
    for checkpointing in (False, True):
        for trainer in ("ours", "trl"):
            key = f"{trainer}{'_gradient_checkpointing' if checkpointing else ''}"
            if trainer == "trl" and skip_trl:
                runs[key] = {"status": "skipped", "reason": skip_trl}
                continue
            if check.remaining() < 60:
                runs[key] = {"status": "skipped", "reason": f"out of time ({check.remaining():.0f} s left)"}
                continue
            settings = StepSettings(model_dir=str(model_dir), data=str(data), steps=s.timed_steps,
                                    prompts_per_step=s.prompts_per_step, num_generations=s.num_generations,
                                    max_completion_length=s.completion_tokens, micro_batch=s.micro_batch, bf16=True,
                                    gradient_checkpointing=checkpointing, device=s.device)
            try:
                result = run_in_child(trainer, settings, str(work), threads=s.child_threads,
                                      timeout=check.remaining() - 20)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                check.log(f"intuitor_step_{key}").write_text(str(error))
                runs[key] = {"status": "failed", "error": str(error)[-2000:]}
                status = "failed"
                continue
            runs[key] = {"status": "ok", **step_figures(result, s, peak)}
    ratios = {}
    for suffix in ("", "_gradient_checkpointing"):
        ours, trl = runs.get(f"ours{suffix}", {}), runs.get(f"trl{suffix}", {})
        if ours.get("status") == trl.get("status") == "ok":
            ratios[f"trl_over_ours_time{suffix}"] = trl["seconds"] / ours["seconds"]
            ratios[f"ours_over_trl_training_memory{suffix}"] = ours["training_gib"] / trl["training_gib"]
    return {"status": status, "model": "Qwen2.5-1.5B architecture, random weights" if s.device == "cuda"
            else "tiny Qwen2, random weights", "prompts_per_step": s.prompts_per_step,
            "num_generations": s.num_generations, "max_completion_tokens": s.completion_tokens,
            "micro_batch": s.micro_batch, "precision": "bf16 autocast, fp32 weights", "bf16_peak_tflops": peak,
            "runs": runs, "ratios": ratios}


# ------------------------------------------------------------------ 4. the demo's GRPO recipe, device vs CPU


def recipe_command(check: Check, device: str) -> list[str]:
    s = check.shapes
    return [sys.executable, __file__, "--recipe-child", str(check.out / f"recipe-{device}"), "--steps",
            str(s.recipe_steps), "--problems", str(s.heldout_problems), "--samples", str(s.heldout_samples)]


def start_cpu_recipe(check: Check) -> subprocess.Popen:
    """The CPU side of part 4, started first: it needs only CPU cores, and runs while the others use the device."""
    log = check.log("recipe_cpu").open("w")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(recipe_command(check, "cpu"), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def recipe(check: Check, cpu: subprocess.Popen) -> dict:
    done = child(check, "recipe_device", recipe_command(check, "device"), timeout=check.remaining() - 15,
                 env={"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    try:
        cpu.wait(timeout=max(1.0, check.remaining() - 5))
    except subprocess.TimeoutExpired:
        cpu.kill()
        cpu.wait()
    sides = {}
    for side, code in (("device", done.returncode), ("cpu", cpu.returncode)):
        path = check.out / f"recipe-{side}" / "recipe.json"
        sides[side] = json.loads(path.read_text()) if code == 0 and path.is_file() else {"exit_code": code}
    if any("trained" not in side for side in sides.values()):
        return {"status": "failed", **sides}
    device, cpu_side = sides["device"]["trained"], sides["cpu"]["trained"]
    overlap = device["low"] <= cpu_side["high"] and cpu_side["low"] <= device["high"]
    return {"status": "ok" if overlap else "failed", "trained_intervals_overlap": overlap,
            "recipe": "configs/grpo_tiny.yaml", "steps": check.shapes.recipe_steps, **sides}


def recipe_child(out: Path, steps: int, problems: int, samples: int) -> None:
    """Train the demo's GRPO recipe here (whatever device torch sees) and measure base and trained."""
    import torch

    from selftaught.config import build_config, set_all_dotted
    from selftaught.recipes import load_recipe
    from selftaught.tiny.competence import addition_figures
    from selftaught.trainer import Trainer

    def pass_at_1(model: str, name: str) -> dict:
        accuracy = addition_figures(model, problems, "heldout", out / name, samples=samples)["accuracy"]["pass@1"]
        return {key: accuracy[key] for key in ("value", "low", "high")}

    raw = set_all_dotted(load_recipe("grpo_tiny.yaml"), {"output_dir": str(out / "train"), "max_steps": steps,
                                                          "save_steps": steps, "progress_bar": False})
    base = pass_at_1(raw["model"]["name_or_path"], "base")
    trainer = Trainer(build_config(raw))
    started = time.perf_counter()
    history = trainer.train()
    seconds = time.perf_counter() - started
    trained = pass_at_1(str(out / "train"), "trained")
    rewards = [row["rewards/math_answer/mean"] for row in history]
    window = max(1, len(rewards) // 4)
    record = {"device": trainer.accelerator.device.type,
              "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
              "mixed_precision": trainer.accelerator.mixed_precision, "base": base, "trained": trained,
              "gain": trained["value"] - base["value"], "train_s_per_step": seconds / max(1, len(history)),
              "reward_first": statistics.mean(rewards[:window]), "reward_last": statistics.mean(rewards[-window:]),
              "problems": problems, "samples": samples}
    (out / "recipe.json").write_text(json.dumps(record, indent=2) + "\n")


# ------------------------------------------------------------------ the summary


def _figure(value, digits=2, suffix=""):
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def summary_markdown(record: dict) -> str:
    parts = record["parts"]
    lines = [f"# GPU check{' (dry run: tiny shapes on the CPU)' if record['dry_run'] else ''}", ""]
    env = parts.get("environment", {})
    if env:
        lines += [f"{env.get('device', 'cpu')}, torch {env.get('torch')} (CUDA {env.get('cuda')}), transformers "
                  f"{env.get('transformers')}, accelerate {env.get('accelerate')}, peft {env.get('peft')}, "
                  f"trl {env.get('trl')}; commit {env.get('commit')}; {record['elapsed_s']} s in all.", ""]
    lines += ["| part | status | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {r['status']}{': ' + r['reason'] if r.get('reason') else ''} | {r.get('seconds', '')} |"
              for name, r in parts.items()]
    tests = parts.get("cuda_tests", {})
    if "total" in tests:
        lines += ["", f"**CUDA-marked tests**: {tests['passed']} of {tests['total']} passed on {tests['device']}."]
        lines += [f"- {line}" for line in tests.get("figures", [])]
    fused = parts.get("fused_logprobs", {})
    if "logprobs" in fused:
        lines += ["", f"**Fused log-probs** (V {fused['vocab']}, H {fused['hidden']}, T {fused['tokens']}, bf16 "
                      f"autocast, {fused['rows']} rows per chunk) vs straightforward "
                      f"({fused['straightforward_s']:.3f} s, {fused['straightforward_peak_gib']:.2f} GiB):"]
        for name, label in (("logprobs", "fused op (scoring)"), ("logprobs_loss", "fused loss (update)")):
            f = fused[name]
            lines.append(f"- {label}: time {f['time_ratio']:.2f}×, memory without ∂W "
                         f"{f['memory_ratio_excl_weight_grad']:.3f}× ({f['peak_gib']:.2f} GiB with it), "
                         f"max relative difference {f['max_rel_diff']:.1e}")
        lines += [f"- {name}: time {o['time_ratio']:.2f}×, memory without ∂W {o['memory_ratio_excl_weight_grad']:.3f}×"
                  for name, o in fused.get("other_chunks", {}).items()]
    step = parts.get("intuitor_step", {})
    if "runs" in step:
        lines += ["", f"**Intuitor step** ({step['model']}, {step['prompts_per_step']} prompts × G "
                      f"{step['num_generations']}, ≤ {step['max_completion_tokens']} tokens, micro-batch "
                      f"{step['micro_batch']}, {step['precision']}):", "",
                  "| run | s/step | generate | score | update | tokens/s generated | update TFLOP/s | MFU | "
                  "peak GiB | training GiB |", "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in step["runs"].items():
            if r.get("status") != "ok":
                lines.append(f"| {name} | {r.get('status')}: {r.get('reason', r.get('error', ''))[:120]} |"
                             " | | | | | | | |")
                continue
            lines.append(f"| {name} | {r['seconds']:.2f} | {_figure(r.get('generate_s'))} | {_figure(r.get('score_s'))} | "
                         f"{_figure(r.get('update_s'))} | {_figure(r.get('generated_tokens_per_s'), 0)} | "
                         f"{_figure(r.get('update_tflops'), 1)} | {_figure(r.get('update_mfu'), 3)} | "
                         f"{r['peak_gib']:.1f} | {r['training_gib']:.1f} |")
        lines += [f"- {name}: {value:.2f}×" for name, value in step.get("ratios", {}).items()]
    recipe_part = parts.get("recipe", {})
    if "device" in recipe_part and "trained" in recipe_part.get("device", {}):
        lines += ["", f"**GRPO recipe** ({recipe_part['recipe']}, {recipe_part['steps']} steps), held-out pass@1 "
                      "[95% interval]:", "", "| side | base | trained | gain | s/step |", "|---|---|---|---|---|"]
        for side in ("device", "cpu"):
            r = recipe_part[side]
            lines.append(f"| {side} ({r['device']}, {r['mixed_precision']}) | {_interval(r['base'])} | "
                         f"{_interval(r['trained'])} | {r['gain']:+.3f} | {r['train_s_per_step']:.2f} |")
        lines += ["", f"Trained intervals overlap: **{recipe_part['trained_intervals_overlap']}**."]
    for name, r in parts.items():
        if r["status"] in ("failed", "error") and r.get("error"):
            lines += ["", f"**{name} {r['status']}**: `{r['error'][-300:]}`"]
    return "\n".join(lines) + "\n"


def _interval(r: dict) -> str:
    return f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="directory for gpu_check.json, gpu_check.md and logs/")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU (what CI runs)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds for all parts (default 500, dry run 1200); a part that cannot start in "
                             "what is left is skipped")
    parser.add_argument("--recipe-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build-model", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--problems", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recipe_child:
        recipe_child(args.out, args.steps, args.problems, args.samples)
        return
    if args.build_model:
        build_model_child(args.out, json.loads(args.build_model), args.device)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))  # `timeout`: unwind, so the children are killed too
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(out=args.out, shapes=DRY if args.dry_run else FULL, dry_run=args.dry_run,
                  deadline=time.time() + (args.budget_s or (1200.0 if args.dry_run else 500.0)))
    check.run_part("environment", environment, minimum_s=0)
    if check.results["environment"]["status"] != "ok":
        sys.exit(1)
    cpu_recipe = start_cpu_recipe(check)
    try:
        check.run_part("cuda_tests", cuda_tests, minimum_s=60)
        check.run_part("fused_logprobs", fused_logprobs, minimum_s=60)
        # The recipe (a correctness check, ~110 s on an H200) runs before the step timings, which take
        # whatever is left: on the first GPU run the step's four runs took 301 s and starved it.
        check.run_part("recipe", lambda c: recipe(c, cpu_recipe), minimum_s=45)
        check.run_part("intuitor_step", intuitor_step, minimum_s=120)
    finally:
        if cpu_recipe.poll() is None:
            cpu_recipe.kill()
            cpu_recipe.wait()
    print((check.out / "gpu_check.md").read_text())
    failed = check.failed()
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
