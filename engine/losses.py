"""Losses as functions of ``(model, batch)``: the built-in ones, the user's, and their checks.

A loss is called as ``fn(model, batch)``, where ``batch`` is what the data set's collate
gives (a tuple, a dict, or nested containers of tensors), already on the device. It returns a
mapping of tensors of shape ``(B,)``, one value per sample:

- ``loss`` (required): the per-sample loss, summed over whatever ``count`` counts;
- ``count`` (optional, default 1): the per-sample weight, e.g. the tokens of a sequence;
- any other key: an extra metric, stored as the surface ``<split>_<key>``.

Every stored surface is ``sum(value) / sum(count)`` over a whole split, summed in float64, so
it is exact across batches, workers and ranks: a language model's loss is the token-weighted
mean, not a mean of batch means. ``crossentropy`` and ``mse`` are such functions too; the
evaluator runs them on a fused classifier path with the same numbers (``Loss.builtin``).

The built-in losses are the registry ``LOSSES``: a new one is a function here with
``@register_loss`` (any batch) or ``@register_fused_loss`` (classifier math on logits), and
the config, the data loader, the evaluator, the Hessian and ``train`` all read it from there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, DataSetError, LandscapeError
from engine.imports import is_callable_spec, load_callable
from engine.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "LOSSES",
    "BatchCheck",
    "Loss",
    "LossEntry",
    "LossFn",
    "StateGuard",
    "causal_lm",
    "check_labels",
    "check_output",
    "class_indices",
    "crossentropy",
    "fused_entry",
    "is_fused",
    "loss_refusal",
    "mse",
    "refuse_counts",
    "register_fused_loss",
    "register_loss",
    "resolve_loss",
    "squared_error",
    "to_class_major",
]

# No torch import at module level: the config reads ``LOSSES.names()`` at import, and the
# config loads before torch (the app draws its form first). Functions import it when called.

LossFn = Callable[["nn.Module", Any], Mapping[str, "torch.Tensor"]]
# Fused per-sample math: float32 logits (N, C) and int labels (N,) -> loss (N,), correct (N,)
FusedFn = Callable[["torch.Tensor", "torch.Tensor"], tuple["torch.Tensor", "torch.Tensor"]]
# The same math on class-major logits (K, C, N) of K grid points, which it may overwrite, and
# labels (N,) -> loss (K, N), correct (K, N)
ClassMajorFn = FusedFn

# A metric becomes the dataset ``<split>_<name>``: a name that is safe there and in a TOML key.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class LossEntry:
    """A built-in loss: ``fn(model, batch)`` as any loss, and for a classifier loss on
    ``(inputs, labels)`` its ``fused`` per-sample math on logits (the evaluator's fast path,
    and the data loader keeps such splits as two tensors). ``fused_sum`` is that loss summed
    differentiably (the Hessian's; default: ``fused``'s loss summed). ``class_major``, where
    given, is ``fused``'s math on class-major logits of K grid points (``ClassMajorFn``), which
    ``engine.evaluate.sample_stats`` uses for them. ``trainable``: the ``train`` command
    accepts it."""

    name: str
    fn: LossFn
    fused: FusedFn | None = None
    fused_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    trainable: bool = False
    class_major: ClassMajorFn | None = None

    def summed(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch's summed loss, differentiable (for Hessian-vector products)."""
        if self.fused_sum is not None:
            return self.fused_sum(logits, y)
        return fused_entry(self.name).fused(logits, y)[0].sum()


LOSSES: Registry[LossEntry] = Registry("loss", "data.loss")


def register_loss(name: str, *, trainable: bool = False) -> Callable[[LossFn], LossFn]:
    """Register ``fn(model, batch) -> {'loss': (B,), ...}`` as the built-in loss ``name``."""
    return LOSSES.register(name, lambda fn: LossEntry(name, fn, trainable=trainable))


