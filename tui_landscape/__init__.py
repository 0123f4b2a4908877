"""tui-landscape: the command line, the terminal app and the plots, thin over ``engine``.

From Python: ``tui_landscape.compute``, ``interpolate``, ``trajectory``, ``hessian`` and
``study`` (``tui_landscape.api``), loaded on first use so that importing the package (and the
CLI's ``--help``) stays fast.
"""

from engine import __version__

__all__ = ["__version__", "compute", "hessian", "interpolate", "study", "trajectory"]

_API = ("compute", "hessian", "interpolate", "study", "trajectory")


def __getattr__(name: str) -> object:  # not typing.Any: `tl.Any` would be exported
    if name in _API:
        from tui_landscape import api

        return getattr(api, name)
    raise AttributeError(f"module 'tui_landscape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
