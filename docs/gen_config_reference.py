"""Writes the configuration reference page from `conf/` when the site is built.

Run by the mkdocs-gen-files plugin (see mkdocs.yml); nothing it writes is committed. For every
yaml file of `conf/` it lists every option as Hydra composes it (its dotted name under the
file's package), its default as written in the file, and the comment lines written directly
above the option or beside it. The comment block at the top of a file describes the file.

PyYAML drops comments, so the structure and the line of every key come from `yaml.compose`
(nodes with their positions) and the comments from the file's own lines.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mkdocs_gen_files
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
PAGE = "reference/configuration.md"


@dataclass
class Option:
    """One leaf (or commented section) of a yaml file."""

    name: str
    default: str
    comment: str


@dataclass
class ConfigFile:
    """What the page says about one yaml file."""

    path: Path
    package: str
    header: str
    defaults: list[tuple[str, str]] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)


def is_comment(line: str) -> bool:
    return line.strip().startswith("#")


def comment_text(lines: list[str]) -> str:
    """The prose of comment lines, without their `#` markers, joined into one paragraph."""
    return " ".join(line.strip().lstrip("#").strip() for line in lines).strip()


def comment_above(lines: list[str], line_no: int, floor: int) -> list[str]:
    """The unbroken run of comment lines directly above `line_no`, not reaching above `floor`."""
    start = line_no
    while start > floor and is_comment(lines[start - 1]):
        start -= 1
    return lines[start:line_no]


def comment_beside(lines: list[str], line_no: int, column: int) -> list[str]:
    """A `# ...` comment after column `column` of line `line_no`, as a one-item list."""
    rest = lines[line_no][column:].strip()
    return [rest] if rest.startswith("#") else []


def source_of(lines: list[str], node: yaml.Node) -> str:
    """A value as written in the file (a block scalar: its text)."""
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return node.value.rstrip("\n")
    start, end = node.start_mark, node.end_mark
    if start.line == end.line:
        return lines[start.line][start.column : end.column].strip()
    # A flow collection over several lines: its lines, joined.
    spanned = lines[start.line : end.line + 1]
    spanned[-1] = spanned[-1][: end.column]
    spanned[0] = spanned[0][start.column :]
    return " ".join(line.strip() for line in spanned)


def read_file(path: Path, package: str) -> ConfigFile:
    """Options, defaults list and header comment of one yaml file."""
    text = path.read_text()
    lines = text.splitlines()
    directive = re.match(r"#\s*@package\s+(\S+)", lines[0]) if lines else None
    if directive:
        package = "" if directive.group(1) == "_global_" else directive.group(1)
    first = 1 if directive else 0
    header_end = first
    while header_end < len(lines) and is_comment(lines[header_end]):
        header_end += 1
    described = ConfigFile(path, package, comment_text(lines[first:header_end]))
    root = yaml.compose(text)
    if root is None:
        return described

    def comment_of(key: yaml.Node, value: yaml.Node | None) -> str:
        line = key.start_mark.line
        same_line = value is not None and value.end_mark.line == line
        column = value.end_mark.column if same_line else key.end_mark.column + 1
        above = comment_above(lines, line, header_end)
        return comment_text(above + comment_beside(lines, line, column))

    def defaults_entry(item: yaml.Node) -> tuple[str, str]:
        """An entry of the defaults list (`group: option` or a name) and its comment."""
        if isinstance(item, yaml.MappingNode):
            ((key, value),) = item.value
            return f"{key.value}: {source_of(lines, value)}", comment_of(key, value)
        return source_of(lines, item), comment_of(item, item)

    def walk(node: yaml.MappingNode, prefix: str) -> Iterator[Option]:
        for key, value in node.value:
            name = f"{prefix}.{key.value}" if prefix else key.value
            if node is root and key.value == "defaults" and isinstance(value, yaml.SequenceNode):
                described.defaults = [defaults_entry(item) for item in value.value]
            elif isinstance(value, yaml.MappingNode):
                comment = comment_of(key, None)
                if comment:
                    yield Option(name, "", comment)
                yield from walk(value, name)
            else:
                yield Option(name, source_of(lines, value), comment_of(key, value))

    described.options = list(walk(root, package))
    return described


def escape(text: str) -> str:
    """Comment prose as Markdown for a table cell: `code spans` kept, everything else literal."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part.replace("|", "\\|"))
        else:
            part = html.escape(part, quote=False)
            out.append(re.sub(r"([\\*_\[\]|])", r"\\\1", part))
    return "".join(out)


