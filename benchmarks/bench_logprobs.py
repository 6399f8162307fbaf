"""Fused log-probs + self-certainty vs the straightforward path, at Qwen2.5-1.5B sizes, and the
chunked op's memory on bf16 logits; all at the chunk size users get by default.

    python benchmarks/bench_logprobs.py                      # CPU: hidden 1536, V 151,936, T 4096, fp32
    python benchmarks/bench_logprobs.py --tokens 512         # a quick look
    python benchmarks/bench_logprobs.py --fused-chunk-sizes 256 768   # also the fused path at other chunks
    python benchmarks/bench_logprobs.py --device cuda --tokens 8192 --autocast bf16 --skip-chunked-op
                                                             # what scripts/gpu_check.py runs on a GPU

Default chunk: the library's (`ops.chunk_rows`): the chunked op on logits takes the byte
budget (`ops.DEFAULT_CHUNK_BYTES` = 64 MiB of fp32 logits, 110 rows at V = 151,936); the
fused path at least H / 4 rows (a quarter of the fp32 weight gradient, 384 rows at
H = 1536); `--chunk-size N` measures N rows for both instead.

Chunked op (`ops.token_statistics`) on bf16 logits [1, 2048, V]:
the forward (the trainer's no-grad scoring pass) at the default chunk and at a
fixed 2048 rows (a row count that ignores V); target: peak growth <= the input's own size. Its
forward + backward is printed too, less the [1, 2048, V] logits gradient that any
path must produce (it is the input's size by definition).

Both paths compute per-token log p(y_t) and self-certainty at τ = 0.9 from the
final hidden states h [1, T, H] and the output weight W [V, H], then backpropagate
a random upstream gradient into h and W:

  straightforward  logits = h Wᵀ; logp_all = log_softmax(float(logits) / τ); gather;
                   sc = −mean(logp_all) − log V (no grad); autograd does the rest
  fused            selftaught.fused_logprobs: row chunks, one [C, V] fp32 buffer,
                   the backward recomputes each chunk's logits (the scoring pass's op)
  fused_loss       the same chunks, with the loss Σ_t g_t·log p_t given to the op
                   (`fused_token_loss`, the trainer's update): the head's gradients
                   are taken in the forward, no recomputation

`--autocast bf16` runs both under bf16 autocast (the trainer's GPU setting): the
matmuls in bf16, the vocabulary-wide maths in fp32 (the straightforward path's
log_softmax is fp32 under autocast).

Memory and time (`measure.py`): each variant runs in a fresh child process. CPU: peak
resident set size (VmHWM), reset just before the measured work so building the inputs
cannot hide a lower peak, minus the size at that moment; time = the child's CPU seconds
on one thread (wall seconds are printed too: on a shared machine they measure the
neighbours). CUDA: the allocator's peak minus what was allocated before, and
synchronised wall seconds. Memory includes the gradients (∂h, and ∂W, which alone is
0.87 GiB in fp32 at these sizes and is produced by both paths; a second RESULT line
subtracts it from both, leaving the memory the computation itself needs). Variants
alternate for `--rounds` rounds and the median is used.
Values: the first round of each variant saves logp, sc, ∂h, ∂W; the parent
compares them: max |fused − straightforward| ≤ 1e-5 · max(1, max |straightforward|)
in fp32 (bf16 autocast: ≤ 2e-2, the matmuls' own rounding).

Prints `RESULT <name> ratio=<x> ...` lines (fused / straightforward; lower is better): the
`logprobs_*` lines for the fused op, the `logprobs_loss_*` lines for the update's fused loss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import meter_for  # noqa: E402

TEMPERATURE = 0.9
TARGET_TIME = 1.2  # fused ÷ straightforward
TARGET_MEMORY = 0.125
MAX_REL_DIFF = {"none": 1e-5, "bf16": 2e-2}


def straightforward(hidden, weight, targets, temperature):
    import torch

    logits = hidden @ weight.t()  # [1, T, V] fp32 (bf16 under autocast)
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)  # .float(): a no-op in fp32
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        sc = -logp_all.mean(-1) - math.log(weight.shape[0])
    return logp, sc


def fused(hidden, weight, targets, temperature, chunk_size):
    from selftaught.fused_logprobs import fused_token_statistics

    stats = fused_token_statistics(hidden, weight, targets, None, temperature, chunk_size)
    return stats.logprobs, stats.self_certainty


def fused_loss(hidden, weight, targets, temperature, chunk_size, upstream):
    """The trainer's update path: the loss Σ_t g_t·log p_t through `fused_token_loss`, whose head
    gradients are taken in the forward (three matmuls per chunk instead of four)."""
    from selftaught.fused_logprobs import fused_token_loss

    flat = upstream.reshape(-1)
    loss, stats = fused_token_loss(hidden, weight, targets, lambda logp, at: logp * flat[at], None, temperature,
                                   chunk_size)
    return stats.logprobs, stats.self_certainty, loss


def logits_then_chunked_ops(hidden, weight, targets, temperature, chunk_size):
    """The unfused path (`fused_logprobs: false`): the model's full logits, then the chunked ops."""
    from selftaught.ops import token_statistics

    stats = token_statistics(hidden @ weight.t(), targets, None, temperature, chunk_size)
    return stats.logprobs, stats.self_certainty


