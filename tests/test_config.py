from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from engine.config import config_from_dict, config_to_toml, iter_keys, load_config
from engine.errors import ConfigError
from tests.conftest import REPO

# Study files (sample_configs/studies/) are not configs: tests/test_study.py parses them.
SAMPLES = sorted(
    p for p in (REPO / "sample_configs").rglob("*.toml") if "studies" not in p.parent.parts
)
DIGITS_2D = REPO / "sample_configs" / "digits_2d.toml"


def test_there_are_sample_configs():
    names = {p.name for p in SAMPLES}
    assert {"digits_2d.toml", "digits_interpolation.toml"} <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_config_parses(path: Path):
    cfg = load_config(path)
    assert cfg.parsed_grid.size >= 2


def test_defaults_and_overrides():
    cfg = load_config(
        None, ["grid.x=-2:2:5", "grid.y=-1:1:3", "data.batch_size=7", "directions.same=true"]
    )
    assert cfg.parsed_grid.shape == (3, 5)
    assert cfg.data.batch_size == 7 and cfg.directions.same is True
    assert cfg.directions.norm == "filter" and cfg.directions.ignore == "biasbn"


# Every key away from its default but `directions.target` (the test below checks that), and the
# whole config valid: a target is refused unless kind = 'interpolate', which refuses a file.
EVERY_KEY_SET = {
    "model": {
        "arch": "digits_mlp",
        "checkpoint": "a.pt",
        "kwargs": {"width": 4, "inner": {"sizes": [1, 2], "scale": 0.5}},
        "seed": 3,
    },
    "data": {
        "dataset": "cifar10",
        "test_dataset": "mod:test_split",
        "root": "d",
        "download": True,
        "raw": True,
        "subset": 100,
        "subset_seed": 5,
        "image_size": 28,
        "mean": [0.5, 0.25],
        "std": [0.25, 1],  # an integer in a list of floats
        "splits": ["test"],
        "batch_size": 7,
        "loss": "mse",
        "collate": "mod:collate",
        "l2": 0.0005,
        "stream": True,
        "memory_mb": 64,
        "loader_workers": 0,
    },
    "directions": {
        "kind": "file",
        "type": "weights",  # 'states' is refused with compute.bn = 'recalibrate'
        "norm": "layer",
        "ignore": "none",
        "seed": 9,
        "same": True,
        "file": "dirs.h5",
        "target": "",
        "checkpoints": "runs/*.pt",
        "pair": "top2",
    },
    "grid": {"x": "-2:2:5", "y": "-1:1:3"},
    "compute": {
        "device": "cpu",
        "flush_seconds": 0.5,
        "precision": "bf16",
        "channels_last": True,
        "compile": True,
        "points_per_batch": 4,
        "preview": True,
        "workers": 2,
        "devices": ["cuda:0", "cuda:2"],
        "retries": 1,
        "restarts": 0,
        "checkpoint_seconds": 30,  # an integer for a float key
        "bn": "recalibrate",
    },
    "output": {"path": "o.h5"},
    "hessian": {
        "enabled": True,
        "tol": 0.01,
        "params": "all",
        "split": "test",
        "trace_samples": 0,
        "max_products": 50,
        "top_k": 3,
        "density_probes": 0,
        "density_steps": 10,
    },
    "train": {
        "optimizer": "adam",
        "lr": 1,
        "momentum": 0.5,
        "nesterov": True,
        "weight_decay": 0.0,
        "batch_size": 64,
        "epochs": 3,
        "schedule": "cosine",
        "lr_decay": 0.5,
        "save_every": 2,
        "seed": 4,
        "augment": "none",
        "out": "r",
    },
}
# The keys that change no computed value: a resume may differ in them.
NOT_IDENTITY = {
    *(f"compute.{k}" for k in EVERY_KEY_SET["compute"] if k not in ("precision", "bn")),
    "output.path",
    *(f"train.{k}" for k in EVERY_KEY_SET["train"]),
    # data.batch_size is not, but for compute.bn = 'recalibrate' (set above): tests/test_bn.py
    "data.stream",
    "data.memory_mb",
    "data.loader_workers",
    "hessian.trace_samples",
    "hessian.top_k",  # the centre's spectrum: computed once, when the file is made
    "hessian.density_probes",
    "hessian.density_steps",
}


def every_key_set():
    return config_from_dict(EVERY_KEY_SET)


def test_the_every_key_config_sets_every_key():
    cfg = every_key_set()
    same = [k for k, _, default in iter_keys() if _get(cfg, k) == default]
    assert same == ["directions.target"], f"set these keys in EVERY_KEY_SET: {same}"


