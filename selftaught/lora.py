"""LoRA through PEFT: adapters on a frozen base, saved alone, merged on export.

- `apply_lora(model, settings, base)` wraps a loaded model in a `PeftModel`; only
  the adapter's A and B matrices require grad. `base` (the name the run loaded the
  model from) is written into `adapter_config.json` so a checkpoint knows its base.
- The KL reference for β > 0 is the same model with the adapter disabled
  (`PeftModel.disable_adapter()`), i.e. exactly the initial model: no second copy
  of the weights.
- A LoRA checkpoint (`adapter_config.json` + `adapter_model.safetensors`, no
  `config.json`) is loaded back as base + adapter (`load_adapter_checkpoint`);
  `merge_checkpoint` folds the adapter into the base weights and returns a plain
  transformers model, what `selftaught export --merge` writes and what
  `selftaught eval` scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .errors import UserError

ADAPTER_CONFIG = "adapter_config.json"


def _peft():
    try:
        import peft
    except ImportError:
        raise UserError("lora needs the peft package: pip install peft (or pip install -e .[lora])") from None
    return peft


def is_adapter_checkpoint(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def base_reference(name_or_path: str) -> str:
    """How a checkpoint names its base model: an existing local path made absolute, else as given."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else name_or_path


def apply_lora(model, settings, base: str):
    """Wrap `model` with fresh LoRA adapters (`settings`: config.LoraSettings)."""
    peft = _peft()
    targets = settings.target_modules
    config = peft.LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                             target_modules=targets if isinstance(targets, str) else list(targets),
                             task_type="CAUSAL_LM")
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as error:  # e.g. "Target modules {...} not found in the base model"
        first = str(error).strip().splitlines()[0]
        raise UserError(f"lora.target_modules {targets}: {first}") from None
    # peft takes the base's name from the model, which a built-in or GGUF model lacks.
    wrapped.peft_config[wrapped.active_adapter].base_model_name_or_path = base_reference(base)
    return wrapped


def adapter_base(path) -> str:
    """The base model a LoRA checkpoint was trained on."""
    base = json.loads((Path(path) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise UserError(f"LoRA checkpoint {path} does not name its base model (base_model_name_or_path)")
    return base


def load_adapter_checkpoint(path, model, trainable: bool):
    """`model` (the base, already loaded) with the adapter from checkpoint `path`."""
    peft = _peft()
    return peft.PeftModel.from_pretrained(model, str(path), is_trainable=trainable)


def merge_checkpoint(path, dtype: str = "auto", trust_remote_code: bool = False):
    """(plain model, tokenizer): base + adapter of a LoRA checkpoint, merged."""
    from .models import load_model

    base, tokenizer = load_model(adapter_base(path), dtype, trust_remote_code)
    merged = load_adapter_checkpoint(path, base, trainable=False).merge_and_unload()
    if (Path(path) / "tokenizer_config.json").is_file():  # the run's tokenizer (pad side, etc.)
        from .models import _load_tokenizer, _prepare_tokenizer

        tokenizer = _prepare_tokenizer(_load_tokenizer(str(path)))
    return merged, tokenizer


def export_checkpoint(checkpoint: str, output: str, merge: bool) -> str:
    """Write a training checkpoint as a model directory without trainer state.

    Full-weight checkpoints: the model and tokenizer as they are. LoRA checkpoints:
    with `merge`, a plain Hugging Face model (adapter merged into the base); without,
    the adapter directory (PEFT format, loadable with `PeftModel.from_pretrained`).
    """
    from .checkpoint import MANIFEST_FILE, STATE_FILE
    from .models import resolve_model_name

    source = Path(resolve_model_name(checkpoint))
    if not source.is_dir():
        raise UserError(f"checkpoint not found: {checkpoint}")
    target = Path(output)
    if target.exists() and any(target.iterdir()):
        raise UserError(f"output directory {target} is not empty; choose a new one")
    if is_adapter_checkpoint(source) and merge:
        model, tokenizer = merge_checkpoint(source)
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
        return "merged"
    if not (source / "config.json").is_file() and not is_adapter_checkpoint(source):
        raise UserError(f"{source} is neither a model directory nor a LoRA checkpoint")
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.name not in (STATE_FILE, MANIFEST_FILE):
            shutil.copy2(item, target / item.name)
    return "adapter" if is_adapter_checkpoint(source) else "model"
