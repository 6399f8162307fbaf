"""`selftaught export`: a training checkpoint as a model directory without trainer state."""

from __future__ import annotations

import shutil
from pathlib import Path

from .checkpoint import MANIFEST_FILE, STATE_FILE
from .errors import UserError
from .models import load_model, resolve_model_name
from .models.adapters import is_adapter_checkpoint


def export_checkpoint(checkpoint: str, output: str, merge: bool) -> str:
    """Write a training checkpoint as a model directory without trainer state.

    Full-weight checkpoints: the model and tokenizer as they are. LoRA checkpoints:
    with `merge`, a plain Hugging Face model (adapter merged into the base); without,
    the adapter directory (PEFT format, loadable with `PeftModel.from_pretrained`).
    """
    source = Path(resolve_model_name(checkpoint))
    if not source.is_dir():
        raise UserError(f"checkpoint not found: {checkpoint}")
    target = Path(output)
    if target.exists() and any(target.iterdir()):
        raise UserError(f"output directory {target} is not empty; choose a new one")
    adapter = is_adapter_checkpoint(source)
    if adapter and merge:
        model, tokenizer = load_model(str(source))  # a LoRA checkpoint loads as its base, adapter merged
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
        return "merged"
    if not adapter and not (source / "config.json").is_file():
        raise UserError(f"{source} is neither a model directory nor a LoRA checkpoint")
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.name not in (STATE_FILE, MANIFEST_FILE):
            shutil.copy2(item, target / item.name)
    return "adapter" if adapter else "model"
