"""A long run, measured: resident memory and time per step over thousands of steps.

    nice -n 19 python scripts/soak.py                       # both recipes (tiny-math GRPO 2,000 steps, AZR 300)
    python scripts/soak.py --recipe grpo --steps 2000 --output-dir runs/soak
    python scripts/soak.py --summarise runs/soak/grpo/soak.jsonl   # the figures of a run so far (or cut short)

Each recipe runs as the user runs it (`selftaught train --config ... --set max_steps=N`, checkpoints
every `--save-steps` steps, the newest two kept), in its own process. This script watches from
outside: whenever a new row lands in the run's metrics.jsonl it samples the trainer's resident set
size (VmRSS from /proc) and that of every process below it (the math-verify worker, AZR's sandbox),
the CPU time the trainer used since the previous row (utime + stime from /proc: on a machine shared
with other jobs this moves far less than wall time), and takes the step's own wall time
(`time/step_s`) and mean completion length from the row.

The first `--warmup` fraction of the steps is warm-up (caches filling, the allocator settling, the
policy's completion lengths moving while it learns). After it, the figures compare the first and
the last window of `--window` steps:

- memory growth: median trainer RSS over the last window − median over the first (MB);
- step-time drift: median `time/step_s` of the last window / that of the first − 1, and the same
  for the trainer's CPU seconds per step. Step time follows completion length (a policy that
  learns to write longer answers is slower per step, by design), so the drift of time per
  generated token is printed beside it.

Targets (issue 24): growth ≤ 50 MB, drift ≤ 10 %. Every sample goes to `<output-dir>/<recipe>/soak.jsonl`;
the summary is printed and written to `<output-dir>/<recipe>/soak_summary.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selftaught.executor.proctree import descendants  # noqa: E402

RECIPES = {"grpo": ("configs/grpo_tiny.yaml", 2000), "azr": ("configs/azr_tiny.yaml", 300)}
GROWTH_TARGET_MB = 50.0
DRIFT_TARGET = 0.10


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def new_rows(path: Path, offset: int) -> tuple[list[dict], int]:
    """Complete JSON lines appended to `path` since byte `offset`, and the new offset."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
    rows = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return rows, offset + end


