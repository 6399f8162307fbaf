"""vLLM as the rollout engine (`rollout_backend: vllm`), colocated with the trainer.

The engine lives in the training process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) and
never reads weights from disk: it starts from the policy's config with dummy
weights, and `sync_weights` copies the policy's tensors into it, at start-up and
after the optimizer steps of every rollout. vLLM's own reload path
(`model_runner.reload_weights`) restores each layer to checkpoint layout, loads
it and re-runs its post-processing (the CPU build repacks linear weights for
oneDNN, so plain `load_weights` into a loaded engine fails).

Names: the policy's parameters are given under their Hugging Face checkpoint
names, which vLLM's loader maps (q/k/v → qkv_proj, gate/up → gate_up_proj).
Tied embeddings are given under both names (`named_parameters(remove_duplicate=False)`):
vLLM's reload re-creates the embedding, so an lm_head that is not given its own
copy keeps stale weights. A LoRA policy is sampled with its adapter merged:
W + ΔW per adapted layer, computed without touching the policy (`policy_weights`).

Sampling settings are ours, not the model's generation_config: τ, top_p, top_k
(0 = off, vLLM's −1), max tokens, stop on every EOS id; greedy is τ = 0.
Prompts are tokenised by `encode_prompts` (left-truncated) and handed over as
token ids, so vLLM never tokenises. Each row gets its own seed drawn from torch's
RNG, so a resumed run (RNG restored from the checkpoint) samples what the
uninterrupted run would have. The log-prob vLLM reports for each sampled token
(`logprobs_mode="processed_logprobs"`: after temperature and top-k/top-p, i.e. the
distribution it drew from) comes back as `Rollout.sampler_logprobs`; the trainer
still computes π_old and self-certainty itself.

Import this module only when the backend is chosen: vLLM lives in its own
environment (`make setup-vllm` → .venv-vllm).
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager

import torch

from .errors import UserError
from .rollout import Rollout, RolloutSampler, encode_prompts, eos_token_ids, rollout_from_token_rows

SETUP_HINT = "run `make setup-vllm` and train with .venv-vllm/bin/selftaught"


def import_vllm():
    """The vllm module, in-process engine mode; a UserError naming the set-up when it is missing."""
    mode = os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if mode != "0":
        raise UserError("rollout_backend: vllm runs the engine in the training process; unset "
                        f"VLLM_ENABLE_V1_MULTIPROCESSING (it is {mode!r}) or set it to 0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU default (4) is much more than we need
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its per-start INFO lines would bury our progress
    try:
        import vllm
    except ImportError as error:
        raise UserError(f"rollout_backend: vllm needs vLLM, which this environment lacks ({error}); "
                        f"{SETUP_HINT}") from None
    return vllm


def policy_weights(model):
    """(checkpoint name, tensor) for every weight of a HF causal LM: tied ones under each name,
    a PEFT model's adapters merged (W + ΔW of its active adapters), its wrapper prefixes removed."""
    modules = dict(model.named_modules(remove_duplicate=False))
    for name, param in model.named_parameters(remove_duplicate=False):
        if ".lora_" in name:
            continue
        tensor = param.detach()
        if ".base_layer." in name:
            owner_name, _, leaf = name.rpartition(".base_layer.")
            owner = modules[owner_name]
            if leaf == "weight" and not getattr(owner, "merged", False) and not getattr(owner, "disable_adapters", False):
                for adapter in owner.active_adapters:
                    if adapter in getattr(owner, "lora_A", {}):
                        tensor = tensor + owner.get_delta_weight(adapter).to(tensor.dtype)
            name = f"{owner_name}.{leaf}"
        yield name.removeprefix("base_model.model."), tensor


