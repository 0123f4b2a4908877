"""Training a study member to a minimizer by one rule applied to every member alike.

A map means something only around a minimizer; a recipe that suits a depth-20 net leaves a
deep net without shortcuts at a fraction of its train accuracy (issue 25, item 7). Tuning
each member by hand would let the choice of recipe decide a comparison, so ``train_member``
applies ONE rule, ``RecipeRule``, the same for every member of a study:

1. Train one candidate per learning rate of ``rule.lr_grid`` (empty: the member's own
   ``train.lr``), each with everything else of the member's ``[train]`` unchanged: its
   epochs, schedule, optimizer, batch size, weight decay and seed.
2. A candidate whose running train loss, or final train loss, is not finite has diverged;
   it is recorded, not raised, and its training stops at that epoch.
3. Of the others, the one with the lowest final train loss wins (the loss over the whole
   train split in eval mode, the model the surfaces are computed around); a tie goes to the
   smaller learning rate.
4. The member's status is ``ok`` when the winner's train accuracy (a fraction in [0, 1]) is
   at least ``rule.converged_train_acc``, ``not_converged`` below it, and ``diverged`` when
   every candidate diverged. Only ``ok`` members are compared as minimizers.

The rule looks at train loss and train accuracy only, never at the test split or at any
sharpness measure, so it cannot be bent towards a claim.

Folder ``out``:

- ``lr-<lr>/``: one ordinary ``train_run`` folder per candidate (``model_{epoch}.pt``,
  ``metrics.csv``, ``config.toml``, ``last.pt``) and its ``candidate.json`` once it is done
- ``outcome.json``: the rule, every candidate's result and the chosen one (``TrainOutcome``),
  written atomically

A rerun with the same config, rule and folder reuses every finished candidate, resumes an
unfinished one from its last epoch, and trains only what is missing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from engine.config import Config, config_to_dict
from engine.devices import resolve_device
from engine.errors import ConfigError, LandscapeError
from engine.evaluate import evaluate
from engine.jsonfile import read_json_object
from engine.train import EpochResult, train_run

__all__ = [
    "OUTCOME_FILE",
    "STATUSES",
    "Candidate",
    "RecipeRule",
    "TrainOutcome",
    "read_outcome",
    "train_member",
]

OUTCOME_FILE = "outcome.json"
CANDIDATE_FILE = "candidate.json"
OUTCOME_FORMAT = "tui-landscape-train-outcome"
OUTCOME_VERSION = 1
STATUSES = ("ok", "not_converged", "diverged")

# progress(done, total, what): epochs finished over all candidates (reused ones count as
# done), of all epochs the rule may train, and one line about the latest epoch.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RecipeRule:
    """The ONE rule applied to every member of a study (see the module docstring)."""

    lr_grid: tuple[float, ...] = ()  # empty: the member's own lr; else best final train loss
    converged_train_acc: float = 0.95  # below this (classifiers) the member is "not_converged"

    def check(self) -> None:
        """Refuse a grid with a non-positive or repeated lr, or a threshold outside [0, 1]."""
        for lr in self.lr_grid:
            if not (math.isfinite(lr) and lr > 0):
                raise ConfigError(f"Expected every lr of `lr_grid` to be > 0, but got {lr}.")
        names = [_lr_name(lr) for lr in self.lr_grid]
        if len(set(names)) != len(names):
            raise ConfigError(f"Expected `lr_grid` without repeats, but got {list(self.lr_grid)}.")
        if not 0.0 <= self.converged_train_acc <= 1.0:
            raise ConfigError(
                "Expected `converged_train_acc` to be a fraction in [0, 1], but got "
                f"{self.converged_train_acc}."
            )

    def lrs(self, cfg: Config) -> tuple[float, ...]:
        """The learning rates this rule tries for ``cfg``."""
        return tuple(self.lr_grid) or (cfg.train.lr,)


@dataclass(frozen=True)
class Candidate:
    """One learning rate's run: its final metrics (accuracies as fractions) or divergence."""

    lr: float
    epochs: int  # epochs trained (fewer than asked when it diverged)
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    diverged: bool
    checkpoint: str  # relative to the member folder
    note: str = ""


@dataclass(frozen=True)
class TrainOutcome:
    """The member's chosen run and its status (``ok`` | ``not_converged`` | ``diverged``)."""

    checkpoint: Path
    lr: float
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    status: str
    note: str = ""
    candidates: tuple[Candidate, ...] = field(default=(), compare=False)


