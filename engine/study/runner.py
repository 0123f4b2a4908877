"""Running a study: every stage of every member and seed, then the pairs, into one folder.

``plan`` resolves and validates every stage's config before anything runs; ``run_study``
claims the folder (``study.json``: a folder of another study, or of another study file, is
refused unless ``overwrite``), then runs each task, skipping finished ones: a surface file
that is complete, a training ``outcome.json``, a ``measures.json``. An unfinished surface
resumes as ``compute`` resumes it; an unfinished training run from its last epoch. Each
surface stage is ``engine.run.prepare`` + ``Job.run`` (the path of ``compute``), handed the
member's model and data loaded once. The table is rewritten from the files after every
member, so a crash loses nothing and a rerun writes the same table as an unbroken run.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import Config, config_to_dict
from engine.errors import ConfigError, LandscapeError, describe
from engine.jsonfile import read_json_object
from engine.study.collect import (
    member_measures,
    outcome_values,
    read_measures,
)
from engine.study.spec import Study, resolved_config, spec_to_dict, validate_member
from engine.study.stages import STAGES, Stage, StageContext, stage_names
from engine.study.table import write_atomic, write_table
from engine.study.training import member_outcome, train_member_outcome

log = logging.getLogger(__name__)

__all__ = [
    "STUDY_FORMAT",
    "Event",
    "Task",
    "claim_folder",
    "plan",
    "run_study",
    "study_record",
    "task_state",
]

STUDY_FORMAT = "tui-landscape-study"
STUDY_VERSION = 1
# What a study writes in its folder: all that --overwrite removes (nothing else is touched).
OURS = (
    "study.json",
    "study.toml",
    "members",
    "pairs",
    "table.json",
    "table.csv",
    "timing.json",
    "correlation.json",
    "correlation.csv",
    "report.md",
    "figures",
)


@dataclass
class Task:
    """One stage of one member (or pair) and seed: its folder and its validated config."""

    stage: Stage
    member: str  # the member's label, or 'a__b' for a pair
    seed: int
    folder: Path
    cfg: Config
    data: dict[str, Any] = field(repr=False)  # the member's config data (re-resolved later)
    pair: tuple[str, str] | None = None

    @property
    def path(self) -> Path:
        return self.folder / self.stage.file

    @property
    def label(self) -> str:
        return f"{self.member}-s{self.seed} {self.stage.name}"


@dataclass(frozen=True)
class Event:
    """What a progress display hears: kind is 'start', 'point', 'end', 'skip' or 'fail'."""

    kind: str
    task: Task
    index: int  # the task's place among all tasks (0-based)
    total: int
    done: int = 0  # points done (surface stages)
    points: int = 0
    seconds: float = 0.0
    note: str = ""


def member_folder(out: Path, label: str, seed: int) -> Path:
    return out / "members" / f"{label}-s{seed}"


def pair_folder(out: Path, a: str, b: str, seed: int) -> Path:
    return out / "pairs" / f"{a}__{b}-s{seed}"


def _checkpoint(run_dir: Path, data: dict[str, Any]) -> Path:
    """The planned minimizer: the run's last epoch (the outcome may name another)."""
    epochs = data.get("train", {}).get("epochs", Config().train.epochs)
    return run_dir / f"model_{epochs}.pt"


def _stage_data(
    study: Study, stage: Stage, data: dict[str, Any], ctx: StageContext
) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "train.seed": ctx.seed,
        "train.out": str(ctx.run_dir),
        "output.path": "",
        "model.checkpoint": "" if stage.name == "train" else str(ctx.checkpoint),
    }
    if stage.name != "train" and study.spec.eval_subset:
        keys["data.subset"] = study.spec.eval_subset
    if stage.keys is not None:
        keys.update(stage.keys(study.spec, ctx))
    return resolved_config(data, keys)


def _context(out: Path, label: str, seed: int, data: dict[str, Any]) -> StageContext:
    run_dir = member_folder(out, label, seed) / "train"
    outcome = member_outcome(run_dir) or {}
    ckpt = Path(outcome["checkpoint"]) if outcome.get("checkpoint") else _checkpoint(run_dir, data)
    return StageContext(seed, ckpt.parent, ckpt)


