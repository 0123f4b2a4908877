"""The study report (tui_landscape/study_report.py) on a constructed study folder: its sections,
its figures (the flagged members never drawn), and the markdown alone without matplotlib."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from engine.study.analysis import CORRELATION_CSV, CORRELATION_JSON
from tests.study_folder import make_study
from tui_landscape import study_report as R
from tui_landscape.plots import export as E

SMALL = ("bs16-wd0", "bs128-wd0")  # one group where only the batch size varies: 3 figures


def test_report_has_its_sections_and_figures(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    d = make_study(tmp_path, seeds=(0, 1, 2), members=SMALL)
    drawn = []
    save = E._save
    monkeypatch.setattr(E, "_save", lambda fig, *a, **k: drawn.append(fig) or save(fig, *a, **k))
    path = R.write_report(d, n_boot=20)
    assert path == d / "report.md"
    text = path.read_text()
    heads = ["# Study: tiny", "## The poster's claims", "## Members", "## Correlation with the gap"]
    for head in [*heads, "## Factor: batch_size", "## Factor: weight_decay"]:
        assert f"\n{head}\n" in f"\n{text}"
    assert (d / CORRELATION_JSON).exists() and (d / CORRELATION_CSV).exists()
    # The verdicts: a claim tested, and those this study cannot test said so.
    assert "**reproduces**: small batch gives flatter minima" in text
    assert "**not tested**: wider nets are flatter" in text
    # Flagged members listed as such, never compared.
    assert "- bs512-wd0-s0: diverged (train accuracy 0.31 < 0.95)" in text
    assert "Left out (not minimizers): bs256-wd0 (not_converged), bs512-wd0 (diverged)." in text
    assert "No group of members where only weight_decay varies." in text
    # Every linked figure exists and is a PNG; one per kind the study made.
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text)
    assert links == [
        f"figures/batch_size-1-{s}.png"
        for s in ("surface_1d", "surface_2d", "hessian", "surface_2d-convexity")
    ]
    for link in links:
        assert (d / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(drawn) == 4
    curves, maps, ratio, _convexity = drawn
    assert [t.get_text() for t in curves.axes[0].get_legend().get_texts()] == list(SMALL)
    assert [ax.get_title() for ax in maps.axes if ax.get_title()] == list(SMALL)
    assert [ax.get_title() for ax in ratio.axes if ax.get_title()] == list(SMALL)
    # One scale: the panels' colour limits are the same.
    assert len({ax.collections[0].norm.vmax for ax in maps.axes[:2]}) == 1


def test_without_matplotlib_the_markdown_is_written_and_says_so(tmp_path, monkeypatch) -> None:
    d = make_study(tmp_path, seeds=(0,), members=SMALL)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    text = R.write_report(d, n_boot=0).read_text()
    assert "Figures were skipped: matplotlib is not installed" in text
    assert "![" not in text and not (d / "figures").exists()
    assert "## Factor: batch_size" in text and "Members: bs16-wd0 (batch_size = 16)" in text


def test_an_unreadable_member_file_is_said_in_the_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    d = make_study(tmp_path, seeds=(0,), members=SMALL, flagged=False)
    (d / "members" / "bs128-wd0-s0" / "hessian.h5").write_bytes(b"not hdf5")
    text = R.write_report(d, n_boot=0).read_text()
    assert re.search(
        r"\|min eig / max eig\| \(the Hessian's ratio map\): not drawn \(.*hessian", text
    )
    assert "figures/batch_size-1-surface_2d.png" in text


def test_a_centre_only_hessian_is_no_ratio_map_and_old_figures_go(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from engine.formats import Provenance, SurfaceWriter
    from engine.grid import Grid

    d = make_study(tmp_path, seeds=(0,), members=SMALL, flagged=False)
    for m in SMALL:  # the Hessian at the centre only: one point
        p = d / "members" / f"{m}-s0" / "hessian.h5"
        p.unlink()
        with SurfaceWriter.create(p, Grid.parse("0:0:1", "0:0:1"), ["max_eig", "min_eig"],
                                  Provenance(), "d.h5") as w:  # fmt: skip
            w.record(0, {"max_eig": 3.0, "min_eig": 0.5})
    (d / "figures").mkdir()
    (d / "figures" / "weight_decay-3-surface_2d.png").write_bytes(b"old")
    text = R.write_report(d, n_boot=0).read_text()
    assert "batch_size-1-surface_2d.png" in text and "hessian.png" not in text
    assert sorted(p.name for p in (d / "figures").iterdir()) == [
        "batch_size-1-surface_1d.png", "batch_size-1-surface_2d-convexity.png",
        "batch_size-1-surface_2d.png"]  # fmt: skip
