"""Models from the ecosystem: ``.safetensors`` checkpoints and ``hf:PATH`` transformers models."""

from __future__ import annotations

import json
import socket
import sys

import pytest
import torch
from safetensors.torch import save_file, save_model
from torch import nn
from typer.testing import CliRunner

from engine.errors import ConfigError, LandscapeError
from engine.formats import read_surface
from engine.models import build_model, load_checkpoint, read_state_dict
from engine.trajectory import find_checkpoints
from tests.conftest import REPO
from tui_landscape.cli import app

HINT = 'pip install "tui-landscape[hf]"'


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


# --- .safetensors ------------------------------------------------------------------------


def test_safetensors_round_trip_by_name_and_by_content(tmp_path):
    sd = build_model("digits_cnn", seed=1).state_dict()
    save_file(sd, tmp_path / "c.safetensors")
    dst = build_model("digits_cnn", seed=2)
    load_checkpoint(dst, tmp_path / "c.safetensors")
    _same(dst.state_dict(), sd)
    # Named like a PyTorch file, it is still recognised by its header; prefixes still go.
    save_file({f"module.{k}": v for k, v in sd.items()}, tmp_path / "c.pt")
    _same(read_state_dict(tmp_path / "c.pt"), sd)


def test_sharded_safetensors_are_merged(tmp_path):
    sd = build_model("digits_cnn", seed=1).state_dict()
    keys = list(sd)
    shards = {
        "model-00001-of-00002.safetensors": keys[:4],
        "model-00002-of-00002.safetensors": keys[4:],
    }
    for name, ks in shards.items():
        save_file({k: sd[k] for k in ks}, tmp_path / name)
    index = tmp_path / "model.safetensors.index.json"
    weight_map = {k: name for name, ks in shards.items() for k in ks}
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _same(read_state_dict(index), sd)

    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConfigError, match="shard 'model-00002-of-00002.safetensors'.*not found"):
        read_state_dict(index)
    index.write_text(
        json.dumps(
            {
                "weight_map": {
                    keys[0]: "model-00001-of-00002.safetensors",
                    "extra.weight": "model-00001-of-00002.safetensors",
                }
            }
        )
    )
    with pytest.raises(LandscapeError, match="lack tensors it lists: extra.weight"):
        read_state_dict(index)
    index.write_text("[1, 2]")
    with pytest.raises(LandscapeError, match="is not a safetensors index"):
        read_state_dict(index)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "torch_save", "empty"])
def test_a_bad_safetensors_file_is_one_line_naming_file_and_key(tmp_path, kind):
    good = tmp_path / "good.safetensors"
    save_file(build_model("digits_mlp").state_dict(), good)
    bad = tmp_path / "bad.safetensors"
    if kind == "truncated":
        bad.write_bytes(good.read_bytes()[:-100])
    elif kind == "garbage":
        bad.write_bytes(b"not a safetensors file at all")
    elif kind == "torch_save":
        torch.save(build_model("digits_mlp").state_dict(), bad)
    else:
        bad.write_bytes(b"")
    with pytest.raises(LandscapeError) as e:
        read_state_dict(bad, key="directions.target")
    msg = str(e.value)
    assert "`directions.target`" in msg and str(bad) in msg and "not a readable safetensors" in msg
    assert "\n" not in msg


def test_tied_weights_saved_once_load_into_both_names(tmp_path):
    """safetensors keeps one name of a shared tensor (save_model drops the others)."""

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.out = nn.Linear(4, 10, bias=False)
            self.out.weight = self.emb.weight

    src = Tied()
    save_model(src, str(tmp_path / "tied.safetensors"))
    assert len(read_state_dict(tmp_path / "tied.safetensors")) == 1
    dst = Tied()
    load_checkpoint(dst, tmp_path / "tied.safetensors")
    assert torch.equal(dst.out.weight, src.emb.weight) and dst.out.weight is dst.emb.weight


def test_trajectory_folders_take_safetensors(tmp_path):
    sd = build_model("digits_mlp").state_dict()
    for epoch in (10, 2):
        save_file(sd, tmp_path / f"model_{epoch}.safetensors")
    assert [p.name for p in find_checkpoints(tmp_path)] == [
        "model_2.safetensors",
        "model_10.safetensors",
    ]


def test_compute_reads_a_safetensors_checkpoint_as_its_pt_twin(chdir_tmp):
    cfg = REPO / "sample_configs" / "digits_2d.toml"
    sd = build_model("digits_cnn", seed=3).state_dict()
    torch.save(sd, "m.pt")
    save_file(sd, "m.safetensors")
    runner, small = CliRunner(), ["--set", "grid.x=-1:1:3", "--set", "grid.y="]
    values = {}
    for name in ("m.pt", "m.safetensors"):
        args = ["compute", str(cfg), *small, "--set", f"model.checkpoint={name}"]
        r = runner.invoke(app, [*args, "--out", f"{name}.h5"])
        assert r.exit_code == 0, r.output
        values[name] = read_surface(f"{name}.h5").values["train_loss"]
    assert values["m.pt"].shape == (3,)
    assert torch.equal(torch.from_numpy(values["m.pt"]), torch.from_numpy(values["m.safetensors"]))

    (chdir_tmp / "cut.safetensors").write_bytes((chdir_tmp / "m.safetensors").read_bytes()[:50])
    r = runner.invoke(
        app, ["compute", str(cfg), *small, "--set", "model.checkpoint=cut.safetensors"]
    )
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "`model.checkpoint`: cut.safetensors is not a readable" in lines[0]


