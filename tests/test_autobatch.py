"""data.batch_size = "auto": the probe's bound, an integer honoured, the out-of-memory back-off,
the cache, and the same surface as the chosen integer's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from engine import autobatch
from engine.autobatch import BatchChoice, probe, probe_budget
from engine.batching import rebatch
from engine.config import load_config
from engine.directions import DirectionSet, random_direction
from engine.formats import read_surface
from engine.landscape import Landscape
from engine.run import prepare
from engine.splits import Batches, Split


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """A cache folder of the test's own: entries of other tests (same model shapes, other
    limits) must not answer for it."""
    monkeypatch.setenv("TUI_LANDSCAPE_CACHE", str(tmp_path))
    return tmp_path


class FakeClock:
    """A clock that ``run`` advances by a modelled cost: the bound is checked exactly, fast."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_probe_keeps_its_bound():
    clock = FakeClock()
    calls: list[int] = []

    def run(b: int) -> int:  # 5 ms a call plus 1 us a sample: larger is always faster
        m = min(1_000_000, 2 * b)
        clock.now += 0.005 + 1e-6 * m
        calls.append(b)
        return m

    # A few dozen points: the floor of 2 s, well before the 2**19 sizes are all timed.
    few = probe(run, 1_000_000, 40, clock=clock)
    assert few.stopped == "budget" and few.seconds <= 2.0
    assert few.size == max(calls) and max(calls) < 1_000_000
    # A long run may spend 2% of its estimate: more sizes, and still within it.
    calls.clear()
    clock.now = 0.0
    many = probe(run, 1_000_000, 200_000, clock=clock)
    per_point = min(t for _, t in many.figures) * 1_000_000
    assert many.seconds <= probe_budget(200_000, per_point) and many.seconds > 2.0
    assert max(calls) > few.size
    assert probe_budget(10, 0.01) == 2.0 and probe_budget(10_000, 1.0) == pytest.approx(200.0)


def test_the_probe_takes_the_fastest_per_sample_and_stops_past_it():
    clock = FakeClock()

    def run(b: int) -> int:  # fastest per sample at 64, slower above (cache-bound)
        clock.now += b * (1e-6 + 1e-7 * abs(np.log2(b) - 6) ** 2) + 1e-5
        return b

    choice = probe(run, 100_000, 10_000, clock=clock)
    # 128 is within 5% of 64 (2% slower): of near-ties the larger, with fewer calls a pass.
    assert choice.size == 128 and choice.stopped == "slower"
    assert min(choice.figures, key=lambda f: f[1])[0] == 64
    # 128 is within 10% of the best; 256, 512 and 1024 are slower by more: it stopped there.
    assert max(b for b, _ in choice.figures) == 1024


def test_whole_passes_decide_among_the_finalists():
    """Two batches a size can mislead (a pass's calls, its partial last batch): the climb's
    best few, and any size within 2x of its fastest, are timed again on whole passes, and
    those decide."""
    clock, n, wholes = FakeClock(), 1000, []
    # us per sample on two batches (1000: misjudged 1.7x) and on a whole pass
    climb = {1: 9, 2: 8, 4: 7, 8: 6, 16: 5, 32: 4, 64: 1.1, 128: 1.0, 256: 1.2, 512: 2.5,
             1000: 1.7}  # fmt: skip
    passes = {64: 1.3, 128: 1.2, 256: 1.1, 1000: 0.9}

    def run(b: int) -> int:
        m = min(n, 2 * b)
        clock.now += m * climb[b] * 1e-6
        return m

    def whole(b: int) -> int:
        clock.now += n * passes[b] * 1e-6
        wholes.append(b)
        return n

    assert probe(run, n, 10_000, clock=clock).size == 128
    clock.now = 0.0
    choice = probe(run, n, 10_000, clock=clock, whole=whole)
    # The best three and the best's neighbours (64, 128, 256), and 1000 (within 2x), 5 times.
    assert sorted(wholes) == [64] * 5 + [128] * 5 + [256] * 5 + [1000] * 5
    assert choice.size == 1000 and dict(choice.passes)[1000] == pytest.approx(0.9e-6)
    assert choice.detail().endswith("; whole passes 128: 1.2, 64: 1.3, 256: 1.1, 1000: 0.9)")
    # The line people read: the three fastest whole passes, fastest first.
    assert choice.line().endswith("; us/sample 1000: 0.9, 256: 1.1, 128: 1.2)")
    # Whole passes keep the bound: none is started that the budget cannot take.
    clock.now, wholes[:] = 0.0, []
    tight = probe(run, n, 10_000, clock=clock, whole=whole, budget_s=0.004)
    assert tight.seconds <= 0.004 and tight.passes == () and not wholes