def plan(study: Study, out: Path) -> list[Task]:
    """Every task in order (per seed: each member's stages, then the pairs), each config
    resolved and validated: a bad one is refused naming the member (and the stage) and key."""
    out = out.resolve()
    names = stage_names(study.spec)
    member_stages = [STAGES.get(n) for n in names if STAGES.get(n).scope == "member"]
    pair_stages = [STAGES.get(n) for n in names if STAGES.get(n).scope == "pair"]
    tasks = []
    for m in study.spec.members:
        _check_arch(m.label, study.members[m.label])
    for seed in study.spec.seeds:
        for m in study.spec.members:
            data = study.members[m.label]
            ctx = _context(out, m.label, seed, data)
            for st in member_stages:
                d = _stage_data(study, st, data, ctx)
                cfg = validate_member(m.label, d, st.name)
                tasks.append(Task(st, m.label, seed, member_folder(out, m.label, seed), cfg, data))
        for p in study.spec.pairs:
            data = study.members[p.a]
            a = _context(out, p.a, seed, data)
            b = _context(out, p.b, seed, study.members[p.b])
            ctx = StageContext(seed, a.run_dir, a.checkpoint, b.checkpoint)
            for st in pair_stages:
                d = _stage_data(study, st, data, ctx)
                cfg = validate_member(p.a, d, st.name)
                folder = pair_folder(out, p.a, p.b, seed)
                tasks.append(Task(st, f"{p.a}__{p.b}", seed, folder, cfg, data, (p.a, p.b)))
    return tasks


def _check_arch(label: str, data: dict[str, Any]) -> None:
    """A built-in architecture's name, checked before anything runs (``config_from_dict``
    cannot: a 'module:fn' or 'hf:PATH' is only known by building it, which a stage does)."""
    from engine.imports import is_callable_spec

    arch = data.get("model", {}).get("arch", Config().model.arch)
    if is_callable_spec(arch):
        return
    import engine.models  # noqa: F401  (registers the zoo)
    from engine.models.registry import check_model_name

    try:
        check_model_name(arch)
    except ConfigError as e:
        raise ConfigError(f"member {label!r}: {e}") from None


# --- the folder ------------------------------------------------------------------------------


def study_record(out: Path) -> tuple[dict[str, Any] | None, str]:
    """``out/study.json``: (the record, "") where it is a study's, (None, why not) where the
    file is there but is not one, (None, "") where there is none."""
    p = out / "study.json"
    if not p.exists():
        return None, ""
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"not JSON ({describe(e)})"
    if not isinstance(meta, dict) or meta.get("format") != STUDY_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        return None, f"format {got!r}, expected {STUDY_FORMAT!r}"
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > STUDY_VERSION:
        return None, f"version {version!r}; this tool reads up to {STUDY_VERSION}"
    return meta, ""


def claim_folder(study: Study, out: Path, overwrite: bool) -> bool:
    """Make ``out`` this study's folder; True when it resumes one. A folder of another study
    (or another study file, or with other overrides), or a non-empty folder that holds no
    study, is refused unless ``overwrite``, which removes what a study writes there."""
    from engine.formats.files import lock_path

    meta, why = study_record(out)
    held = lock_path(out / "study.json").name  # run_study's own lock
    busy = out.is_dir() and any(p.name != held for p in out.iterdir())
    ours = meta is not None
    if ours and meta.get("study_file_digest") == study.digest:
        return True
    if busy and not overwrite:
        if why:
            raise LandscapeError(
                f"{out / 'study.json'} is not a study record: {why}; pass --overwrite to "
                "replace what a study writes there, or choose another --out"
            )
        if ours:
            raise LandscapeError(
                f"{out} holds study {meta.get('name')!r} from another study file (or other "
                "--set values); pass --overwrite to replace it, or choose another --out"
            )
        raise LandscapeError(
            f"{out} is not empty and holds no study; pass --overwrite to use it anyway (only "
            "what a study writes is removed), or choose another --out"
        )
    for name in OURS if busy else ():
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": STUDY_FORMAT,
        "version": STUDY_VERSION,
        "name": study.spec.name,
        "study_file_digest": study.digest,
        "overrides": list(study.overrides),
        "spec": spec_to_dict(study.spec),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomic(out / "study.toml", study.text)
    write_atomic(out / "study.json", json.dumps(meta, indent=1) + "\n")
    return False


