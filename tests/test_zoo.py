"""The paper's zoo: shapes, names, counts and forward passes as in the reference code."""

from __future__ import annotations

import re

import pytest
import torch
from typer.testing import CliRunner

from engine.models import build_model, create_model, list_models, load_checkpoint
from tests.conftest import REPO
from tui_landscape.cli import app

# From shared/reference/zoo_state_dicts.txt: (parameters, state_dict entries).
REFERENCE = {
    "vgg9": (2_789_706, 58),
    "resnet20": (272_474, 128),
    "resnet20_noshort": (269_722, 116),
    "resnet56": (855_770, 344),
    "resnet56_noshort": (853_018, 332),
    "resnet110": (1_730_714, 668),
    "resnet110_noshort": (1_727_962, 656),
    "wrn56_2": (3_412_394, 344),
    "wrn56_4": (13_628_234, 344),
    "wrn56_8": (54_470_282, 344),
    "densenet121": (6_956_298, 722),
    "resnet18": (11_173_962, 122),
}
LISTING = REPO.parent / "shared" / "reference" / "zoo_state_dicts.txt"


def _meta(name: str, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_counts_equal_the_reference(name):
    m = _meta(name)
    params, entries = REFERENCE[name]
    assert sum(p.numel() for p in m.parameters()) == params
    assert len(m.state_dict()) == entries


@pytest.mark.skipif(not LISTING.exists(), reason="shared/reference not beside the checkout")
def test_names_and_shapes_match_the_reference_listing():
    sections = re.split(r"^## ", LISTING.read_text(), flags=re.M)[1:]
    assert len(sections) == len(REFERENCE)
    for sec in sections:
        name = sec.split(":")[0]
        sd = list(_meta(name).state_dict().items())
        head, tail, in_tail = [], [], False
        for line in sec.splitlines()[1:]:
            m = re.match(r"\s+([\w.]+) \(([\d, ]*)\)", line)
            if "more) ..." in line:
                in_tail = True
            elif m:
                shape = tuple(int(v) for v in m[2].replace(" ", "").split(",") if v)
                (tail if in_tail else head).append((m[1], shape))
        ours = [(k, tuple(v.shape)) for k, v in sd]
        assert ours[: len(head)] == head, name
        assert not tail or ours[-len(tail) :] == tail, name


# The models that are not 10-class classifiers: their output for one sample (tests/test_cases.py).
OUTPUT_SHAPES = {"char_transformer": (1, 65, 256), "diabetes_mlp": (1, 1)}


def test_every_model_runs_a_forward_pass():
    for info in list_models():
        model = build_model(info.name).eval()
        shape = (1, *info.input_shape)
        x = (
            torch.randn(shape)
            if info.input_dtype.is_floating_point
            else torch.zeros(shape, dtype=info.input_dtype)  # token ids
        )
        with torch.no_grad():
            out = model(x)
        expected = OUTPUT_SHAPES.get(info.name, (1, 10))
        assert out.shape == expected and torch.isfinite(out).all(), info.name


def test_num_classes_option():
    with torch.no_grad():
        out = build_model("resnet20", {"num_classes": 100}).eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 100)


@pytest.mark.parametrize("name", ["resnet20", "resnet20_noshort", "vgg9", "digits_resnet8"])
def test_state_dict_loads_strictly_and_gives_the_same_logits(tmp_path, name):
    src = build_model(name, seed=1).eval()
    shape = next(i.input_shape for i in list_models() if i.name == name)
    x = torch.randn(3, *shape)
    torch.save({"state_dict": src.state_dict(), "acc": 90.0, "epoch": 300}, tmp_path / "m.t7")
    dst = build_model(name, seed=2).eval()
    load_checkpoint(dst, tmp_path / "m.t7")
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_noshort_has_no_skip_connections():
    m = build_model("resnet20_noshort")
    assert not any("shortcut" in k for k in m.state_dict())
    block = m.layer1[0].eval()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():  # no identity path: zero conv weights give a zero output
        for p in block.parameters():
            p.zero_()
        assert torch.count_nonzero(block(x)) == 0


def test_models_command_lists_counts():
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0
    assert "resnet56" in r.stdout and "855,770" in r.stdout and "3x32x32" in r.stdout
    assert "digits_resnet20_noshort" in r.stdout
    assert "digits_resnet56" in r.stdout and "digits_resnet110_noshort" in r.stdout


@pytest.mark.parametrize("depth", [56, 110])
def test_deep_digits_resnets_have_the_paper_depth_and_no_skips_without_shortcuts(depth):
    # Depth 6n+2: the stem conv, 2 convs in each of 3 stages x n blocks, and the linear layer.
    infos = {i.name: i for i in list_models()}
    short, noshort = f"digits_resnet{depth}", f"digits_resnet{depth}_noshort"
    assert infos[short].input_shape == infos[noshort].input_shape == (1, 8, 8)
    a, b = build_model(short, seed=3).eval(), build_model(noshort, seed=3).eval()
    convs = [m for m in a.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth  # + the linear layer; 1x1 projections are not layers
    assert not any("shortcut" in k for k in b.state_dict())
    # The same weights (noshort's keys are a subset) give other logits: no identity adds.
    b.load_state_dict({k: v for k, v in a.state_dict().items() if k in b.state_dict()})
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
