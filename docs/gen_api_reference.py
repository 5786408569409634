"""Writes one API reference page per module of the `sweep` package when the site is built.

Run by the mkdocs-gen-files plugin (see mkdocs.yml); nothing it writes is committed. It walks
`sweep/` on disk, so a module that is added or moved gets its page without an edit here. Each
page holds one mkdocstrings `::: module` directive: mkdocstrings-python reads the source
statically with griffe and never imports the package (or torch). `reference/api/SUMMARY.md`
is the section's navigation, read by mkdocs-literate-nav.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sweep"
SECTION = Path("reference/api")

nav = mkdocs_gen_files.Nav()
for source in sorted(PACKAGE.rglob("*.py")):
    module = source.relative_to(ROOT).with_suffix("")
    parts = module.parts
    page = module.with_suffix(".md")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        page = page.with_name("index.md")
    nav[parts] = page.as_posix()
    with mkdocs_gen_files.open(SECTION / page, "w") as page_file:
        page_file.write(f"::: {'.'.join(parts)}\n")
    mkdocs_gen_files.set_edit_path(SECTION / page, source.relative_to(ROOT))

with mkdocs_gen_files.open(SECTION / "SUMMARY.md", "w") as nav_file:
    nav_file.writelines(nav.build_literate_nav())
