"""Does the proposer matter? Absolute Zero self-play against the same solver budget on a fixed buffer.

    python scripts/azr_proposer_ablation.py [--steps N] [--output runs/azr_ablation]

The paper's case for the proposer is that learnable tasks teach more than arbitrary ones. Both
runs start from the built-in `tiny` with the demo's AZR recipe (configs/azr_tiny.yaml) and train
the solver on the same number of tasks per type per step for the same number of steps:

- **self-play**: the recipe as it is: proposer and solver trained together, the solve batch drawn
  from buffers that grow with the proposer's new tasks;
- **fixed buffer**: `azr.train_proposer: false`. The seeding phase fills each buffer with the BASE
  model's valid proposals (as many proposer batches as the self-play run makes in all its steps,
  so the buffers hold about as many tasks), then no proposal is made and only the solver trains.

Both exclude the dev and held-out programs (`azr.exclude_programs: builtin`). Each trained copy is
measured on the same held-out programs as the demo (200 programs per task type × 8 samples, AZR's
own checking); the script prints both gains with 95% intervals and writes `<output>/ablation.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import build_config, set_all_dotted  # noqa: E402
from selftaught.demo import FULL, PROCEDURE, azr_recipe, measure_programs  # noqa: E402
from selftaught.demo_report import verdict  # noqa: E402
from selftaught.tiny.competence import tiny_azr_config  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402


def fixed_buffer_recipe(output_dir: Path, steps: int) -> dict:
    """The demo's AZR recipe, solver only, on buffers seeded with `steps` proposer batches of the base model."""
    azr = tiny_azr_config().azr
    B = azr.tasks_per_type_role
    return set_all_dotted(azr_recipe(output_dir, steps), {
        "azr.train_proposer": False, "azr.seed_rounds": steps, "azr.seed_proposals": steps * B,
        "per_device_train_batch_size": len(azr.task_types) * B})  # one solve group of B per type and step


def _cell(figure: dict) -> str:
    return f"{figure['value']:.3f} [{figure['low']:.2f}, {figure['high']:.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=tiny_azr_config().max_steps)
    parser.add_argument("--output", default="runs/azr_ablation")
    args = parser.parse_args()
    output = Path(args.output)
    started = time.perf_counter()
    figures = {"base": measure_programs("tiny", FULL)}
    recipes = {"self-play": azr_recipe(output / "self_play", args.steps),
               "fixed buffer": fixed_buffer_recipe(output / "fixed_buffer", args.steps)}
    runs = {}
    for name, recipe in recipes.items():
        recipe.update(progress_bar=False, log_every=5, report_to="none")
        history = Trainer(build_config(recipe)).train()
        figures[name] = measure_programs(recipe["output_dir"], FULL)
        runs[name] = {"config": recipe, "buffer_sizes": {k.split("/")[2]: v for k, v in history[-1].items()
                                                         if k.startswith("azr/buffer/") and k.endswith("/size")},
                      "solve_rows": sum(v for row in history for k, v in row.items()
                                        if k.endswith("/solve/count"))}
        print(f"{name}: trained {len(history)} steps, {runs[name]['solve_rows']} solver rows", flush=True)
    lines = ["| run | task | pass@1 | gain | vs base | procedure share |", "|---|---|---|---|---|---|"]
    for name, by_task in figures.items():
        for task, values in by_task.items():
            base = figures["base"][task]["pass@1"]
            delta = values["pass@1"]["value"] - base["value"]
            lines.append(f"| {name} | {task} | {_cell(values['pass@1'])} | "
                         f"{'' if name == 'base' else f'{delta:+.3f}'} | "
                         f"{'' if name == 'base' else verdict(base, values['pass@1'])} | {_cell(values[PROCEDURE])} |")
    print("\n".join(lines))
    (output / "ablation.json").write_text(json.dumps({"figures": figures, "runs": runs, "steps": args.steps,
                                                      "seconds": time.perf_counter() - started}, indent=2))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
