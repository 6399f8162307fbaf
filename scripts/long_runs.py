"""Label-free rewards over long runs: do the gains hold, or rise and then fall?

    python scripts/long_runs.py [--families tiny ...] [--methods intuitor majority_vote ...]
                                [--factor 4] [--every 20] [--n 100] [--output runs/long_runs]

For each built-in addition model (recipes configs/<method>_<family>.yaml) and each label-free
method, it trains `factor` × the recipe's steps (the demo's run length, 40, so 160 by default),
keeps a checkpoint every `every` steps, then measures dev-split pass@1 (never held-out: this is
about the shape of the curve) of the base model and of every checkpoint with `selftaught
diagnose`. It writes `<output>/long_runs.json` (the dev curves with intervals and every logged
training metric per step) and `docs/long_runs.png` (one panel per model: dev pass@1 over steps,
one line per method), and prints, per run, the peak, the last value and which logged metric moved
first when a run fell by more than a third from its peak: the candidates for an early warning of
collapse are answer entropy, completion length, self-certainty and answer agreement.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import build_config, set_all_dotted  # noqa: E402
from selftaught.demo import MATH_SECTIONS  # noqa: E402
from selftaught.recipes import load_recipe, recipe_path  # noqa: E402
from selftaught.tiny.competence import addition_figures  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

WARNING_METRICS = ("answer_entropy/mean", "completion_length/mean", "self_certainty/mean", "answer_agreement/mean")
LABEL_FREE = ("intuitor", "majority_vote", "answer_agreement", "token_entropy", "trajectory_logprob")
FALL = 1 / 3
"""A run 'collapses' when its dev pass@1 ends more than this fraction below its peak."""


def dev_pass_at_1(model: str, n: int, procedure) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        kwargs = {"procedure": procedure} if procedure else {}
        return addition_figures(model, n, "dev", scratch, **kwargs)["accuracy"]["pass@1"]


def first_mover(history: list[dict], peak_step: int, fall_step: int) -> str | None:
    """The warning metric whose relative change from the peak step was largest by the step the fall
    was first measured (a crude 'which moved first')."""
    rows = {row["step"]: row for row in history}
    changes = {}
    for key in WARNING_METRICS:
        if key in rows.get(peak_step, {}) and key in rows.get(fall_step, {}):
            before, after = rows[peak_step][key], rows[fall_step][key]
            changes[key] = abs(after - before) / (abs(before) + 1e-9)
    return max(changes, key=changes.get) if changes else None


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selftaught.demo_report import COLORS

    families = list(record["families"])
    figure, axes = plt.subplots(1, len(families), figsize=(7 * len(families), 4.5), squeeze=False)
    for axis, family in zip(axes[0], families):
        data = record["families"][family]
        for method, run in data["runs"].items():
            steps = [0] + [point["step"] for point in run["dev"]]
            values = [data["base"]["value"]] + [point["value"] for point in run["dev"]]
            axis.plot(steps, values, marker=".", label=method, color=COLORS.get(method))
        axis.axhline(data["base"]["value"], color="grey", linestyle=":", label="base")
        axis.axvline(record["demo_steps"], color="grey", linestyle="--", linewidth=0.8, label="the demo's length")
        axis.set_ylim(0, 1)
        axis.set_title(f"{data['model']}: dev pass@1 over a {record['factor']}× run", fontsize=9)
        axis.set_xlabel("step")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=[s.family for s in MATH_SECTIONS])
    parser.add_argument("--methods", nargs="+", default=list(LABEL_FREE))
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--n", type=int, default=100, help="dev problems per measurement (× 8 samples)")
    parser.add_argument("--output", default="runs/long_runs")
    parser.add_argument("--figure", default=str(Path(__file__).resolve().parents[1] / "docs" / "long_runs.png"))
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record = {"factor": args.factor, "every": args.every, "n": args.n, "families": {}}
    for family in args.families:
        section = next((s for s in MATH_SECTIONS if s.family == family), None)
        procedure = section.procedure if section else None
        methods = [m for m in args.methods if recipe_path(f"{m}_{family}.yaml").is_file()]
        skipped = sorted(set(args.methods) - set(methods))
        if skipped:  # a model need not have every method's recipe (tiny-ramble has Intuitor's only)
            print(f"{family}: no recipe for {', '.join(skipped)}; skipped", flush=True)
        if not methods:
            continue
        model = load_recipe(f"{methods[0]}_{family}.yaml")["model"]["name_or_path"]
        data = record["families"][family] = {"model": model, "base": dev_pass_at_1(model, args.n, procedure),
                                             "runs": {}}
        for method in methods:
            recipe = load_recipe(f"{method}_{family}.yaml")
            record["demo_steps"] = build_config(recipe).max_steps
            steps = args.factor * record["demo_steps"]
            run_dir = output / family / method
            recipe = set_all_dotted(recipe, {"output_dir": str(run_dir), "max_steps": steps, "save_steps": args.every,
                                             "save_total_limit": None, "progress_bar": False, "log_every": 0,
                                             "report_to": "none"})
            history = Trainer(build_config(recipe)).train()
            dev = [{"step": step, **dev_pass_at_1(str(run_dir / "checkpoints" / f"step-{step}"), args.n, procedure)}
                   for step in range(args.every, steps + 1, args.every)]
            peak = max(dev, key=lambda point: point["value"])
            last = dev[-1]
            fell = last["value"] < peak["value"] * (1 - FALL)
            fall_step = next((p["step"] for p in dev if p["step"] > peak["step"]
                              and p["value"] < peak["value"] * (1 - FALL)), None)
            data["runs"][method] = {"dev": dev, "history": history, "peak": peak, "last": last, "collapsed": fell,
                                    "first_mover": first_mover(history, peak["step"], fall_step) if fell else None}
            print(f"{model} {method:<20} base {data['base']['value']:.3f} peak {peak['value']:.3f} at {peak['step']} "
                  f"last {last['value']:.3f}{' COLLAPSED, first mover ' + str(data['runs'][method]['first_mover']) if fell else ''}",
                  flush=True)
            (output / "long_runs.json").write_text(json.dumps(record, indent=2))
    plot(record, Path(args.figure))
    print(f"{time.perf_counter() - started:.0f} s; figure {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