def run(recipe: str, steps: int, output_dir: Path, save_steps: int) -> list[dict]:
    """Train `recipe` for `steps` steps; one sample per step."""
    config, _ = RECIPES[recipe]
    run_dir = output_dir / recipe
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "selftaught", "train", "--config", str(ROOT / config), "--quiet",
               "--set", f"max_steps={steps}", "--set", f"output_dir={run_dir}",
               "--set", f"save_steps={save_steps}", "--set", "save_total_limit=2"]
    print(" ".join(command), flush=True)
    log = open(run_dir / "train.log", "w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    samples, offset, started = [], 0, time.monotonic()
    cpu_before, step_before = cpu_seconds(process.pid), 0
    metrics = run_dir / "metrics.jsonl"
    metrics.unlink(missing_ok=True)
    with open(run_dir / "soak.jsonl", "w") as out:
        while True:
            done = process.poll() is not None
            rows, offset = new_rows(metrics, offset)
            cpu_now = cpu_seconds(process.pid)
            for row in rows:
                # the CPU since the last look, shared evenly by the rows that arrived since
                cpu_per_step = (cpu_now - cpu_before) / max(rows[-1]["step"] - step_before, 1)
                sample = {"step": row["step"], "elapsed_s": time.monotonic() - started, "cpu_s": cpu_per_step,
                          "rss_mb": rss_mb(process.pid),
                          "children_rss_mb": sum(rss_mb(pid) for pid, _ in descendants(process.pid)),
                          "step_s": row["time/step_s"], "completion_length": row["completion_length/mean"]}
                samples.append(sample)
                out.write(json.dumps(sample) + "\n")
                out.flush()
                if sample["step"] % max(steps // 20, 1) == 0:
                    print(f"{recipe} step {sample['step']}/{steps}: rss {sample['rss_mb']:.0f} MB "
                          f"(+{sample['children_rss_mb']:.0f} MB below it), {sample['step_s']:.2f} s/step", flush=True)
            if rows:
                cpu_before, step_before = cpu_now, rows[-1]["step"]
            if done:
                break
            time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(f"{recipe}: the run exited with {process.returncode}; see {run_dir / 'train.log'}")
    return samples


def summarise(recipe: str, samples: list[dict], warmup: float, window: float) -> dict:
    """Memory growth and step-time drift between the first and last window after warm-up."""
    n = len(samples)
    start = int(n * warmup)
    size = max(int(n * window), 1)
    first, last = samples[start:start + size], samples[-size:]

    def median(rows, key):
        return statistics.median(r[key] for r in rows)

    def per_token(rows):
        return statistics.median(r["step_s"] / max(r["completion_length"], 1e-9) for r in rows)

    growth = median(last, "rss_mb") - median(first, "rss_mb")
    drift = median(last, "step_s") / median(first, "step_s") - 1
    has_cpu = all("cpu_s" in r for r in samples)  # samples from before the script sampled it have none
    cpu_drift = median(last, "cpu_s") / median(first, "cpu_s") - 1 if has_cpu else float("nan")
    summary = {
        "recipe": recipe, "steps": n, "warmup_steps": start, "window_steps": size,
        "rss_mb": {"first": median(first, "rss_mb"), "last": median(last, "rss_mb"),
                   "max": max(r["rss_mb"] for r in samples[start:])},
        "children_rss_mb": {"first": median(first, "children_rss_mb"), "last": median(last, "children_rss_mb")},
        "memory_growth_mb": growth,
        "step_s": {"first": median(first, "step_s"), "last": median(last, "step_s")},
        "step_time_drift": drift,
        "cpu_s": {"first": median(first, "cpu_s"), "last": median(last, "cpu_s")} if has_cpu else None,
        "cpu_time_drift": cpu_drift,
        "completion_length": {"first": median(first, "completion_length"), "last": median(last, "completion_length")},
        "time_per_token_drift": per_token(last) / per_token(first) - 1,
        "growth_target_met": growth <= GROWTH_TARGET_MB, "drift_target_met": drift <= DRIFT_TARGET,
        "wall_s": samples[-1]["elapsed_s"],
    }
    cpu_text = (f"trainer CPU per step {summary['cpu_s']['first']:.3f} → {summary['cpu_s']['last']:.3f} s "
                f"(drift {100 * cpu_drift:+.1f}%)" if has_cpu else "CPU per step not sampled")
    print(f"{recipe}: {n} steps, warm-up {start}, windows of {size}: trainer RSS {summary['rss_mb']['first']:.1f} → "
          f"{summary['rss_mb']['last']:.1f} MB (growth {growth:+.1f} MB, target ≤ {GROWTH_TARGET_MB:.0f}: "
          f"{'met' if summary['growth_target_met'] else 'MISSED'}); below it {summary['children_rss_mb']['first']:.0f} → "
          f"{summary['children_rss_mb']['last']:.0f} MB; step time {summary['step_s']['first']:.3f} → "
          f"{summary['step_s']['last']:.3f} s (drift {100 * drift:+.1f}%, target ≤ {100 * DRIFT_TARGET:.0f}%: "
          f"{'met' if summary['drift_target_met'] else 'MISSED'}); {cpu_text}; completion length "
          f"{summary['completion_length']['first']:.1f} → {summary['completion_length']['last']:.1f}, time per "
          f"token drift {100 * summary['time_per_token_drift']:+.1f}%; wall {summary['wall_s'] / 60:.1f} min", flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", choices=[*RECIPES, "both"], default="both")
    parser.add_argument("--steps", type=int, default=None, help="default: 2000 for grpo, 300 for azr")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "runs" / "soak")
    parser.add_argument("--save-steps", type=int, default=None, help="default: a checkpoint every steps/20")
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps that is warm-up")
    parser.add_argument("--window", type=float, default=0.1, help="fraction of the steps in each compared window")
    parser.add_argument("--summarise", type=Path, metavar="SOAK_JSONL", help="only print the figures of these samples")
    args = parser.parse_args()
    if args.summarise:
        samples = [json.loads(line) for line in args.summarise.read_text().splitlines() if line.strip()]
        summarise(args.summarise.parent.name, samples, args.warmup, args.window)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for recipe in RECIPES if args.recipe == "both" else [args.recipe]:
        steps = args.steps or RECIPES[recipe][1]
        samples = run(recipe, steps, args.output_dir, args.save_steps or max(steps // 20, 1))
        summary = summarise(recipe, samples, args.warmup, args.window)
        (args.output_dir / recipe / "soak_summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