# --- what is done --------------------------------------------------------------------------


def surface_state(path: Path) -> tuple[int, int] | None:
    """(points done, total) of a surface file, None where there is none."""
    from engine.formats import surface_info

    if not path.is_file():
        return None
    try:
        info = surface_info(path)
    except LandscapeError:
        return None
    return info.done, info.total


def task_state(task: Task) -> str:
    """'done', 'resume' (a partial file) or 'todo'."""
    if task.stage.name == "train":
        if member_outcome(task.path) is not None:
            return "done"
        _not_ours(task.path / "outcome.json", "training outcome", "trained again")
        return "resume" if any(task.path.glob("*/last.pt")) else "todo"
    if task.stage.name == "measures":
        if read_measures(task.folder) is not None:
            return "done"
        _not_ours(task.path, "measures file", "computed again")
        return "todo"
    if not task.stage.is_surface:
        return "done" if task.path.is_file() else "todo"
    st = surface_state(task.path)
    from engine.formats import journal_path

    if st is None:
        return "todo"
    return "done" if st[0] == st[1] and not journal_path(task.path).exists() else "resume"


def _not_ours(path: Path, what: str, then: str) -> None:
    """Say so where a stage's file is there but is not what the stage writes (a hand-made or
    damaged file): the stage runs again and replaces it."""
    if path.exists():
        log.warning("%s is not a readable %s: %s", path, what, then)


# --- running ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    out: Path
    table: dict[str, Any]
    wall_seconds: float
    task_seconds: dict[str, float]  # this run's tasks (skipped ones take no time)
    cpu_seconds: float = 0.0  # this process's CPU time over the run, and over its tasks:
    task_cpu_seconds: float = 0.0  # on a shared machine a fairer ratio than wall times

    @property
    def jobs_seconds(self) -> float:
        return sum(self.task_seconds.values())


class _Shared:
    """A member's model and the data, loaded once and handed to each stage (a copy of the
    model each time: a stage moves and reshapes it)."""

    def __init__(self) -> None:
        self.splits: dict[str, Any] = {}
        self.models: dict[str, Any] = {}

    def get(self, cfg: Config) -> tuple[Any, Any]:
        from engine.build import load_model
        from engine.data import load_splits

        d = config_to_dict(cfg)
        dk = json.dumps(d["data"], sort_keys=True)
        if dk not in self.splits:
            self.splits = {dk: load_splits(cfg.data)}  # one data config held at a time
        mk = json.dumps(d["model"], sort_keys=True)
        if mk not in self.models:
            self.models = {mk: load_model(cfg)}  # one member's model at a time
        return copy.deepcopy(self.models[mk]), self.splits[dk]


def _train(task: Task, study: Study, emit: Callable[..., None]) -> None:
    """The train stage: ``engine.minimizer.train_member`` (one rule for every member)."""
    emit("start")
    train_member_outcome(
        task.cfg, study.spec.recipe, task.path, lambda d, n, _: emit("point", done=d, points=n)
    )


def _surface(task: Task, shared: _Shared, emit: Callable[..., None]) -> None:
    from engine.devices import worker_devices
    from engine.run import prepare

    if len(worker_devices(task.cfg)) > 1:  # a pool: the workers load their own
        job = prepare(task.cfg, task.path)
    else:
        model, splits = shared.get(task.cfg)
        job = prepare(task.cfg, task.path, model=model, splits=splits)
    emit("start", done=job.done, points=job.total)
    summary = job.run(lambda r: emit("point", done=r.done, points=r.total))
    if summary.failed:
        _, error = min(summary.failed.items())
        raise LandscapeError(f"{len(summary.failed)} points failed (first: {error})")


