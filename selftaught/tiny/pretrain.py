"""Supervised pretraining of a small causal LM on (context, continuation) documents.

Used by `scripts/build_tiny_model.py` to build the shipped `selftaught-tiny`. The
loss covers the continuation only (the context is what a prompt will supply at
run time), batches are length-bucketed to keep padding low, and everything is
seeded so a rebuild gives the same weights on the same machine.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Document:
    context: str
    continuation: str


def encode(tokenizer, documents: list[Document], max_length: int) -> list[tuple[list[int], int]]:
    """(token ids, number of context tokens) per document; over-long ones are dropped."""
    contexts = tokenizer([d.context for d in documents], add_special_tokens=False)["input_ids"]
    continuations = tokenizer([d.continuation for d in documents], add_special_tokens=False)["input_ids"]
    encoded = []
    for c, o in zip(contexts, continuations):
        ids = c + o + [tokenizer.eos_token_id]
        if len(ids) <= max_length:
            encoded.append((ids, len(c)))
    return encoded


def _batches(encoded, tokens_per_batch: int, rng: random.Random):
    """Length-bucketed batches of about `tokens_per_batch` tokens, in random order."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), rng.random()))
    batches, current, longest = [], [], 0
    for i in order:
        longest_if_added = max(longest, len(encoded[i][0]))
        if current and longest_if_added * (len(current) + 1) > tokens_per_batch:
            batches.append(current)
            current, longest_if_added = [], len(encoded[i][0])
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _collate(encoded, indices, pad_id):
    width = max(len(encoded[i][0]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    labels = torch.full((len(indices), width), -100, dtype=torch.long)
    attention = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        tokens, n_context = encoded[i]
        ids[row, :len(tokens)] = torch.tensor(tokens)
        attention[row, :len(tokens)] = 1
        labels[row, n_context:len(tokens)] = torch.tensor(tokens[n_context:])
    return ids, attention, labels


def pretrain(model, tokenizer, documents: list[Document], *, epochs: float, learning_rate: float,
             tokens_per_batch: int, max_length: int, seed: int = 0, log_every: int = 50,
             time_budget_s: float | None = None, max_steps: int | None = None) -> dict:
    """Train `model` in place for `epochs` passes (at most `max_steps` batches, at most
    `time_budget_s` seconds); returns {'steps', 'final_loss', 'seconds', 'documents'}.
    The learning-rate schedule spans the planned steps, so a step budget, unlike a time
    budget, gives the same model on any machine."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    encoded = encode(tokenizer, documents, max_length)
    schedule = [b for epoch in range(math.ceil(epochs)) for b in _batches(encoded, tokens_per_batch, rng)]
    schedule = schedule[: int(len(schedule) * epochs / math.ceil(epochs))][:max_steps]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, len(schedule) // 50)

    def lr_at(step: int) -> float:
        if step < warmup:
            return learning_rate * (step + 1) / warmup
        progress = (step - warmup) / max(1, len(schedule) - warmup)
        return learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    started, smoothed = time.perf_counter(), None
    for step, indices in enumerate(schedule):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        ids, attention, labels = _collate(encoded, indices, tokenizer.pad_token_id)
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        if step % log_every == 0:
            print(f"  step {step}/{len(schedule)} loss {smoothed:.4f} ({time.perf_counter() - started:.0f}s)",
                  flush=True)
        if time_budget_s is not None and time.perf_counter() - started > time_budget_s:
            print(f"  time budget reached at step {step}", flush=True)
            break
    model.eval()
    return {"steps": step + 1, "final_loss": smoothed, "seconds": time.perf_counter() - started,
            "documents": len(encoded)}
