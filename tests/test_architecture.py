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


def _imports(path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_only_engine_formats_opens_hdf5():
    """One package owns the files: the app and the rest of the engine go through it."""
    formats = REPO / "engine" / "formats"
    offenders = [
        str(path.relative_to(REPO))
        for root in ("engine", "tui_landscape")
        for path in (REPO / root).rglob("*.py")
        if formats not in path.parents and "h5py" in {n.split(".")[0] for n in _imports(path)}
    ]
    assert not offenders


def test_file_names_are_spelled_only_in_the_constants_module():
    """A dataset name or side-file suffix written out elsewhere would drift from the schema."""
    from engine.formats import constants

    names = {
        constants.XCOORDS,
        constants.YCOORDS,
        constants.PROJ_X,
        constants.PROJ_Y,
        constants.PROJ_X_LSQ,
        constants.PROJ_Y_LSQ,
        constants.EXPLAINED_VARIANCE_RATIO,
        constants.SINGULAR_VALUES,
        constants.EXPLAINED_VARIANCE,
        constants.FAILED_INDEX,
        constants.FAILED_ERROR,
        constants.JOURNAL_SUFFIX,
        constants.LOCK_SUFFIX,
        constants.DIRECTIONS_SUFFIX,
        constants.LOG_SUFFIX,
        constants.CONFIG_SUFFIX,
        constants.SURFACE_FORMAT,
        constants.DIRECTIONS_FORMAT,
        constants.PROJECTION_FORMAT,
    }
    # ".toml" is also what the app and the CLI take a config file by, and ".log" a word.
    allowed: set[tuple[str, str]] = {
        (where, ".toml")
        for where in (
            "tui_landscape/app.py",
            "tui_landscape/cli/tui.py",
            "tui_landscape/screens/save.py",
            "engine/study/spec.py",  # a study's preset NAME is the config NAME.toml
        )
    }
    offenders = []
    for root in ("engine", "tui_landscape"):
        for path in (REPO / root).rglob("*.py"):
            if path == REPO / "engine" / "formats" / "constants.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                where = str(path.relative_to(REPO))
                if (
                    isinstance(node, ast.Constant)
                    and node.value in names
                    and (where, node.value) not in allowed
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not offenders


def _is_attrs(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "attrs"


def test_attribute_names_and_layouts_are_spelled_only_in_engine_formats():
    """Provenance is read through ``Surface.provenance`` and a layout compared with
    ``LAYOUT_OURS``: an attribute read as ``s.attrs["config"]`` or a layout compared with
    ``"tui-landscape"`` outside ``engine/formats`` would drift from the schema."""
    from engine.formats import constants

    attrs = {getattr(constants, n) for n in constants.__all__ if n.startswith("ATTR_")}
    layouts = {constants.LAYOUT_OURS, constants.LAYOUT_REFERENCE}
    offenders = []
    for root in ("engine", "tui_landscape"):
        for path in (REPO / root).rglob("*.py"):
            if REPO / "engine" / "formats" in path.parents:
                continue
            where = path.relative_to(REPO)
            for node in ast.walk(ast.parse(path.read_text())):
                # x.attrs["name"], x.attrs.get("name"), "name" in x.attrs
                if isinstance(node, ast.Subscript) and _is_attrs(node.value):
                    key = node.slice
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and _is_attrs(node.func.value)
                    and node.args
                ):
                    key = node.args[0]
                elif isinstance(node, ast.Compare) and any(_is_attrs(c) for c in node.comparators):
                    key = node.left
                else:
                    key = None
                if isinstance(key, ast.Constant) and key.value in attrs:
                    offenders.append(f"{where}:{node.lineno}: attribute {key.value!r}")
                # s.layout == "tui-landscape", "reference" != info.layout
                if isinstance(node, ast.Compare):
                    sides = [node.left, *node.comparators]
                    if any(isinstance(x, ast.Attribute) and x.attr == "layout" for x in sides):
                        for x in sides:
                            if isinstance(x, ast.Constant) and x.value in layouts:
                                offenders.append(f"{where}:{node.lineno}: layout {x.value!r}")
    assert not offenders
