"""Reverse-over-reverse Hessian-vector products on a kept gradient graph (``MeanLossHVP``).

At one point the weights do not move while Lanczos runs, so the gradient is built once per
batch with ``create_graph`` (``gradient_graph``) and each product ``H t = d(g . t)/dp`` is one
backward pass through it (``graph_product``), which keeps the graph for the next.
``saved_bytes`` sizes a first-order pass, for the budget of kept graphs; ``no_hessian`` is the
one line for a loss without a second derivative.
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from engine.errors import LandscapeError, describe

__all__ = ["gradient_graph", "graph_product", "math_kernel", "no_hessian", "saved_bytes"]


def math_kernel(mode: str):
    """The math SDPA kernel for a ``-math`` mode, else the default kernels."""
    return sdpa_kernel(SDPBackend.MATH) if mode.endswith("-math") else contextlib.nullcontext()


def gradient_graph(mode: str, f, primals) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Fresh leaves for ``primals`` and the gradient of ``f`` at them, with its graph."""
    leaves = [p.detach().requires_grad_() for p in primals.values()]
    with torch.enable_grad(), math_kernel(mode):
        loss = f(dict(zip(primals, leaves, strict=True)))
        if not (loss.is_floating_point() and loss.requires_grad):
            raise no_hessian(None, loss)
        grads = torch.autograd.grad(
            loss, leaves, create_graph=True, allow_unused=True, materialize_grads=True
        )
    return leaves, list(grads)


def saved_bytes(f, primals) -> int:
    """Bytes a first-order pass of ``f`` saves for its backward (a pass that keeps none);
    refused in one line where its value has no gradient."""
    total = 0

    def pack(t: torch.Tensor) -> None:
        nonlocal total
        total += t.numel() * t.element_size()

    leaves = {k: p.detach().requires_grad_() for k, p in primals.items()}
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda _: None):
        loss = f(leaves)
    if not (loss.is_floating_point() and loss.requires_grad):
        raise no_hessian(None, loss)
    return total


def no_hessian(e: BaseException | None, loss: torch.Tensor | None = None) -> LandscapeError:
    """One line for a loss without a second derivative: no gradient at all (``loss`` given),
    or through ops that no ``HVP_MODES`` can differentiate twice (``e``)."""
    if loss is not None:
        return LandscapeError(
            "the loss has no gradient in the Hessian's parameters: it is integer-valued (a "
            "count, an argmax), detached, or does not use them (see hessian.params)"
        )
    return LandscapeError(f"no Hessian-vector product works for this model: {describe(e)}")


def graph_product(
    leaves: list[torch.Tensor],
    grads: list[torch.Tensor],
    names: list[str],
    tangents: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """``H t`` by name, through the kept graph of ``grads`` (kept again for the next product).
    Only the gradients that depend on the parameters enter: a linear term has no second
    derivative."""
    pairs = [(g, tangents[k]) for g, k in zip(grads, names, strict=True) if g.requires_grad]
    if not pairs:
        return {k: torch.zeros_like(p) for k, p in zip(names, leaves, strict=True)}
    with torch.enable_grad():
        hv = torch.autograd.grad(
            [g for g, _ in pairs], leaves, [t for _, t in pairs],
            retain_graph=True, allow_unused=True, materialize_grads=True,
        )  # fmt: skip
    return dict(zip(names, hv, strict=True))