def _measures(task: Task, study: Study, shared: _Shared) -> None:
    from engine.devices import resolve_device

    model, splits = shared.get(task.cfg)
    device = resolve_device(task.cfg.compute.device)
    member_measures(
        task.folder, model, splits, task.cfg.data.loss, study.spec.measures, task.seed, device
    )


def _refresh(task: Task, study: Study, out: Path) -> Task:
    """The task's config with the trained minimizer (the outcome may name another checkpoint
    than the planned one: the learning-rate grid's best run)."""
    if task.stage.name == "train":
        return task
    if task.pair is None:
        ctx = _context(out, task.member, task.seed, task.data)
    else:
        a = _context(out, task.pair[0], task.seed, task.data)
        b = _context(out, task.pair[1], task.seed, study.members[task.pair[1]])
        ctx = StageContext(task.seed, a.run_dir, a.checkpoint, b.checkpoint)
    cfg = validate_member(
        task.member, _stage_data(study, task.stage, task.data, ctx), task.stage.name
    )
    return Task(task.stage, task.member, task.seed, task.folder, cfg, task.data, task.pair)


def _blocked(task: Task, out: Path) -> str:
    """Why a task cannot run (its member, or a pair's member, has no usable minimizer)."""
    labels = task.pair or (task.member,)
    for label in labels:
        folder = member_folder(out, label, task.seed)
        failed = read_json_object(folder / "failed.json")
        if failed and task.stage.name != "train":
            return f"{label}: {failed.get('stage')} failed"
        outcome = member_outcome(folder / "train")
        if task.stage.name != "train" and outcome is None:
            return f"{label} is not trained"
        if outcome and outcome.get("status") == "diverged":
            return f"{label} diverged in training"
    return ""


def row(study: Study, out: Path, label: str, seed: int, names: list[str]) -> dict[str, Any]:
    """A member's table row, from its files alone."""
    folder = member_folder(out, label, seed)
    outcome = member_outcome(folder / "train")
    measures = read_measures(folder)
    failed = read_json_object(folder / "failed.json")
    values = outcome_values(outcome) if outcome else {}
    if measures:
        values.update({k: v for k, v in measures.get("values", {}).items() if v is not None})
    files = {}
    for n in names:
        st = STAGES.get(n)
        if st.is_surface and (folder / st.file).is_file():
            files[n] = str((folder / st.file).relative_to(out))
    if outcome and (ck := outcome.get("checkpoint")):
        files["checkpoint"] = str(_relative(Path(ck), out))
    status, note = "pending", ""
    why = f"{failed.get('stage')}: {failed.get('error')}" if failed else ""
    if outcome is not None and outcome.get("status") in ("diverged", "not_converged"):
        # What training says comes first: a stage that then failed on a net that never
        # trained (a PCA of a path stuck on one line) is a consequence, not the reason.
        status, note = outcome["status"], "; ".join(t for t in (outcome.get("note", ""), why) if t)
    elif failed:
        status, note = "failed", why
    elif outcome is not None and all(
        n in files or n == "train" or (n == "measures" and measures) for n in names
    ):
        status = "ok"
    return {
        "member": label,
        "seed": seed,
        "factors": dict(study.member(label).factors),
        "status": status,
        "note": note,
        "values": values,
        "files": files,
    }


def _relative(p: Path, out: Path) -> Path:
    try:
        return p.resolve().relative_to(out)
    except ValueError:
        return p


def build_table(study: Study, out: Path) -> dict[str, Any]:
    names = [n for n in stage_names(study.spec) if STAGES.get(n).scope == "member"]
    rows = [
        row(study, out, m.label, seed, names)
        for seed in study.spec.seeds
        for m in study.spec.members
    ]
    pairs = []
    for seed in study.spec.seeds:
        for p in study.spec.pairs:
            f = pair_folder(out, p.a, p.b, seed) / "interpolation.h5"
            st = surface_state(f)
            done = st is not None and st[0] == st[1]
            pairs.append(
                {
                    "a": p.a,
                    "b": p.b,
                    "seed": seed,
                    "status": "ok" if done else "pending",
                    "file": str(f.relative_to(out)) if f.is_file() else "",
                }
            )
    s = study.spec
    return write_table(out, s.name, s.factors, s.target, rows, pairs=pairs)