def _autocast(args):
    import torch

    if args.autocast == "none":
        return nullcontext()
    return torch.autocast(args.device, dtype=torch.bfloat16)


def chunked_child(args) -> None:
    """The chunked op on bf16 logits [1, T, V]: forward only, or forward + backward."""
    import torch

    from selftaught.ops import chunk_rows, token_statistics

    torch.manual_seed(0)
    meter = meter_for(args.device)
    T, V = args.chunked_tokens, args.vocab
    backward = args.child == "chunked_fwd_bwd"
    logits = torch.randn(1, T, V, dtype=torch.bfloat16, device=args.device).requires_grad_(backward)
    targets = torch.randint(0, V, (1, T), device=args.device)
    token_statistics(logits.detach()[:, :4], targets[:, :4], None, TEMPERATURE, 1)  # warm-up
    before = meter.reset_peak()
    start, wall = meter.now(), time.perf_counter()
    with torch.set_grad_enabled(backward):
        logp, sc, _ = token_statistics(logits, targets, None, TEMPERATURE, args.chunk_size)
        if backward:
            logp.sum().backward()
    seconds, wall = meter.now() - start, time.perf_counter() - wall
    print(json.dumps({"variant": args.child, "seconds": seconds, "wall_seconds": wall,
                      "peak_delta": meter.peak() - before, "input_bytes": logits.numel() * logits.element_size(),
                      "grad_bytes": 0 if logits.grad is None else logits.grad.numel() * logits.grad.element_size(),
                      "rows": chunk_rows(V, args.chunk_size)}))


def child(args) -> None:
    import torch

    if args.child.startswith("chunked_"):
        chunked_child(args)
        return
    torch.manual_seed(0)
    meter = meter_for(args.device)
    H, V, T = args.hidden, args.vocab, args.tokens
    # In place (mul_), so building the inputs never needs a second W-sized tensor.
    weight = torch.randn(V, H, device=args.device).mul_(0.02).requires_grad_(True)
    hidden = torch.randn(1, T, H, device=args.device).requires_grad_(True)
    targets = torch.randint(0, V, (1, T), device=args.device)
    upstream = torch.randn(1, T, device=args.device)
    def with_upstream_loss(logp_and_sc):  # the loss Σ_t g_t·log p_t, backpropagated through autograd
        logp, sc = logp_and_sc
        return logp, sc, (logp.float() * upstream).sum()

    run = {"straightforward": lambda: with_upstream_loss(straightforward(hidden, weight, targets, TEMPERATURE)),
           "fused": lambda: with_upstream_loss(fused(hidden, weight, targets, TEMPERATURE, args.chunk_size)),
           "fused_loss": lambda: fused_loss(hidden, weight, targets, TEMPERATURE, args.chunk_size, upstream),
           "logits+chunked_ops": lambda: with_upstream_loss(logits_then_chunked_ops(hidden, weight, targets,
                                                                                    TEMPERATURE, args.chunk_size))
           }[args.child]
    # Warm up the BLAS on a small case so start-up costs are not timed; on CUDA run the variant itself
    # once untimed (its kernels' first launches and the allocator's first blocks are start-up too).
    with _autocast(args):
        small = torch.randn(64, H, device=args.device) @ weight.detach()[:4096].t()
    del small
    if args.device == "cuda":
        with _autocast(args):
            logp, sc, loss = run()
            loss.backward()
        del logp, sc
        hidden.grad = weight.grad = None
    before = meter.reset_peak()
    start, wall = meter.now(), time.perf_counter()
    with _autocast(args):
        logp, sc, loss = run()
        loss.backward()
    seconds, wall = meter.now() - start, time.perf_counter() - wall
    peak = meter.peak()
    if args.save:
        torch.save({"logp": logp.detach().float().cpu(), "sc": sc.float().cpu(), "grad_h": hidden.grad.cpu(),
                    "grad_w": weight.grad.cpu()}, args.save)
    print(json.dumps({"variant": args.child, "seconds": seconds, "wall_seconds": wall, "peak_delta": peak - before,
                      "threads": torch.get_num_threads()}))


