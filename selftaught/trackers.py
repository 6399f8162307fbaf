"""Experiment trackers (`report_to`, TRL's key): TensorBoard, Weights & Biases, Trackio, MLflow.

Every tracker receives every metrics row (the same numbers as `metrics.jsonl`), the
run's configuration once at the start, and the sampled completions of each step —
as a table where the library has one (wandb, trackio), as text in TensorBoard, as a
JSON artifact in MLflow. They are called from rank 0 only (`MetricsWriter`).

The libraries are used directly (a few lines each) rather than through accelerate's
trackers: those want the tracker named when the `Accelerator` is built, store a
config only as flat scalars (TensorBoard), and have no completions table for trackio.

A tracker whose library is missing stops the run before anything loads, with the
pip extra that installs it (`check_installed`).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

from .errors import UserError

PROJECT = "selftaught"
"""Project / experiment name, unless the library's own variable (WANDB_PROJECT,
TRACKIO_PROJECT, MLFLOW_EXPERIMENT_NAME) names another."""


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None  # each tracker's module is named as it is


def default_report_to() -> list[str]:
    """TensorBoard when it is installed, else nothing (`metrics.jsonl` is always written)."""
    return ["tensorboard"] if installed("tensorboard") else []


def check_installed(names: list[str]) -> None:
    """One line naming the extra to install, for the first tracker that is missing."""
    for name in names:
        if not installed(name):
            raise UserError(f"report_to: {name} is not installed; `pip install 'selftaught[{name}]'` "
                            f"(or `pip install {name}`), or drop it from report_to")


def _scalars(row: dict) -> dict[str, float]:
    """The numeric entries of a metrics row (bools as 0/1; NaN kept: a bad step stays visible)."""
    out = {}
    for key, value in row.items():
        if key != "step" and isinstance(value, (bool, int, float)):
            out[key] = float(value)
    return out


def _table(samples: list[dict]) -> tuple[list[str], list[list]]:
    """Columns and rows of a step's sampled completions (the same fields as completions.jsonl)."""
    columns = list(dict.fromkeys(key for sample in samples for key in sample))
    return columns, [[sample.get(column) for column in columns] for sample in samples]


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, output_dir: Path, run_name: str, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(output_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log(self, row: dict, step: int) -> None:
        for key, value in _scalars(row).items():
            self.writer.add_scalar(key, value, step)

    def log_completions(self, step: int, samples: list[dict]) -> None:
        """A Markdown table (TensorBoard's text tab renders it)."""
        def cells(values) -> str:
            return "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", "⏎") for v in values) + " |"

        columns, rows = _table(samples)
        text = "\n".join([cells(columns), "|" + "---|" * len(columns), *(cells(r) for r in rows)])
        self.writer.add_text("completions", text, step)

    def finish(self) -> None:
        self.writer.close()


class WandbTracker:
    """Online, or offline with WANDB_MODE=offline (`wandb sync` uploads later). Files go
    under WANDB_DIR, else `output_dir`."""
    name = "wandb"

    def __init__(self, output_dir: Path, run_name: str, config: dict):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=run_name, config=config,
                              dir=os.environ.get("WANDB_DIR", str(output_dir)))

    def log(self, row: dict, step: int) -> None:
        self.run.log(_scalars(row), step=step)

    def log_completions(self, step: int, samples: list[dict]) -> None:
        columns, rows = _table(samples)
        self.run.log({"completions": self.wandb.Table(columns=columns, data=rows)}, step=step)

    def finish(self) -> None:
        self.run.finish()


class TrackioTracker:
    """Local by default: an SQLite database under TRACKIO_DIR (`trackio show` opens it)."""
    name = "trackio"

    def __init__(self, output_dir: Path, run_name: str, config: dict):
        import trackio

        self.trackio = trackio
        self.run = trackio.init(project=os.environ.get("TRACKIO_PROJECT", PROJECT), name=run_name, config=config,
                                embed=False)

    @staticmethod
    def _finite(values: dict) -> dict:
        # trackio stores JSON: NaN/inf become strings, as in metrics.jsonl
        return {k: v if math.isfinite(v) else str(v) for k, v in values.items()}

    def log(self, row: dict, step: int) -> None:
        self.run.log(self._finite(_scalars(row)), step=step)

    def log_completions(self, step: int, samples: list[dict]) -> None:
        columns, rows = _table(samples)
        self.run.log({"completions": self.trackio.Table(columns=columns, data=rows)}, step=step)

    def finish(self) -> None:
        self.run.finish()


class MlflowTracker:
    """MLFLOW_TRACKING_URI when set, else an SQLite store `output_dir/mlflow.db` with the
    artifacts in `output_dir/mlartifacts` (MLflow 3 refuses its legacy file store)."""
    name = "mlflow"

    def __init__(self, output_dir: Path, run_name: str, config: dict):
        import mlflow

        self.mlflow = mlflow
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            output_dir.mkdir(parents=True, exist_ok=True)
            mlflow.set_tracking_uri(f"sqlite:///{(output_dir / 'mlflow.db').resolve()}")
            if mlflow.get_experiment_by_name(name) is None:
                mlflow.create_experiment(name, artifact_location=(output_dir / "mlartifacts").resolve().as_uri())
        experiment = mlflow.set_experiment(name)
        self.run = mlflow.start_run(run_name=run_name, experiment_id=experiment.experiment_id)
        limit = 6000  # mlflow's longest parameter value
        mlflow.log_params({k: str(v)[:limit] for k, v in _flatten(config).items()})

    def log(self, row: dict, step: int) -> None:
        self.mlflow.log_metrics(_scalars(row), step=step)

    def log_completions(self, step: int, samples: list[dict]) -> None:
        self.mlflow.log_text("".join(json.dumps(s) + "\n" for s in samples), f"completions/step-{step:06d}.jsonl")

    def finish(self) -> None:
        self.mlflow.end_run()


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


_CLASSES = {cls.name: cls for cls in (TensorBoardTracker, WandbTracker, TrackioTracker, MlflowTracker)}
TRACKERS = tuple(_CLASSES)
"""The names `report_to` accepts (plus `none`)."""


def start_trackers(names: list[str], output_dir: Path, run_name: str, config: dict) -> list:
    """Start each named tracker (rank 0 only); `config` is logged once as the run's settings."""
    check_installed(names)
    started = []
    for name in names:
        try:
            started.append(_CLASSES[name](output_dir, run_name, config))
        except Exception as error:  # e.g. wandb online without a login: say so, before step 1
            for tracker in started:
                tracker.finish()
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"report_to: {name} could not start: {detail}") from error
    return started
