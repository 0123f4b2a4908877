"""Hostile input: files that others wrote, planted to run code or to break a reader.

Each case ends in one clear line (a ``LandscapeError``) and does nothing the file asks for.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from engine.config import DataConfig
from engine.data import load_splits
from engine.errors import LandscapeError
from tests.test_datasets import write_cifar10


class _Payload:
    """Unpickling this runs a shell command: what a planted 'CIFAR batch' would do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_batch_with_a_code_payload_is_refused_and_not_run(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "payload-ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "wb") as f:
        pickle.dump({"data": _Payload(marker), "labels": []}, f)
    with pytest.raises(LandscapeError) as e:
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path)))
    msg = str(e.value)
    assert str(batch) in msg and "is not a CIFAR batch" in msg and "system" in msg
    assert "\n" not in msg
    assert not marker.exists()


def test_cifar_batch_that_is_not_a_dict_is_one_line(tmp_path):
    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(LandscapeError, match="is not a CIFAR batch .a list, not a dict."):
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), splits=("test",)))


@pytest.mark.parametrize(("protocol", "numpy1"), [(2, True), (2, False), (4, False), (5, False)])
def test_cifar_batches_of_every_protocol_and_numpy_load(tmp_path, protocol, numpy1):
    """The real files are protocol-2 pickles made with numpy 1.x (``numpy.core``)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        raw = pickle.dumps({"data": data, "labels": [3, 7], "batch_label": name}, protocol)
        if numpy1:  # protocol 2 names globals as text lines, so the name can be swapped
            raw = raw.replace(b"numpy._core", b"numpy.core")
            assert b"numpy.core.multiarray\n_reconstruct" in raw
        (folder / name).write_bytes(raw)
    s = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), raw=True))
    assert s["test"].y.tolist() == [3, 7]
    np.testing.assert_allclose(s["test"].x.flatten(1).numpy() * 255, data, atol=1e-3)


@pytest.mark.parametrize("spec", ["-1e308:1e308:5", "1:1.0000000000000002:5", "0:5e-324:4"])
def test_grid_whose_points_are_not_finite_and_distinct_is_refused(spec):
    from engine.errors import ConfigError
    from engine.grid import parse_axis

    with pytest.raises(ConfigError, match="not finite and distinct") as e:
        parse_axis(spec)
    assert "`grid.x`" in str(e.value)


@pytest.mark.parametrize("spec", ["mps", "xla", "cuda:7"])
def test_a_device_this_machine_lacks_is_one_line(spec):
    from engine.devices import resolve_device
    from engine.errors import ConfigError

    if spec == "mps":
        import torch

        if torch.backends.mps.is_available():
            pytest.skip("this machine has an MPS device")
    with pytest.raises(ConfigError, match="`compute.device`") as e:
        resolve_device(spec)
    assert "\n" not in str(e.value)


class _WrongBatch:
    """A model that returns one row whatever the batch: every point would fail alike."""

    @staticmethod
    def make():
        import torch
        from torch import nn

        class M(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(64, 10)

            def forward(self, x):
                return self.fc(x.flatten(1)).mean(0, keepdim=True)

        torch.manual_seed(0)
        return M()


def test_a_model_whose_output_has_the_wrong_batch_size_is_refused_before_any_file(tmp_path):
    from engine.config import load_config
    from engine.run import prepare

    cfg = load_config(None, ["model.arch=tests.test_hostile:wrong_batch_model", "grid.x=-1:1:5"])
    with pytest.raises(LandscapeError, match=r"outputs of shape \(1, 10\) for a batch of 2"):
        prepare(cfg, tmp_path / "s.h5")
    assert not list(tmp_path.iterdir())


def wrong_batch_model():
    return _WrongBatch.make()


def _tui(*args):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    return CliRunner().invoke(app, ["tui", *map(str, args)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[grid]\nz = 1\n", "grid.z"), ("[grid\n", "is not valid TOML")],
)
def test_app_with_a_bad_config_is_one_line_before_it_starts(tmp_path, text, expected):
    (tmp_path / "bad.toml").write_text(text)
    r = _tui(tmp_path / "bad.toml")
    assert r.exit_code == 2 and expected in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_app_with_a_damaged_surface_is_one_line_before_it_starts(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    r = _tui(tmp_path / "bad.h5")
    assert r.exit_code == 1 and "bad.h5" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_app_that_ended_on_an_unhandled_error_exits_non_zero(tmp_path, monkeypatch):
    import tui_landscape.app

    class Crashed:
        return_code = 1  # what Textual sets after it prints an unhandled exception

        def run(self):
            pass

    monkeypatch.setattr(tui_landscape.app, "create_app", lambda target: Crashed())
    assert _tui(tmp_path).exit_code == 1


@pytest.mark.parametrize(
    "text", ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 5000 + "1" + "}" * 5000]
)
def test_toml_nested_thousands_deep_is_one_line(tmp_path, text):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    (tmp_path / "deep.toml").write_text(text)
    r = CliRunner().invoke(app, ["compute", str(tmp_path / "deep.toml")])
    assert r.exit_code == 2 and "nested too deeply" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_a_set_value_nested_thousands_deep_is_one_line():
    from engine.config import load_config
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"`--set data.mean`: the value is nested too deeply"):
        load_config(None, ["data.mean=" + "[" * 5000 + "]" * 5000])


@pytest.mark.parametrize("item", ["data.std=[nan]", "data.mean=[inf]", "data.std=[-inf]"])
def test_non_finite_normalisation_is_refused(item):
    from engine.config import load_config
    from engine.errors import ConfigError

    key = item.split("=")[0]
    other = "data.mean=[0.5]" if key == "data.std" else "data.std=[0.5]"
    with pytest.raises(ConfigError, match="value to be finite"):
        load_config(None, [item, other])