def register_fused_loss(
    name: str,
    *,
    trainable: bool = False,
    fused_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    class_major: ClassMajorFn | None = None,
) -> Callable[[FusedFn], LossFn]:
    """Register a classifier loss by its per-sample math ``fused(logits, labels)`` ->
    ``(loss (N,), correct (N,))`` on float32 logits ``(N, C)``. The decorated name becomes the
    loss function ``fn(model, (inputs, labels))``, which gives ``loss`` and ``acc`` (percent)."""

    def deco(fused: FusedFn) -> LossFn:
        def fn(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
            logits, y = model(batch[0]).float(), class_indices(batch[1])
            # Every batch: a streamed or collated split is checked here, not as a whole. A
            # read per batch (a sync on a GPU), but a bad label would end the GPU's use.
            check_labels(y, logits.shape[-1], "a batch of the data")
            per, correct = fused(logits, y)
            return {"loss": per, "acc": 100.0 * correct.double()}

        fn.__name__ = fn.__qualname__ = fused.__name__
        fn.__doc__, fn.__module__ = fused.__doc__, fused.__module__
        LOSSES.add(name, LossEntry(name, fn, fused, fused_sum, trainable, class_major))
        return fn

    return deco


def class_indices(y: torch.Tensor) -> torch.Tensor:
    """Integer labels as int64, the only index type ``gather`` and ``one_hot`` take (uint8
    labels from a collate function were refused there); other labels as they are, for the
    math to refuse, never truncated."""
    import torch

    if y.dtype == torch.int64 or y.is_floating_point() or y.is_complex():
        return y  # int64 first: a dtype test is cheaper than .long()'s call (per batch)
    return y.long()


def check_labels(y: torch.Tensor, classes: int, where: str) -> None:
    """Refuse integer labels outside ``0..classes - 1`` in one line, before a loss reads them
    (``where`` names them: "the train split", "a batch"): torch's own refusal is an
    IndexError on a CPU, and on a GPU a device-side assert that ends the process's use of the
    device. A ``DataSetError``: wrong at every grid point alike, so a run stops at once."""
    if not len(y) or y.is_floating_point() or y.is_complex():
        return  # float labels are left for the math to refuse
    import torch

    low, top = torch.stack(torch.aminmax(y)).tolist()  # one kernel, one read
    if top >= classes:
        raise DataSetError(
            f"the model gives {classes} outputs per sample, but {where} has labels up to "
            f"{top}: the model does not fit the data's classes"
        )
    if low < 0:
        raise DataSetError(
            f"{where} has a negative label ({low}); labels must be class indices 0..{classes - 1}"
        )


def fused_entry(name: str) -> LossEntry:
    """The entry of a fused loss; a name that has no fused math raises, listing those that do."""
    entry = LOSSES.get(name)
    if entry.fused is None:
        fused = [n for n in LOSSES if LOSSES.get(n).fused is not None]
        raise ConfigError(
            f"loss {name!r} has no fused classifier path; the fused losses are {', '.join(fused)}"
        )
    return entry


def is_fused(name: str) -> bool:
    """Whether ``name`` is a built-in loss with a fused classifier path."""
    return name in LOSSES and LOSSES.get(name).fused is not None


def _class_sum(e: torch.Tensor) -> torch.Tensor:
    """The float64 sum over dimension 1 of ``e`` ``(K, C, N)``, pairwise in an order fixed by C.

    A reduction kernel's order depends on the layout (where a sample falls in the vectors of
    the reduced tensor), which would change the last bit of a sample's loss with K or with
    its batch; halves added elementwise do not, in ceil(log2(C)) ops.
    """
    import torch

    acc = e.to(torch.float64)
    while acc.shape[1] > 1:
        c = acc.shape[1]
        h = (c + 1) // 2  # rows h.. are added onto rows 0..; an odd middle row waits
        acc[:, : c - h] += acc[:, h:c]
        acc = acc[:, :h]
    return acc[:, 0]


def to_class_major(logits: torch.Tensor) -> torch.Tensor:
    """K points' logits ``(K, B, C)`` as a class-major copy ``(K, C, B)`` that a
    ``ClassMajorFn`` may overwrite: the transpose of (K, B, C) is a fast copy, that of
    (K * B, C) to (C, K * B) a slow one."""
    import torch

    return logits.transpose(-1, -2).clone(memory_format=torch.contiguous_format)


def _crossentropy_class_major(
    zt: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``crossentropy``'s math on class-major logits ``(K, C, N)`` (overwritten).

    Class-major because the reductions over a short class dimension are slow on CPU in the
    row-major layout (a max with its index alone took half the math's time there); here they
    are C-row operations on contiguous rows. On the digits MLP (8 x 1,797 x 10 logits, one
    thread) 0.07 ms a point against 0.11. Each sample's numbers come from its own C values by
    elementwise ops, so they do not depend on K, N or the batch the sample came in.
    """
    import torch

    k, c, n = zt.shape
    top = zt.amax(1, keepdim=True)  # NaN where any logit is
    zt.sub_(top)  # 0 at each max, exactly
    true = zt.gather(1, y.view(1, 1, n).expand(k, 1, n)).squeeze(1)  # the shifted true logit
    # argmax's index (the first of ties) from the largest of C * sign + (C - j): sign() is 0
    # at the max, -1 below it (so at most 0 there) and NaN for NaN; the largest is C - j.
    weight = torch.arange(c, 0, -1, dtype=zt.dtype, device=zt.device).view(c, 1)
    first = torch.add(weight, zt.sign(), alpha=c).amax(1)
    # Log-sum-exp of the shifted logits, less the shifted true logit (exactly 0 when the
    # prediction is right). The max's own term is exactly 1, so the log is log1p of the other
    # terms, summed in float64 where 1 + rest keeps rest to 1e-16: a float32 log() of a sum
    # near 1 would round tiny losses to 6e-8, as torch's log-softmax does.
    rest = _class_sum(zt.exp_()).sub_(1.0).float()
    per = rest.log1p_().sub_(true)
    # A max at +inf: the log-sum-exp is +inf, so the loss is +inf less the true logit (NaN
    # where that is +inf too); the shifted sum above is NaN there (inf - inf).
    top = top.squeeze(1)
    per = torch.where(top == math.inf, -true, per)
    # argmax ranks NaN highest; a sample whose loss is not finite (NaN, or inf) is never
    # correct, and the loss is >= 0 or NaN or +inf, so one comparison finds the finite ones.
    correct = (first == c - y) & (per < math.inf)
    return per, correct


@register_fused_loss(
    "crossentropy",
    trainable=True,
    fused_sum=lambda logits, y: _F().cross_entropy(logits, y, reduction="sum"),
    class_major=_crossentropy_class_major,
)
def crossentropy(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of a classifier on ``(inputs, labels)``, and accuracy in percent."""
    n, c = logits.shape
    per, correct = _crossentropy_class_major(to_class_major(logits.reshape(1, n, c)), y)
    return per.view(n), correct.view(n)


@register_fused_loss("mse", trainable=True)
def mse(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's MSE: softmax outputs against one-hot labels, and accuracy in percent."""
    # nn.MSELoss() (mean over classes) on softmax vs one-hot, per sample.
    onehot = _F().one_hot(y, logits.shape[-1]).to(logits.dtype)
    per = (logits.softmax(-1) - onehot).pow(2).mean(-1)
    correct = (logits.max(-1).indices == y) & logits.isfinite().all(-1)
    return per, correct


@register_loss("squared_error")
def squared_error(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Regression on ``(inputs, targets)``: squared error (mean over output features) per
    sample, and the absolute error ``abs_err`` likewise."""
    x, y = batch[0], batch[1]
    pred = model(x).float()
    diff = pred.reshape(len(pred), -1) - y.float().reshape(len(y), -1)
    return {"loss": diff.pow(2).mean(1), "abs_err": diff.abs().mean(1)}


@register_loss("causal_lm")
def causal_lm(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Next-token cross-entropy of a causal language model, weighted by tokens.

    ``batch`` is a dict with ``input_ids`` (B, T), optionally ``attention_mask`` (0 at padding)
    and ``labels`` (-100 where no loss is taken; default: the inputs). The model is called with
    the batch's keys other than ``labels`` and may return logits or an object with ``.logits``
    (a Hugging Face model). Per sequence: the summed token loss, ``count`` its predicted tokens,
    and ``acc`` the tokens predicted right (percent, once divided by the count).
    """
    if not isinstance(batch, Mapping) or "input_ids" not in batch:
        raise TypeError("causal_lm expects dict batches with 'input_ids'")
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    logits = getattr(out, "logits", out)
    if isinstance(logits, tuple | list):
        logits = logits[0]
    labels = batch.get("labels", batch["input_ids"])[:, 1:]
    mask = labels != -100
    if "attention_mask" in batch:
        mask = mask & batch["attention_mask"][:, 1:].bool()
    logits = logits[:, :-1].float()
    tokens = (
        _F()
        .cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            labels.clamp(min=0).reshape(-1),
            reduction="none",
        )
        .view(labels.shape)
    )
    right = (logits.argmax(-1) == labels) & mask
    m = mask.to(tokens.dtype)
    return {
        "loss": (tokens * m).sum(1),
        "count": m.sum(1),
        "acc": 100.0 * right.sum(1).double(),
    }


def _F():  # torch.nn.functional, imported when a loss first runs
    import torch.nn.functional as F

    return F


@dataclass(frozen=True)
class Loss:
    """A loss function with the name errors give it (the config's spec, or a callable's
    qualified name) and, for a fused built-in loss, its name (the evaluator's fast path)."""

    fn: LossFn
    name: str
    builtin: str | None = None  # a fused loss ('crossentropy', 'mse'): see ``fused_entry``


def resolve_loss(spec: str | LossFn | Loss | None, key: str = "data.loss") -> Loss:
    """The loss a config value (built-in name, ``module:fn``, ``file.py:fn``) or callable names."""
    if spec is None:
        spec = "crossentropy"
    if isinstance(spec, Loss):
        return spec
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__name__
        module = getattr(spec, "__module__", None)
        return Loss(spec, f"{module}:{name}" if module else name)
    if spec in LOSSES:
        entry = LOSSES.get(spec)
        return Loss(entry.fn, spec, spec if entry.fused is not None else None)
    if is_callable_spec(spec):
        return Loss(load_callable(spec, key), spec)
    raise ConfigError(loss_refusal(spec, key))


def loss_refusal(spec: object, key: str = "data.loss") -> str:
    """The one line that refuses a loss name: the built-in ones, and the callable forms."""
    return (
        f"Expected `{key}` to be one of {', '.join(LOSSES)} or 'module:fn' / 'file.py:fn', "
        f"but got {spec!r}."
    )


def check_output(loss: Loss, out: Any, samples: int | None, key: str = "data.loss") -> list[str]:
    """Refuse a loss's output on one batch in one line; the metric names it gives, in order.

    ``samples`` is the batch's sample count (None where the batch does not show it). This
    first check reads the values (one sync); ``BatchCheck`` checks every later batch.
    """
    who = f"`{key}` {loss.name}"
    _check_layout(who, out, samples)
    if "count" in out:
        c = out["count"]
        bad = ~(c.isfinite() & (c > 0))
        if bool(bad.any()):
            raise LandscapeError(_count_refusal(who, float(c[bad][0])))
    return [k for k in out if k not in ("loss", "count")]


def _check_layout(who: str, out: Any, samples: int | None) -> None:
    """The host-side checks of one output: a dict with 'loss', good names, per-sample 1-D
    real tensors of one length. Free: shapes and keys, no value is read."""
    import torch

    if not isinstance(out, Mapping):
        raise LandscapeError(
            f"{who} returned {_what(out)}; it must return a dict of per-sample tensors "
            "with a 'loss' key"
        )
    if "loss" not in out:
        raise LandscapeError(
            f"{who} returned a dict without a 'loss' key (keys: {', '.join(map(str, out))})"
        )
    want = f"shape ({samples},)" if samples is not None else "shape (B,)"
    n = samples
    for k, v in out.items():
        if not isinstance(k, str) or not _NAME.fullmatch(k):
            raise LandscapeError(
                f"{who} returned the key {k!r}; metric names must be letters, digits and _ "
                "(starting with a letter, at most 64)"
            )
        if not isinstance(v, torch.Tensor):
            raise LandscapeError(
                f"{who} returned {_what(v)} for `{k}`; it must give a tensor of {want}"
            )
        if v.dim() != 1 or (n is not None and v.shape[0] != n):
            raise LandscapeError(
                f"{who} returned a tensor of shape {tuple(v.shape)} for `{k}`; it must give "
                f"one value per sample, {want}"
            )
        if v.is_complex():
            raise LandscapeError(f"{who} returned a {v.dtype} tensor for `{k}`; expected numbers")
        n = v.shape[0]


def _count_refusal(who: str, value: float) -> str:
    return f"{who} returned a `count` of {value:g} for a sample; every count must be finite and > 0"


class BatchCheck:
    """Every batch's output of a loss checked as the first batch's is, without a sync per batch.

    Keys and shapes are host-side facts, checked at once (free). The counts' values are
    reduced on the device to their least and greatest (NaN propagates through both) and read
    by ``refuse_counts`` once, where the caller reads its sums anyway. A later batch that differs
    therefore fails its point with the line the first batch would have given.
    """

    def __init__(self, name: str, key: str = "data.loss") -> None:
        self.who = f"`{key}` {name}"
        self.keys: tuple[str, ...] | None = None
        self.low: torch.Tensor | None = None  # least count so far (NaN if any was NaN)
        self.high: torch.Tensor | None = None  # greatest

    def batch(self, out: Any, samples: int | None) -> None:
        """Check one batch's output (no sync)."""
        _check_layout(self.who, out, samples)
        keys = tuple(out)
        if self.keys is None:
            self.keys = keys
        elif set(keys) != set(self.keys):
            raise LandscapeError(
                f"{self.who} returned the keys {list(keys)} on a later batch but "
                f"{list(self.keys)} on the first; it must return the same keys on every batch"
            )
        if "count" in out:
            c = out["count"].detach().double()
            lo, hi = c.min(), c.max()
            if self.low is None:
                self.low, self.high = lo, hi
            else:
                self.low, self.high = self.low.minimum(lo), self.high.maximum(hi)

    def extremes(self) -> list[torch.Tensor]:
        """The device scalars ``refuse_counts`` needs, to be read with the caller's own transfer."""
        return [] if self.low is None else [self.low, self.high]


def refuse_counts(name: str, extremes: list[float], key: str = "data.loss") -> None:
    """Refuse the counts a ``BatchCheck`` saw, given its ``extremes()`` read back as floats."""
    for v in extremes:
        if not (0 < v < math.inf):
            raise LandscapeError(_count_refusal(f"`{key}` {name}", v))


class StateGuard:
    """Undo what a loss function changed in the model: buffers and modules' training flags.

    A loss may call ``model.train()`` or update a buffer of its own; the surface would then
    depend on the order of the points, and the caller's model leave changed. ``before`` notes
    each buffer's identity and version counter and each mode (host-side, no copy, no sync);
    ``after`` puts back only what changed (a buffer from the copy made at construction; every
    buffer of a module whose mode flipped, since BatchNorm's kernel updates its statistics
    without bumping the counter) and warns once, naming the function.
    """

    def __init__(self, model: nn.Module, name: str, key: str = "data.loss") -> None:
        self.who = f"`{key}` {name}"
        self.modules = list(model.named_modules())
        self.modes = [m.training for _, m in self.modules]
        # (module, its name, buffer key, tensor, copy of its values)
        self.buffers = [
            (m, mn, k, t, t.detach().clone())
            for mn, m in self.modules
            for k, t in m._buffers.items()
            if t is not None
        ]
        self.versions: list[int] = []
        self.warned = False

    def before(self) -> None:
        """Note the buffers' versions (after the point's own moves, just before the loss)."""
        self.versions = [t._version for _, _, _, t, _ in self.buffers]

    def after(self) -> bool:
        """Put back what the loss changed since ``before``; True if anything was."""
        import torch

        changed: list[str] = []
        flipped = set()
        for (name, m), was in zip(self.modules, self.modes, strict=True):
            if m.training != was:
                m.training = was  # not .train(was): that would recurse into children
                flipped.add(id(m))
                changed.append(f"the mode of {name or 'the model'}")
        with torch.no_grad():
            for (m, mn, k, t, copy), v in zip(self.buffers, self.versions, strict=True):
                replaced = m._buffers.get(k) is not t
                if replaced or t._version != v or id(m) in flipped:
                    if replaced:
                        m._buffers[k] = t
                    if replaced or t._version != v:
                        changed.append(f"the buffer {mn + '.' if mn else ''}{k}")
                    t.copy_(copy)
        self.before()
        if changed and not self.warned:
            self.warned = True
            import warnings

            warnings.warn(
                f"{self.who} changed {', '.join(changed[:3])}"
                f"{' and more' if len(changed) > 3 else ''}; the engine puts the model back "
                "after each point (a loss should not change the model)",
                RuntimeWarning,
                stacklevel=2,
            )
        return bool(changed)


def _what(v: Any) -> str:
    import torch

    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    return f"a {type(v).__name__}"
