"""The ``tui-landscape`` command line: thin commands over ``engine``.

Errors a user can cause end in one line on stderr and exit code 2 (usage) or 1
(run time); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Annotated

import typer

from tui_landscape import __version__
from tui_landscape.cli import (
    compare,
    compute,
    demo,
    hessian,
    info,
    models,
    plot,
    ps,
    study,
    train,
    trajectory,
    tui,
)
from tui_landscape.cli.common import State

app = typer.Typer(
    name="tui-landscape",
    help="Loss landscapes of neural networks (Li et al., NeurIPS 2018) in the terminal.",
    invoke_without_command=True,  # a bare `tui-landscape` opens the app
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click errors: "Error: ..." lines, no boxed panels
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Formatter(logging.Formatter):
    """Plain lines for information; a 'warning:' prefix where it matters."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        return msg


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, not what it was when made: while the
    progress bar shows, rich puts its own stderr in place and prints each line above the bar
    (a stream held from before would write into the bar's line and leave a copy of it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # a text stream, as StreamHandler's
        return sys.stderr


# Our loggers: `-v` shows their debug lines, and only theirs (matplotlib's font search,
# h5py's "Creating converter" and the like stay at WARNING).
OUR_LOGGERS = ("engine", "tui_landscape")


def configure_logging(verbose: bool) -> None:
    """Warnings from every library; information from ours, and with ``verbose`` debug lines."""
    root = logging.getLogger()
    if not root.handlers:  # as basicConfig: a host that set up logging (pytest) keeps its own
        handler = _StderrHandler()  # stderr: stdout carries results only
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tui-landscape {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log what happens.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Loss landscapes of neural networks (Li et al., NeurIPS 2018) in the terminal."""
    configure_logging(verbose or debug)
    ctx.obj = State(debug=debug, verbose=verbose)
    # torch.func's internals warn about torch.jit.script on every run: not the user's concern.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    if ctx.invoked_subcommand is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            typer.echo(ctx.get_help())  # no terminal for an app (a pipe, a script): the help
            raise typer.Exit()
        tui.tui(ctx, None)


app.command("compute")(compute.compute)
app.command("info")(info.info)
app.command("plot")(plot.plot)
app.command("compare")(compare.compare)
app.command("tui")(tui.tui)
app.command("trajectory")(trajectory.trajectory)
app.command("hessian")(hessian.hessian)
app.command("demo")(demo.demo)
app.command("train")(train.train)
app.command("models")(models.models)
app.command("ps")(ps.ps)
app.command("study")(study.study)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # outside a command's own handling (e.g. while importing torch)
        raise SystemExit(130) from None
    except BrokenPipeError:  # `tui-landscape plot F | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
