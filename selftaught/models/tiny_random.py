"""`tiny-random`: a tiny Qwen2-style model and BPE tokenizer built on the fly.

Randomly initialised (seeded, so every build is identical) and small enough to
train on a laptop CPU in seconds per step. It exists so the whole pipeline runs
with no download; it knows nothing, so only the mechanics can be watched on it.
`train_bpe_tokenizer` and `qwen2_model` are also how the build scripts start the
shipped models (`selftaught.tiny` trains them).
"""

from __future__ import annotations

from ..data import arithmetic

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    problems = arithmetic.generate(400, split="train", seed=12345)
    return [f"{p.prompt}\n{p.solution}" for p in problems] + [
        "def f(a):\n    return a\n", "<think> </think> <answer> </answer>", "```python\n```\n```input\n```"
    ]


def train_bpe_tokenizer(texts: list[str], vocab_size: int, special_tokens: list[str] = SPECIAL_TOKENS,
                        split_digits: bool = False, phrases: list[str] = ()):
    """A byte-level BPE tokenizer trained on `texts` (any text encodes; nothing is out of
    vocabulary); `split_digits` spells numbers digit by digit. The first special token
    is EOS and padding; padding is on the left, as sampling needs. Each of `phrases` (fixed
    text the texts repeat) becomes one token of its own, matched before anything else."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    for phrase in sorted(phrases, key=len, reverse=True):  # the merges go to what the phrases leave
        texts = [text.replace(phrase, "\n") for text in texts]

    core = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]) \
        if split_digits else byte_level
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer)
    eos = special_tokens[0]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=eos, pad_token=eos)
    tokenizer.padding_side = "left"
    tokenizer.add_tokens([AddedToken(phrase, normalized=False) for phrase in phrases])
    return tokenizer


def qwen2_model(tokenizer, seed: int, **config):
    """A randomly initialised Qwen2 causal LM for `tokenizer` (EOS doubles as BOS and
    padding), seeded without disturbing the caller's random stream."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    eos = tokenizer.eos_token_id
    settings = Qwen2Config(vocab_size=len(tokenizer), bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, **config)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Qwen2ForCausalLM(settings)


def build_tokenizer(vocab_size: int = 512):
    """The tiny-random model's tokenizer, trained on a little arithmetic and code."""
    return train_bpe_tokenizer(_corpus(), vocab_size)


def build_tiny_random(seed: int = 0, hidden_size: int = 64, num_layers: int = 2):
    """(model, tokenizer): a seeded random Qwen2 model of ~100k parameters."""
    tokenizer = build_tokenizer()
    model = qwen2_model(tokenizer, seed, hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=1024, tie_word_embeddings=True)
    return model, tokenizer
