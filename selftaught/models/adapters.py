"""LoRA checkpoints: recognising one, naming its base, loading and merging its adapter.

A LoRA checkpoint (`adapter_config.json` + `adapter_model.safetensors`, no
`config.json`) is loaded back as base + adapter (`load_adapter_checkpoint`, how a
LoRA run resumes); `merge_checkpoint` folds the adapter into the base weights and
returns a plain transformers model, what `load_model` gives for such a directory,
what `selftaught export --merge` writes and what `selftaught eval` scores. Training
adapters is `selftaught.lora`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .tokenizer import load_tokenizer, prepare_tokenizer

ADAPTER_CONFIG = "adapter_config.json"


def require_peft():
    """The peft module, or one UserError line saying how to install it."""
    try:
        import peft
    except ImportError:
        raise UserError("lora needs the peft package: pip install peft (or pip install -e .[lora])") from None
    return peft


def is_adapter_checkpoint(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def adapter_base(path) -> str:
    """The base model a LoRA checkpoint was trained on."""
    base = json.loads((Path(path) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise UserError(f"LoRA checkpoint {path} does not name its base model (base_model_name_or_path)")
    return base


def load_adapter_checkpoint(path, model, trainable: bool):
    """`model` (the base, already loaded) with the adapter from checkpoint `path`."""
    peft = require_peft()
    return peft.PeftModel.from_pretrained(model, str(path), is_trainable=trainable)


def merge_checkpoint(path, base, tokenizer):
    """(plain model, tokenizer): `base` (loaded from `adapter_base(path)`, with its
    `tokenizer`) and the adapter of the LoRA checkpoint `path`, merged."""
    merged = load_adapter_checkpoint(path, base, trainable=False).merge_and_unload()
    if (Path(path) / "tokenizer_config.json").is_file():  # the run's tokenizer (pad side, etc.)
        tokenizer = prepare_tokenizer(load_tokenizer(str(path)))
    return merged, tokenizer