def _get(cfg, dotted: str):
    sec, key = dotted.split(".")
    return getattr(getattr(cfg, sec), key)


def _without(cfg, dotted: str):
    """``cfg`` with one key back at its default (unchecked: identity() needs no valid config)."""
    sec, key = dotted.split(".")
    section = getattr(cfg, sec)
    default = type(section)()
    return dataclasses.replace(
        cfg, **{sec: dataclasses.replace(section, **{key: getattr(default, key)})}
    )


@pytest.mark.parametrize(
    "make", [lambda: load_config(None), every_key_set], ids=["defaults", "all"]
)
def test_round_trip_through_toml(make):
    cfg = make()
    text = config_to_toml(cfg)
    back = config_from_dict(tomllib.loads(text))
    assert back == cfg
    assert config_to_toml(back) == text  # a fixed point: nothing is re-typed on the way back


def test_round_trip_keeps_types():
    back = config_from_dict(tomllib.loads(config_to_toml(every_key_set())))
    assert dict(back.model.kwargs) == EVERY_KEY_SET["model"]["kwargs"]
    # Integers given for float keys are stored as floats, so they come back as floats.
    assert type(back.train.lr) is float and type(back.compute.checkpoint_seconds) is float
    assert back.data.std == (0.25, 1.0) and type(back.data.std[1]) is float
    assert back.compute.devices == ("cuda:0", "cuda:2") and back.data.splits == ("test",)


def test_identity_is_every_key_not_marked_otherwise():
    cfg = every_key_set()
    cfg = dataclasses.replace(cfg, directions=dataclasses.replace(cfg.directions, target="b.pt"))
    ident = cfg.identity()
    assert set(ident) == {"model", "data", "directions", "grid", "compute", "hessian"}
    assert ident["compute"] == {"precision": "bf16", "bn": "recalibrate"}
    for dotted, _, _ in iter_keys():
        changes_identity = _without(cfg, dotted).identity() != ident
        assert changes_identity == (dotted not in NOT_IDENTITY), dotted


def test_identity_ignores_the_order_of_splits():
    a = load_config(None, ["data.splits=['train', 'test']"])
    b = load_config(None, ["data.splits=['test', 'train']"])
    assert a != b and a.identity() == b.identity()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"model": {"arhc": "x"}}, "Unknown config key `model.arhc`"),
        ({"bogus": {}}, "Unknown config key `bogus`"),
        ({"data": {"batch_size": "big"}}, "Expected `data.batch_size` to be an integer"),
        ({"data": {"batch_size": 0}}, "Expected `data.batch_size` in 1..2**63-1 or 'auto'"),
        ({"data": {"batch_size": 2**63}}, "Expected `data.batch_size` in 1..2**63-1"),
        ({"data": {"batch_size": True}}, "Expected `data.batch_size` to be an integer"),
        ({"directions": {"norm": "filterr"}}, "Expected `directions.norm` to be one of 'filter'"),
        ({"directions": {"seed": 1.5}}, "Expected `directions.seed` to be an integer"),
        ({"data": {"splits": ["train", "val"]}}, "Expected `data.splits[1]` to be one of"),
        ({"grid": {"x": "-1:1:0"}}, "Expected `grid.x` to be 'min:max:num'"),
        ({"grid": {"y": "a:b:c"}}, "Expected `grid.y` to be 'min:max:num'"),
        ({"grid": {"x": "1:-1:5"}}, "Expected `grid.x`"),
        ({"grid": {"x": "-1:1:5.0"}}, "num must be an integer"),
        ({"grid": "x"}, "Expected `grid` to be a table"),
        ({"directions": {"kind": "file"}}, "Expected `directions.file`"),
        ({"directions": {"kind": "interpolate"}}, "Expected `directions.target`"),
        (
            {"directions": {"kind": "interpolate", "target": "b.pt"}, "grid": {"y": "-1:1:3"}},
            "interpolation between two models is 1D",
        ),
    ],
)
def test_bad_config_names_the_key(data, fragment):
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)
    assert e.value.exit_code == 2


def test_missing_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid\nx=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["gridx"])


def test_every_key_has_a_doc_and_a_row_in_the_configuration_page():
    page = (REPO / "docs" / "configuration.md").read_text()
    assert all(doc for _, doc, _ in iter_keys()), "a config key without a doc"
    missing = [k for k, _, _ in iter_keys() if f"| `{k}` |" not in page]
    assert not missing, f"docs/configuration.md lacks config keys: {missing}"


