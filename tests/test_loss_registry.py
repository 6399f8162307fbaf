"""A new loss type is one objective function and one registry line (`variants.LOSS_TYPES`).

The `capped` fixture defines one here — a new objective, the policy gradient with a hard cap on
the ratio, reduced as GRPO reduces (seq_mean) — and the rest of this file shows that the config,
`losses.policy_loss` (against a per-token loop) and the trainer take it with nothing else changed.
"""

import inspect
import math
import subprocess
import sys

import pytest
import torch

from selftaught import variants
from selftaught.config import TrainConfig, build_config
from selftaught.errors import UserError
from selftaught.losses import PolicyObjective, policy_loss
from selftaught.objectives import Inputs, Objective, Terms
from selftaught.variants import LossType

from conftest import ROOT, tiny_overrides


def capped(x: Inputs, *, epsilon: float = 0.2) -> Terms:
    """L_t = −min(ρ_t, 1 + ε) · A: REINFORCE through the ratio, capped at 1 + ε whatever A's sign."""
    cap = 1.0 + epsilon
    return Terms(-x.ratio.clamp(max=cap) * x.advantages, clipped=(x.ratio > cap).float())


@pytest.fixture
def capped_loss_type(monkeypatch):
    monkeypatch.setitem(variants.LOSS_TYPES, "capped", LossType(Objective(capped), "seq_mean"))  # the one line
    return "capped"


def test_the_config_accepts_a_registered_loss_type(capped_loss_type):
    config = build_config({"loss_type": capped_loss_type, "epsilon": 0.3})
    assert config.loss_type == "capped"
    with pytest.raises(UserError, match=r"loss_type: Input should be .*'vespo' or 'capped'"):
        build_config({"loss_type": "uncapped"})
    with pytest.raises(UserError, match="delta bounds the ratio of the clipped objective"):
        build_config({"loss_type": capped_loss_type, "delta": 1.5})  # its objective takes no delta


def test_what_a_loss_type_declares_it_needs_is_checked_by_the_config(monkeypatch):
    monkeypatch.setitem(variants.LOSS_TYPES, "capped_sequence", LossType(
        Objective(capped), "seq_sum", level="sequence", needs=("epsilon_high",),
        why="capped_sequence caps each sequence's ratio"))
    with pytest.raises(UserError, match="capped_sequence caps each sequence's ratio; it needs "
                                        "importance_sampling_level: sequence, not token"):
        build_config({"loss_type": "capped_sequence", "epsilon_high": 0.3})
    with pytest.raises(UserError, match="capped_sequence caps each sequence's ratio; set epsilon_high"):
        build_config({"loss_type": "capped_sequence", "importance_sampling_level": "sequence"})
    config = build_config({"loss_type": "capped_sequence", "importance_sampling_level": "sequence",
                           "epsilon_high": 0.3})
    assert config.loss_type == "capped_sequence"


def test_an_unregistered_loss_type_is_refused():
    with pytest.raises(UserError, match="loss_type: Input should be"):
        build_config({"loss_type": "capped"})
    with pytest.raises(ValueError, match="loss_type must be one of"):
        policy_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1), torch.ones(1, 2), loss_type="capped")


def loop_reference(lp, old, adv, mask, weights, eps):
    """seq_mean of w_t · (−min(ρ_t, 1 + ε) A), one token at a time."""
    B, T = lp.shape
    total = 0.0
    for b in range(B):
        row, n = 0.0, 0
        for t in range(T):
            if mask[b, t]:
                rho = math.exp(float(lp[b, t]) - float(old[b, t]))
                row += float(weights[b, t]) * -min(rho, 1 + eps) * float(adv[b])
                n += 1
        total += row / max(n, 1)
    return total / B


def test_policy_loss_of_the_new_loss_type_matches_a_loop(capped_loss_type):
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(4, 6, generator=g, dtype=torch.float64) * 3
    lp = old + torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.4
    adv = torch.randn(4, generator=g, dtype=torch.float64)
    mask = torch.rand(4, 6, generator=g) > 0.3
    mask[2] = False
    weights = torch.rand(4, 6, generator=g, dtype=torch.float64) + 0.5
    x = lp.clone().requires_grad_(True)
    loss, stats = policy_loss(x, old, adv, mask, loss_type=capped_loss_type, epsilon=0.1, importance_weights=weights)
    assert loss.item() == pytest.approx(loop_reference(lp, old, adv, mask, weights, 0.1), rel=1e-12)
    rho = (lp - old).exp()
    assert stats["clip_fraction"] == pytest.approx(float((rho > 1.1)[mask].double().mean()), rel=1e-6)  # float32
    assert 0 < stats["clip_fraction"] < 1
    loss.backward()
    assert (x.grad[mask & (rho > 1.1)] == 0).all() and (x.grad[mask & (rho < 1.1)] != 0).all()

    objective = PolicyObjective(old, adv, mask, loss_type=capped_loss_type, epsilon=0.1, importance_weights=weights)
    assert objective.per_token  # so the fused head may take it token by token
    positions = mask.reshape(-1).nonzero().squeeze(1)
    total = objective.token_losses(lp.reshape(-1)[positions], positions).sum()
    assert total.item() == pytest.approx(loss.item(), rel=1e-12)


def test_a_training_step_with_the_new_loss_type(tmp_path, capped_loss_type):
    from selftaught.trainer import Trainer

    history = Trainer(build_config(tiny_overrides(tmp_path, max_steps=1, loss_type=capped_loss_type))).train()
    assert len(history) == 1 and math.isfinite(history[0]["loss"]) and "clip_fraction" in history[0]


def test_a_loss_type_names_a_known_aggregation_and_known_settings():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        LossType(Objective(capped), "seq_median")

    def needs_a_new_key(x: Inputs, *, cap_ratio: float = 2.0) -> Terms:
        return Terms(-x.ratio.clamp(max=cap_ratio) * x.advantages)

    with pytest.raises(ValueError, match=r"needs_a_new_key takes \['cap_ratio'\], which are not settings"):
        LossType(Objective(needs_a_new_key), "token_mean")


def test_every_objective_setting_is_a_policy_objective_keyword_and_a_config_key():
    """What an objective may take (`Objective.settings` ⊆ OBJECTIVE_SETTINGS) reaches it from the config."""
    keywords = inspect.signature(PolicyObjective).parameters
    assert all(key in keywords for key in variants.OBJECTIVE_SETTINGS)
    assert all(key in TrainConfig.model_fields for key in variants.OBJECTIVE_SETTINGS)
    for loss_type in variants.LOSS_TYPES.values():
        assert set(loss_type.objective.settings) <= set(variants.OBJECTIVE_SETTINGS)


def test_the_registry_keeps_torch_out_of_the_config_import():
    """The objectives are referenced from the registry the config reads, so they must not import torch."""
    code = "import selftaught.config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
