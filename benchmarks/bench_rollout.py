"""Rollout tokens/s: our SelftaughtSampler against a plain `model.generate` call on the same batch (CPU).

    python benchmarks/bench_rollout.py                         # tiny-random, 8 prompts × G 8, 128 new tokens
    python benchmarks/bench_rollout.py --hidden 256 --layers 4 # a wider random Qwen2 (same tokenizer)

Variants, alternating for `--rounds` rounds (median seconds used; the machine may be shared):
  generate   model.generate(input_ids, attention_mask) on the already tokenised,
             left-padded batch of prompts × G rows, sampling settings as ours
             (temperature 0.9, top_p 1, top_k off); no tokenisation, no decoding
  sampler    SelftaughtSampler.sample(prompts, G): tokenisation, our decoding loop, EOS
             masks, text decoding — everything the trainer gets
  sampler_generate  the same SelftaughtSampler with backend="generate" (decoding by model.generate)
  sampler_model_step  the SelftaughtSampler with every decode step through the model's forward, not
             its layers (what a model off `rollout.LAYER_STEP_MODEL_TYPES` gets)

tokens/s counts real completion tokens (up to and including the first EOS) per
second of the process's CPU time (time.process_time), on one thread by default:
on a shared machine wall time measures the neighbours as much as the code, and
at these model sizes a second OpenMP thread mostly adds synchronisation (under
load, 2 threads ran 10-30x slower than 1). Wall-clock tokens/s is printed too.
Prints `RESULT rollout_tokens_per_s ratio=<sampler / generate>` (higher is
better), the same for backend="generate", and `RESULT rollout_layer_step_vs_model_step`.

    python benchmarks/bench_rollout.py --backend vllm          # in .venv-vllm (`make setup-vllm`); model: tiny

compares instead our SelftaughtSampler with `VLLMSampler` (rollout_backend: vllm: the same
prompts, G, τ, top_p, top_k, max tokens; vLLM's engine in this process, float32,
eager on a CPU) and prints `RESULT rollout_vllm_vs_ours ratio=<vllm / ours>`, in
tokens per CPU second as above, tokens per wall second alongside. The engine's
start-up (and its first call, which warms it up) is timed and reported apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def build_model(hidden: int | None, layers: int | None):
    from selftaught.models import load_model
    from selftaught.models.tiny_random import build_tiny_random

    if hidden is None and layers is None:
        return load_model("tiny-random")
    model, tokenizer = build_tiny_random(hidden_size=hidden or 64, num_layers=layers or 2)
    from selftaught.models import prepare_tokenizer

    return model, prepare_tokenizer(tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=None, help="random Qwen2 width (default: tiny-random)")
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--backend", choices=["generate", "vllm"], default="generate",
                        help="what our SelftaughtSampler is compared with: model.generate, or the vLLM backend")
    parser.add_argument("--model", default=None, help="a model load_model accepts; default tiny-random (tiny with --backend vllm)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from selftaught.data import arithmetic
    from selftaught.ops import completion_mask
    from selftaught.rollout import SelftaughtSampler, _ModelStep, encode_prompts

    if args.backend == "vllm" and args.model is None and args.hidden is None and args.layers is None:
        args.model = "tiny"  # vLLM's CPU attention has no kernel for tiny-random's head size (16)
    if args.model is not None:
        from selftaught.models import load_model

        model, tokenizer = load_model(args.model)
    else:
        model, tokenizer = build_model(args.hidden, args.layers)
    model.eval()
    prompts = [f"Q: {p.prompt}\nA:" for p in arithmetic.generate(args.prompts, split="train", seed=1)]
    G, T = args.num_generations, args.max_new_tokens
    settings = dict(max_prompt_length=256, max_completion_length=T, temperature=0.9, top_p=1.0, top_k=0)
    ours = SelftaughtSampler(model, tokenizer, **settings)
    previous = SelftaughtSampler(model, tokenizer, backend="generate", **settings)
    model_step = SelftaughtSampler(model, tokenizer, **settings)
    model_step._step, model_step.decode_path = _ModelStep(model), "model"
    ids, mask = encode_prompts(tokenizer, prompts, settings["max_prompt_length"])
    ids, mask = ids.repeat_interleave(G, 0), mask.repeat_interleave(G, 0)
    config = ours._generation_config(greedy=False)

    def run_generate():
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        return int(completion_mask(out[:, ids.shape[1]:], ours.eos_ids).sum())

    def run_sampler(sampler):
        return lambda: int(sampler.sample(prompts, G).completion_mask.sum())

    variants = {"generate": run_generate, "sampler": run_sampler(ours), "sampler_generate": run_sampler(previous),
                "sampler_model_step": run_sampler(model_step)}
    startup = None
    if args.backend == "vllm":
        from selftaught.vllm_backend import VLLMSampler

        start, cpu = time.perf_counter(), time.process_time()
        engine = VLLMSampler(model, tokenizer, **settings)
        engine.sample(prompts[:1], 1)  # the first call warms the engine up: part of its start-up
        startup = (time.perf_counter() - start, time.process_time() - cpu)
        variants = {"sampler": run_sampler(ours), "vllm": run_sampler(engine)}
    print(f"rollout: {type(model).__name__} hidden {model.config.hidden_size} layers {model.config.num_hidden_layers}, "
          f"{args.prompts} prompts × G {G}, ≤{T} new tokens, {torch.get_num_threads()} threads", flush=True)
    torch.manual_seed(0)
    for run in variants.values():  # warm-up
        run()
    seconds = {k: [] for k in variants}
    wall = {k: [] for k in variants}
    tokens = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            start, cpu = time.perf_counter(), time.process_time()
            n = run()
            seconds[name].append(time.process_time() - cpu)
            wall[name].append(time.perf_counter() - start)
            tokens[name].append(n)
    rate, wall_rate = {}, {}
    for name in variants:
        rate[name] = sum(tokens[name]) / sum(seconds[name])
        wall_rate[name] = sum(tokens[name]) / sum(wall[name])
        print(f"  {name:17s} {statistics.median(seconds[name]):7.3f} CPU s/call  {rate[name]:9.1f} tokens/CPU s  "
              f"{wall_rate[name]:9.1f} tokens/wall s  (mean {statistics.mean(tokens[name]):.0f} tokens/call)")
    if args.backend == "vllm":
        print(f"  vllm start-up (engine + first call, not in the rates): {startup[0]:.1f} s wall, {startup[1]:.1f} CPU s")
        print(f"RESULT rollout_vllm_vs_ours ratio={rate['vllm'] / rate['sampler']:.2f} vllm={rate['vllm']:.1f} "
              f"ours={rate['sampler']:.1f} unit=tokens_per_cpu_s wall_ratio={wall_rate['vllm'] / wall_rate['sampler']:.2f} "
              f"startup_s={startup[0]:.1f}")
        return
    print(f"RESULT rollout_tokens_per_s ratio={rate['sampler'] / rate['generate']:.2f} "
          f"sampler={rate['sampler']:.1f} generate={rate['generate']:.1f} unit=tokens_per_cpu_s")
    print(f"RESULT rollout_previous_tokens_per_s ratio={rate['sampler_generate'] / rate['generate']:.2f} "
          f"sampler_generate={rate['sampler_generate']:.1f} generate={rate['generate']:.1f}")
    print(f"RESULT rollout_layer_step_vs_model_step ratio={rate['sampler'] / rate['sampler_model_step']:.2f} "
          f"decode_path={ours.decode_path} sampler={rate['sampler']:.1f} model_step={rate['sampler_model_step']:.1f}")


if __name__ == "__main__":
    main()
