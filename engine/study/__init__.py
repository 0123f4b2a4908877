"""Studies: many members (training choices) trained, mapped, measured and tabled in one folder.

``spec`` reads the study file, ``stages`` names what runs per member and pair, ``runner`` runs
them (skipping finished ones, resuming the rest), ``table`` writes the table, ``collect`` the
measures. ``docs/studies.md`` describes the file, the folder and the table.
"""

from engine.study.runner import RunResult, plan, run_study
from engine.study.spec import Study, StudySpec, load_study

__all__ = ["RunResult", "Study", "StudySpec", "load_study", "plan", "run_study"]
