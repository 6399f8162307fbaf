"""Loading a tokenizer as saved, and preparing it for sampling."""

from __future__ import annotations

import json
from pathlib import Path

# Tokenizers saved as the generic fast backend (our own, and many custom ones).
GENERIC_TOKENIZER_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def prepare_tokenizer(tokenizer):
    """`tokenizer` with a pad token (EOS if it has none) and padding on the left."""
    if tokenizer.pad_token is None:  # many base models ship without one
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right
    return tokenizer


def load_tokenizer(source: str, **kwargs):
    """AutoTokenizer, except for a directory whose tokenizer is the generic backend.

    transformers 5 picks the tokenizer class from the model type (qwen2 → Qwen2Tokenizer),
    which rebuilds the pre-tokenizer instead of using tokenizer.json as saved: a model
    with its own BPE would get different token ids after a checkpoint round trip.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config_file = Path(source) / "tokenizer_config.json"
    if config_file.is_file() and (Path(source) / "tokenizer.json").is_file():
        declared = json.loads(config_file.read_text()).get("tokenizer_class")
        if declared in GENERIC_TOKENIZER_CLASSES:
            return PreTrainedTokenizerFast.from_pretrained(source)
    return AutoTokenizer.from_pretrained(source, **kwargs)
