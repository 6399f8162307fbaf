"""Batched sampling of completions with the model's KV cache.

Prompts are tokenised once each (a group of G completions shares its prompt's
ids), left-padded, and truncated from the left to `max_prompt_length` (the end
of a prompt — the question — matters most). Sampling settings are explicit, so
a model's shipped generation_config (top_k=50, repetition penalties, ...) cannot
silently change the distribution we score.

Our own decoding loop (`backend="loop"`, the default for standard decoder-only
models) replaces `model.generate`, which on the same batch spends time on:
- prefilling each prompt G times: here each distinct prompt is prefilled once
  and its KV cache is copied to its G rows;
- growing the KV cache with `torch.cat` every step (quadratic copying): here each
  layer's cache is allocated once at its final length and written in place;
- decoding rows that already ended: here finished rows are dropped from the
  batch (cache included) once a quarter of the batch has finished;
- per-step Python machinery (logits processors, stopping criteria, input
  preparation): here one forward, one sample, one EOS check per step; for the
  decoders we know (`LAYER_STEP_MODEL_TYPES`) a decode step calls the model's own
  layers, norm and head directly with a ready mask, skipping the model-level
  wrapper (checked once per sampler to give the model's own logits, bit for bit);
- autograd bookkeeping: decoding runs under `torch.inference_mode`;
- torch.multinomial, slow on CPU: here a float64 inverse-CDF draw.
The sampled distribution is the same: softmax((z / τ) with top-k, then top-p
filtering), as `generate`'s warpers apply them. `backend="generate"` (also the
fallback for models whose cache is not plain full attention) calls `generate`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from .ops import completion_mask


@dataclass
class Rollout:
    """N sampled completions and their prompts, as padded token tensors.

    prompt_ids/prompt_mask: [N, P] left-padded. completion_ids/completion_mask:
    [N, T]; the mask covers tokens up to and including the first EOS.
    sampler_logprobs: [N, T] log-probs of the sampled tokens as the sampling engine
    reported them (vLLM), or None when the trainer's own model sampled.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    prompts: list[str]
    completions: list[str]
    extras: dict = field(default_factory=dict)
    sampler_logprobs: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.completion_ids.shape[0]

    def rows(self, index: slice) -> "Rollout":
        """The rows `index` of this rollout (padding kept as it is)."""
        return Rollout(
            prompt_ids=self.prompt_ids[index], prompt_mask=self.prompt_mask[index],
            completion_ids=self.completion_ids[index], completion_mask=self.completion_mask[index],
            prompts=self.prompts[index], completions=self.completions[index],
            extras={key: values[index] for key, values in self.extras.items()},
            sampler_logprobs=None if self.sampler_logprobs is None else self.sampler_logprobs[index],
        )

    @staticmethod
    def concat(parts: list["Rollout"], pad_token_id: int) -> "Rollout":
        """Stack rollouts of different prompt/completion lengths (re-padding both)."""
        extras: dict = {}
        for r in parts:
            for key, values in r.extras.items():
                extras.setdefault(key, []).extend(values)
        reported = [r.sampler_logprobs for r in parts]
        width = max(r.completion_ids.shape[1] for r in parts)  # the sampler's log-probs align with the ids
        sampler_logprobs = None if any(t is None for t in reported) else cat_padded(reported, 0.0, width=width)
        return Rollout(
            prompt_ids=cat_padded([r.prompt_ids for r in parts], pad_token_id, left=True),
            prompt_mask=cat_padded([r.prompt_mask for r in parts], 0, left=True),
            completion_ids=cat_padded([r.completion_ids for r in parts], pad_token_id),
            completion_mask=cat_padded([r.completion_mask for r in parts], False),
            prompts=[p for r in parts for p in r.prompts],
            completions=[c for r in parts for c in r.completions],
            extras=extras, sampler_logprobs=sampler_logprobs,
        )


def cat_padded(tensors: list[torch.Tensor], value, *, left: bool = False, width: int | None = None) -> torch.Tensor:
    """[n_1 + n_2 + ..., W] of [n_k, T_k] tensors, each padded with `value` to W = `width` or the widest:
    on the left (prompts: generation appends on the right) or on the right (completions)."""
    width = max(t.shape[1] for t in tensors) if width is None else width
    return torch.cat([torch.nn.functional.pad(t, (width - t.shape[1], 0) if left else (0, width - t.shape[1]),
                                              value=value) for t in tensors])