def test_output_path_is_out_then_output_path_then_the_config_name():
    from engine.config import output_path

    cfg = load_config(None)
    assert output_path(cfg, Path("runs/digits_2d.toml")) == Path("digits_2d.h5")
    assert output_path(cfg, None) == Path("surface.h5")
    set_ = load_config(None, ["output.path=x.h5"])
    assert output_path(set_, "a.toml") == Path("x.h5")
    assert output_path(set_, "a.toml", Path("o.h5")) == Path("o.h5")


def test_save_config_writes_changes_and_edits_a_file_in_place(tmp_path: Path):
    """Only keys that differ from the defaults in a new file; an existing one keeps its
    comments and layout, with only its changed keys rewritten."""
    from engine.config_save import config_changes, save_config

    cfg = load_config(DIGITS_2D, ["grid.x=-2:2:5", "compute.device='cpu'"])
    assert "train" not in config_changes(cfg) and config_changes(cfg)["grid"]["x"] == "-2:2:5"
    new = tmp_path / "new.toml"
    save_config(cfg, new)
    assert load_config(new) == cfg and "[train]" not in new.read_text()
    save_config(cfg, tmp_path / "full.toml", full=True)
    assert load_config(tmp_path / "full.toml") == cfg
    assert "[train]" in (tmp_path / "full.toml").read_text()
    edited = tmp_path / "digits_2d.toml"
    original = (DIGITS_2D).read_text()
    edited.write_text(original)
    save_config(cfg, edited)
    text = edited.read_text()
    assert load_config(edited) == cfg
    assert text.startswith(original.split('x = "-1:1:21"')[0])  # comments, order, layout kept
    assert 'x = "-2:2:5"' in text and text.rstrip().endswith('[compute]\ndevice = "cpu"')
    # A key the file sets follows the config even back to its default; 1 stays 1 for 1.0.
    edited.write_text(original + "\n[train]\nlr = 1  # the value as typed\nepochs = 3\n")
    save_config(load_config(edited, ["train.epochs=300"]), edited)
    assert "lr = 1  # the value as typed\nepochs = 300\n" in edited.read_text()


def test_preflight_refuses_a_recipe_of_another_model_without_training_it(monkeypatch):
    import engine.build
    from engine.build import preflight

    monkeypatch.setattr(engine.build, "recipe_checkpoint", None)  # a call would fail
    preflight(load_config(DIGITS_2D))
    monkeypatch.undo()
    bad = load_config(DIGITS_2D, ["model.arch=resnet50"])
    with pytest.raises(ConfigError, match="is a checkpoint of 'digits_cnn', but `model.arch`"):
        preflight(bad)
    for override, fragment in [
        ("model.arch=no_such_net", "Unknown architecture 'no_such_net'"),
        ("model.checkpoint=missing.pt", "`model.checkpoint`: checkpoint not found"),
        ("model.checkpoint=recipe:nope", "Unknown recipe 'nope'"),
        ("data.dataset=nope", "Unknown data set 'nope'"),
    ]:
        with pytest.raises(ConfigError, match=fragment):
            preflight(load_config(DIGITS_2D, [override]))


def test_compute_refuses_the_mismatch_before_writing(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["compute", str(DIGITS_2D), "--set", "model.arch=resnet50"])
    assert r.exit_code == 2 and "is a checkpoint of 'digits_cnn'" in r.output, r.output
    assert not any(tmp_path.iterdir())


def test_one_parser_for_typed_values_on_the_command_line_and_in_the_app():
    """`--set data.root=2024` is a string key and stays the string '2024' (it was refused as an
    integer), as the app's field reads it; non-string keys are still read as TOML."""
    from engine.config import key_type, parse_value

    cfg = load_config(None, ["data.root=2024", "model.checkpoint=true", "train.epochs=7"])
    assert cfg.data.root == "2024" and cfg.model.checkpoint == "true"
    assert cfg.train.epochs == 7
    assert key_type("data.root") is str and key_type("data.nope") is None
    assert key_type("grid") is not None and key_type("grid.x.y") is None
    assert parse_value("2024", str) == "2024" and parse_value("2024", int) == 2024
    assert parse_value("-1:1:21") == "-1:1:21"  # a bare word, judged by the config
    with pytest.raises(ConfigError, match="Expected `train.epochs` to be an integer"):
        load_config(None, ["train.epochs=many"])
    assert parse_value("'cpu'", str) == "cpu" and parse_value("true", str) == "true"
    from tui_landscape.panels.config_form import setup_fields

    root = next(f for f in setup_fields(["data"]) if f.key == "data.root")
    assert root.parse("2024") == parse_value("2024", str) == "2024"
