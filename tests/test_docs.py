"""The docs are true to the code: generated pages are current, every module has its room in
docs/architecture.md, and every link resolves."""

from __future__ import annotations

import re

from tests.conftest import REPO

DOCS = REPO / "docs"


def test_the_configuration_page_is_generated_from_the_schema_and_current():
    from engine.schema_doc import PAGE, configuration_markdown

    assert PAGE == DOCS / "configuration.md"
    assert PAGE.read_text(encoding="utf-8") == configuration_markdown(), (
        "docs/configuration.md is stale: run `python -m engine.schema_doc`"
    )


def test_every_module_appears_in_the_architecture_page():
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for pkg in ("engine", "tui_landscape"):
        for f in sorted((REPO / pkg).rglob("*.py")):
            rel = f.relative_to(REPO / pkg).as_posix()
            if f.name == "__main__.py" or (f.name == "__init__.py" and f.parent == REPO / pkg):
                continue
            name = rel.removesuffix("/__init__.py") + ("/" if f.name == "__init__.py" else "")
            # A module is named by its path within its package, or by its bare file name in
            # the room of its folder (`formats/reader.py`, or `reader.py` in formats' row).
            if f"`{name}`" not in page and f"`{rel}`" not in page and f"`{f.name}`" not in page:
                missing.append(f"{pkg}/{rel}")
    assert not missing, f"docs/architecture.md does not name: {missing}"


def _links(path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links in code blocks are not links
    return re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in [REPO / "README.md", *DOCS.glob("*.md")]:
        for target in _links(page):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_the_readme_is_short_and_links_every_docs_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    linked = set(_links(REPO / "README.md"))
    unlinked = [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in linked]
    assert not unlinked, f"README links no page for {unlinked}"
