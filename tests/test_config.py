from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from engine.config import config_from_dict, config_to_toml, iter_keys, load_config
from engine.errors import ConfigError
from tests.conftest import REPO

SAMPLES = sorted((REPO / "sample_configs").rglob("*.toml"))


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


def test_round_trip_through_toml():
    cfg = load_config(None, ["grid.x=-1:1:9", "data.splits=['train']", "model.kwargs={width=4}"])
    back = config_from_dict(tomllib.loads(config_to_toml(cfg)))
    assert back == cfg or back.identity() == cfg.identity()
    assert dict(back.model.kwargs) == {"width": 4}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"model": {"arhc": "x"}}, "Unknown config key `model.arhc`"),
        ({"bogus": {}}, "Unknown config key `bogus`"),
        ({"data": {"batch_size": "big"}}, "Expected `data.batch_size` to be an integer"),
        ({"data": {"batch_size": 0}}, "Expected `data.batch_size` >= 1"),
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


def test_every_key_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    missing = [k for k, _, _ in iter_keys() if f"`{k}`" not in readme]
    assert not missing, f"README lacks config keys: {missing}"