def run_child(variant: str, args, save: str | None, chunk_size: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--hidden", str(args.hidden), "--vocab", str(args.vocab),
           "--tokens", str(args.tokens), "--chunked-tokens", str(args.chunked_tokens), "--device", args.device,
           "--autocast", args.autocast]
    chunk_size = args.chunk_size if chunk_size is None else chunk_size
    if chunk_size is not None:
        cmd += ["--chunk-size", str(chunk_size)]
    if save:
        cmd += ["--save", save]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    label = variant if chunk_size is None or variant.startswith("chunked") else f"{variant}@{chunk_size}"
    print(f"  {label:20s} {result['seconds']:7.2f} s ({result['wall_seconds']:.2f} s wall)   "
          f"peak +{result['peak_delta'] / 2**30:6.2f} GiB", flush=True)
    return result


def compare(fused_file: str, straight_file: str) -> dict:
    import torch

    a, b = torch.load(fused_file), torch.load(straight_file)
    worst = {}
    for key in ("logp", "sc", "grad_h", "grad_w"):
        diff = float((a[key] - b[key]).abs().max())
        scale = max(1.0, float(b[key].abs().max()))
        worst[key] = (diff, diff / scale)
    return worst


def measure_chunked_op(args) -> dict:
    """The chunked op's memory on bf16 logits (printed as RESULT lines; returned)."""
    forward = run_child("chunked_forward", args, None)
    old = run_child("chunked_forward", args, None, chunk_size=args.old_chunk_size)
    both = run_child("chunked_fwd_bwd", args, None)
    size = forward["input_bytes"]
    print(f"RESULT chunked_op_forward_peak_vs_input ratio={forward['peak_delta'] / size:.3f} "
          f"peak_mib={forward['peak_delta'] / 2**20:.0f} input_mib={size / 2**20:.0f} rows={forward['rows']} "
          f"target<=1 met={forward['peak_delta'] <= size}")
    print(f"RESULT chunked_op_forward_peak_default_vs_{args.old_chunk_size}_rows "
          f"ratio={forward['peak_delta'] / old['peak_delta']:.3f} default_mib={forward['peak_delta'] / 2**20:.0f} "
          f"rows{args.old_chunk_size}_mib={old['peak_delta'] / 2**20:.0f} "
          f"rows{args.old_chunk_size}_vs_input={old['peak_delta'] / size:.3f}")
    extra = both["peak_delta"] - both["grad_bytes"]
    print(f"RESULT chunked_op_fwd_bwd_peak_excl_logits_grad_vs_input ratio={extra / size:.3f} "
          f"peak_mib={both['peak_delta'] / 2**20:.0f} logits_grad_mib={both['grad_bytes'] / 2**20:.0f} "
          f"time_s={both['seconds']:.2f}")
    return {"forward_peak_vs_input": forward["peak_delta"] / size, "rows": forward["rows"],
            "forward_peak_mib": forward["peak_delta"] / 2**20, "input_mib": size / 2**20}


