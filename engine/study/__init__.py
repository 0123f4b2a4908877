"""Studies: many members (training choices) trained, mapped, measured and tabled in one folder.

``spec`` reads the study file, ``stages`` names what runs per member and pair, ``runner`` runs
them (skipping finished ones, resuming the rest), ``table`` writes the table, ``collect`` the
measures, ``analysis`` correlates them with the generalization gap and judges the poster's
claims. ``docs/studies.md`` describes the file, the folder and the table. The runner's names
load on first use, so reading a study folder (``info DIR``, the app's browser) stays light.
"""

from importlib import import_module

__all__ = ["RunResult", "Study", "StudySpec", "load_study", "plan", "run_study"]

_WHERE = {
    "RunResult": "runner",
    "plan": "runner",
    "run_study": "runner",
    "Study": "spec",
    "StudySpec": "spec",
    "load_study": "spec",
}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(f"engine.study.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'engine.study' has no attribute {name!r}")
