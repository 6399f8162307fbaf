"""Checkpoint manifests: `--resume` takes the newest intact checkpoint, names each one it
skips and why, and stops with one line and exit 2 when none is intact."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import tiny_overrides
from selftaught import checkpoint
from selftaught.checkpoint import MANIFEST_FILE, STATE_FILE

WEIGHTS = "model.safetensors"


def write_config(path, output_dir):
    path.write_text(yaml.safe_dump(tiny_overrides(output_dir, max_steps=2, save_steps=1)))
    return path


def train(config, *extra):
    return subprocess.run([sys.executable, "-m", "selftaught", "train", "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run with checkpoints step-1 and step-2, copied for each test."""
    root = tmp_path_factory.mktemp("trained")
    result = train(write_config(root / "run.yaml", root / "out"))
    assert result.returncode == 0, result.stderr
    return root / "out"


@pytest.fixture
def run(trained, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    return out, write_config(tmp_path / "run.yaml", out)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def bit_flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def remove(path):
    path.unlink()


DAMAGE = {"truncated": (truncate, "truncated"), "bit_flipped": (bit_flip, "sha256"), "missing": (remove, "missing")}


def test_a_checkpoint_records_its_files(trained):
    step = trained / "checkpoints" / "step-2"
    manifest = json.loads((step / MANIFEST_FILE).read_text())
    assert {WEIGHTS, STATE_FILE, "config.json"} <= set(manifest["files"])
    assert manifest["files"][WEIGHTS]["size"] == (step / WEIGHTS).stat().st_size
    assert checkpoint.damage(step) is None


@pytest.mark.parametrize("name", [WEIGHTS, STATE_FILE])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_is_named(run, name, kind):
    out, _ = run
    newest = out / "checkpoints" / "step-2"
    damage, word = DAMAGE[kind]
    damage(newest / name)
    reason = checkpoint.damage(newest)
    assert reason is not None and name in reason and word in reason
    warnings = []
    path, skipped = checkpoint.latest_intact(out / "checkpoints", warnings.append)
    assert path == out / "checkpoints" / "step-1"
    assert warnings == [f"skipping checkpoint step-2: {reason}"] and len(skipped) == 1


def test_a_checkpoint_without_manifest_is_accepted_with_a_warning_when_it_loads(run):
    out, _ = run
    newest = out / "checkpoints" / "step-2"
    (newest / MANIFEST_FILE).unlink()
    warnings = []
    assert checkpoint.latest_intact(out / "checkpoints", warnings.append)[0] == newest
    assert len(warnings) == 1 and "no manifest.json" in warnings[0]
    truncate(newest / STATE_FILE)  # ...and refused when it does not load
    warnings.clear()
    assert checkpoint.latest_intact(out / "checkpoints", warnings.append)[0] == out / "checkpoints" / "step-1"
    assert "does not load" in warnings[0]


@pytest.mark.parametrize("kind,name", [
    ("truncated", STATE_FILE),  # the fast suite's case; the others are the same path with another reason
    pytest.param("bit_flipped", WEIGHTS, marks=pytest.mark.slow),
    pytest.param("missing", STATE_FILE, marks=pytest.mark.slow),
])
def test_resume_skips_a_damaged_newest_checkpoint(run, kind, name):
    out, config = run
    DAMAGE[kind][0](out / "checkpoints" / "step-2" / name)
    result = train(config, "--resume")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning: skipping checkpoint" in line]
    assert len(warnings) == 1 and "step-2" in warnings[0] and name in warnings[0]
    assert "resumed from" in result.stdout and "step-1" in result.stdout
    assert checkpoint.damage(out / "checkpoints" / "step-2") is None  # written again, whole


def test_resume_with_no_intact_checkpoint_is_one_line_and_exit_2(run):
    out, config = run
    truncate(out / "checkpoints" / "step-2" / STATE_FILE)
    bit_flip(out / "checkpoints" / "step-1" / WEIGHTS)
    result = train(config, "--resume")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "no intact checkpoint" in errors[0]
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "warning: skipping" in line]) == 2
