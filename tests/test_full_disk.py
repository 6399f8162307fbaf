"""A full disk during a checkpoint write: one line naming the path and the free space, exit 2, the
previous checkpoint intact, nothing partial left that `--resume` would pick (selftaught.storage).

The end-to-end case trains on a 2 MB tmpfs mounted as output_dir in a private mount namespace
(`unshare -m`, as root): the first checkpoint (~1.35 MB) fits, the second does not. Where a tmpfs
cannot be mounted (no root, no mount namespace, no `unshare`) it is skipped with the reason, and
where the machine is known to allow it (CI: SELFTAUGHT_REQUIRE_CONTAINMENT=1) that skip fails.
"""

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, tiny_overrides

from selftaught import checkpoint
from selftaught.errors import UserError
from selftaught.storage import disk_errno, disk_writes, free_space

sys.path.insert(0, str(Path(__file__).parent / "executor"))
from capabilities import unavailable  # noqa: E402

TMPFS = "2m"


def mount_tmpfs_or_skip(mount_point: Path) -> None:
    if shutil.which("unshare") is None:
        unavailable("no `unshare` command: cannot mount a private tmpfs")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size={TMPFS} tmpfs '{mount_point}'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        unavailable(f"cannot mount a tmpfs in a private mount namespace here: {probe.stderr.strip()[:200]}")


def test_a_full_disk_during_a_checkpoint_is_one_line_exit_2_and_the_previous_checkpoint_resumes(tmp_path):
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    mount_tmpfs_or_skip(disk)
    run = disk / "run"
    config = tmp_path / "full.yaml"
    config.write_text(yaml.safe_dump(tiny_overrides(run, max_steps=3, save_steps=1)))
    # Inside the namespace: mount, train, then copy out what the full disk holds (the mount ends with it).
    script = (f"mount -t tmpfs -o size={TMPFS} tmpfs '{disk}' && "
              f"'{sys.executable}' -m selftaught train --config '{config}' 2> '{tmp_path}/stderr'; "
              f"echo $? > '{tmp_path}/rc'; cp -a '{run}' '{copy}'")
    subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, check=True, timeout=600)

    assert (tmp_path / "rc").read_text().strip() == "2"
    stderr = (tmp_path / "stderr").read_text()
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("selftaught: error:")]
    assert len(errors) == 1, stderr[-3000:]
    line = errors[0]
    assert f"checkpoint {run / 'checkpoints' / 'step-2'} could not be written: No space left on device (" in line
    assert " free there)" in line and "the previous checkpoint step-1 is intact" in line
    # what the disk holds: step-1 complete, nothing of step-2, not even a partial directory
    names = sorted(p.name for p in (copy / "checkpoints").iterdir())
    assert names == ["step-1"], names
    assert checkpoint.damage(copy / "checkpoints" / "step-1") is None
    # ...and the run continues from it once there is room
    resumed_config = tmp_path / "resumed.yaml"
    resumed_config.write_text(yaml.safe_dump(tiny_overrides(copy, max_steps=3, save_steps=1)))
    resumed = subprocess.run([sys.executable, "-m", "selftaught", "train", "--config", str(resumed_config), "--resume"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-1" in resumed.stdout


def test_disk_errors_are_read_from_every_library_s_way_of_reporting_them(tmp_path):
    assert disk_errno(OSError(errno.ENOSPC, "No space left on device")) == errno.ENOSPC
    try:  # torch.save into a file object: a RuntimeError whose context is the OSError
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    except RuntimeError as error:
        assert disk_errno(error) == errno.EDQUOT
    assert disk_errno(Exception("Error while serializing: I/O error: No space left on device (os error 28)")) == 28
    assert disk_errno(OSError(errno.ENOENT, "missing")) is None
    assert disk_errno(RuntimeError("unexpected pos 704 vs 598")) is None
    assert free_space(tmp_path / "not" / "there").endswith(("bytes", "KB", "MB", "GB", "TB"))


def test_disk_writes_turns_only_disk_errors_into_one_line(tmp_path):
    with pytest.raises(UserError, match=r"^metrics file .* could not be written: Input/output error \(.* free there\)"):
        with disk_writes("metrics file", tmp_path / "metrics.jsonl"):
            raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(ValueError):
        with disk_writes("metrics file", tmp_path / "metrics.jsonl"):
            raise ValueError("a bug keeps its traceback")


def test_a_failed_checkpoint_write_leaves_no_partial_directory(tmp_path, monkeypatch):
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    trainer = Trainer(build_config(tiny_overrides(tmp_path, max_steps=1)))
    first = trainer.save_checkpoint()

    def full_disk(obj, handle, *args, **kwargs):
        handle.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    trainer.step = 1
    with pytest.raises(UserError, match="the previous checkpoint step-0 is intact"):
        trainer.save_checkpoint()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [first.name]
    trainer.episodes.close()
