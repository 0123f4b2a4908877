"""The engine must run in headless workers: it imports no UI package."""

import ast
import subprocess
import sys

from tests.conftest import REPO

UI = {"textual", "rich", "plotext", "typer", "tui_landscape"}


def test_engine_source_imports_no_ui_package():
    offenders = []
    for path in (REPO / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in UI]
    assert not offenders


def test_importing_the_engine_loads_no_ui_module():
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {UI!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
