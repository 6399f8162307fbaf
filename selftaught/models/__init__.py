"""Load any model the project accepts: `(model, tokenizer) = load_model(name)`.

Accepted: `tiny-random` (built on the fly), a local Hugging Face directory (a
training checkpoint is one), a `.gguf` file (needs the `gguf` package), or a hub
id (needs network). Failures a user can cause end in one UserError line.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

BUILT_IN = ("tiny-random",)

_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def _torch_dtype(dtype: str):
    import torch

    return getattr(torch, _DTYPES.get(dtype, "float32"))


def _prepare_tokenizer(tokenizer):
    if tokenizer.pad_token is None:  # many base models ship without one
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right
    return tokenizer


# Tokenizers saved as the generic fast backend (our own, and many custom ones).
_GENERIC_TOKENIZER_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def _load_tokenizer(source: str, **kwargs):
    """AutoTokenizer, except for a directory whose tokenizer is the generic backend.

    transformers 5 picks the tokenizer class from the model type (qwen2 → Qwen2Tokenizer),
    which rebuilds the pre-tokenizer instead of using tokenizer.json as saved: a model
    with its own BPE would get different token ids after a checkpoint round trip.
    """
    import json

    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config_file = Path(source) / "tokenizer_config.json"
    if config_file.is_file() and (Path(source) / "tokenizer.json").is_file():
        declared = json.loads(config_file.read_text()).get("tokenizer_class")
        if declared in _GENERIC_TOKENIZER_CLASSES:
            return PreTrainedTokenizerFast.from_pretrained(source)
    return AutoTokenizer.from_pretrained(source, **kwargs)


def load_model(name_or_path: str, dtype: str = "auto", trust_remote_code: bool = False):
    """Return `(model, tokenizer)` for a built-in name, a directory, a GGUF file or a hub id."""
    from transformers import AutoModelForCausalLM

    if name_or_path in BUILT_IN:
        from .tiny import build_tiny_random

        model, tokenizer = build_tiny_random()
        return model.to(_torch_dtype(dtype)), _prepare_tokenizer(tokenizer)

    path = Path(name_or_path).expanduser()
    kwargs = {"dtype": _torch_dtype(dtype), "trust_remote_code": trust_remote_code}
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"model file not found: {path}")
        source, kwargs["gguf_file"] = str(path.parent), path.name
    elif path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model directory {path} has no config.json: is it a Hugging Face model directory?")
        source = str(path)
    elif name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise UserError(f"model path not found: {name_or_path}")
    else:
        source = name_or_path  # a hub id
    try:
        tokenizer = _load_tokenizer(source, **{k: v for k, v in kwargs.items() if k != "dtype"})
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except ImportError as error:
        raise UserError(f"could not load model {name_or_path!r}: {error}".splitlines()[0]) from None
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"could not load model {name_or_path!r}: {first_line}") from None
    return model, _prepare_tokenizer(tokenizer)