def _lr_name(lr: float) -> str:
    return f"lr-{lr:g}"


def _write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    # NaN (a diverged run's loss) is written as NaN, which Python's json reads back.
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")
    os.replace(tmp, path)


def _identity(cfg: Config) -> dict[str, Any]:
    """What decides a candidate's training (model, data, train but the lr and the folder)."""
    d = config_to_dict(cfg)
    d["model"].pop("checkpoint")
    d["train"].pop("out")
    d["train"].pop("lr")
    return {k: d[k] for k in ("model", "data", "train")}


class _Diverged(Exception):
    def __init__(self, epoch: int) -> None:
        super().__init__(epoch)
        self.epoch = epoch


def _latest_checkpoint(run: Path) -> Path:
    saved = sorted(run.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return saved[-1] if saved else run / "model_0.pt"


def _train_candidate(
    cfg: Config,
    lr: float,
    out: Path,
    device: torch.device,
    report: Callable[[EpochResult, float], None],
) -> Candidate:
    run = out / _lr_name(lr)
    ccfg = replace(cfg, train=replace(cfg.train, lr=lr, out=str(run)))
    resume = (run / "last.pt").is_file()
    # A folder without last.pt was stopped before its first epoch ended: start it again.
    overwrite = run.exists() and not resume

    def on_epoch(r: EpochResult) -> None:
        report(r, lr)
        if not math.isfinite(r.train_loss):
            raise _Diverged(r.epoch)

    try:
        training = train_run(
            ccfg, run, device, resume=resume, overwrite=overwrite, on_epoch=on_epoch
        )
    except _Diverged as d:
        nan = float("nan")
        ck = _latest_checkpoint(run).relative_to(out)
        note = f"train loss not finite at epoch {d.epoch} (lr {lr:g})"
        return Candidate(lr, d.epoch, nan, nan, nan, nan, True, str(ck), note)
    loss = cfg.data.loss
    train = evaluate(training.model, training.train, 1024, loss)
    test = (
        evaluate(training.model, training.test, 1024, loss) if training.test is not None else None
    )
    nan = float("nan")
    diverged = not math.isfinite(train.loss)
    ck = run / f"model_{cfg.train.epochs}.pt"
    return Candidate(
        lr,
        training.done,
        train.loss,
        train.acc / 100.0,
        test.loss if test else nan,
        test.acc / 100.0 if test else nan,
        diverged,
        str(ck.relative_to(out)),
        f"final train loss not finite (lr {lr:g})" if diverged else "",
    )


def _candidate(
    cfg: Config, lr: float, out: Path, device: torch.device, report: Callable
) -> tuple[Candidate, bool]:
    """The finished candidate for ``lr``, reused when its ``candidate.json`` matches ``cfg``;
    the flag says whether it was reused."""
    path = out / _lr_name(lr) / CANDIDATE_FILE
    stored = read_json_object(path)
    if stored is not None:
        if stored.get("identity") != _identity(cfg):
            raise LandscapeError(
                f"{path.parent} was trained with a different config (model, data or train "
                "keys); use another folder for this member, or remove it"
            )
        try:
            return Candidate(**stored["candidate"]), True
        except (KeyError, TypeError):
            pass  # not a candidate record (written by hand): trained again below
    cand = _train_candidate(cfg, lr, out, device, report)
    _write_json(path, {"identity": _identity(cfg), "candidate": asdict(cand)})
    return cand, False


def _choose(cands: list[Candidate], rule: RecipeRule, out: Path) -> TrainOutcome:
    """Apply the rule to the finished candidates (see the module docstring)."""
    finite = [c for c in cands if not c.diverged]
    if not finite:
        c = cands[0]
        note = "; ".join(x.note for x in cands)
        status = "diverged"
    else:
        c = min(finite, key=lambda x: (x.train_loss, x.lr))
        status = "ok" if c.train_acc >= rule.converged_train_acc else "not_converged"
        note = (
            ""
            if status == "ok"
            else f"train accuracy {c.train_acc:.3f} < {rule.converged_train_acc:g}"
        )
    return TrainOutcome(
        out / c.checkpoint,
        c.lr,
        c.epochs,
        c.train_loss,
        c.train_acc,
        c.test_loss,
        c.test_acc,
        status,
        note,
        tuple(cands),
    )


def _outcome_json(o: TrainOutcome, out: Path, cfg: Config, rule: RecipeRule) -> dict[str, Any]:
    d = asdict(o)
    d["checkpoint"] = str(o.checkpoint.relative_to(out))
    d["candidates"] = [asdict(c) for c in o.candidates]
    return {
        "format": OUTCOME_FORMAT,
        "version": OUTCOME_VERSION,
        "rule": {"lr_grid": list(rule.lrs(cfg)), "converged_train_acc": rule.converged_train_acc},
        "identity": _identity(cfg),
        "outcome": d,
    }


def read_outcome(out: str | Path) -> TrainOutcome | None:
    """The ``TrainOutcome`` stored in ``out/outcome.json``, or None when there is none yet
    (or it is not one, as a file written by hand: the member is trained again, its finished
    candidates reused). One written by a newer version is refused in one line."""
    out = Path(out)
    stored = read_json_object(out / OUTCOME_FILE)
    if stored is None or stored.get("format") != OUTCOME_FORMAT:
        return None
    version = stored.get("version")
    if isinstance(version, int) and version > OUTCOME_VERSION:
        raise LandscapeError(
            f"{out / OUTCOME_FILE} was written by a newer tui-landscape (version {version}); "
            f"this one reads up to {OUTCOME_VERSION}"
        )
    try:
        return _outcome(stored["outcome"], out)
    except (KeyError, TypeError, ValueError):
        return None  # not an outcome (written by hand): as if there were none, trained again


def _outcome(d: Any, out: Path) -> TrainOutcome:
    """A stored outcome, its types checked; ValueError, TypeError or KeyError where not one."""
    d = dict(d)
    ckpt = d["checkpoint"]
    if not isinstance(ckpt, str) or Path(ckpt).is_absolute() or ".." in Path(ckpt).parts:
        raise ValueError("the checkpoint must be a path inside the run folder")
    for k in ("lr", "train_loss", "train_acc", "test_loss", "test_acc"):
        if isinstance(d[k], bool) or not isinstance(d[k], int | float):
            raise TypeError(f"{k} is not a number")
    if not isinstance(d["epochs"], int) or d["status"] not in ("ok", "not_converged", "diverged"):
        raise ValueError("epochs or status")
    d["checkpoint"] = out / ckpt
    d["candidates"] = tuple(Candidate(**c) for c in d.get("candidates", ()))
    return TrainOutcome(**d)


def train_member(
    cfg: Config,
    rule: RecipeRule,
    out: str | Path,
    *,
    progress: Progress | None = None,
    device: torch.device | str | None = None,
) -> TrainOutcome:
    """Train ``cfg``'s model to a minimizer by ``rule`` into ``out`` (see the module
    docstring) and return the outcome; divergence is recorded in it, never raised.

    ``device`` defaults to ``compute.device``; ``progress(done, total, what)`` is called after
    every epoch and once per reused candidate.
    """
    rule.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lrs = rule.lrs(cfg)
    stored = read_json_object(out / OUTCOME_FILE)
    if (
        stored is not None
        and stored.get("identity") == _identity(cfg)
        and isinstance(stored.get("rule"), dict)
        and stored["rule"].get("lr_grid") == list(lrs)
        and stored["rule"].get("converged_train_acc") == rule.converged_train_acc
    ):
        found = read_outcome(out)
        if found is not None:
            return found
    dev = resolve_device(cfg.compute.device) if device is None else torch.device(device)
    total = len(lrs) * cfg.train.epochs
    done = 0

    def report(r: EpochResult, lr: float) -> None:
        if progress is not None:
            progress(
                done + r.epoch,
                total,
                f"lr {lr:g}: epoch {r.epoch}/{cfg.train.epochs}, train loss {r.train_loss:.4g}",
            )

    cands = []
    for lr in lrs:
        cand, reused = _candidate(cfg, lr, out, dev, report)
        cands.append(cand)
        done += cfg.train.epochs
        if reused and progress is not None:
            progress(done, total, f"lr {lr:g}: reused ({_lr_name(lr)}/{CANDIDATE_FILE})")
    outcome = _choose(cands, rule, out)
    _write_json(out / OUTCOME_FILE, _outcome_json(outcome, out, cfg, rule))
    return outcome
