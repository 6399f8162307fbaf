"""Checkpoints that survive `kill -9` at any moment.

`checkpoints/step-N/` is a Hugging Face model directory (weights, config,
tokenizer) — or, for a LoRA run, a PEFT adapter directory (`adapter_config.json`,
`adapter_model.safetensors`, tokenizer) — plus `trainer_state.pt` (optimizer,
scheduler, step, the episode source's position, and the RNG streams of every
process: `rng_per_rank`, with `num_processes`). A checkpoint is written under a temporary name and
renamed into place, so a directory named `step-N` is always complete. A write the disk refuses
(full, over quota, failing) removes the temporary directory and stops the run with one line naming
the checkpoint, the free space and the previous checkpoint, which is untouched (`storage`).

Each checkpoint also records what it contains: `manifest.json`, written last,
holds every file's size and sha256. A disk error, an interrupted copy or bit rot
after the fact is caught before anything is loaded: `latest_intact` (what
`--resume` uses) takes the newest checkpoint whose files all match, and names
each newer one it skips and why. A checkpoint from before manifests existed is
accepted, with a warning, when its trainer state and safetensors weights load.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .storage import disk_errno, disk_failure

STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "manifest.json"  # {"format": 1, "files": {name: {"size": bytes, "sha256": hex}}}
MANIFEST_FORMAT = 1
_NAME = re.compile(r"^step-(\d+)$")


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(directory: Path, step: int, model, tokenizer, trainer_state: dict, keep: int | None = None,
         state_dict: dict | None = None) -> Path:
    """Write `directory/step-{step}` atomically; prune to the newest `keep`.

    `state_dict`: the full weights when the model's own are sharded (FSDP, ZeRO-3).
    """
    final = directory / f"step-{step}"
    partial = directory / f".step-{step}.partial"
    previous = latest(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        extra = {} if state_dict is None else {"state_dict": state_dict}
        if hasattr(model, "peft_config"):  # LoRA: the adapter alone; we never resize the embeddings, and
            extra["save_embedding_layers"] = False  # "auto" would look the base model up on the hub
        model.save_pretrained(partial, safe_serialization=True, **extra)
        tokenizer.save_pretrained(partial)
        with open(partial / STATE_FILE, "wb") as handle:  # a file object: torch then reports the OSError
            torch.save(trainer_state, handle)
        _write_manifest(partial)  # last: it vouches for everything written before it
        _fsync_tree(partial)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)  # no debris, and the space back
        code = disk_errno(error)
        if code is None:
            raise
        kept = (f"; the previous checkpoint {previous.name} is intact, `--resume` continues from it" if previous
                else "; there is no earlier checkpoint")
        raise disk_failure("checkpoint", final, code, kept) from None
    if keep is not None:
        for old in list_checkpoints(directory)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_tree(path: Path) -> None:
    for item in path.iterdir():
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _files(checkpoint: Path) -> list[Path]:
    return sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)


def _write_manifest(checkpoint: Path) -> None:
    files = {p.relative_to(checkpoint).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in _files(checkpoint)}
    (checkpoint / MANIFEST_FILE).write_text(json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1))


def damage(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from (missing, truncated or altered files), or None.

    Checks every file against the manifest (size, then sha256). Without a
    manifest (written before manifests existed) see `_legacy_damage`.
    """
    manifest_path = checkpoint / MANIFEST_FILE
    if not manifest_path.is_file():
        return _legacy_damage(checkpoint)
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        expected = {name: (int(entry["size"]), str(entry["sha256"])) for name, entry in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{MANIFEST_FILE} is unreadable"
    if STATE_FILE not in expected:
        return f"{MANIFEST_FILE} does not list {STATE_FILE}"
    for name, (size, sha256) in sorted(expected.items(), key=lambda kv: kv[0] != STATE_FILE):
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        actual = path.stat().st_size
        if actual != size:
            return f"{name} is truncated or overwritten ({actual} bytes, the manifest says {size})"
        if _sha256(path) != sha256:
            return f"{name} does not match its sha256 in {MANIFEST_FILE} (corrupted)"
    return None


def _legacy_damage(checkpoint: Path) -> str | None:
    """A checkpoint without a manifest counts as intact when its trainer state loads
    and every safetensors file reads back whole (what resuming would read)."""
    if not (checkpoint / STATE_FILE).is_file():
        return f"{STATE_FILE} is missing"
    try:
        torch.load(checkpoint / STATE_FILE, weights_only=False, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure to load is damage
        return f"{STATE_FILE} does not load ({type(exc).__name__})"
    weights = sorted(checkpoint.glob("*.safetensors"))
    if not weights:
        return "no *.safetensors weights"
    from safetensors import safe_open

    for path in weights:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    handle.get_tensor(key)
        except Exception as exc:  # noqa: BLE001
            return f"{path.name} does not load ({type(exc).__name__})"
    return None


def list_checkpoints(directory: Path) -> list[Path]:
    """Directories named `step-N` (renamed into place complete), oldest first; see `damage`."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest(directory: Path) -> Path | None:
    """The newest checkpoint directory, intact or not (`latest_intact` checks)."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def latest_intact(directory: Path, warn: Callable[[str], None]) -> tuple[Path | None, list[str]]:
    """(the newest checkpoint that passes `damage`, or None; one line per one skipped).

    `warn` gets one line per checkpoint skipped (name and reason) and one for an
    accepted checkpoint that has no manifest.
    """
    skipped = []
    for path in reversed(list_checkpoints(directory)):
        reason = damage(path)
        if reason is None:
            if not (path / MANIFEST_FILE).is_file():
                warn(f"checkpoint {path.name} has no {MANIFEST_FILE} (written before manifests); "
                     "its trainer state and weights load, so resuming from it")
            return path, skipped
        skipped.append(f"{path.name}: {reason}")
        warn(f"skipping checkpoint {path.name}: {reason}")
    return None, skipped


def load_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / STATE_FILE, weights_only=False)
