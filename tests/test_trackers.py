"""`report_to`: trackers receive every metrics row, the config and the completions.

wandb runs offline and trackio locally; both write files that are read back here and
compared with `metrics.jsonl`. The MLflow and TensorBoard adapters are tested only where
those libraries are installed (they are not in requirements.lock)."""

import json
import math
import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, tiny_overrides
from selftaught import trackers
from selftaught.cli import main
from selftaught.config import build_config
from selftaught.errors import UserError

REQUIRE_TRACKERS = os.environ.get("SELFTAUGHT_REQUIRE_TRACKERS") == "1"
"""Set by `make test-trackers` (.venv-trackers, which installs them): a missing tracker fails there."""


def test_report_to_accepts_names_a_string_and_none():
    assert build_config({"report_to": "wandb"}).report_to == ["wandb"]
    assert build_config({"report_to": ["wandb", "trackio", "wandb"]}).report_to == ["wandb", "trackio"]
    assert build_config({"report_to": ["none"]}).report_to == []
    assert build_config({"report_to": "none"}).report_to == []
    expected = ["tensorboard"] if trackers.installed("tensorboard") else []
    assert build_config({}).report_to == expected
    with pytest.raises(UserError, match="report_to"):
        build_config({"report_to": ["wandb", "none"]})
    with pytest.raises(UserError, match="report_to"):
        build_config({"report_to": ["neptune"]})


def test_missing_tracker_names_the_extra_and_exits_2_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trackers, "installed", lambda name: name != "mlflow")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_overrides(tmp_path / "run", report_to=["mlflow"])))
    assert main(["train", "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "pip install 'selftaught[mlflow]'" in error
    assert not (tmp_path / "run").exists()  # nothing was loaded or written


def test_a_tracker_that_cannot_start_is_one_line(tmp_path, monkeypatch):
    class Broken:
        name = "wandb"

        def __init__(self, *args):
            raise RuntimeError("api_key not configured (no-tty)\n  more detail")

    monkeypatch.setattr(trackers, "installed", lambda name: True)
    monkeypatch.setitem(trackers._CLASSES, "wandb", Broken)
    with pytest.raises(UserError, match=r"^report_to: wandb could not start: api_key not configured \(no-tty\)$"):
        trackers.start_trackers(["wandb"], tmp_path, "run", {})


# ------------------------------------------------------------ read-back helpers


def _wandb_records(path):
    """Records of a `.wandb` file: a LevelDB-style log of protobuf `Record`s (7-byte
    file header; 32 KiB blocks; chunks of crc32 · length (LE) · type, FULL/FIRST/MIDDLE/LAST)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending = 32768, 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length = int.from_bytes(data[position + 4:position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # FULL, LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _same(logged, expected):
    if isinstance(expected, str):  # metrics.jsonl writes NaN/inf as strings
        expected = float(expected)
    return (math.isnan(expected) and math.isnan(logged)) or logged == pytest.approx(float(expected), rel=1e-6)


def test_wandb_offline_and_trackio_get_every_row_config_and_completions(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_overrides(out, max_steps=2, report_to=["wandb", "trackio"],
                                                    run_name="tracked")))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true",
           "TRACKIO_DIR": str(tmp_path / "trackio"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    (tmp_path / "wandb").mkdir()
    done = subprocess.run([sys.executable, "-m", "selftaught", "train", "--config", str(config)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    samples = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and samples

    # wandb: the offline run's history, config and completion tables
    (run_file,) = (tmp_path / "wandb").glob("wandb/offline-run-*/run-*.wandb")
    history, config_items, run_name = {}, {}, None
    for record in _wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            values = {item.key or (item.nested_key[0] if len(item.nested_key) == 1 else tuple(item.nested_key)):
                      json.loads(item.value_json) for item in record.history.item}
            history.setdefault(values["_step"], {}).update(values)
        elif kind == "run":
            run_name = record.run.display_name
            config_items.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config_items.update({item.key: json.loads(item.value_json) for item in record.config.update})
    assert run_name == "tracked"
    assert config_items["learning_rate"] == 1e-3 and config_items["model"]["name_or_path"] == "tiny-random"
    for row in rows:
        logged = history[row["step"]]
        numeric = {k: v for k, v in row.items() if k != "step" and not isinstance(v, list)}
        assert numeric, row
        for key, value in numeric.items():
            assert _same(float(logged[key]), value), (key, logged[key], value)
        assert logged[("completions", "_type")] == "table-file"
        table = json.loads((run_file.parent / "files" / logged[("completions", "path")]).read_text())
        assert {"prompt", "completion"} <= set(table["columns"])
        assert [r[table["columns"].index("completion")] for r in table["data"]] == \
            [s["completion"] for s in samples if s["step"] == row["step"]]

    # trackio: the local SQLite project
    database = sqlite3.connect(tmp_path / "trackio" / "selftaught.db")
    logged_rows = {}  # a step's metrics and its completions table are two entries
    for step, metrics in database.execute("select step, metrics from metrics where run_name = 'tracked'"):
        logged_rows.setdefault(step, {}).update(json.loads(metrics))
    for row in rows:
        logged = logged_rows[row["step"]]
        for key, value in row.items():
            if key != "step":
                assert _same(float(logged[key]), value), (key, logged[key], value)
        assert logged["completions"]["_type"] == "trackio.table"
        assert [c["completion"] for c in logged["completions"]["_value"]] == \
            [s["completion"] for s in samples if s["step"] == row["step"]]
    (stored,) = database.execute("select config from configs where run_name = 'tracked'").fetchone()
    stored = json.loads(stored)
    assert stored["learning_rate"] == 1e-3 and stored["report_to"] == ["wandb", "trackio"]


@pytest.mark.skipif(not trackers.installed("mlflow") and not REQUIRE_TRACKERS,
                    reason="mlflow is not installed here (`make test-trackers` runs this test)")
def test_mlflow_local_store_gets_every_row_params_and_completions(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _adapter_roundtrip("mlflow", tmp_path)
    import mlflow

    (run,) = mlflow.search_runs(experiment_names=[trackers.PROJECT], output_format="list")
    assert run.data.params["learning_rate"] == "0.001"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "reward/mean")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.75)]
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "completions")]
    assert artifacts == ["completions/step-000001.jsonl", "completions/step-000002.jsonl"]
    assert (tmp_path / "mlflow.db").exists()


@pytest.mark.skipif(not trackers.installed("tensorboard") and not REQUIRE_TRACKERS,
                    reason="tensorboard is not installed here (`make test-trackers` runs this test)")
def test_tensorboard_gets_every_row(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _adapter_roundtrip("tensorboard", tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("reward/mean")] == [(1, 0.5), (2, 0.75)]
    texts = {tag: [e.tensor_proto.string_val[0].decode() for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]}
    assert '"learning_rate": 0.001' in texts["config/text_summary"][0]
    assert texts["completions/text_summary"][1].splitlines()[2] == "| 1+1= | 2 | 1.0 |"


def _adapter_roundtrip(name, output_dir):
    (tracker,) = trackers.start_trackers([name], output_dir, "roundtrip", {"learning_rate": 1e-3, "model": {"x": 1}})
    for step, reward in ((1, 0.5), (2, 0.75)):
        tracker.log({"step": step, "reward/mean": reward, "skipped": False}, step)
        tracker.log_completions(step, [{"prompt": "1+1=", "completion": "2", "reward/math_answer": 1.0}])
    tracker.finish()
