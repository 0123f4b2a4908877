"""What a run says about itself, in words: rates, times left, the summary of a finished run.

One place for the CLI (``compute``'s bar and closing lines, ``ps``) and the app (the setup's
status and log), so that both say the same thing the same way. No numpy, no torch: plain
formatting of numbers the engine gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.run import Summary

__all__ = [
    "bn_negative_message",
    "centre_summary",
    "fit",
    "fmt_eta",
    "fmt_point",
    "fmt_rate",
    "summary_lines",
]


def fit(text: str, width: int, middle: bool = False) -> str:
    """``text`` in ``width`` characters, cut with an ellipsis: at the end, or in the middle
    (a file name keeps its start and its end, where runs differ: a seed, a step, '.h5')."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if not middle:
        return text[: width - 1] + "…"
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail :]


def fmt_point(coords: tuple[float, float], ndim: int) -> str:
    a, b = coords
    return f"x={a:.4g}" if ndim == 1 else f"(x={a:.4g}, y={b:.4g})"


def fmt_rate(points: float, seconds: float) -> str:
    """Points a second, or seconds a point below one a second: a slow run's '0.0 pt/s' says
    nothing, '12.3 s/pt' does. Empty before the first point."""
    if points <= 0 or seconds <= 0:
        return ""
    pps = points / seconds
    return f"{pps:.1f} pt/s" if pps >= 1 else f"{seconds / points:.1f} s/pt"


def fmt_eta(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def summary_lines(s: Summary, ndim: int) -> list[str]:
    """The lines that close a run: points and rate, the minimum, non-finite values and their
    likely cause (negative BN variances), where the surface is."""
    rate = fmt_rate(s.computed, s.seconds)
    if s.computed:
        head = f"Computed {s.computed} points in {s.seconds:.1f} s" + (f" ({rate})" if rate else "")
    elif s.failed:  # every point tried failed: not "already complete"
        head = f"Computed no point in {s.seconds:.1f} s ({len(s.failed)} failed)"
    else:
        head = "Nothing to compute: the surface is already complete"
    lines = [f"{head}; {s.done}/{s.total} done."]
    if s.min_value == s.min_value:  # not NaN: some finished point has a finite value
        lines.append(f"Minimum {s.min_name} {s.min_value:.6g} at {fmt_point(s.min_coords, ndim)}.")
    elif s.done:
        lines.append(f"No finished point has a finite {s.min_name}.")
    if s.non_finite:
        lines.append(
            f"{s.non_finite} finished points have a NaN or infinite {s.min_name} "
            "(stored as such; shown as gaps)."
        )
    if s.bn_negative:
        lines.append(bn_negative_message(s, ndim))
    lines.append(f"Surface: {s.path}")
    return lines


def bn_negative_message(s: Summary, ndim: int) -> str:
    """Where the moved BN running variances are negative, and the remedy, in one line."""
    n = len(s.bn_negative)
    if ndim == 1:
        # Each variance is linear in x and positive at 0: it is negative on a half-line, so
        # the points with one are the ends of the line, beyond a first point on each side.
        right = [a for a, _ in s.bn_negative if a > 0]
        left = [a for a, _ in s.bn_negative if a < 0]
        ends = ([f"up to x = {max(left):.4g}"] if left else []) + (
            [f"from x = {min(right):.4g} on"] if right else []
        )
        where = " and ".join(ends)
    else:
        near = min(s.bn_negative, key=lambda p: p[0] ** 2 + p[1] ** 2)
        where = f"away from the centre (nearest at {fmt_point(near, ndim)})"
    nan = (
        f"{s.bn_negative_nan} of them have a NaN or infinite {s.min_name}"
        if s.bn_negative_nan
        else f"their {s.min_name} is still finite"
    )
    return (
        f"BN running variances are negative {where} ({n} of {s.total} points; {nan}): "
        "compute.bn = 'recalibrate' re-estimates them at each point."
    )


def centre_summary(centre: dict[str, object] | None) -> str:
    """A file's ``centre`` group in one short line (the app's plot view): each direction's
    norm over the weights' and, for an automatic range, the loss at the centre; "" for none."""
    if not centre:
        return ""
    parts = []
    ratios = list(centre.get("dir_norm_ratio", []))  # type: ignore[call-overload]
    if ratios:
        parts.append(", ".join(f"|d{a}|/|w| {r:.3g}" for a, r in zip("xy", ratios, strict=False)))
    if "loss" in centre:
        parts.append(f"{centre.get('loss_name', 'loss')} {centre['loss']:.4g} at the centre")
    return "; ".join(parts)
