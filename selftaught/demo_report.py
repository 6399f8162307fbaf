"""The demo's report: `report.md` (one table per built-in model, the targets met or missed, what
changed, the curves' first and last values) and `report.png` (training curves and before/after
figures with 95% intervals), both drawn from `summary.json` alone.

A change is called a change only when the two 95% intervals do not overlap (a conservative
reading: with a few hundred held-out problems, smaller differences are noise); otherwise the
report says "no measurable change". A figure is a dict with `value`, `low`, `high` (the
interval) and `n`. A section's figures are {task: {figure name: figure}}: task `additions` for
the math models; the AZR recipe's task types and `additions` for the program model.
"""

from __future__ import annotations

from pathlib import Path

from .azr.tasks import TASK_TYPES

CURVES = {
    "reward/mean": "reward (the method's own)",
    "rewards/math_answer/mean": "gold-answer accuracy on training batches",
    "self_certainty/mean": "self-certainty (mean KL(U‖p), nats)",
    "completion_length/mean": "completion length (tokens)",
    "tags/procedure/share": "share of training completions that take the procedure",
}
AZR_CURVES = {"propose/valid_rate": "AZR valid-proposal rate", "solve/solve_rate": "AZR solve rate (own tasks)",
              "solve/tags/procedure": "AZR solver completions that work step by step"}
CURVE_KEYS = (*CURVES, *(f"rewards/{source}/mean" for source in
                         ("self_certainty", "majority_vote", "answer_agreement", "token_entropy",
                          "trajectory_logprob", "random")),
              *(f"azr/{t}/{what}" for t in TASK_TYPES for what in AZR_CURVES))
"""Every per-step curve the demo keeps in summary.json."""
SMOOTHING = 5
"""AZR's per-step rates rest on a few samples per (type, role); the plot shows them with a trailing
mean over this many steps (and says so), the raw values stay in summary.json."""
SHARE_REWARDS = {"grpo", "majority_vote", "answer_agreement", "random"}
"""Runs whose reward is a share (0–1): one axis with the gold accuracy."""
COLORS = {"base": "C0", "intuitor": "C1", "grpo": "C2", "azr": "C3", "majority_vote": "C4",
          "answer_agreement": "C5", "token_entropy": "C6", "trajectory_logprob": "C7", "random": "C8",
          "grpo_additions": "C9", "answer_agreement_additions": "C5"}
"""One colour per run in every panel."""
TARGETS = {"grpo": 0.15, "label_free": 0.10, "intuitor": 0.10, "azr": 0.10, "azr_other": 0.05}
"""Held-out sampled pass@1 gains the demo aims for, with intervals disjoint from the base's."""
NOT_LABEL_FREE = {"grpo", "intuitor", "random"}
ADDITION_RUNS = {"grpo_additions": "GRPO", "answer_agreement_additions": "answer agreement"}
"""The program section's runs on additions, and how the report names them."""


def verdict(before: dict, after: dict) -> str:
    """'better' / 'worse' when the 95% intervals are disjoint, else 'no measurable change'."""
    if after["low"] > before["high"]:
        return "better"
    if after["high"] < before["low"]:
        return "worse"
    return "no measurable change"


def figure_cell(figure: dict | None, separator: str = ", ") -> str:
    """A figure as `value [low, high]`, or — when there is none."""
    if not figure or figure.get("value") is None:
        return "—"
    return f"{figure['value']:.3f} [{figure['low']:.2f}{separator}{figure['high']:.2f}]"


def gain(section: dict, run: str, task: str = "additions", column: str = "pass@1") -> tuple[float, bool]:
    """(after − base, whether the two intervals are disjoint) for one run's figure."""
    before, after = section["base"][task][column], section["runs"][run]["after"][task][column]
    return after["value"] - before["value"], verdict(before, after) != "no measurable change"


def _gain_text(section: dict, run: str, task: str = "additions", column: str = "pass@1") -> str:
    delta, disjoint = gain(section, run, task, column)
    return f"{delta:+.3f}{'' if disjoint else ' (intervals overlap)'}"


