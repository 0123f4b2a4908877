"""``tui-landscape study STUDY.toml``: train, map, measure and table many members at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

from tui_landscape.cli.common import (
    _Progress,
    _stopped,
    check_terminated,
    console,
    signals_as_interrupts,
    user_errors,
)
from tui_landscape.report import fmt_eta

if TYPE_CHECKING:
    from engine.study.runner import Event, RunResult

StudyArg = Annotated[
    Path, typer.Argument(metavar="STUDY", help="Study file (TOML).", show_default=False)
]


def study(
    ctx: typer.Context,
    study_file: StudyArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Study folder (default: the study file's name)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the stages and estimate the time; run none.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a folder of another study.")
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            metavar="KEY=VALUE",
            help="Override a study key (seeds=[0], grid.x2d=-1:1:5) or every member's config "
            "key (base.set.train.epochs=2); repeatable.",
        ),
    ] = None,
) -> None:
    """Every stage of every member and seed: train (when the checkpoint is missing), 1D and 2D
    surfaces on filter-normalized and unnormalized directions, the Hessian, the measures, the
    PCA path; then the interpolation of each pair. The same command again skips finished
    stages and resumes the rest. Writes table.json and table.csv (docs/studies.md), then
    report.md (its figures where matplotlib, the export extra, is installed). Exit codes as
    `compute`: 130 interrupted, 143 SIGTERM.
    """
    from engine.study import load_study, run_study  # torch: only where a command computes

    with user_errors(ctx):
        s = load_study(study_file, set_ or [])
        folder = out or Path(study_file.stem)
        if dry_run:
            _dry_run(s, folder)
            return
        console.print(
            f"Study {s.spec.name!r}: {len(s.spec.members)} members x {len(s.spec.seeds)} seeds, "
            f"{len(s.spec.pairs)} pairs → {folder}",
            highlight=False,
            markup=False,
        )
        bar = _Bar()
        try:
            with signals_as_interrupts(), bar.progress:
                result = run_study(s, folder, overwrite=overwrite, on_event=bar.event)
        except KeyboardInterrupt as e:
            how, code = _stopped(e)  # Ctrl-C 130, SIGTERM 143
            console.print(
                f"{how}; finished stages and points are saved in {folder}. Run the same "
                "command to resume.",
                highlight=False,
                markup=False,
            )
            raise typer.Exit(code) from None
        # Paths as the user gave them (run_study resolves its folder): `--out studies/w`
        # prints studies/w/report.md, as the README and docs/cli.md show.
        _summary(result, folder)
        _report(result.out, folder)


class _Bar:
    """One progress display for the whole study: stages done of all, and the current stage's
    points; a line per finished stage where stdout is not a terminal."""

    def __init__(self) -> None:
        self.progress = _Progress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[what]}", markup=False, table_column=Column(no_wrap=True)),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        self.stages = self.progress.add_task("stages", total=None, what="")
        self.points = self.progress.add_task("points", total=None, what="", visible=False)

    def event(self, e: Event) -> None:
        check_terminated()  # a Ctrl-C or SIGTERM whose exception a finalizer swallowed
        p = self.progress
        p.update(self.stages, total=e.total, completed=e.index, what=e.task.label)
        if e.kind == "start" and e.points:
            p.update(self.points, total=e.points, completed=e.done, visible=True)
        elif e.kind == "point":
            p.update(self.points, total=e.points, completed=e.done)
        elif e.kind in ("end", "skip", "fail"):
            p.update(self.stages, completed=e.index + 1)
            p.update(self.points, visible=False)
            if e.kind == "fail":
                console.print(f"{e.task.label} failed: {e.note}", highlight=False, markup=False)
            elif e.kind == "end" and not console.is_terminal:
                console.print(
                    f"[{e.index + 1}/{e.total}] {e.task.label} {e.seconds:.1f} s",
                    highlight=False,
                    markup=False,
                )


def _summary(r: RunResult, folder: Path) -> None:
    rows = r.table["rows"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    status = ", ".join(f"{n} {k}" for k, n in counts.items())
    console.print(
        f"Table: {folder / 'table.csv'} ({len(rows)} rows: {status})",
        highlight=False,
        markup=False,
    )
    for row in rows:
        if row["status"] not in ("ok", "pending"):
            console.print(
                f"  {row['member']}-s{row['seed']}: {row['status']} {row['note']}".rstrip(),
                highlight=False,
                markup=False,
            )
    over = r.wall_seconds - r.jobs_seconds
    pct = f" ({100 * over / r.jobs_seconds:.1f} %)" if r.jobs_seconds > 0 else ""
    cpu = r.cpu_seconds - r.task_cpu_seconds
    cpct = f" ({100 * cpu / r.task_cpu_seconds:.1f} %)" if r.task_cpu_seconds > 0 else ""
    console.print(
        f"Wall time {fmt_eta(r.wall_seconds)}; the stages themselves {fmt_eta(r.jobs_seconds)}; "
        f"the study's own work {over:.1f} s{pct} of wall time, {cpu:.1f} s{cpct} of CPU time "
        "(timing.json)",
        highlight=False,
    )


def _report(out: Path, folder: Path) -> None:
    """The study's ``report.md`` with its figures (``study_report``) in ``out`` (resolved),
    and where it went, said under ``folder`` (as given)."""
    from tui_landscape.study_report import write_report

    path = write_report(out)
    console.print(f"Report: {folder / path.relative_to(out)}", highlight=False, markup=False)


def _dry_run(s, folder: Path) -> None:
    from engine.study.estimate import estimate
    from engine.study.runner import study_record

    meta, why = study_record(folder)
    note = ""
    if why:
        note = f"{folder / 'study.json'} is not a study record ({why})"
    elif meta and meta.get("study_file_digest") != s.digest:
        name = meta.get("name")
        note = f"{folder} holds study {name!r} from another study file (or other --set values)"
    if note:
        console.print(
            f"Note: {note}: a run would be refused without --overwrite.",
            highlight=False,
            markup=False,
        )
    rows = estimate(s, folder)
    total = sum(r.seconds for r in rows)
    for r in rows:
        pts = f"{r.points} points" if r.points else ""
        t = "-" if r.state == "done" else f"~{fmt_eta(r.seconds)}"
        console.print(
            f"{r.task.label:<40} {r.state:<7} {pts:<11} {t}", highlight=False, markup=False
        )
    todo = sum(r.state != "done" for r in rows)
    console.print(
        f"{todo} of {len(rows)} stages to run in {folder}; estimated {fmt_eta(total)} in one "
        "process (rough: one point timed per architecture).",
        highlight=False,
        markup=False,
    )