def _tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


class Recorder(nn.Module):
    """A model that records the batch sizes it sees, and runs out of memory above ``limit``
    (the real ``torch.OutOfMemoryError``, as CUDA raises it)."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.net, self.limit, self.seen = _tiny_mlp(), limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(len(x))
        if self.limit is not None and len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def _splits(n: int = 300) -> dict[str, Split]:
    g = torch.Generator().manual_seed(1)
    return {"train": Split(torch.randn(n, 1, 4, 4, generator=g), torch.arange(n) % 3)}


def _landscape(model: nn.Module, sets: list[str], splits=None) -> Landscape:
    g = torch.Generator().manual_seed(0)
    dx = random_direction(model, "weights", "filter", "biasbn", g)
    cfg = load_config(None, ["data.splits=['train']", *sets])
    return Landscape(model, splits or _splits(), DirectionSet(dx, None, "weights"), cfg,
                     torch.device("cpu"))  # fmt: skip


def test_an_integer_is_honoured_exactly(fresh_cache):
    model = Recorder()
    land = _landscape(model, ["data.batch_size=7"])
    land.check(1000)
    model.seen.clear()
    land.evaluate_many([(0.1, 0.0)])
    assert land.batch_choice == BatchChoice(7, "given")
    assert set(model.seen) == {7, 300 % 7}


def test_out_of_memory_halves_and_the_run_goes_on(fresh_cache):
    model = Recorder(limit=48)
    land = _landscape(model, [])
    land.check(1000)
    choice = land.batch_choice
    assert choice.how == "probe" and choice.stopped == "out of memory"
    assert choice.size <= 32 and max(b for b, _ in choice.figures) == 32
    # At a size that fails at a point (other memory in use, say), the pass is halved again.
    land.use_batch_size(200)
    (values,) = land.evaluate_many([(0.0, 0.0)])
    assert land.batch_size == 25 and np.isfinite(values["train_loss"])
    # An integer is the user's: its out-of-memory error is not hidden.
    fixed = _landscape(Recorder(limit=48), ["data.batch_size=100"])
    fixed.check(1000)
    with pytest.raises(torch.OutOfMemoryError):
        fixed.evaluate_many([(0.0, 0.0)])


def test_a_run_of_a_few_points_does_not_probe(monkeypatch, fresh_cache):
    monkeypatch.setattr(autobatch, "probe", lambda *a, **k: pytest.fail("probed"))
    land = _landscape(Recorder(), [])
    land.check(4)
    assert land.batch_choice.how == "default" and land.batch_choice.size == 300


def test_the_cache_is_used_and_a_damaged_entry_ignored(monkeypatch, fresh_cache):
    tmp_path = fresh_cache
    first = _landscape(Recorder(), [])
    first.check(1000)
    assert first.batch_choice.how == "probe"
    (entry,) = (tmp_path / "batch-size").glob("*.json")
    assert json.loads(entry.read_text())["size"] == first.batch_choice.size
    real = autobatch.probe
    monkeypatch.setattr(autobatch, "probe", lambda *a, **k: pytest.fail("probed again"))
    again = _landscape(Recorder(), [])
    again.check(1000)
    assert again.batch_choice.how == "cache"
    assert again.batch_choice.size == first.batch_choice.size == again.batch_size
    # Another loss is another key: it probes.
    monkeypatch.setattr(autobatch, "probe", real)
    other = _landscape(Recorder(), ["data.loss=mse"])
    other.check(1000)
    assert other.batch_choice.how == "probe"
    for damage in ("{not json", '{"version": 1, "size": "big"}', json.dumps({"size": 10**9})):
        entry.write_text(damage)
        land = _landscape(Recorder(), [])
        land.check(1000)
        assert land.batch_choice.how == "probe", damage
        assert json.loads(entry.read_text())["size"] == land.batch_choice.size  # rewritten


def test_rebatch_reslices_collated_batches_in_order():
    batches = tuple(
        {"ids": torch.arange(a, a + n), "pair": (torch.ones(n, 2) * a, "tag")}
        for a, n in ((0, 4), (4, 4), (8, 3))
    )
    out = rebatch(batches, 5)
    assert [b["ids"].tolist() for b in out] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]
    assert out[2]["pair"][1] == "tag" and out[1]["pair"][0].shape == (5, 2)
    assert rebatch(({"a": torch.ones(2)}, {"b": torch.ones(2)}), 1) is None
    assert rebatch(({"a": torch.ones(2), "k": 1}, {"a": torch.ones(2), "k": 2}), 1) is None


def test_a_user_loss_on_given_batches_uses_the_chosen_size(fresh_cache):
    seen: list[int] = []

    def loss(model, batch):
        seen.append(len(batch["x"]))
        logits = model(batch["x"])
        return {"loss": nn.functional.cross_entropy(logits, batch["y"], reduction="none")}

    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(200, 1, 4, 4, generator=g), torch.arange(200) % 3
    given = Batches(200, batches=tuple({"x": x[i : i + 64], "y": y[i : i + 64]}
                                       for i in range(0, 200, 64)))  # fmt: skip
    from engine.losses import Loss

    model = _tiny_mlp()
    g = torch.Generator().manual_seed(0)
    dx = random_direction(model, "weights", "filter", "biasbn", g)
    cfg = load_config(None, ["data.splits=['train']"])
    land = Landscape(model, {"train": given}, DirectionSet(dx, None, "weights"), cfg,
                     torch.device("cpu"), loss=Loss(loss, "loss"))  # fmt: skip
    land.check(1000)
    b = land.batch_choice.size
    assert land.batch_choice.how == "probe"
    seen.clear()
    (auto,) = land.evaluate_many([(0.2, 0.0)])
    assert max(seen) == min(b, 200) and sum(seen) == 200
    land.use_batch_size(64)
    (fixed,) = land.evaluate_many([(0.2, 0.0)])
    assert auto["train_loss"] == pytest.approx(fixed["train_loss"], rel=1e-6)


@pytest.mark.usefixtures("digits_mlp_recipe")
def test_auto_gives_the_surface_of_the_size_it_chose(tmp_path):
    sets = ["model.arch=digits_mlp", "model.checkpoint=recipe:digits_mlp", "data.subset=300",
            "grid.x=-1:1:3", "grid.y=-1:1:3"]  # fmt: skip
    job = prepare(load_config(None, sets), tmp_path / "auto.h5")
    chosen = job.landscape.batch_choice
    job.run()
    auto = read_surface(tmp_path / "auto.h5")
    assert chosen.how in ("probe", "cache")
    assert auto.provenance.batch_size == f"{chosen.size} (auto, {chosen.how})"
    fixed_sets = [*sets, f"data.batch_size={chosen.size}"]
    prepare(load_config(None, fixed_sets), tmp_path / "int.h5").run()
    fixed = read_surface(tmp_path / "int.h5")
    assert fixed.provenance.batch_size == str(chosen.size)
    for name in auto.values:
        np.testing.assert_array_equal(auto.values[name], fixed.values[name], err_msg=name)
    # Another size moves the numbers by float32 rounding only; the identity is the same, so
    # an integer resumes a file that 'auto' made.
    other = [*sets, "data.batch_size=1" if chosen.size != 1 else "data.batch_size=2"]
    prepare(load_config(None, other), tmp_path / "other.h5").run()
    for name, v in read_surface(tmp_path / "other.h5").values.items():
        np.testing.assert_allclose(v, auto.values[name], rtol=1e-5, err_msg=name)
    resumed = prepare(load_config(None, fixed_sets), tmp_path / "auto.h5")
    assert resumed.resumed and resumed.done == 9
    resumed.close()


# --- hostile caches and values -------------------------------------------------------------

_KEY = {"model": "m", "samples": 100}


def _entry(**changes) -> str:
    """A cache entry for ``_KEY`` as the cache writes it, with ``changes``."""
    good = {"version": autobatch._CACHE_VERSION, "key": autobatch.cache_key(**_KEY), "size": 16,
            "figures": [[1, 1e-4], [16, 2e-5]], "stopped": "slower"}  # fmt: skip
    return json.dumps({**good, **changes})


_DAMAGED = {  # id: (the file's text, what the report says)
    "figures_int": (_entry(figures=5), "figures are not (size, seconds) pairs"),  # TypeError
    "figures_short": (_entry(figures=[[1]]), "figures are not"),
    "figures_str": (_entry(figures=[["ab", 1.0]]), "figures are not"),
    "figures_nan": (_entry(figures=[[float("nan"), 1.0]]), "figures are not"),  # ValueError
    "nested_deep": ("[" * 50_000, "recursion"),  # was a RecursionError
    "too_large": ("{" * 70_000, "larger than"),
    "list": ("[16]", "not a JSON object but list"),
    "null": ("null", "not a JSON object"),
    "truncated": (_entry()[:40], "line 1"),
    "size_0": (_entry(size=0), "its size 0 is not an integer in 1..100"),
    "size_negative": (_entry(size=-8), "its size -8"),
    "size_above_split": (_entry(size=101), "its size 101"),
    "size_huge": (_entry(size=10**30), "is not an integer in 1..100"),
    "size_float": (_entry(size=16.0), "its size 16.0"),
    "size_bool": (_entry(size=True), "its size True"),
    "size_nan": (_entry(size=float("nan")), "its size nan"),
    "other_torch": (_entry(key={**autobatch.cache_key(**_KEY), "torch": "1.0"}), "another key's"),
    "other_version": (_entry(version=1), "another version's"),
}


@pytest.mark.parametrize("damage", list(_DAMAGED))
def test_a_damaged_cache_entry_is_ignored_and_reported_once(fresh_cache, caplog, damage):
    text, why = _DAMAGED[damage]
    path = autobatch._entry_path(autobatch.cache_key(**_KEY))
    path.parent.mkdir(parents=True)
    path.write_text(text)
    autobatch._reported.clear()
    with caplog.at_level("INFO", logger="engine.autobatch"):
        for _ in range(2):  # choose_batch asks twice (before and under the lock)
            assert autobatch.cached_choice(autobatch.cache_key(**_KEY), 100) is None
    (record,) = caplog.records
    assert record.levelname == "INFO" and why in record.getMessage() and str(path) in record.message
    path.write_text(_entry())  # the same place with a good entry: read
    assert autobatch.cached_choice(autobatch.cache_key(**_KEY), 100) == BatchChoice(
        16, "cache", ((1, 1e-4), (16, 2e-5))
    )


def _within(seconds: float, fn, *args):
    """``fn(*args)``, failing the test if it has not returned in ``seconds`` (a read that hangs
    must not hang the suite)."""
    import threading

    box = {}
    t = threading.Thread(target=lambda: box.update(value=fn(*args)), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} did not return within {seconds} s"
    return box["value"]


@pytest.mark.parametrize("planted", ["fifo", "dev_zero", "folder", "dangling_link"])
def test_a_fifo_device_or_folder_in_the_entrys_place_is_ignored_at_once(fresh_cache, planted):
    """A FIFO hung the read for good; a link to /dev/zero read until memory ran out."""
    import os

    key = autobatch.cache_key(**_KEY)
    path = autobatch._entry_path(key)
    path.parent.mkdir(parents=True)
    {
        "fifo": lambda: os.mkfifo(path),
        "dev_zero": lambda: path.symlink_to("/dev/zero"),
        "folder": lambda: path.mkdir(),
        "dangling_link": lambda: path.symlink_to(fresh_cache / "nowhere"),
    }[planted]()
    assert _within(10, autobatch.cached_choice, key, 100) is None
    # The probe's result replaces it where it can (not a folder), and leaves no temporary file.
    autobatch.store_choice(key, BatchChoice(8, "probe", ((8, 1e-5),)))
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == [path.name]
    if planted != "folder":
        assert _within(10, autobatch.cached_choice, key, 100).size == 8


def test_a_cache_folder_that_is_a_file_skips_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TUI_LANDSCAPE_CACHE", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    key = autobatch.cache_key(**_KEY)
    with autobatch.probe_lock(key) as held:
        assert held is False
    autobatch.store_choice(key, BatchChoice(8, "probe"))
    assert autobatch.cached_choice(key, 100) is None
    land = _landscape(Recorder(), [])  # and a run probes and goes on
    land.check(1000)
    assert land.batch_choice.how == "probe"


def test_threads_writing_one_entry_at_once_leave_a_whole_entry(fresh_cache, caplog):
    """Two runs in one process (the app) wrote one temporary file, named by the process id:
    one of them failed, or replaced the entry with a mix of both. Each write has its own."""
    import threading

    caplog.set_level("INFO", logger="engine.autobatch")

    key = autobatch.cache_key(**_KEY)
    start = threading.Barrier(4)

    def write(size: int) -> None:
        start.wait(timeout=10)
        for _ in range(50):
            autobatch.store_choice(key, BatchChoice(size, "probe", ((size, 1e-6),) * size))

    threads = [threading.Thread(target=write, args=(s,)) for s in (1, 2, 4, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert autobatch.cached_choice(key, 100).size in (1, 2, 4, 8)
    (entry,) = (fresh_cache / "batch-size").iterdir()
    assert entry.suffix == ".json" and entry.stat().st_mode & 0o777 == 0o644  # others read it
    assert not [r.message for r in caplog.records if "could not write" in r.message]


def test_a_file_system_without_locks_probes_unlocked(fresh_cache, monkeypatch):
    """flock's ENOLCK (NFS without its lock daemon) was a traceback; 'held by another' is the
    only error to wait on."""
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with autobatch.probe_lock(autobatch.cache_key(**_KEY)) as held:
        assert held is False
    land = _landscape(Recorder(), [])
    land.check(1000)
    assert land.batch_choice.how == "probe"


def test_no_home_directory_runs_auto_uncached_and_a_recipe_is_one_line(monkeypatch, tmp_path):
    """A container's user without a home: Path.home() raised RuntimeError, a traceback in
    every run with data.batch_size = 'auto'."""
    from pathlib import Path

    from engine.errors import ConfigError
    from engine.recipes import cache_dir

    def no_home(cls):
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", classmethod(no_home))
    monkeypatch.delenv("TUI_LANDSCAPE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with pytest.raises(ConfigError, match="^No cache folder: .* Set TUI_LANDSCAPE_CACHE"):
        cache_dir()
    land = _landscape(Recorder(), [])
    land.check(1000)
    assert land.batch_choice.how == "probe"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a home is not needed with these
    assert cache_dir() == tmp_path / "tui-landscape"


@pytest.mark.parametrize(
    "value", ["0", "-4", "2.5", "64.0", "'AUTO'", "'auto '", "' auto'", "true"]
)
@pytest.mark.parametrize("key", ["data.batch_size", "compute.points_per_batch"])
def test_a_bad_batch_size_is_one_line_naming_the_key_and_auto(tmp_path, key, value):
    """In a TOML file, and on the command line quoted or as the bare word a user types."""
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    config = tmp_path / "c.toml"
    section, name = key.split(".")
    config.write_text(f"[{section}]\n{name} = {value}\n")
    runs = [[str(config)], [str(config), "--set", f"{key}={value}"]]
    runs.append([str(config), "--set", f"{key}={value.strip(chr(39))}"])
    for args in runs:
        if "--set" in args:
            config.write_text("")
        r = CliRunner().invoke(app, ["compute", *args])
        assert r.exit_code == 2, r.output
        (line,) = r.output.strip().splitlines()
        assert f"Expected `{key}`" in line and "'auto'" in line, line
        assert not (tmp_path / "c.h5").exists()


class Squeezed(nn.Module):
    """A model whose outputs lose their batch dimension at a batch of 1 (``.squeeze()``), as
    many hand-written models do: the probe's size 1 and every size that leaves a last batch
    of 1 raised, and the probe's traceback ended the run."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _tiny_mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).unsqueeze(1).squeeze()