def run_study(
    study: Study,
    out: str | Path,
    *,
    overwrite: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> RunResult:
    """Run (or resume) ``study`` into ``out``; returns the table and this run's timing."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise LandscapeError(f"{out} is a file, not a study folder; choose another --out")
    tasks = plan(study, out)  # every config checked before the folder is touched
    from engine.formats import acquire_lock

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LandscapeError(f"cannot make the study folder {out}: {describe(e)}") from None
    lock = acquire_lock(out / "study.json")  # one study process per folder
    try:
        return _run_locked(study, out, tasks, overwrite, on_event, t0, c0)
    finally:
        lock.close(remove=True)


def _run_locked(
    study: Study,
    out: Path,
    tasks: list[Task],
    overwrite: bool,
    on_event: Callable[[Event], None] | None,
    t0: float,
    c0: float,
) -> RunResult:
    claim_folder(study, out, overwrite)
    shared = _Shared()
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    build_table(study, out)
    for i, task in enumerate(tasks):

        def emit(kind: str, _i: int = i, _t: Task = task, **kw: Any) -> None:
            if on_event is not None:
                on_event(Event(kind, _t, _i, len(tasks), **kw))

        first_of_member = i == 0 or (tasks[i - 1].member, tasks[i - 1].seed) != (
            task.member,
            task.seed,
        )
        if first_of_member and task.pair is None:
            (task.folder / "failed.json").unlink(missing_ok=True)  # a rerun tries again
        state = task_state(task)
        reason = _blocked(task, out)
        if state == "done" or reason:
            emit("skip", note=reason or "done")
        else:
            c = time.process_time()
            _run_task(task, study, out, shared, emit, seconds)
            cpu[task.label] = time.process_time() - c
        last_of_member = i + 1 == len(tasks) or (tasks[i + 1].member, tasks[i + 1].seed) != (
            task.member,
            task.seed,
        )
        if last_of_member:
            build_table(study, out)
    table = build_table(study, out)
    wall, cpu_all = time.perf_counter() - t0, time.process_time() - c0
    timing = {
        "wall_seconds": wall,
        "jobs_seconds": sum(seconds.values()),
        "cpu_seconds": cpu_all,
        "jobs_cpu_seconds": sum(cpu.values()),
        "tasks": seconds,
    }
    write_atomic(out / "timing.json", json.dumps(timing, indent=1) + "\n")
    return RunResult(out, table, wall, seconds, cpu_all, sum(cpu.values()))


def _run_task(
    task: Task,
    study: Study,
    out: Path,
    shared: _Shared,
    emit: Callable[..., None],
    seconds: dict[str, float],
) -> None:
    t = time.perf_counter()
    task.folder.mkdir(parents=True, exist_ok=True)
    fail = task.folder / "failed.json" if task.pair is None else None
    task = _refresh(task, study, out)  # validate_member's errors name the member and stage
    try:
        if task.stage.name == "train":
            _train(task, study, emit)
        elif task.stage.is_surface:
            _surface(task, shared, emit)
        else:
            emit("start")
            _measures(task, study, shared)
    except KeyboardInterrupt:
        raise  # Ctrl-C stops the study
    except ConfigError as e:  # the user's to fix, not a result: the study stops, naming where
        where = f"member {task.member!r}" if task.pair is None else f"pair {task.member!r}"
        raise ConfigError(f"{where} (stage {task.stage.name}, seed {task.seed}): {e}") from None
    except Exception as e:
        error = str(e) if isinstance(e, LandscapeError) else describe(e)
        log.warning("%s failed: %s", task.label, error)
        if fail is not None:
            write_atomic(fail, json.dumps({"stage": task.stage.name, "error": error}) + "\n")
        emit("fail", note=error, seconds=time.perf_counter() - t)
        return
    seconds[task.label] = time.perf_counter() - t
    emit("end", seconds=seconds[task.label])