def encode_prompts(tokenizer, prompts: list[str], max_prompt_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of `prompts`, left-padded and left-truncated to max_prompt_length.

    Padding and truncation are done here, not by the tokenizer's settings: the
    tokenizer is shared (the trainer's, the user's) and is left as it was.
    """
    rows = [ids[-max_prompt_length:] if len(ids) > max_prompt_length else ids
            for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    input_ids, attention_mask = pad_token_rows(rows, tokenizer.pad_token_id, left=True)
    return input_ids, attention_mask.long()


def pad_token_rows(rows: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [n, width], bool mask of the real tokens) of token rows padded to the longest, on the left
    (prompts: generation appends on the right) or on the right (completions)."""
    width = max((len(ids) for ids in rows), default=0)
    ids_out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for k, ids in enumerate(rows):
        if ids:
            where = slice(width - len(ids), width) if left else slice(0, len(ids))
            ids_out[k, where] = torch.tensor(ids, dtype=torch.long)
            mask[k, where] = True
    return ids_out, mask


def repeat_per_completion(values: list, num_generations: int) -> list:
    """Per-prompt values as per-completion values (a group's rows are consecutive)."""
    return [v for v in values for _ in range(num_generations)]


def rollout_from_token_rows(tokenizer, prompts: list[str], rows: list[list[int]], num_generations: int,
                            max_prompt_length: int, extras: dict | None = None,
                            encoded: tuple[torch.Tensor, torch.Tensor] | None = None) -> Rollout:
    """A Rollout from given completion token rows (num_generations per prompt, in order).

    For stand-in policies (tests, scripted self-play) and other engines (vLLM): every
    token of a row is real; prompts are left-padded and truncated exactly as `SelftaughtSampler`
    does (`encoded`: the prompts' `encode_prompts` output, when the caller has it).
    """
    prompt_ids, prompt_mask = encoded or encode_prompts(tokenizer, prompts, max_prompt_length)
    completion_ids, completion_mask = pad_token_rows(rows, tokenizer.pad_token_id, left=False)
    return Rollout(
        prompt_ids=prompt_ids.repeat_interleave(num_generations, dim=0),
        prompt_mask=prompt_mask.bool().repeat_interleave(num_generations, dim=0),
        completion_ids=completion_ids, completion_mask=completion_mask,
        prompts=repeat_per_completion(prompts, num_generations),
        completions=tokenizer.batch_decode(completion_ids, skip_special_tokens=True),
        extras={k: repeat_per_completion(values, num_generations) for k, values in (extras or {}).items()},
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


class _PreallocatedLayer:
    """Mix-in for transformers' DynamicLayer: one buffer per layer at its final length.

    `update` writes the new keys/values in place and returns views of the filled
    part, instead of concatenating (a full copy of the cache at every step).
    """

    capacity = 0

    def lazy_initialization(self, key_states, value_states):
        super().lazy_initialization(key_states, value_states)
        B, H, _, D = key_states.shape
        self._key_buffer = key_states.new_empty(B, H, self.capacity, D)
        self._value_buffer = value_states.new_empty(B, H, self.capacity, value_states.shape[-1])
        self._length = 0

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV cache capacity {self.capacity} exceeded ({end})")
        self._key_buffer[:, :, self._length:end] = key_states
        self._value_buffer[:, :, self._length:end] = value_states
        self._length = end
        self.keys = self._key_buffer[:, :, :end]
        self.values = self._value_buffer[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self._key_buffer = self._key_buffer.index_select(0, indices)
            self._value_buffer = self._value_buffer.index_select(0, indices)
            self.keys = self._key_buffer[:, :, :self._length]
            self.values = self._value_buffer[:, :, :self._length]


def _preallocated_cache(model, capacity: int):
    """A DynamicCache whose full-attention layers are preallocated; None if the model's cache is anything else."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return None
    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # a config transformers cannot lay a cache out for
        return None
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None  # sliding-window, hybrid, linear-attention or KV-sharing layers: leave them to generate
    layer_class = type("PreallocatedLayer", (_PreallocatedLayer, DynamicLayer), {"capacity": capacity})
    for i in range(len(cache.layers)):
        cache.layers[i] = layer_class()
    return cache


class _ModelStep:
    """One decode step through the model's forward: logits [N, V] of the next token.

    `attention` is [N, L] bool over the cache plus this token; sdpa gets it as a ready
    [N, 1, 1, L] mask (one query per row: the causal part is trivial), other
    attention implementations the usual 0/1 matrix.
    """

    def __init__(self, model):
        self.model = model
        self.sdpa = getattr(model.config, "_attn_implementation", None) == "sdpa"

    def __call__(self, token: torch.Tensor, attention: torch.Tensor, position: torch.Tensor, cache) -> torch.Tensor:
        mask = attention[:, None, None, :] if self.sdpa else attention.long()
        return self.model(input_ids=token[:, None], attention_mask=mask, position_ids=position[:, None],
                          past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]


# Decoders whose model-level forward is exactly embed → rotary position embeddings → layers →
# final norm → head: no embedding scale (Gemma), no logit scale or cap, one full-attention mask.
LAYER_STEP_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


class _LayerStep(_ModelStep):
    """One decode step straight through the decoder's own modules.

    For a small model a decode step is mostly Python: the model-level forward rebuilds its mask
    mapping, output records and wrappers at every token. Here the ready sdpa mask goes to the
    same embedding, layers, norm and head the model's forward would call, in the same order,
    inside `autocast()`: the mixed-precision context a wrapper around the model's forward adds
    (accelerate's bf16 wraps it so). `SelftaughtSampler` checks once that the two give identical logits
    before using it.
    """

    def __init__(self, model, decoder, head, autocast=nullcontext):
        super().__init__(model)
        self.decoder, self.head, self.autocast = decoder, head, autocast
        self.layers = list(decoder.layers[:model.config.num_hidden_layers])

    @classmethod
    def of(cls, model, autocast=nullcontext) -> "_LayerStep | None":
        """The layer step for `model` (a PEFT wrapper's base included), or None for other architectures."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = getattr(base, "config", None)
        if getattr(config, "model_type", None) not in LAYER_STEP_MODEL_TYPES:
            return None
        if getattr(config, "_attn_implementation", None) != "sdpa":
            return None
        decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
        head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
        if head is None or not all(hasattr(decoder, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
            return None
        return cls(model, decoder, head, autocast)

    def __call__(self, token: torch.Tensor, attention: torch.Tensor, position: torch.Tensor, cache) -> torch.Tensor:
        decoder, position = self.decoder, position[:, None]
        mask = attention[:, None, None, :]
        with self.autocast():
            hidden = decoder.embed_tokens(token[:, None])
            rope = decoder.rotary_emb(hidden, position)
            for layer in self.layers:
                hidden = layer(hidden, attention_mask=mask, position_ids=position, past_key_values=cache,
                               use_cache=True, position_embeddings=rope)
            return self.head(decoder.norm(hidden)[:, -1]).float()


def _checked_layer_step(model, ids: torch.Tensor, mask: torch.Tensor, autocast=nullcontext) -> _LayerStep | None:
    """`_LayerStep.of(model)` when one decode step through it gives exactly the model's own logits
    after prefilling `ids` [1, P] (a prompt of the batch), else None.

    A transformers version whose layers take other arguments or do more than the model-level
    forward hands them fails here, once, and sampling keeps the model's forward: the shortcut can
    cost nothing but its speed.
    """
    layer_step = _LayerStep.of(model, autocast)
    if layer_step is None:
        return None
    mask = mask.long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    attention = torch.cat([mask.bool(), mask.new_ones(len(ids), 1, dtype=torch.bool)], dim=1)
    logits = []
    for step in (_ModelStep(model), layer_step):
        cache = _preallocated_cache(model, ids.shape[1] + 1)
        first = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                      use_cache=True, logits_to_keep=1).logits[:, -1]
        try:
            logits.append(step(first.argmax(-1), attention, positions[:, -1] + 1, cache).float())
        except (TypeError, ValueError, AttributeError, RuntimeError):  # layers with another calling convention
            return None
    return layer_step if torch.equal(logits[0], logits[1]) else None


def _filter_logits(scores: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k then top-p (nucleus) filtering of [N, V] temperature-scaled logits, as generate's warpers do."""
    if top_k and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1)  # ascending
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= 1 - top_p
        remove[:, -1] = False  # always keep the most likely token
        scores = scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    return scores


class RolloutSampler:
    """What the trainer asks of a sampler: our decoding loop (`SelftaughtSampler`), a vLLM engine
    (`vllm_backend.VLLMSampler`), or a stand-in policy (`azr.scripted.ScriptedSampler`).

    - `sample(prompts, num_generations, greedy, extras)` → `Rollout` (required): the rows
      of a prompt's group are consecutive; `extras` are per-prompt lists, repeated per row;
    - `syncs_weights` / `sync_weights()`: an engine that samples from its own copy of the
      weights gets the policy's new ones after each rollout's last optimizer step;
    - `close()`: release the engine (called once when training ends).
    """

    syncs_weights: bool = False

    def sample(self, prompts: list[str], num_generations: int = 1, greedy: bool = False,
               extras: dict | None = None) -> Rollout:
        raise NotImplementedError

    def sync_weights(self) -> None:
        pass

    def close(self) -> None:
        pass


class SelftaughtSampler(RolloutSampler):
    """Samples completions from a causal LM; knows nothing about rewards.

    backend: "auto" (our decoding loop when the model's cache allows it, else
    `generate`), "loop", or "generate". autocast: the mixed-precision context the model's
    forward runs under, when a wrapper adds one (the trainer passes accelerate's), so that the
    decode steps that bypass the model-level forward run under it too.
    """

    def __init__(self, model, tokenizer, *, max_prompt_length: int, max_completion_length: int,
                 temperature: float, top_p: float = 1.0, top_k: int = 0,
                 generation_batch_size: int | None = None, backend: str = "auto", autocast=nullcontext):
        if backend not in ("auto", "loop", "generate"):
            raise ValueError(f"backend must be auto, loop or generate, got {backend!r}")
        self.model, self.tokenizer = model, tokenizer
        self.max_prompt_length = max_prompt_length
        self.max_completion_length = max_completion_length
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generation_batch_size = generation_batch_size
        self.backend = backend
        self.autocast = autocast  # the mixed precision the model's forward runs under (the trainer's)
        self.eos_ids = eos_token_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id
        self._step = None  # the decode-step function, chosen at the first decode (`_decode_step`)
        self.decode_path: str | None = None

    def _generation_config(self, greedy: bool):
        from transformers import GenerationConfig

        # top_k=0 must be passed as 0: transformers 5 fills an unset (None) top_k with its default of 50,
        # which would sample from a truncated distribution while the trainer scores the full one.
        sampling = {} if greedy else {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
        return GenerationConfig(
            do_sample=not greedy, max_new_tokens=self.max_completion_length, eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id, bos_token_id=None, repetition_penalty=1.0, **sampling,
        )

    @torch.no_grad()
    def sample(self, prompts: list[str], num_generations: int = 1, greedy: bool = False,
               extras: dict | None = None) -> Rollout:
        """Sample `num_generations` completions per prompt; rows of a group are consecutive.

        `extras`: per-prompt lists (e.g. gold answers), repeated to per-completion.
        """
        device = next(self.model.parameters()).device
        unique_ids, unique_mask = encode_prompts(self.tokenizer, prompts, self.max_prompt_length)
        group = torch.arange(len(prompts)).repeat_interleave(num_generations)  # row → its prompt
        was_training = self.model.training
        self.model.eval()
        chunk = self.generation_batch_size or len(group)
        pieces = []
        try:
            for start in range(0, len(group), chunk):
                rows = group[start:start + chunk]
                pieces.append(self._generate_chunk(unique_ids, unique_mask, rows, greedy, device).cpu())
        finally:
            self.model.train(was_training)
        ids, mask = unique_ids[group], unique_mask[group]
        completion_ids = cat_padded(pieces, self.pad_id)
        cmask = completion_mask(completion_ids, self.eos_ids)
        completion_ids = completion_ids.masked_fill(~cmask, self.pad_id)
        texts = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        repeated = {k: repeat_per_completion(values, num_generations) for k, values in (extras or {}).items()}
        return Rollout(prompt_ids=ids, prompt_mask=mask.bool(), completion_ids=completion_ids,
                       completion_mask=cmask, prompts=repeat_per_completion(prompts, num_generations),
                       completions=texts, extras=repeated)

    def _generate_chunk(self, unique_ids, unique_mask, rows, greedy, device) -> torch.Tensor:
        """Completion ids [len(rows), ≤ max_completion_length] for the prompts `rows` index."""
        used, local = torch.unique(rows, return_inverse=True)  # distinct prompts of this chunk
        ids, mask = unique_ids[used], unique_mask[used]
        keep = mask.any(0)  # drop columns that are padding in every prompt of the chunk
        if keep.any():
            first = int(keep.nonzero()[0])
            ids, mask = ids[:, first:], mask[:, first:]
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode():
            cache = None
            if self.backend != "generate":
                cache = _preallocated_cache(self.model, ids.shape[1] + self.max_completion_length)
                if cache is None and self.backend == "loop":
                    raise ValueError(f"backend='loop' needs a model with plain full-attention KV caches; "
                                     f"{type(self.model).__name__} has another kind: use backend='generate'")
            if cache is None:
                out = self.model.generate(input_ids=ids[local.to(device)], attention_mask=mask[local.to(device)],
                                          generation_config=self._generation_config(greedy))[:, ids.shape[1]:]
            else:
                out = self._decode(ids, mask, local.to(device), cache, greedy)
        return out.clone()  # a normal tensor again: training's autograd may save it (token ids of the update)

    def _decode_step(self, ids, mask):
        """The decode-step function, chosen at the first call: the layer step where it reproduces the
        model's own logits on this chunk's first prompt, else the model's forward (`decode_path` says which)."""
        if self._step is None:
            self._step = _checked_layer_step(self.model, ids[:1], mask[:1], self.autocast) or _ModelStep(self.model)
            self.decode_path = "layers" if isinstance(self._step, _LayerStep) else "model"
        return self._step

    def _decode(self, ids, mask, local, cache, greedy) -> torch.Tensor:
        """Prefill the distinct prompts once, copy each one's cache to its rows, then sample token by token."""
        model, T, P = self.model, self.max_completion_length, ids.shape[1]
        step = self._decode_step(ids, mask)
        mask = mask.long()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1]
        cache.batch_select_indices(local)  # prompt → its G rows
        logits, next_position = logits[local], positions[local, -1] + 1
        N = len(local)
        attention = torch.zeros(N, P + T, dtype=torch.bool, device=ids.device)
        attention[:, :P] = mask[local].bool()
        tokens = torch.full((N, T), self.pad_id, dtype=torch.long, device=ids.device)
        eos = torch.tensor(self.eos_ids, device=ids.device)
        rows = torch.arange(N, device=ids.device)  # batch position → output row
        alive = torch.ones(N, dtype=torch.bool, device=ids.device)
        steps = 0
        for t in range(T):
            token = self._pick(logits.float(), greedy)
            # Rows that already ended write tokens after their EOS too: `sample` masks everything after
            # a row's first EOS, which is cheaper than selecting the live rows at every step.
            tokens[rows, t] = token
            steps = t + 1
            alive &= ~torch.isin(token, eos)
            n_alive = int(alive.sum())
            if n_alive == 0 or t == T - 1:
                break
            if n_alive <= 0.75 * len(rows):  # drop finished rows (and their cache) from the batch
                keep = alive.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, token, attention, next_position = rows[keep], token[keep], attention[keep], next_position[keep]
                alive = alive[keep]
            attention[:, P + t] = True
            logits = step(token, attention[:, :P + t + 1], next_position, cache)
            next_position = next_position + 1
        return tokens[:, :steps]

    def _pick(self, logits: torch.Tensor, greedy: bool) -> torch.Tensor:
        if greedy:
            return logits.argmax(dim=-1)
        scores = _filter_logits(logits / self.temperature, self.top_k, self.top_p)
        return _sample_categorical(scores.softmax(dim=-1))


def _sample_categorical(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row of [N, V] probabilities by inverting the CDF.

    On CPU this is 15-20x faster than torch.multinomial (0.04 vs 0.7 ms at [64, 512],
    1.2 vs 23 ms at [8, 151936]). The CDF is summed in float64 so its rounding error
    (~1e-12) is far below any token's probability that matters; `right=True` never
    returns a zero-probability (filtered) token, and u < total keeps it in range.
    """
    cdf = probs.double().cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, dtype=torch.float64, device=probs.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)
