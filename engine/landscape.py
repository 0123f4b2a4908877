"""The evaluator: a model on its device, its data there once, and the directions that move it.

``Landscape.evaluate(a, b)`` gives every surface's value at one grid point;
``landscape_from_files`` rebuilds the same evaluator in a pool worker or torchrun rank from a
run's resolved config and direction file. The run (``engine.run``) decides which points.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
from torch import nn

from engine.autobatch import BatchChoice, choose_batch, free_memory
from engine.bn import batchnorms, negative_variance, recalibrate, variance_names
from engine.build import load_model
from engine.config import Config, HessianConfig, config_from_dict
from engine.data import load_splits
from engine.devices import PRECISION, keep_freed_cpu_memory
from engine.directions import DirectionSet, Perturbation
from engine.errors import LandscapeError, describe
from engine.evaluate import (
    CHECK_KEYS,
    autocast,
    cannot_evaluate,
    evaluate,
    loss_sums,
    per_sample,
    sample_stats,
    segment_stats,
)
from engine.formats import HESSIAN_NAMES, load_directions
from engine.hessian import MeanLossHVP, NonFiniteProduct, extreme_eigenvalues, hessian_params
from engine.losses import (
    Loss,
    StateGuard,
    check_labels,
    check_output,
    refuse_counts,
    resolve_loss,
)
from engine.points_per_batch import choose_points_per_batch
from engine.spectrum import Spectrum, center_spectrum
from engine.splits import Batches, Split, batch_size_of, first_batch, split_batches

log = logging.getLogger(__name__)

__all__ = ["Landscape", "landscape_from_files"]


def landscape_from_files(
    config_toml: str, dir_file: str, dir_type: str, device: str, points: int | None = None
) -> Landscape:
    """Rebuild a run's evaluation from its resolved config and direction file (in a worker
    that evaluates about ``points`` points)."""
    cfg = config_from_dict(tomllib.loads(config_toml))
    model = load_model(cfg)
    ds = load_directions(dir_file, dir_type)
    if cfg.parsed_grid.ndim == 1:
        ds.y = None
    elif ds.y is None:
        ds.y = ds.x  # directions.same with a file that holds one direction
    land = Landscape(model, load_splits(cfg.data), ds, cfg, torch.device(device))
    land.check(points)
    return land


class Landscape:
    """A model on its device, its data there once, and the directions that move it.

    ``evaluate(a, b)`` moves the model's tensors in place and runs one pass over each split;
    ``evaluate_many`` evaluates K points together: on a GPU in one pass with
    ``torch.func.functional_call`` under ``vmap`` (K stacked copies of the moved tensors),
    which fills it better for small models; on CPU one forward pass after another, their
    losses and metrics computed at once (``_in_turn``).
    With ``compute.bn = 'recalibrate'`` each point first re-estimates the BN statistics from
    the train split (``engine.bn.recalibrate``), one point at a time.
    """

    def __init__(
        self,
        model: nn.Module,
        splits: dict[str, Split | Batches],
        ds: DirectionSet,
        cfg: Config,
        device: torch.device,
        loss: Loss | None = None,
    ) -> None:
        c = cfg.compute
        if device.type == "cpu":
            keep_freed_cpu_memory()  # large activations reused, not faulted in each pass
        self.model = model.to(device).eval()
        self.ds = ds
        self.splits = {k: s.to(device) for k, s in splits.items()}
        # compute.bn = 'recalibrate' re-estimates BN statistics on the train split, loaded
        # here when the surface does not evaluate it.
        self._train: Split | Batches | None = None
        if c.bn == "recalibrate" and "train" not in self.splits:
            self._train = load_splits(cfg.data, ["train"])["train"].to(device)
        self.loss = resolve_loss(cfg.data.loss) if loss is None else loss
        # The classifier losses on (input, label) tensors run fused (per_sample); any other
        # loss or batch calls the loss function on each batch (loss_sums).
        self.fused = self.loss.builtin is not None and all(
            isinstance(s, Split) for s in self.splits.values()
        )
        self.metrics: list[str] = ["acc"] if self.fused else []  # set by check() otherwise
        four_d = self.fused and all(s.x.dim() == 4 for s in self.splits.values())
        has_conv = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        # Channels-last made the digits CNN 2x and ResNet-20 1.5x faster on CPU (max pooling
        # and mkldnn convolutions in NCHW are slow there); 'auto' turns it on for conv nets
        # and check() turns it off again for a model that cannot run in it.
        self._layout_auto = c.channels_last == "auto"
        # Not for a Hessian: double backward through channels-last convolutions corrupted the
        # heap (glibc abort, no exception) on torch 2.14.1's CPU for a digits ResNet-20 of
        # width 4, and the products are the cost there, not the forward passes.
        auto = self._layout_auto and has_conv and not (cfg.hessian and cfg.hessian.enabled)
        self._place(four_d and (c.channels_last is True or auto))
        self.batch_size = cfg.data.fixed_batch
        self.batch_choice = BatchChoice(self.batch_size, "given")
        self.l2 = cfg.data.l2
        self.precision = PRECISION[c.precision]
        self.device, self.device_type = device, device.type
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        self.compile = c.compile
        self.points_per_batch = 1 if c.points_per_batch == "auto" else int(c.points_per_batch)
        # K points a pass: on CUDA stacked under vmap; elsewhere (on CPU vmap over convolutions
        # was slower than a loop) one forward pass after another, their statistics together.
        self._auto = c.points_per_batch == "auto"
        self._vmap = device.type == "cuda"  # where vmap was measured to win
        self._classes = 1  # outputs per sample (set by check): K points hold K*N*classes logits
        if not self.fused:
            self.points_per_batch, self._auto = 1, False  # a loss function runs the model itself
        self.hessian = cfg.hessian if cfg.hessian.enabled else None
        self.bn_recalibrate = c.bn == "recalibrate"
        # The checkpoint's BN statistics, put back by reset() after points recalibrated them.
        self._bn_saved = [
            (m, [t.detach().clone() for t in _bn_buffers(m)]) for m in batchnorms(self.model)
        ]
        self._calibrated_at: tuple[float, float] | None = None  # the point the BN stats are of
        if self.bn_recalibrate:
            # Each point's statistics come from its own train-mode pass: no stacked points.
            self.points_per_batch, self._auto = 1, False
        # A loss function that changes buffers or modes is undone after each of its passes.
        self._guard = None if self.fused else StateGuard(self.model, self.loss.name)
        self._previous = None  # the last point's eigenvectors: the next point's warm start
        # One product operator for every point (it reads the weights at call time): the split's
        # summed count is taken once, and the HVP mode 'auto' found stays found.
        self._hvp: MeanLossHVP | None = None
        if self.hessian is not None:
            self.points_per_batch, self._auto = 1, False  # one point at a time, warm-started
        # data.batch_size = 'auto' times sizes in check(); not where the batch is part of the
        # identity (recalibrated statistics), nor for Hessian-vector products, whose memory a
        # forward pass's probe does not see: those keep the fixed size.
        self.auto_batch = cfg.data.batch_size == "auto"
        if self.auto_batch and (self.bn_recalibrate or self.hessian is not None):
            self.auto_batch = False
            why = "recalibrate" if self.bn_recalibrate else "Hessian"
            self.batch_choice = BatchChoice(self.batch_size, "default", stopped=why)

    def _place(self, channels_last: bool) -> None:
        """Lay out the model and data, join the splits, and set up the perturbation."""
        self.channels_last = channels_last
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=fmt)
        if self.fused:
            self.splits = {
                k: Split(s.x.contiguous(memory_format=fmt) if s.x.dim() == 4 else s.x, s.y)
                for k, s in self.splits.items()
            }
            if isinstance(self._train, Split) and self._train.x.dim() == 4:
                self._train = Split(self._train.x.contiguous(memory_format=fmt), self._train.y)
            # All splits in one pass per point (eval mode: each sample's logits are independent
            # of its batch), then summed per split: fewer, fuller forward calls.
            self.counts = tuple(len(s) for s in self.splits.values())
            if len(self.splits) == 1:
                self.all = next(iter(self.splits.values()))
            else:
                self.all = Split(
                    torch.cat([s.x for s in self.splits.values()]),
                    torch.cat([s.y for s in self.splits.values()]),
                )
        self.perturbation = Perturbation(self.model, self.ds)

    def names(self) -> list[str]:
        """Surface names in the file's order: per split (train first), loss then metrics."""
        names = [
            f"{split}_{m}"
            for split in ("train", "test")
            if split in self.splits
            for m in ("loss", *self.metrics)
        ]
        return names + (list(HESSIAN_NAMES) if self.hessian is not None else [])

    def hvp(self) -> MeanLossHVP:
        """Hessian-vector products of the mean loss of ``hessian.split``, at the current weights."""
        if self._hvp is None:
            h = self.hessian or HessianConfig()
            self._hvp = MeanLossHVP(
                self.model,
                self.splits[h.split],
                self.batch_size,
                self.loss,
                params=hessian_params(self.model, h.params),
                l2=self.l2,
            )
        return self._hvp

    def move(self, a: float, b: float = 0.0) -> None:
        """Move the model to (a, b): its tensors, and with ``compute.bn = 'recalibrate'`` its BN
        statistics re-estimated there (once per point: the Hessian at a point reuses them)."""
        self.perturbation.set(a, b)
        if self.bn_recalibrate and self._calibrated_at != (a, b):
            self._recalibrate()
            self._calibrated_at = (a, b)

    def reset(self) -> None:
        """Put the model back as it came: tensors at the centre, the checkpoint's BN stats."""
        self.perturbation.reset()
        self._calibrated_at = None
        with torch.no_grad():
            for m, saved in self._bn_saved:
                for t, v in zip(_bn_buffers(m), saved, strict=True):
                    t.copy_(v)

    def _recalibrate(self, batches: int | None = None) -> None:
        """Re-estimate the BN statistics from the train split (its first ``batches`` only, for
        the check): the model itself in train mode, outside any compiled graph."""
        split = self._train if self._train is not None else self.splits["train"]
        it = split_batches(split, self.batch_size)
        if batches is not None:
            it = (b for _, b in zip(range(batches), it, strict=False))
        # A classifier split is (input, label) slices: the model on the inputs. Any other
        # batch goes through the loss function, whose forward pass updates the statistics.
        forward = None if self.fused else (lambda b: self.loss.fn(self.model, b))
        with autocast(self.device_type, self.precision):
            recalibrate(self.model, it, forward)

    def negative_bn_variance(self, coords: list[tuple[float, float]]) -> list[bool]:
        """Per point, whether a BN running variance moved there is negative (its loss is then
        NaN, or nearly so); never under ``compute.bn = 'recalibrate'``."""
        if self.bn_recalibrate:
            return [False] * len(coords)
        return negative_variance(self.perturbation, variance_names(self.model), coords)

    def eigenvalues(self, a: float, b: float) -> dict[str, float]:
        """lambda_max and lambda_min at (a, b) with their residuals and convergence flag
        (``HESSIAN_NAMES``), warm-started from the previous point."""
        self.move(a, b)
        h = self.hessian or HessianConfig()
        hvp = self.hvp()
        before = hvp.products
        try:
            ex = extreme_eigenvalues(hvp, h.tol, start=self._previous, max_products=h.max_products)
        except NonFiniteProduct:
            # The loss there is kept; the eigenvalues are NaN and marked not converged, and the
            # next point starts afresh (these eigenvectors are no start).
            log.info("Hessian at (%g, %g): a product is not finite; recorded as failed", a, b)
            self._previous = None
            nan = float("nan")
            return {"max_eig": nan, "min_eig": nan, "max_eig_residual": nan,
                    "min_eig_residual": nan, "hessian_converged": 0.0,
                    "hvp_products": float(hvp.products - before)}  # fmt: skip
        self._previous = ex
        values = {
            "max_eig": ex.lmax,
            "min_eig": ex.lmin,
            "max_eig_residual": ex.rmax,
            "min_eig_residual": ex.rmin,
            "hessian_converged": float(ex.converged),
            "hvp_products": float(ex.products),
        }
        return values

    def spectrum(self) -> Spectrum:
        """The spectrum at the model's own weights (``hessian.top_k``, the trace from
        ``hessian.trace_samples`` probes, the density from ``hessian.density_probes``)."""
        self.move(0.0, 0.0)
        h = self.hessian or HessianConfig()
        return center_spectrum(
            self.hvp(),
            h.params,
            h.tol,
            top_k=h.top_k,
            trace_probes=h.trace_samples,
            density_probes=h.density_probes,
            density_steps=h.density_steps,
            max_products=h.max_products,
        )

    def check(self, points: int | None = None) -> None:
        """Run the first batch of each split so a misfit fails before any file is written;
        then, for ``data.batch_size = 'auto'``, choose the batch size for a run of ``points``
        points (``engine.autobatch``; None: unknown, the probe's smallest budget)."""
        if not self.fused:
            self._check_loss()
        elif self.channels_last and self._layout_auto:
            try:
                evaluate(self.model, self._head(next(iter(self.splits))), 2, self.loss.builtin)
            except Exception as e:  # e.g. a .view() that needs NCHW strides
                # Debug: where the default layout fails too (float64 inputs, the wrong
                # shape), the check below says why in the run's one line.
                log.debug("channels-last layout failed (%s); using the default", describe(e))
                self._place(False)
        for name, split in self.splits.items() if self.fused else ():
            head = self._head(name)
            try:
                with torch.inference_mode():
                    shape = tuple(self.model(head.x).shape)
                if len(shape) != 2 or shape[0] != len(head):
                    # every point would fail, and be recorded as failed, for the same reason
                    raise LandscapeError(
                        f"the model gives outputs of shape {shape} for a batch of {len(head)} "
                        f"samples of the {name} split; expected ({len(head)}, classes)"
                    )
                self._classes = shape[1]
                check_labels(split.y, shape[1], f"the {name} split")
                evaluate(self.model, head, 2, self.loss.builtin)
            except LandscapeError:
                raise
            except Exception as e:
                raise cannot_evaluate(name, split, e) from e
        if self.compile:
            try:
                compiled = torch.compile(self.model)
                if self.fused:
                    evaluate(compiled, self._head(next(iter(self.splits))), 2, self.loss.builtin)
                else:
                    self._probe(compiled, next(iter(self.splits)))
                self.forward = compiled
            except Exception as e:  # torch.compile fails in many environment-specific ways
                log.warning("torch.compile failed (%s); running eager", describe(e))
        if self.bn_recalibrate:
            self._check_recalibrate()
        if self.auto_batch:
            self.batch_choice = choose_batch(self, points)
            self.use_batch_size(self.batch_choice.size)
        if self._auto:
            self.points_per_batch = choose_points_per_batch(self, points)

    def _check_recalibrate(self) -> None:
        """Refuse ``compute.bn = 'recalibrate'`` on a model without BN statistics, and try it on
        the train split's first batch (then put the checkpoint's statistics back)."""
        if not self._bn_saved:
            raise LandscapeError(
                "`compute.bn` = 'recalibrate' re-estimates BatchNorm running statistics, but the "
                "model has no BatchNorm layer that keeps them: set compute.bn = 'keep'"
            )
        try:
            self._recalibrate(batches=1)
        finally:
            self.reset()

    def _probe(self, model: nn.Module | Callable, name: str) -> tuple[object, int | None]:
        """The loss function's output on the first batch of split ``name``."""
        batch = first_batch(self.splits[name], self.batch_size)
        try:
            with torch.inference_mode():
                return self.loss.fn(model, batch), batch_size_of(batch)
        except Exception as e:
            if self.loss.builtin is not None and isinstance(batch, Mapping):
                # The fused losses index batch[0] / batch[1]: a dict gave a bare KeyError: 0.
                raise LandscapeError(
                    f"the {name} split gives dict batches (keys: {', '.join(map(str, batch))}), "
                    f"but `data.loss` = '{self.loss.builtin}' takes (input, integer label) "
                    "batches; pass a loss function fn(model, batch) -> {'loss': (B,) tensor}"
                ) from e
            raise LandscapeError(
                f"`data.loss` {self.loss.name} failed on the first batch of the {name} split: "
                f"{describe(e)}"
            ) from e

    def _check_loss(self) -> None:
        """Refuse a loss whose output on a split's first batch is not per-sample tensors."""
        seen: list[str] | None = None
        for name in self.splits:
            self._guard.before()
            try:
                out, samples = self._probe(self.model, name)
            finally:
                self._undo_loss_changes()
            metrics = check_output(self.loss, out, samples)
            if seen is not None and metrics != seen:
                raise LandscapeError(
                    f"`data.loss` {self.loss.name} returned the metrics {metrics} on the {name} "
                    f"split but {seen} on the other; it must return the same keys"
                )
            seen = metrics
        self.metrics = seen or []

    def _undo_loss_changes(self) -> None:
        """Put back the buffers and modes the loss changed (``StateGuard``); recalibrated BN
        statistics it touched are re-estimated at the next point."""
        if self._guard.after():
            self._calibrated_at = None

    def _head(self, name: str) -> Split:
        s = self.splits[name]
        return Split(s.x[:2], s.y[:2])

    def _pass(self, forward: Callable[[torch.Tensor], torch.Tensor]):
        """One pass over all splits; per split a ``Stats`` (or a list of K of them)."""
        losses, correct = per_sample(
            forward, self.all.x, self.all.y, self.batch_size, self.loss.builtin, self.precision
        )
        return dict(zip(self.splits, segment_stats(losses, correct, self.counts), strict=True))

    def _l2_term(self) -> float:
        """``l2/2 * ||params||^2`` of the model's (moved) parameters, in float64."""
        if not self.l2:
            return 0.0
        with torch.no_grad():
            sq = sum(p.double().pow(2).sum() for p in self.model.parameters())
        return 0.5 * self.l2 * float(sq)

    def evaluate(self, a: float, b: float) -> dict[str, float]:
        self.move(a, b)
        reg = self._l2_term()
        out = {}
        if self.fused:
            for name, st in self._pass(self.forward).items():
                out[f"{name}_loss"], out[f"{name}_acc"] = st.loss + reg, st.acc
            return out
        totals, samples = {}, {}
        self._guard.before()
        try:
            for name, split in self.splits.items():
                batches = split_batches(split, self.batch_size)
                totals[name], samples[name] = loss_sums(
                    self.loss, self.forward, batches, self.device_type, self.precision
                )
        finally:
            self._undo_loss_changes()
        keys = ["loss", "count", *self.metrics, *CHECK_KEYS]
        for sums in totals.values():
            missing = [k for k in ("loss", *self.metrics) if k not in sums]
            if missing:
                raise LandscapeError(
                    f"`data.loss` {self.loss.name} gave no {missing} here, unlike at the check"
                )
        # One transfer for every sum of every split (one device sync per point), the batch
        # checks' count extremes with them (1.0 where a loss gives no count: passes).
        flat = torch.stack(
            [sums.get(k, torch.full((), float(k in CHECK_KEYS), dtype=torch.float64,
                                    device=sums["loss"].device))
             for sums in totals.values() for k in keys]
        ).tolist()  # fmt: skip
        for i, name in enumerate(totals):
            row = dict(zip(keys, flat[i * len(keys) : (i + 1) * len(keys)], strict=True))
            refuse_counts(self.loss.name, [row[k] for k in CHECK_KEYS])
            count = row["count"] if "count" in totals[name] else float(samples[name])
            out[f"{name}_loss"] = row["loss"] / count + reg
            for m in self.metrics:
                out[f"{name}_{m}"] = row[m] / count
        return out

    def use_batch_size(self, size: int) -> None:
        """Evaluate in batches of ``size`` from now on (a given batching re-sliced)."""
        self.batch_size = size
        self.splits = {
            k: s.resized(size) if isinstance(s, Batches) else s for k, s in self.splits.items()
        }

    def evaluate_many(self, coords: list[tuple[float, float]]) -> list[dict[str, float]]:
        """Evaluate K points; together when ``points_per_batch`` > 1. With
        ``data.batch_size = 'auto'``, a pass that runs out of device memory (what the probe
        did not see: other processes, fragmentation) is tried again at half the size."""
        while True:
            try:
                return self._evaluate_many(coords)
            except torch.OutOfMemoryError:
                if not self.auto_batch or self.batch_size == 1:
                    raise
                free_memory()
                log.warning("out of memory at batch size %d: halving it", self.batch_size)
                self.use_batch_size(self.batch_size // 2)
                self.batch_choice = replace(self.batch_choice, size=self.batch_size)

    def _evaluate_many(self, coords: list[tuple[float, float]]) -> list[dict[str, float]]:
        if self.hessian is not None:
            return [self.evaluate(a, b) | self.eigenvalues(a, b) for a, b in coords]
        if len(coords) == 1 or self.points_per_batch == 1:
            return [self.evaluate(a, b) for a, b in coords]
        if not self._vmap:
            return self._in_turn(coords)
        from torch.func import functional_call, vmap

        self.perturbation.reset()
        dev = self.device
        a = torch.tensor([c[0] for c in coords], device=dev)
        b = torch.tensor([c[1] for c in coords], device=dev)
        moved = self.perturbation.stacked(a, b)
        fixed = {k: v for k, v in self.model.state_dict(keep_vars=True).items() if k not in moved}

        def one(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.model, {**params, **fixed}, (x,))

        batched = vmap(one, in_dims=(0, None))
        reg = self._l2_terms(moved, fixed, len(coords))
        out: list[dict[str, float]] = [{} for _ in coords]
        for name, stats in self._pass(lambda x: batched(moved, x)).items():
            for d, st, r in zip(out, stats, reg, strict=True):
                d[f"{name}_loss"], d[f"{name}_acc"] = st.loss + r, st.acc
        return out

    def _in_turn(self, coords: list[tuple[float, float]]) -> list[dict[str, float]]:
        """K points' forward passes one after another, then their losses and metrics in one
        go: on CPU a point's statistics are some 25 small ops whose fixed cost (a tenth of
        the digits MLP's forward pass) K points share. The same numbers as one at a time."""
        x, size, reg, logits = self.all.x, self.batch_size, [], []
        for a, b in coords:
            self.move(a, b)  # outside inference mode: moved inside, the CNN's passes were slower
            reg.append(self._l2_term())
            with torch.inference_mode():
                for start in range(0, len(x), size):
                    with autocast(self.device_type, self.precision):
                        logits.append(self.forward(x[start : start + size]).float())
        with torch.inference_mode():
            stacked = torch.cat(logits).view(len(coords), len(x), -1)
            per, ok = sample_stats(stacked, self.all.y, self.loss.builtin)
        out: list[dict[str, float]] = [{} for _ in coords]
        for name, stats in zip(self.splits, segment_stats(per, ok, self.counts), strict=True):
            for d, st, r in zip(out, stats, reg, strict=True):
                d[f"{name}_loss"], d[f"{name}_acc"] = st.loss + r, st.acc
        return out

    def _l2_terms(self, moved: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor], k: int):
        """``_l2_term`` at K points from their stacked tensors."""
        if not self.l2:
            return [0.0] * k
        names = {n for n, _ in self.model.named_parameters()}
        with torch.no_grad():
            sq = torch.zeros(k, dtype=torch.float64, device=next(iter(moved.values())).device)
            for n, v in moved.items():
                if n in names:
                    sq += v.double().pow(2).reshape(k, -1).sum(1)
            for n, v in fixed.items():
                if n in names:
                    sq += v.double().pow(2).sum()
        return [0.5 * self.l2 * float(v) for v in sq.tolist()]


def _bn_buffers(m: nn.modules.batchnorm._BatchNorm) -> list[torch.Tensor]:
    """A BN layer's running statistics and batch counter (what recalibration rewrites)."""
    return [t for t in (m.running_mean, m.running_var, m.num_batches_tracked) if t is not None]