def _base_config(model):
    """The transformers config the engine is built from (a PEFT model's base's)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.config


def _engine_dtype(setting: str, trainer_bf16: bool) -> str:
    if setting == "auto":
        return "bfloat16" if trainer_bf16 else "float32"
    return setting


@contextmanager
def _quiet_reload_warnings():
    """vLLM warns that RotaryEmbedding 'failed to load' on every reload: it has no weights to load."""
    logger = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class VLLMSampler(RolloutSampler):
    """A `RolloutSampler` (`sample(prompts, num_generations, greedy, extras)`) on a vLLM engine."""

    syncs_weights = True  # the engine holds its own copy of the weights

    def __init__(self, model, tokenizer, *, max_prompt_length: int, max_completion_length: int,
                 temperature: float, top_p: float = 1.0, top_k: int = 0, seed: int = 0,
                 gpu_memory_utilization: float = 0.3, dtype: str = "auto", trainer_bf16: bool = False,
                 distributed: bool = False):
        vllm = import_vllm()
        self.model, self.tokenizer = model, tokenizer
        self.max_prompt_length, self.max_completion_length = max_prompt_length, max_completion_length
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.eos_ids = eos_token_ids(tokenizer, model)
        self._SamplingParams = vllm.SamplingParams
        config = _base_config(model)
        limit = getattr(config, "max_position_embeddings", None)
        needed = max_prompt_length + max_completion_length
        if limit is not None and needed > limit:
            raise UserError(f"rollout_backend: vllm: max_prompt_length + max_completion_length = {needed} exceeds "
                            f"the model's max_position_embeddings ({limit}); lower one of them")
        self._config_dir = tempfile.TemporaryDirectory(prefix="selftaught-vllm-")
        config.save_pretrained(self._config_dir.name)  # the architecture only; weights come from the policy
        on_cpu = not torch.cuda.is_available()
        options = dict(
            model=self._config_dir.name, load_format="dummy", skip_tokenizer_init=True,
            dtype=_engine_dtype(dtype, trainer_bf16), seed=seed, max_model_len=needed,
            generation_config="vllm",  # our sampling settings, never the model's shipped defaults
            logprobs_mode="processed_logprobs", enforce_eager=on_cpu,
            gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True,
            # Whole prompts per step: a prefill split across steps rewinds its seeded generator by an
            # offset, which vLLM 0.32 cannot do for a CPU generator (RuntimeError).
            enable_chunked_prefill=not on_cpu,
        )
        if distributed:  # each rank's own engine inside the existing process group (see docs/scaling.md)
            options["distributed_executor_backend"] = "external_launcher"
        try:
            self.llm = vllm.LLM(**options)
            self.sync_weights()
            # One token from the engine: kernels that reject this model (e.g. the CPU attention's head
            # sizes) fail here, at start-up, rather than at the first rollout; it also warms the engine up.
            self.llm.generate([{"prompt_token_ids": [self.eos_ids[0]]}],
                              vllm.SamplingParams(max_tokens=1, temperature=0.0, detokenize=False), use_tqdm=False)
        except (ValueError, NotImplementedError, RuntimeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            architecture = ", ".join(getattr(config, "architectures", None) or [type(model).__name__])
            raise UserError(f"rollout_backend: vllm cannot run {architecture} ({first}); "
                            "use rollout_backend: selftaught for this model") from None

    # ------------------------------------------------------------ weights

    def _model_runner(self):
        try:
            return self.llm.llm_engine.model_executor.driver_worker.worker.model_runner
        except AttributeError:
            raise RuntimeError("this vLLM version does not expose the in-process model runner "
                               "(llm_engine.model_executor.driver_worker.worker.model_runner)") from None

    @torch.no_grad()
    def sync_weights(self) -> None:
        """Copy the policy's current weights into the engine, in place; drop the prefix cache (stale KV)."""
        with _quiet_reload_warnings():
            self._model_runner().reload_weights(weights_iterator=policy_weights(self.model),
                                                is_checkpoint_format=True)
        self.llm.reset_prefix_cache()

    # ------------------------------------------------------------ sampling

    def _params(self, greedy: bool, seed: int | None):
        common = dict(max_tokens=self.max_completion_length, stop_token_ids=list(self.eos_ids), logprobs=0,
                      detokenize=False, skip_special_tokens=False, repetition_penalty=1.0)
        if greedy:
            return self._SamplingParams(temperature=0.0, **common)
        return self._SamplingParams(temperature=self.temperature, top_p=self.top_p,
                                    top_k=self.top_k if self.top_k > 0 else -1, seed=seed, **common)

    def sample(self, prompts: list[str], num_generations: int = 1, greedy: bool = False,
               extras: dict | None = None) -> Rollout:
        """`num_generations` completions per prompt (rows of a group consecutive), as `SelftaughtSampler.sample`."""
        from vllm.inputs import TokensPrompt

        ids, mask = encode_prompts(self.tokenizer, prompts, self.max_prompt_length)
        token_prompts = [TokensPrompt(prompt_token_ids=row[m.bool()].tolist()) for row, m in zip(ids, mask)]
        requests = [p for p in token_prompts for _ in range(num_generations)]
        seeds = torch.randint(0, 2**31 - 1, (len(requests),)).tolist()  # torch's RNG: restored on resume
        params = [self._params(greedy, s) for s in seeds]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        rows, reported = [], []
        for output in outputs:
            sample = output.outputs[0]
            tokens = list(sample.token_ids)
            rows.append(tokens)
            reported.append([step[token].logprob for step, token in zip(sample.logprobs or [], tokens)]
                            if not greedy else [0.0] * len(tokens))
        rollout = rollout_from_token_rows(self.tokenizer, prompts, rows, num_generations, self.max_prompt_length,
                                          extras=extras, encoded=(ids, mask))
        if not greedy:
            logprobs = torch.zeros(rollout.completion_ids.shape, dtype=torch.float32)
            for k, values in enumerate(reported):
                logprobs[k, :len(values)] = torch.tensor(values, dtype=torch.float32)
            rollout.sampler_logprobs = logprobs
        return rollout

    def close(self) -> None:
        self._config_dir.cleanup()
