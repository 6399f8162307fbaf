"""Designs of the program model (issue #21): chain programs, and Absolute Zero self-play from them.

    python scripts/chain_model_study.py --output runs/chain_study [--split dev|heldout]   # the shipped tiny's design
    python scripts/chain_model_study.py --output runs/d6f --task-types deduction --additions 0   # design D6f
    python scripts/chain_model_study.py --output runs/chain_study --skip-build --azr-lr 1e-3   # reuse the model

1. Builds a model with `scripts/build_tiny_model.py`'s `train_model` and its settings (the defaults
   are the shipped `tiny`'s): chain programs (`selftaught.data.chains`, pretrain split) for
   `--task-types`, the solver answering step by step (the worked trace; abduction: the worked
   inversion, `chains.inversion`) or bare, in AZR's own prompt and answer formats, with cued
   documents that always take the procedure and the proposers' documents; `--additions` additions.
2. Measures each type on `--eval-n` chain programs of `--split` × `--eval-samples` samples at the
   AZR recipe's τ, with AZR's own answer checking. It reports pass@1, pass@K, majority@K, greedy,
   the procedure share and the accuracy with and without the procedure, each with 95% bootstrap
   intervals over programs.
3. Runs AZR self-play from that model (those types, the executor as the only ground truth), with
   every measured dev and held-out program excluded from training and counted. It then measures
   again and prints the per-step curves.

Rates and batch sizes are chosen with `--split dev`; the reported figures come from `--split heldout`.
Writes OUTPUT/model/, OUTPUT/azr/ and OUTPUT/study.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selftaught.config import build_config, set_all_dotted  # noqa: E402
from selftaught.data import chains  # noqa: E402
from selftaught.models import load_model  # noqa: E402
from selftaught.recipes import load_recipe  # noqa: E402
from selftaught.tiny.competence import program_figures  # noqa: E402
from selftaught.tiny.corpus import chain_tasks  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from build_tiny_model import build_arguments, train_model  # noqa: E402

EVAL_SEED = 1234
"""The evaluation programs' seed (dev and held-out alike)."""
EXCLUDED_PER_SPLIT = 1000
"""Self-play must never train on the first this-many dev and held-out programs at EVAL_SEED (a superset of
every measured set: `chains.generate` with one seed gives prefixes of one sequence)."""
CURVES = ("solve/solve_rate", "solve/tags/procedure", "propose/valid_rate")


def build(output: Path, args) -> dict:
    stats = train_model(output, args)
    settings = {k: getattr(args, k) for k in ("hidden", "steps", "programs", "examples", "step_share", "task_types",
                                              "additions", "seed")}
    return {**stats, "settings": settings}


def measure(model_dir: Path, args) -> dict:
    model, tokenizer = load_model(str(model_dir))
    tasks = chain_tasks(args.eval_n, seed=EVAL_SEED, split=args.split, task_types=tuple(args.task_types))
    return program_figures(model, tokenizer, args.eval_n, samples=args.eval_samples, seed=0, tasks=tasks)


def self_play(model_dir: Path, output: Path, args) -> tuple[list[dict], float]:
    output.mkdir(parents=True, exist_ok=True)
    excluded = output / "excluded_programs.jsonl"
    with excluded.open("w") as file:
        for split in ("dev", "heldout"):
            for item in chains.generate(EXCLUDED_PER_SPLIT, split=split, seed=EVAL_SEED):
                file.write(json.dumps({"program": item.program}) + "\n")
    settings = {"model.name_or_path": str(model_dir), "output_dir": str(output), "max_steps": args.azr_steps,
                "save_steps": args.azr_steps, "seed": args.seed, "learning_rate": args.azr_lr,
                "azr.task_types": list(args.task_types), "azr.tasks_per_type_role": args.azr_tasks,
                "azr.seed_proposals": args.azr_tasks, "azr.exclude_programs": str(excluded),
                "per_device_train_batch_size": 2 * args.azr_tasks * len(args.task_types), "report_to": "none",
                "progress_bar": False}
    started = time.time()
    history = Trainer(build_config(set_all_dotted(load_recipe("azr_tiny.yaml"), settings))).train()
    return history, time.time() - started


def row(name: str, figures: dict) -> str:
    def cell(result):
        return f"{result['value']:.3f} [{result['low']:.2f}, {result['high']:.2f}]" if result["value"] is not None else "—"

    accuracy = figures["accuracy"]
    return " | ".join([name, *(cell(v) for v in accuracy.values()), cell(figures["step share"]),
                       cell(figures["step accuracy"]["with"]), cell(figures["step accuracy"]["without"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--split", choices=("dev", "heldout"), default="dev")
    parser.add_argument("--skip-build", action="store_true", help="reuse OUTPUT/model")
    parser.add_argument("--eval-n", type=int, default=200)
    parser.add_argument("--eval-samples", type=int, default=8)
    parser.add_argument("--azr-steps", type=int, default=20)
    parser.add_argument("--azr-lr", type=float, default=3e-4)
    parser.add_argument("--azr-tasks", type=int, default=16, help="tasks per type and role per step")
    build_arguments(parser)  # the model's: scripts/build_tiny_model.py
    args = parser.parse_args()
    model_dir = args.output / "model"
    study = {"args": {k: str(v) for k, v in vars(args).items()}}  # a --skip-build run's build settings: study["build"]
    path = args.output / "study.json"
    if args.skip_build and path.is_file():
        study["build"] = json.loads(path.read_text()).get("build")
    if not args.skip_build:
        study["build"] = build(model_dir, args)
        print(f"built in {study['build']['build_seconds']:.0f} s, final loss {study['build']['final_loss']:.3f}", flush=True)
    study["base"] = measure(model_dir, args)
    history, seconds = self_play(model_dir, args.output / "azr", args)
    study["self_play_s"] = seconds
    study["curves"] = {f"azr/{t}/{key}": [h.get(f"azr/{t}/{key}") for h in history]
                       for t in args.task_types for key in CURVES}
    study["excluded_proposals"] = sum(h.get(f"azr/{t}/propose/excluded", 0) or 0 for h in history
                                      for t in args.task_types)
    study["after"] = measure(args.output / "azr", args)
    path.write_text(json.dumps(study, indent=2) + "\n")
    print(f"\n{args.eval_n} {args.split} chain programs × {args.eval_samples}:")
    print("model | pass@1 | pass@K | majority@K | greedy | procedure share | right with | right without")
    for task_type in args.task_types:
        base, after = study["base"][task_type], study["after"][task_type]
        print(row(f"{task_type}: base", base))
        print(row(f"{task_type}: + AZR self-play, {args.azr_steps} steps, lr {args.azr_lr:g}", after))
        gain = after["accuracy"]["pass@1"]["value"] - base["accuracy"]["pass@1"]["value"]
        print(f"{task_type}: gain {gain:+.3f}")
    print(f"self-play {seconds:.0f} s; proposals excluded as measured programs: {study['excluded_proposals']:.0f}")
    for key, values in study["curves"].items():
        print(key, " ".join("-" if v is None else f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