# --- hf:PATH -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory):
    """A one-layer GPT-2 of a few thousand weights, saved with save_pretrained."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=16,
        vocab_size=64,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    folder = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: a local folder is loaded without the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_hf_model_loads_offline_with_the_same_logits(gpt2, tmp_path, offline):
    ref, folder = gpt2
    model = build_model(f"hf:{folder}")
    assert type(model).__name__ == "GPT2LMHeadModel" and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ids = torch.randint(0, 64, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.equal(
            model(input_ids=ids, attention_mask=mask).logits,
            ref(input_ids=ids, attention_mask=mask).logits,
        )
    base = build_model(f"hf:{folder}", {"task": "base"})
    assert type(base).__name__ == "GPT2Model"
    # No known head in the saved name: the saved class itself.
    ref.transformer.save_pretrained(tmp_path / "body")
    body = build_model(f"hf:{tmp_path / 'body'}")
    assert type(body).__name__ == "GPT2Model"
    with torch.no_grad():
        assert torch.equal(
            body(input_ids=ids).last_hidden_state, base(input_ids=ids).last_hidden_state
        )
    with pytest.raises(ConfigError, match="`model.kwargs.task` to be one of causal_lm"):
        build_model(f"hf:{folder}", {"task": "poetry"})


def test_a_checkpoint_loads_on_top_of_an_hf_model(gpt2, tmp_path, offline):
    _, folder = gpt2
    other = build_model(f"hf:{folder}")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5)
    save_model(other, str(tmp_path / "moved.safetensors"))  # keeps one name of the tied pair
    model = build_model(f"hf:{folder}")
    load_checkpoint(model, tmp_path / "moved.safetensors")
    _same(model.state_dict(), other.state_dict())
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied


def test_hf_folder_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="Hugging Face model folder not found") as e:
        build_model(f"hf:{tmp_path / 'nowhere'}")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="has no config.json; expected a folder written by") as e:
        build_model(f"hf:{tmp_path}")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="as 'hf:PATH'"):
        build_model("hf:")


def test_without_transformers_the_error_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import raises ImportError
    with pytest.raises(ConfigError) as e:
        build_model(f"hf:{tmp_path}")
    assert HINT in str(e.value) and "\n" not in str(e.value)


def test_compute_with_a_missing_hf_folder_is_one_line(chdir_tmp):
    cfg = REPO / "sample_configs" / "digits_2d.toml"
    args = ["compute", str(cfg), "--set", "model.arch=hf:nowhere", "--set", "model.checkpoint="]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert lines == ["error: `model.arch`: Hugging Face model folder not found: nowhere"]


HF_DATA = '''
import torch

class Padded(torch.utils.data.Dataset):
    """Token ids right-padded to 12 with an attention mask; 3 to 12 real tokens."""
    def __init__(self, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 64, (20, 12), generator=g)
    def __len__(self):
        return 20
    def __getitem__(self, i):
        mask = (torch.arange(12) < 3 + i % 10).long()
        return {"input_ids": self.ids[i] * mask, "attention_mask": mask}

def train():
    return Padded(0)

def test():
    return Padded(1)
'''


def test_hf_causal_lm_surface_is_the_token_weighted_loss(gpt2, tmp_path, offline):
    """A Hugging Face model on dict batches with the ready causal_lm loss: the centre of the
    surface is the model's own token-weighted loss, computed here with its labels."""
    from engine.config import load_config
    from engine.formats import read_surface
    from engine.run import prepare

    ref, folder = gpt2
    (tmp_path / "hfdata.py").write_text(HF_DATA)
    data = f"{tmp_path / 'hfdata.py'}"
    sets = [
        f"model.arch=hf:{folder}",
        f"data.dataset={data}:train",
        f"data.test_dataset={data}:test",
        "data.loss=causal_lm",
        "data.batch_size=6",
        "grid.x=-1:1:3",
    ]
    prepare(load_config(None, sets), tmp_path / "lm.h5").run()
    s = read_surface(tmp_path / "lm.h5")
    assert list(s.values) == ["train_loss", "train_acc", "test_loss", "test_acc"]
    import importlib.util

    spec = importlib.util.spec_from_file_location("hfdata_ref", tmp_path / "hfdata.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for split, ds in (("train", mod.train()), ("test", mod.test())):
        batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        with torch.no_grad():
            # transformers' own loss: the mean over every predicted (unmasked) token
            want = ref(**batch, labels=labels).loss.item()
        assert s.values[f"{split}_loss"][1] == pytest.approx(want, rel=1e-5)