def code_cell(value: str) -> str:
    """A default value as inline code in a table cell (any text, several lines too)."""
    if value == "":
        return "(section)"
    escaped = html.escape(value, quote=False).replace("\n", "<br>")
    # Markdown still reads inside raw <code>: characters it would act on become entities.
    escaped = re.sub(r"[|\[\]*_`\\]", lambda m: f"&#{ord(m.group())};", escaped)
    return f"<code>{escaped}</code>"


def render(described: ConfigFile) -> list[str]:
    rel = described.path.relative_to(ROOT).as_posix()
    package = f"`{described.package}`" if described.package else "the top level (`_global_`)"
    out = [f"`{rel}`, options under {package}.", ""]
    if described.header:
        out += [escape(described.header), ""]
    if described.defaults:
        out += ["Defaults list:", ""]
        for entry, comment in described.defaults:
            out.append(f"* `{entry}`" + (f": {escape(comment)}" if comment else ""))
        out.append("")
    if described.options:
        # The class keeps option names on one line (docs/stylesheets/extra.css).
        out += ['<div class="options" markdown>', ""]
        out += ["| option | default | comment |", "| --- | --- | --- |"]
        for option in described.options:
            row = f"| `{option.name}` | {code_cell(option.default)} | {escape(option.comment)} |"
            out.append(row)
        out += ["", "</div>", ""]
    return out


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def page() -> str:
    """The whole reference page."""
    top = read_file(CONF / "config.yaml", "")
    chosen = dict(
        re.sub(r"^(optional|override)\s+", "", entry).split(": ", 1)
        for entry, _ in top.defaults
        if ": " in entry
    )
    groups = sorted(p for p in CONF.iterdir() if p.is_dir())
    others = sorted(p for p in CONF.glob("*.yaml") if p.name != "config.yaml")
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from conf/ by docs/gen_config_reference.py at build time. -->",
        "",
        "Generated from `conf/` each time the site is built, so it cannot drift from the",
        "files: every config group, every option of every yaml file, its default as written",
        "and the comment written above or beside it. Pick an option of a group with",
        "`group=option` (`python -m sweep task=voc`), set any value with `key=value`",
        "(`python -m sweep cluster.num_cpus=8`); `python -m sweep --cfg job` prints the",
        "composed result. `???` marks a value that must be given.",
        "",
        "Groups: " + ", ".join(f"[`{g.name}`](#{slug(g.name)})" for g in groups) + ".",
        "",
        "## Top level { #top-level }",
        "",
        *render(top),
    ]
    for other in others:
        out += [f"### `{other.name}` {{ #{slug(other.stem)} }}", "", *render(read_file(other, ""))]
    for group in groups:
        options = sorted(group.glob("*.yaml"))
        names = ", ".join(f"[`{p.stem}`](#{slug(group.name + '-' + p.stem)})" for p in options)
        default = chosen.get(group.name)
        out += [f"## `{group.name}` {{ #{slug(group.name)} }}", "", f"Options: {names}."]
        if default:
            out.append(f"Default in `conf/config.yaml`: `{group.name}: {default}`.")
        out.append("")
        for path in options:
            anchor = slug(f"{group.name}-{path.stem}")
            out += [f"### `{group.name}={path.stem}` {{ #{anchor} }}", ""]
            out += render(read_file(path, group.name))
    return "\n".join(out) + "\n"


with mkdocs_gen_files.open(PAGE, "w") as page_file:
    page_file.write(page())
mkdocs_gen_files.set_edit_path(PAGE, "docs/gen_config_reference.py")
