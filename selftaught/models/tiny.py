"""`tiny-random`: a tiny Qwen2-style model and BPE tokenizer built on the fly.

Randomly initialised (seeded, so every build is identical) and small enough to
train on a laptop CPU in seconds per step. It exists so the whole pipeline runs
with no download; it knows nothing, so only the mechanics can be watched on it.
"""

from __future__ import annotations

from ..data import arithmetic

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    problems = arithmetic.generate(400, split="train", seed=12345)
    return [f"{p.prompt}\n{p.solution}" for p in problems] + [
        "def f(a):\n    return a\n", "<think> </think> <answer> </answer>", "```python\n```\n```input\n```"
    ]


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer (any text encodes; nothing is out of vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>")
    tokenizer.padding_side = "left"
    return tokenizer


def build_tiny_random(seed: int = 0, hidden_size: int = 64, num_layers: int = 2):
    """(model, tokenizer): a seeded random Qwen2 model of ~100k parameters."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    devnull = torch.random.fork_rng()  # do not disturb the caller's RNG stream
    with devnull:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    return model, tokenizer
