"""Batched sampling of completions with the model's KV cache.

One `generate` call per chunk of `generation_batch_size` completions, never one
per sample. Prompts are tokenised once each (a group of G completions shares its
prompt's ids), left-padded, and truncated from the left to `max_prompt_length`
(the end of a prompt — the question — matters most). Sampling settings are set
explicitly, so a model's shipped generation_config (top_k=50, repetition
penalties, ...) cannot silently change the distribution we score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .ops import completion_mask


@dataclass
class Rollout:
    """N sampled completions and their prompts, as padded token tensors.

    prompt_ids/prompt_mask: [N, P] left-padded. completion_ids/completion_mask:
    [N, T]; the mask covers tokens up to and including the first EOS.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    prompts: list[str]
    completions: list[str]
    extras: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.completion_ids.shape[0]

    @staticmethod
    def concat(parts: list["Rollout"], pad_token_id: int) -> "Rollout":
        """Stack rollouts of different prompt/completion lengths (re-padding both)."""
        P = max(r.prompt_ids.shape[1] for r in parts)
        T = max(r.completion_ids.shape[1] for r in parts)

        def pad(t: torch.Tensor, width: int, left: bool, value) -> torch.Tensor:
            extra = width - t.shape[1]
            return torch.nn.functional.pad(t, (extra, 0) if left else (0, extra), value=value)

        extras: dict = {}
        for r in parts:
            for key, values in r.extras.items():
                extras.setdefault(key, []).extend(values)
        return Rollout(
            prompt_ids=torch.cat([pad(r.prompt_ids, P, True, pad_token_id) for r in parts]),
            prompt_mask=torch.cat([pad(r.prompt_mask, P, True, 0) for r in parts]),
            completion_ids=torch.cat([pad(r.completion_ids, T, False, pad_token_id) for r in parts]),
            completion_mask=torch.cat([pad(r.completion_mask, T, False, False) for r in parts]),
            prompts=[p for r in parts for p in r.prompts],
            completions=[c for r in parts for c in r.completions],
            extras=extras,
        )


def eos_token_ids(tokenizer, model) -> list[int]:
    """Every id that ends a completion (chat models often have several)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if "<|im_end|>" in tokenizer.get_vocab():
        ids.add(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return sorted(i for i in ids if i is not None)


class Sampler:
    """Samples completions from a causal LM; knows nothing about rewards."""

    def __init__(self, model, tokenizer, *, max_prompt_length: int, max_completion_length: int,
                 temperature: float, top_p: float = 1.0, top_k: int = 0,
                 generation_batch_size: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.max_prompt_length = max_prompt_length
        self.max_completion_length = max_completion_length
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generation_batch_size = generation_batch_size
        self.eos_ids = eos_token_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id

    def _generation_config(self, greedy: bool):
        from transformers import GenerationConfig

        sampling = {} if greedy else {"temperature": self.temperature, "top_p": self.top_p,
                                      "top_k": self.top_k or None}
        return GenerationConfig(
            do_sample=not greedy, max_new_tokens=self.max_completion_length, eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id, bos_token_id=None, repetition_penalty=1.0, **sampling,
        )

    def _tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        self.tokenizer.padding_side, self.tokenizer.truncation_side = "left", "left"
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_prompt_length, add_special_tokens=False)
        return encoded["input_ids"], encoded["attention_mask"]

    @torch.no_grad()
    def sample(self, prompts: list[str], num_generations: int = 1, greedy: bool = False,
               extras: dict | None = None) -> Rollout:
        """Sample `num_generations` completions per prompt; rows of a group are consecutive.

        `extras`: per-prompt lists (e.g. gold answers), repeated to per-completion.
        """
        device = next(self.model.parameters()).device
        ids, mask = self._tokenize(prompts)
        ids = ids.repeat_interleave(num_generations, dim=0)
        mask = mask.repeat_interleave(num_generations, dim=0)
        was_training = self.model.training
        self.model.eval()
        chunk = self.generation_batch_size or len(ids)
        pieces = []
        for start in range(0, len(ids), chunk):
            batch_ids, batch_mask = ids[start:start + chunk].to(device), mask[start:start + chunk].to(device)
            out = self.model.generate(input_ids=batch_ids, attention_mask=batch_mask,
                                      generation_config=self._generation_config(greedy))
            pieces.append(out[:, batch_ids.shape[1]:].cpu())
        self.model.train(was_training)
        width = max(p.shape[1] for p in pieces)
        completion_ids = torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1]), value=self.pad_id)
                                    for p in pieces])
        cmask = completion_mask(completion_ids, self.eos_ids)
        completion_ids = completion_ids.masked_fill(~cmask, self.pad_id)
        texts = self.tokenizer.batch_decode(completion_ids.masked_fill(~cmask, self.pad_id), skip_special_tokens=True)
        repeated = {k: [v for v in values for _ in range(num_generations)] for k, values in (extras or {}).items()}
        return Rollout(prompt_ids=ids, prompt_mask=mask.bool(), completion_ids=completion_ids,
                       completion_mask=cmask, prompts=[p for p in prompts for _ in range(num_generations)],
                       completions=texts, extras=repeated)
