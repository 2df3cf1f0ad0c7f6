
import pytest
import torch

from sweeplab.pipelines.gw.model import (
    GlobalWorkspace,
    GWModelConfig,
    LossWeights,
    workspace_metrics,
)

CONFIG = GWModelConfig(workspace_dim=8, hidden_dim=16, fusion_attr=0.5, fusion_v=0.5, synergy_hidden=16)
ALL_ON = LossWeights(demi_cycle=1, cycle=1, translation=1, contrastive=1, temperature=0.1)


def batch(n=32):
    g = torch.Generator().manual_seed(0)
    return {"attr": torch.randn(n, 11, generator=g), "v": torch.randn(n, 32, generator=g),
            "synergy": torch.randint(0, 8, (n,), generator=g), "probe_target": torch.randn(n, 9, generator=g)}


def grads_of(metric: str) -> set[str]:
    """The parameter groups that the loss named ``metric`` has a gradient for."""
    torch.manual_seed(0)
    model = GlobalWorkspace(CONFIG, attr_dim=11, v_dim=32, n_probe=9)
    out = workspace_metrics(model, batch(), weights=ALL_ON, synergy_scale=1.0, synergy_column=10,
                            unique=[7, 8], redundant=[0, 1, 2])
    if metric == "probe":
        loss = out["total_loss"] - out["gw_loss"]
    else:
        loss = out[metric]
    loss.backward()
    groups = set()
    for name, p in model.named_parameters():
        if p.grad is not None and p.grad.abs().sum() > 0:
            groups.add(".".join(name.split(".")[:2]) if name.startswith(("encoders", "decoders")) else name.split(".")[0])
    return groups


ENCODERS = {"encoders.attr", "encoders.v"}
DECODERS = {"decoders.attr", "decoders.v"}


@pytest.mark.parametrize(("loss", "expected"), [
    ("demi_cycle", ENCODERS | DECODERS),
    ("translation", ENCODERS | DECODERS),
    ("cycle", ENCODERS | DECODERS),
    ("contrastive", ENCODERS),
    ("synergy_ce", ENCODERS | {"synergy_head"}),
    ("probe", {"probe"}),  # probes read a detached state: they measure, never shape
])
def test_each_loss_changes_the_parameters_it_should(loss, expected):
    assert grads_of(loss) == expected


def test_switched_off_losses_are_not_computed_and_scale_weights_the_prior():
    model = GlobalWorkspace(CONFIG, attr_dim=11, v_dim=32, n_probe=9)
    common = dict(synergy_column=10, unique=[7, 8], redundant=[0, 1, 2])
    off = LossWeights(demi_cycle=1, cycle=0, translation=0, contrastive=0, temperature=0.1)
    out = workspace_metrics(model, batch(), weights=off, synergy_scale=0.0, **common)
    assert "cycle" not in out and "contrastive" not in out
    assert torch.allclose(out["gw_loss"], out["demi_cycle"])
    scaled = workspace_metrics(model, batch(), weights=off, synergy_scale=5.0, **common)
    assert torch.allclose(scaled["gw_loss"], out["demi_cycle"] + 5 * out["synergy_ce"])
    assert 0 <= out["synergy_acc"].item() <= 1
    assert out["synergy_norm_ce"].item() == pytest.approx(1 - out["synergy_ce"].item() / torch.log(torch.tensor(8.0)).item(), rel=1e-5)


def test_workspace_states_are_bounded():
    model = GlobalWorkspace(CONFIG, attr_dim=11, v_dim=32, n_probe=9)
    b = batch()
    pre_a, pre_v = model.encoders["attr"](b["attr"] * 100), model.encoders["v"](b["v"] * 100)
    assert model.fuse(pre_a, pre_v).abs().max() <= 1
    with pytest.raises(ValueError, match="workspace_dim must be at least 1"):
        GlobalWorkspace(GWModelConfig(0, 16, 0.5, 0.5, 16), attr_dim=11, v_dim=32, n_probe=9)