def _met(section: dict, run: str, needed: float, task: str = "additions") -> bool:
    delta, disjoint = gain(section, run, task)
    return delta >= needed and disjoint


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def math_targets(name: str, section: dict) -> list[str]:
    runs, lines = section["runs"], []
    if "grpo" in runs:
        lines.append(f"- GRPO (gold answers) ≥ +{TARGETS['grpo']:.2f} pass@1: "
                     f"{'met' if _met(section, 'grpo', TARGETS['grpo']) else 'MISSED'} — {_gain_text(section, 'grpo')}")
    label_free = [run for run in runs if run not in NOT_LABEL_FREE]
    if label_free:
        count = sum(_met(section, run, TARGETS["label_free"]) for run in label_free)
        lines.append(f"- at least two label-free methods ≥ +{TARGETS['label_free']:.2f} pass@1: "
                     f"{'met' if count >= 2 else 'MISSED'} ({count} of {len(label_free)}) — "
                     + "; ".join(f"{run} {_gain_text(section, run)}" for run in label_free))
    if "intuitor" in runs:
        met = _met(section, "intuitor", TARGETS["intuitor"])
        auroc = section.get("auroc", {}).get("self_certainty", {}).get("value")
        why = "" if auroc is None else f"; base self-certainty within-group AUROC {auroc:.2f} (0.5 = chance)"
        lines.append(f"- Intuitor ≥ +{TARGETS['intuitor']:.2f} pass@1: {'met' if met else 'MISSED'} — "
                     f"{_gain_text(section, 'intuitor')}{why}")
        if "grpo" in runs:
            intuitor, grpo = gain(section, "intuitor")[0], gain(section, "grpo")[0]
            lines.append(f"- Intuitor's gain ≥ half of GRPO's (the paper's in-domain claim; goal): "
                         f"{'met' if grpo > 0 and intuitor >= grpo / 2 else 'not met'} — {intuitor:+.3f} vs "
                         f"{grpo:+.3f}")
    if "random" in runs:
        inside = not gain(section, "random")[1]
        lines.append(f"- random-reward control inside the noise (intervals overlap the base's): "
                     f"{'yes' if inside else 'NO'} — {_gain_text(section, 'random')}")
    return lines