def test_sizes_the_model_cannot_take_are_skipped_by_the_probe(fresh_cache, caplog):
    caplog.set_level("INFO", logger="engine.autobatch")
    land = _landscape(Squeezed(), [], _splits(97))  # 97 = 3 * 32 + 1: 2..32 end in a batch of 1
    land.check(1000)
    choice = land.batch_choice
    assert choice.how == "probe" and 97 % choice.size != 1, choice
    assert "batch size 1 not usable: IndexError" in caplog.text
    (auto,) = land.evaluate_many([(0.1, 0.0)])
    fixed = _landscape(Squeezed(), [f"data.batch_size={choice.size}"], _splits(97))
    fixed.check(1000)
    assert fixed.evaluate_many([(0.1, 0.0)]) == [auto]
    # A model that fails at every size the probe tries: the fixed size, and its points say why.
    land = _landscape(Squeezed(), [], _splits(97))
    land.check(4)  # (no probe for a few points; below, a probe whose every size fails)
    run, whole, n, _ = autobatch._runner(land)
    broken = probe(lambda b: run(1), n, 1000, whole=lambda b: whole(1))
    assert broken.how == "default" and broken.size == 97
    assert broken.stopped.startswith("every size failed, IndexError")


def test_a_link_planted_as_the_lock_creates_nothing(fresh_cache):
    """O_CREAT through a dangling link made the file it names (anywhere the user may write)."""
    key = autobatch.cache_key(**_KEY)
    lock = autobatch._entry_path(key).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    target = fresh_cache / "elsewhere" / "created"
    target.parent.mkdir()
    lock.symlink_to(target)
    with autobatch.probe_lock(key) as held:
        assert held is False
    assert not target.exists()


def test_the_command_line_says_the_probed_size_in_one_line(fresh_cache, tmp_path):
    """Every size's figures made a line that wrapped four times (hard-wrapped at 80 columns
    in a scheduler's log). Now the three fastest, on one line whatever the width."""
    import re

    from typer.testing import CliRunner

    from tui_landscape.cli import app

    sets = ["model.arch=digits_mlp", "model.checkpoint=", "data.subset=300",
            "grid.x=-1:1:3", "grid.y=-1:1:3"]  # fmt: skip
    config = tmp_path / "c.toml"
    config.write_text("")
    args = ["compute", str(config), "--out", str(tmp_path / "s.h5")]
    args += [a for s in sets for a in ("--set", s)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.output.splitlines() if x.startswith("Batch size")]
    assert re.fullmatch(
        r"Batch size \d+ \(auto, \d+ sizes probed in [\d.]+ s; us/sample( \d+: [\d.e+]+,?){1,3}\)",
        line,
    ), line
