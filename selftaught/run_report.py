"""`selftaught report RUN_DIR [RUN_DIR ...]`: any runs' curves, overlaid, from `metrics.jsonl`.

One panel per curve that at least one run logged — reward, every reward source,
self-certainty, completion length, KL, clip fraction, and the AZR valid-proposal and
solve rates per task type — with one line per run (the legend is the run
directory's name). Writes `report.png` (drawn by `demo_report.plot_curves`, the demo's
panels) and `report.md` (the runs, and each curve's first → last value).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .errors import UserError
from .azr.tasks import TASK_TYPES
from .demo_report import CURVES, plot_curves

TITLES = {
    **CURVES,
    "reward/mean": "reward (the method's own)",
    "kl/mean": "KL to the reference (k3)",
    "clip_fraction": "clip fraction",
}
FIXED_KEYS = ("reward/mean", "self_certainty/mean", "completion_length/mean", "kl/mean", "clip_fraction")
AZR_RATES = ("propose/valid_rate", "solve/solve_rate")


def read_metrics(run_dir: Path) -> list[dict]:
    """A run's metrics rows; a line cut by a kill (the last one) is skipped with a note."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        inside = sorted(str(p.parent) for p in run_dir.glob("*/metrics.jsonl")) if run_dir.is_dir() else []
        hint = f"; the runs inside it: {' '.join(inside)}" if inside else ""
        raise UserError(f"{run_dir} has no metrics.jsonl (not a training output directory){hint}")
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            bad += 1
    if bad:
        print(f"selftaught report: {path}: skipped {bad} unreadable line(s)", file=sys.stderr)
    if not rows:
        raise UserError(f"{path} holds no metrics rows (the run logged no step yet)")
    return rows


def run_labels(run_dirs: list[Path]) -> list[str]:
    """Each run's legend label: its directory's name, with its parent's when two names clash."""
    names = [d.resolve().name for d in run_dirs]
    labels = [f"{d.resolve().parent.name}/{n}" if names.count(n) > 1 else n for d, n in zip(run_dirs, names)]
    return [str(d) if labels.count(label) > 1 else label for d, label in zip(run_dirs, labels)]


def curve_keys(runs: dict[str, list[dict]]) -> list[str]:
    """The curves to draw, in panel order, that at least one run logged."""
    logged = {key for rows in runs.values() for row in rows for key in row}
    sources = sorted(k for k in logged if k.startswith("rewards/") and k.endswith("/mean"))
    azr = [f"azr/{t}/{what}" for what in AZR_RATES for t in TASK_TYPES]
    ordered = ["reward/mean", *sources, *FIXED_KEYS[1:], *azr]
    return [key for key in ordered if key in logged]


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one curve; steps where it is missing or not finite are left out."""
    points = [(row["step"], float(row[key])) for row in rows
              if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
              and math.isfinite(row[key])]
    return [s for s, _ in points], [v for _, v in points]


def _title(key: str) -> str:
    if key in TITLES:
        return TITLES[key]
    if key.startswith("azr/"):
        _, task_type, role, rate = key.split("/")
        return f"AZR {task_type}: {'valid-proposal' if role == 'propose' else 'solve'} rate"
    if key.startswith("rewards/"):
        return f"reward source {key.split('/')[1]} (mean)"
    return key


def plot(runs: dict[str, list[dict]], keys: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(keys))
    rows = -(-len(keys) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 3.3 * rows), squeeze=False)
    colors = {label: f"C{i % 10}" for i, label in enumerate(runs)}  # one colour per run in every panel
    for axis, key in zip(axes.flat, keys):
        plot_curves(axis, {label: series(run, key) for label, run in runs.items()}, _title(key), colors=colors,
                    unit_interval=key.startswith("azr/") or key == "clip_fraction")
    for axis in list(axes.flat)[len(keys):]:
        axis.set_visible(False)
    figure.suptitle("selftaught report — " + ", ".join(runs), fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def markdown(runs: dict[str, list[dict]], dirs: dict[str, Path], keys: list[str]) -> str:
    lines = ["# selftaught report", "", "| run | directory | steps | s/step |", "|---|---|---|---|"]
    for label, rows in runs.items():
        times = [r["time/step_s"] for r in rows if isinstance(r.get("time/step_s"), (int, float))]
        seconds = f"{sum(times) / len(times):.2f}" if times else "—"
        lines.append(f"| {label} | `{dirs[label]}` | {rows[-1]['step']} | {seconds} |")
    lines += ["", "## Curves (first → last logged step)", "", "| curve | " + " | ".join(runs) + " |",
              "|---|" + "---|" * len(runs)]
    for key in keys:
        cells = []
        for rows in runs.values():
            _, values = series(rows, key)
            cells.append(f"{values[0]:.4g} → {values[-1]:.4g}" if values else "—")
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    lines += ["", "![curves](report.png)", ""]
    return "\n".join(lines)


def report_runs(run_dirs: list[str | Path], output: str | Path | None = None) -> Path:
    """Write report.png and report.md for the runs (overlaid) into `output`, default the
    first run's directory; returns that directory."""
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UserError("name at least one run directory")
    labels = run_labels(dirs)
    runs = {label: read_metrics(d) for label, d in zip(labels, dirs)}
    keys = curve_keys(runs)
    if not keys:
        raise UserError(f"none of {', '.join(map(str, dirs))} logged a curve the report draws (reward/mean, ...)")
    out = Path(output) if output is not None else dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, keys, out / "report.png")
    (out / "report.md").write_text(markdown(runs, dict(zip(labels, dirs)), keys), encoding="utf-8")
    return out
