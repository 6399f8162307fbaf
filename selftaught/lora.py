"""LoRA training through PEFT: adapters on a frozen base, saved alone.

- `apply_lora(model, settings, base)` wraps a loaded model in a `PeftModel`; only
  the adapter's A and B matrices require grad. `base` (the name the run loaded the
  model from) is written into `adapter_config.json` so a checkpoint knows its base.
- The KL reference for β > 0 is the same model with the adapter disabled
  (`PeftModel.disable_adapter()`), i.e. exactly the initial model: no second copy
  of the weights.

Loading a LoRA checkpoint back (to resume, or merged, to evaluate) is
`selftaught.models.adapters`; exporting one is `selftaught.export`.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .models.adapters import require_peft


def base_reference(name_or_path: str) -> str:
    """How a checkpoint names its base model: an existing local path made absolute, else as given."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else name_or_path


def apply_lora(model, settings, base: str):
    """Wrap `model` with fresh LoRA adapters (`settings`: config.LoraSettings)."""
    peft = require_peft()
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
