"""Checkpoints that survive `kill -9` at any moment.

`checkpoints/step-N/` is a Hugging Face model directory (weights, config,
tokenizer) — or, for a LoRA run, a PEFT adapter directory (`adapter_config.json`,
`adapter_model.safetensors`, tokenizer) — plus `trainer_state.pt` (optimizer,
scheduler, step, the episode source's position, and the RNG streams of every
process: `rng_per_rank`, with `num_processes`). A checkpoint is written under a temporary name and
renamed into place, so a directory named `step-N` is always complete; `--resume`
takes the newest one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
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
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{step}"
    partial = directory / f".step-{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    extra = {} if state_dict is None else {"state_dict": state_dict}
    if hasattr(model, "peft_config"):  # LoRA: the adapter alone; we never resize the embeddings, and
        extra["save_embedding_layers"] = False  # "auto" would look the base model up on the hub
    model.save_pretrained(partial, safe_serialization=True, **extra)
    tokenizer.save_pretrained(partial)
    torch.save(trainer_state, partial / STATE_FILE)
    _fsync_tree(partial)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    if keep is not None:
        for old in list_checkpoints(directory)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_tree(path: Path) -> None:
    for item in path.iterdir():
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / STATE_FILE, weights_only=False)
