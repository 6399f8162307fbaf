import sys
from pathlib import Path

import pytest

from selftaught.config import set_all_dotted

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(output_dir, **extra) -> dict:
    """A fast training config on the built-in random model (a few seconds per run); keys left
    out keep their defaults (model `tiny-random`, data `arithmetic`, seed 0)."""
    raw = {
        "output_dir": str(output_dir),
        "max_steps": 2,
        "data": {"num_examples": 64, "prompt_template": "Q: {prompt}\nA:"},
        "num_generations": 2,
        "per_device_train_batch_size": 4,
        "max_prompt_length": 48,
        "max_completion_length": 8,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.0,
        "save_steps": 1,
        "progress_bar": False,
    }
    return set_all_dotted(raw, extra)


def azr_overrides(output_dir, **extra) -> dict:
    """A fast Absolute Zero config on the built-in random model (scripted policies drive it); keys
    left out keep their defaults (model `tiny-random`, seed 0, 2 executor workers)."""
    raw = {
        "method": "azr", "output_dir": str(output_dir), "max_steps": 2,
        "azr": {"tasks_per_type_role": 2, "learnability_rollouts": 3, "num_references": 1, "induction_inputs": 4,
                "seed_proposals": 2, "seed_rounds": 1, "executor_timeout_s": 2.0},
        "per_device_train_batch_size": 12, "max_prompt_length": 1024, "max_completion_length": 160,
        "learning_rate": 1e-4, "lr_scheduler_type": "constant", "warmup_ratio": 0.0,
        "temperature": 1.0, "save_steps": 1, "progress_bar": False,
    }
    return set_all_dotted(raw, extra)


@pytest.fixture
def python_exe():
    return sys.executable
