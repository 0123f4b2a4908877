"""Each named choice is one registry: the config accepts exactly its names, dispatch refuses
an unknown one listing the valid ones, and a new entry is usable once registered (issue 22)."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest
import torch
from torch import nn

from engine.build import make_directions
from engine.config import DirectionsConfig, load_config
from engine.errors import ConfigError
from engine.evaluate import per_sample, sample_stats
from engine.hessian import MeanLossHVP
from engine.kinds import KINDS, Kind, build_kind, kind_builder
from engine.losses import LOSSES, fused_entry, register_fused_loss, resolve_loss
from engine.norms import NORMS, normalize_direction, register_norm
from tests.conftest import REPO


def _choices(key: str) -> tuple[str, ...]:
    return typing.get_args(typing.get_type_hints(DirectionsConfig)[key])


def test_the_config_accepts_exactly_the_registered_norms_and_kinds():
    assert _choices("norm") == NORMS.names() == ("filter", "layer", "weight", "none")
    assert _choices("kind") == KINDS.names()
    assert set(KINDS.names()) == {"random", "interpolate", "file", "pca", "hessian"}


def test_the_config_accepts_exactly_the_registered_losses():
    for name in LOSSES:
        assert load_config(None, [f"data.loss={name}"]).data.loss == name
    with pytest.raises(ConfigError) as e:
        load_config(None, ["data.loss=hinge"])
    assert all(name in str(e.value) for name in LOSSES) and "'hinge'" in str(e.value)


def test_every_kind_has_a_builder():
    assert all(KINDS.get(k).build is not None for k in KINDS)


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: NORMS.get("spectral"), "directions.norm"),
        (lambda: normalize_direction(torch.ones(2, 2), torch.ones(2, 2), "spectral"), "norm"),
        (lambda: build_kind("spiral", None), "directions.kind"),
        (lambda: LOSSES.get("hinge"), "data.loss"),
        (lambda: sample_stats(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), "hinge"), ""),
        (lambda: resolve_loss("hinge"), "data.loss"),
        (lambda: load_config(None, ["directions.norm=spectral"]), "directions.norm"),
        (lambda: load_config(None, ["directions.kind=spiral"]), "directions.kind"),
    ],
)
def test_an_unknown_name_raises_listing_the_valid_ones(call, key):
    with pytest.raises(ConfigError) as e:
        call()
    msg = str(e.value)
    assert key in msg and "\n" not in msg
    listed = NORMS if "norm" in msg else KINDS if "kind" in msg else LOSSES
    assert all(repr(n) in msg or n in msg for n in listed), msg


def test_a_loss_without_fused_math_is_refused_on_the_fused_path():
    with pytest.raises(ConfigError, match="no fused classifier path; the fused losses are"):
        fused_entry("squared_error")


@pytest.fixture
def hinge():
    """A fused loss registered by a test, as a new one would be in engine/losses.py."""

    @register_fused_loss("hinge_test", trainable=True)
    def hinge_test(logits, y):
        """Multi-class hinge: sum over wrong classes of max(0, 1 + z_j - z_y)."""
        true = logits.gather(-1, y[:, None])
        margins = (1 + logits - true).clamp(min=0).scatter(-1, y[:, None], 0.0)
        return margins.sum(-1), logits.argmax(-1) == y

    yield hinge_test
    LOSSES.remove("hinge_test")


def _hinge_loop(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = []
    for z, t in zip(logits.tolist(), y.tolist(), strict=True):
        out.append(sum(max(0.0, 1 + zj - z[t]) for j, zj in enumerate(z) if j != t))
    return torch.tensor(out)


def test_a_new_fused_loss_is_computed_by_its_own_math_everywhere(hinge):
    """Not MSE (the old silent else): the fused evaluator, the loss function and the Hessian's
    summed loss all follow the registered math, checked against a plain loop."""
    assert load_config(None, ["data.loss=hinge_test"]).data.loss == "hinge_test"
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    with torch.no_grad():
        want = _hinge_loop(model(x), y)
    per, _ = per_sample(model, x, y, batch_size=4, loss="hinge_test")
    assert torch.allclose(per, want, atol=1e-5)
    loss = resolve_loss("hinge_test")
    assert loss.builtin == "hinge_test"
    with torch.no_grad():
        assert torch.allclose(loss.fn(model, (x, y))["loss"], want, atol=1e-5)
    from engine.splits import Split

    hvp = MeanLossHVP(model, Split(x, y), 4, loss)
    with torch.no_grad():
        assert float(hvp._fused.summed(model(x), y)) == pytest.approx(float(want.sum()), rel=1e-5)


def test_a_new_norm_is_accepted_by_the_config_and_used_by_random_directions():
    @register_norm("unit_test")
    def unit_test(d, w):
        d.div_(d.norm())

    try:
        cfg = load_config(None, ["directions.norm=unit_test", "grid.x=-1:1:3"])
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
        ds = make_directions(cfg, model).ds
        assert ds.attrs["norm"] == "unit_test"
        for d, p in zip(ds.x, model.parameters(), strict=True):
            if p.dim() > 1:
                assert float(d.norm()) == pytest.approx(1.0, rel=1e-5)
    finally:
        NORMS.remove("unit_test")


def test_a_new_kind_is_accepted_by_the_config_and_dispatched():
    from engine.directions import DirectionSet

    KINDS.add("ones_test", Kind("ones_test", "every direction all ones"))

    @kind_builder("ones_test")
    def ones(ctx):
        x = [torch.ones_like(p) for p in ctx.model.parameters()]
        return DirectionSet(x, None, ctx.dir_type, ctx.attrs), None

    try:
        cfg = load_config(None, ["directions.kind=ones_test", "grid.x=-1:1:3"])
        ds = make_directions(cfg, nn.Linear(2, 2)).ds
        assert ds.attrs["kind"] == "ones_test" and all(bool((d == 1).all()) for d in ds.x)
    finally:
        KINDS.remove("ones_test")


def test_importing_the_config_and_its_registries_loads_no_torch():
    """The config reads the registries' names at import; the app builds its form from the
    config before torch loads, so the registry modules must not import it."""
    code = (
        "import sys, engine.config, engine.losses, engine.norms, engine.kinds\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"