def _first_last(curve: list[float], k: int = SMOOTHING) -> tuple[float, float]:
    k = max(1, min(k, len(curve) // 2 or 1))
    return _mean(curve[:k]), _mean(curve[-k:])


def program_targets(section: dict) -> list[str]:
    runs, lines = section["runs"], []
    if "azr" in runs:
        azr = runs["azr"]
        lines.append(f"- AZR: held-out deduction pass@1 ≥ +{TARGETS['azr']:.2f}, intervals apart: "
                     f"{'met' if _met(section, 'azr', TARGETS['azr'], 'deduction') else 'MISSED'} — "
                     f"{_gain_text(section, 'azr', 'deduction')}")
        for task in ("abduction", "induction"):
            if task in azr["after"]:
                lines.append(f"- AZR {task} (reported; stretch ≥ +{TARGETS['azr_other']:.2f}): "
                             f"{'met' if _met(section, 'azr', TARGETS['azr_other'], task) else 'not met'} — "
                             f"{_gain_text(section, 'azr', task)}")
            else:
                lines.append(f"- AZR {task}: not trained or measured (the model's corpus has no {task}; "
                             f"the recipe's task types leave it out)")
        share = azr["curves"].get("azr/deduction/solve/tags/procedure")
        if share:
            first, last = _first_last(share)
            lines.append(f"- AZR deduction solver works step by step more often over the run: "
                         f"{'yes' if last > first else 'NO'} — first {SMOOTHING} steps {first:.2f} → last {last:.2f}")
        valid = {t: _first_last(c) for t in TASK_TYPES if (c := azr["curves"].get(f"azr/{t}/propose/valid_rate"))}
        if valid:
            held = all(last >= first - 0.05 for first, last in valid.values())
            lines.append("- AZR valid-proposal rates do not fall (last vs first steps, 0.05 slack): "
                         f"{'yes' if held else 'NO'} — " + "; ".join(f"{t} {a:.2f} → {b:.2f}" for t, (a, b) in
                                                                     valid.items()))
        lines.append(f"- self-play proposals of measured programs (dropped from training): "
                     f"{azr.get('excluded_proposals', 0):g}; of other dev/held-out chains (trained on, "
                     f"never measured): {azr.get('held_out_split_proposals', 0):g}")
        if "additions" in azr["after"]:
            lines.append(f"- transfer, programs → additions (AZR, no addition trained on): pass@1 "
                         f"{_gain_text(section, 'azr', 'additions')}, procedure share "
                         f"{_gain_text(section, 'azr', 'additions', 'procedure share')}")
    for name, label in ADDITION_RUNS.items():
        if name not in runs:
            continue
        lines.append(f"- {label} on additions, in domain: pass@1 {_gain_text(section, name)}")
        for task in TASK_TYPES:
            if task in runs[name]["after"]:
                lines.append(f"- transfer, additions → {task} ({label} on additions): pass@1 "
                             f"{_gain_text(section, name, task)}, procedure share "
                             f"{_gain_text(section, name, task, 'procedure share')}")
    return lines


def section_table(section: dict) -> list[str]:
    columns = list(next(iter(section["base"].values())))
    lines = ["| model | task | " + " | ".join(columns) + " | s/step |", "|---|---|" + "---|" * (len(columns) + 1)]
    rows = [("base", section["base"], None)] + [(f"+ {name}, {run['steps']} steps", run["after"],
                                                 run["seconds_per_step"]) for name, run in section["runs"].items()]
    for label, figures, seconds in rows:
        for task, values in figures.items():
            lines.append(f"| {label} | {task} | " + " | ".join(figure_cell(values.get(c)) for c in columns)
                         + f" | {'' if seconds is None else f'{seconds:.2f}'} |")
    return lines


def changes(section: dict) -> list[str]:
    lines = []
    for name, run in section["runs"].items():
        judged = [f"{task} {c}: {verdict(section['base'][task][c], after[c])} "
                  f"({section['base'][task][c]['value']:.3f} → {after[c]['value']:.3f})"
                  for task, after in run["after"].items() if task in section["base"]
                  for c in after if c in section["base"][task] and section["base"][task][c].get("value") is not None
                  and after[c].get("value") is not None]
        lines.append(f"- **{name}** — " + "; ".join(judged))
    return lines


def auroc_table(section: dict) -> list[str]:
    lines = ["| reward | base | after training on it |", "|---|---|---|"]
    for name, result in section["auroc"].items():
        after = next((run.get("auroc_after", {}).get(name) for run in section["runs"].values()
                      if run.get("reward") == name), None)
        lines.append(f"| {name} | {figure_cell(result)} ({result['verdict']}) | {figure_cell(after)} |")
    return lines


def curve_trends(section: dict) -> list[str]:
    lines = []
    for name, run in section["runs"].items():
        trends = [f"{label.split(' (')[0]} {values[0]:.3f} → {values[-1]:.3f}"
                  for key, label in CURVES.items() if (values := run.get("curves", {}).get(key))]
        trends += [f"{key} {_first_last(values)[0]:.2f} → {_first_last(values)[1]:.2f} (mean of first/last "
                   f"{SMOOTHING})" for key, values in run.get("curves", {}).items() if key.startswith("azr/") and values]
        lines.append(f"- **{name}**: " + "; ".join(trends))
    return lines


def markdown(summary: dict) -> str:
    lines = ["# selftaught demo", "",
             f"Held-out data (never trained on), value [95% interval]. Run time {summary['runtime_s']:.0f} s"
             f"{' (quick run)' if summary.get('quick') else ''}. One training seed per run (the seed spread: "
             "README, `scripts/seed_spread.py`)."]
    for name, section in summary["sections"].items():
        ev = section["eval"]
        if section["kind"] == "math":
            how = (f"{ev['n']} held-out additions × {ev['samples']} samples at τ = {ev['temperature']} "
                   "(pass@1, pass@8, majority@8, procedure share) and greedy")
        else:
            how = (f"{ev['programs_n']} held-out programs per task type × {ev['samples']} samples at the AZR "
                   f"recipe's τ, checked by AZR's own executor; additions as for tiny-math ({ev['math_n']} × 8)")
        lines += ["", f"## `{name}`", "", how + ".", "", *section_table(section), "", "### Targets", ""]
        lines += math_targets(name, section) if section["kind"] == "math" else program_targets(section)
        lines += ["", "### What changed", "", *changes(section)]
        if section.get("auroc"):
            lines += ["", "### Base model diagnose: which label-free reward tracks correctness", "",
                      "Within-group AUROC of right vs wrong completions of one problem (0.5 = chance; "
                      "`selftaught diagnose`), before training and after each method's own training:", "",
                      *auroc_table(section)]
        lines += ["", "### Training curves (first → last step)", "", *curve_trends(section)]
    lines += ["", "![curves and figures](report.png)", "", "Configurations and every figure: `summary.json`."]
    return "\n".join(lines) + "\n"


def _legend(axis) -> None:
    if axis.get_legend_handles_labels()[0]:  # a run may log none of a panel's curves
        axis.legend(fontsize=6)


def _integer_steps(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(axis, series: dict, title: str, *, xlabel: str = "step", colors: dict | None = None,
                unit_interval: bool = False) -> None:
    """One panel of curves: `series` maps a label to its values (steps 1, 2, ...) or to
    (steps, values); labels with no values are left out. The demo's panels and
    `selftaught report`'s are all drawn here."""
    for label, values in series.items():
        steps, values = values if isinstance(values, tuple) else (range(1, len(values) + 1), values)
        if len(values):
            axis.plot(steps, values, marker=".", label=label, color=(colors or {}).get(label))
    if unit_interval:
        axis.set_ylim(-0.05, 1.05)
    axis.set_title(title, fontsize=8)
    axis.set_xlabel(xlabel, fontsize=7)
    _integer_steps(axis)
    _legend(axis)


def trailing_mean(values: list[float], k: int = SMOOTHING) -> list[float]:
    """Each value replaced by the mean of it and the k − 1 before it (fewer at the start)."""
    return [_mean(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]


def _plot_bars(axis, section: dict, column: str = "pass@1") -> None:
    """`column` of every task, before and after each run, with 95% intervals."""
    tasks = list(section["base"])
    models = [("base", section["base"])] + [(name, run["after"]) for name, run in section["runs"].items()]
    width = 0.8 / len(models)
    for i, (name, figures) in enumerate(models):
        positions, heights, below, above = [], [], [], []
        for j, task in enumerate(tasks):
            figure = figures.get(task, {}).get(column)
            if figure and figure.get("value") is not None:
                positions.append(j + i * width)
                heights.append(figure["value"])
                # max(0, ·): interval bounds at 0/n and n/n can be off by rounding
                below.append(max(0.0, figure["value"] - figure["low"]))
                above.append(max(0.0, figure["high"] - figure["value"]))
        axis.bar(positions, heights, width=width, yerr=[below, above], capsize=2, color=COLORS.get(name),
                 label=name if name == "base" else f"+{name}")
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks, fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_title(f"held-out {column} before and after (95% intervals)", fontsize=8)
    axis.legend(fontsize=5, ncol=2)


def _math_row(figure, grid, row: int, name: str, section: dict) -> None:
    runs = section["runs"]
    panels = [("reward/mean", "reward (0–1 rewards)", {n for n in runs if n not in SHARE_REWARDS}),
              ("rewards/math_answer/mean", "gold accuracy on training batches (logged)", set()),
              ("self_certainty/mean", "self-certainty, nats (Intuitor's reward)", set()),
              ("tags/procedure/share", "training completions taking the procedure", set())]
    for column, (key, title, skip) in enumerate(panels):
        series = {run: r.get("curves", {}).get(key) or [] for run, r in runs.items() if run not in skip}
        plot_curves(figure.add_subplot(grid[row, column]), series, f"{name}: {title}", colors=COLORS)
    _plot_bars(figure.add_subplot(grid[row, 4]), section)


def _program_row(figure, grid, row: int, name: str, section: dict) -> None:
    curves = section["runs"].get("azr", {}).get("curves", {})
    for column, (what, title) in enumerate(AZR_CURVES.items()):
        series = {t: trailing_mean(curves.get(f"azr/{t}/{what}") or []) for t in TASK_TYPES}
        plot_curves(figure.add_subplot(grid[row, column]), series,
                    f"{name}: {title} (trailing mean of {SMOOTHING})", xlabel="AZR step", unit_interval=True)
    _plot_bars(figure.add_subplot(grid[row, 3]), section)
    _plot_bars(figure.add_subplot(grid[row, 4]), section, "procedure share")


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = summary["sections"]
    figure = plt.figure(figsize=(21, 4.2 * len(sections)))
    grid = figure.add_gridspec(len(sections), 5)
    for row, (name, section) in enumerate(sections.items()):
        (_math_row if section["kind"] == "math" else _program_row)(figure, grid, row, name, section)
    figure.suptitle("selftaught demo — " + ", ".join(f"{name}" for name in sections), fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def write_report(summary: dict, output_dir: Path) -> None:
    (output_dir / "report.md").write_text(markdown(summary))
    plot(summary, output_dir / "report.png")