def measure_paths(args) -> dict:
    """Fused vs straightforward (and any `--fused-chunk-sizes`): RESULT lines printed, figures returned."""
    from selftaught.ops import chunk_rows

    rows = chunk_rows(args.vocab, args.chunk_size, hidden_size=args.hidden)
    print(f"log-probs + self-certainty, fwd+bwd: hidden {args.hidden}, V {args.vocab}, T {args.tokens}, "
          f"{args.device}, autocast {args.autocast}, fused chunk {rows} rows", flush=True)
    variants = [("straightforward", None), ("fused", None), ("fused_loss", None)]
    variants += [(kind, c) for c in args.fused_chunk_sizes for kind in ("fused", "fused_loss")]
    if args.with_logits_path:
        variants.append(("logits+chunked_ops", None))
    results: dict[tuple, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        files = {v: str(Path(tmp) / f"{v[0]}.pt") for v in variants[:3]}
        for r in range(args.rounds):
            for v in variants:
                results[v].append(run_child(v[0], args, files.get(v) if r == 0 else None, chunk_size=v[1]))
        worst = compare(files[("fused", None)], files[("straightforward", None)])
        worst_loss = compare(files[("fused_loss", None)], files[("straightforward", None)])

    def median(v, key):
        return statistics.median(x[key] for x in results[v])

    base = ("straightforward", None)
    base_mem, base_s = median(base, "peak_delta"), median(base, "seconds")
    grad_w = args.vocab * args.hidden * 4  # ∂W in fp32: produced by both paths, the same bytes
    tolerance = MAX_REL_DIFF[args.autocast]

    def figures(variant) -> dict:
        mem, s = median(variant, "peak_delta"), median(variant, "seconds")
        return {"time_ratio": s / base_s, "memory_ratio": mem / base_mem,
                "memory_ratio_excl_weight_grad": (mem - grad_w) / (base_mem - grad_w), "seconds": s,
                "peak_gib": mem / 2**30}

    paths = {}
    # "logprobs": the fused op (log-probs out, recomputing backward: the scoring pass, and a step whose
    # scoring forward is the update's); "logprobs_loss": the update's loss, head gradients in the forward.
    for name, variant, differences in (("logprobs", ("fused", None), worst), ("logprobs_loss", ("fused_loss", None),
                                                                              worst_loss)):
        f = paths[name] = figures(variant)
        f["max_rel_diff"] = max(rel for _, rel in differences.values())
        f["met"] = {"time": f["time_ratio"] <= TARGET_TIME, "memory": f["memory_ratio_excl_weight_grad"] <= TARGET_MEMORY,
                    "values": f["max_rel_diff"] <= tolerance}
        print(f"RESULT {name}_peak_memory ratio={f['memory_ratio']:.3f} fused_gib={f['peak_gib']:.2f} "
              f"straightforward_gib={base_mem / 2**30:.2f}")
        print(f"RESULT {name}_peak_memory_excl_weight_grad ratio={f['memory_ratio_excl_weight_grad']:.3f} "
              f"fused_gib={f['peak_gib'] - grad_w / 2**30:.2f} straightforward_gib={(base_mem - grad_w) / 2**30:.2f} "
              f"weight_grad_gib={grad_w / 2**30:.2f} target<={TARGET_MEMORY} met={f['met']['memory']}")
        print(f"RESULT {name}_time ratio={f['time_ratio']:.3f} fused_s={f['seconds']:.2f} "
              f"straightforward_s={base_s:.2f} rows={rows} target<={TARGET_TIME} met={f['met']['time']}")
        detail = " ".join(f"{k}_maxdiff={d:.2e}" for k, (d, _) in differences.items())
        print(f"RESULT {name}_max_rel_diff ratio={f['max_rel_diff']:.2e} {detail} target<={tolerance:g} "
              f"met={f['met']['values']}")
    sweep = {}
    for variant in variants[3:]:
        label = variant[0] if variant[1] is None else f"{variant[0]}_{variant[1]}_rows"
        f = sweep[label] = figures(variant)
        print(f"RESULT {label}_vs_straightforward time_ratio={f['time_ratio']:.3f} "
              f"mem_ratio_excl_weight_grad={f['memory_ratio_excl_weight_grad']:.3f} s={f['seconds']:.2f} "
              f"gib={f['peak_gib']:.2f}")
    return {"rows": rows, "straightforward_s": base_s, "straightforward_peak_gib": base_mem / 2**30,
            "weight_grad_gib": grad_w / 2**30, "max_rel_diff_tolerance": tolerance, **paths, "other_chunks": sweep}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=1536)
    p.add_argument("--vocab", type=int, default=151_936)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--chunk-size", type=int, default=None,
                   help="rows per [C, V] chunk (default: the library's)")
    p.add_argument("--fused-chunk-sizes", type=int, nargs="*", default=[],
                   help="also time the fused path at these chunk sizes (rows)")
    p.add_argument("--chunked-tokens", type=int, default=2048, help="T of the chunked op's bf16 logits")
    p.add_argument("--old-chunk-size", type=int, default=2048,
                   help="the chunked op also at this fixed number of rows, for comparison")
    p.add_argument("--skip-fused", action="store_true", help="only the chunked op's memory")
    p.add_argument("--skip-chunked-op", action="store_true", help="only fused vs straightforward")
    p.add_argument("--rounds", type=int, default=1, help="alternating runs per variant (median is used)")
    p.add_argument("--with-logits-path", action="store_true",
                   help="also time the unfused path (fused_logprobs: false: full logits, then chunked ops)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--autocast", choices=["none", "bf16"], default="none")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    return p


def main() -> None:
    args = parser().parse_args()
    if args.child:
        child(args)
        return
    from selftaught.ops import DEFAULT_CHUNK_BYTES, chunk_rows

    print(f"chunk: {chunk_rows(args.vocab, args.chunk_size)} rows on logits, "
          f"{chunk_rows(args.vocab, args.chunk_size, hidden_size=args.hidden)} fused "
          f"({'explicit' if args.chunk_size else f'{DEFAULT_CHUNK_BYTES >> 20} MiB fp32 budget, fused >= H / 4'}), "
          f"V {args.vocab}, H {args.hidden}, {os.cpu_count()} CPUs", flush=True)
    if not args.skip_chunked_op:
        print(f"chunked op on bf16 logits [1, {args.chunked_tokens}, {args.vocab}]:", flush=True)
        measure_chunked_op(args)
    if not args.skip_fused:
        measure_paths(args)


if __name__ == "__main__":
    main()
