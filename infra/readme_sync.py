"""Keep generated README sections in sync: `python -m infra.readme_sync` rewrites them in place.

Two marked blocks: the configuration table (from ``infra.config_docs``) and the list of code that the
coverage gate of ``make test`` does not measure (every line that ``.coveragerc``'s exclusion rules
take out, found with coverage's own parser, so the README counts exactly what coverage leaves out).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from infra.config_docs import markdown

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"
EXCLUSIONS_START, EXCLUSIONS_END = "<!-- coverage-exclusions:start -->", "<!-- coverage-exclusions:end -->"
#: the packages the gate measures (``.coveragerc`` [run] source)
MEASURED = ("infra", "components", "workloads", "policy")
_PRAGMA_REASON = re.compile(r"#\s*pragma:\s*no cover\s*(?:-\s*(?P<why>.*\S))?", re.I)


@dataclass(frozen=True)
class Exclusion:
    """One excluded block: its first line, the source lines and statements coverage drops, and why."""

    path: str
    line: int
    lines: int
    statements: int
    reason: str


def _reason(source_line: str) -> str:
    """The pragma's own words after ``-``; coverage's default rules (no pragma) get a fixed description."""
    m = _PRAGMA_REASON.search(source_line)
    if m:
        return m.group("why") or ""
    if re.match(r"\s*if (typing\.)?TYPE_CHECKING:", source_line):
        return "typing only: `if TYPE_CHECKING:` (coverage's default rule)"
    return "stub bodies `...` of a Protocol (coverage's default rule)"


def _is_code(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _runs(lines: set[int], source: list[str]) -> list[list[int]]:
    """Excluded lines grouped into blocks: a gap of only blank and comment lines does not end one."""
    out: list[list[int]] = []
    for n in sorted(lines):
        if out and not any(_is_code(source[k - 1]) for k in range(out[-1][-1] + 1, n)):
            out[-1].append(n)
        else:
            out.append([n])
    return out


def file_exclusions(rel: str, text: str, exclude: str) -> list[Exclusion]:
    """What coverage's own parser excludes in one file, as runs of consecutive lines.

    Blank and comment-only lines are not counted: coverage's default patterns (``\\s*`` may cross a line
    end) also mark the blank and comment lines after a stub, which hold no code.
    """
    from coverage.parser import PythonParser

    parser = PythonParser(text=text, filename=rel, exclude=exclude)
    parser.parse_source()
    source = text.splitlines()
    out = []
    for run in _runs(parser.excluded, source):
        code = [n for n in run if _is_code(source[n - 1])]
        matched = [n for n in code if n in parser.raw_excluded]
        if not code or not matched:
            continue
        out.append(Exclusion(rel, code[0], len(code), len(parser.raw_statements.intersection(run)),
                             _reason(source[matched[0] - 1])))
    return out


def exclusions(root: Path = REPO) -> list[Exclusion]:
    """Every block coverage excludes in the measured packages, with the rules ``.coveragerc`` configures."""
    from coverage import Coverage
    from coverage.misc import join_regex

    exclude = join_regex(Coverage(config_file=str(root / ".coveragerc")).config.exclude_list)
    out = []
    for pkg in MEASURED:
        for path in sorted((root / pkg).rglob("*.py")):
            out += file_exclusions(path.relative_to(root).as_posix(), path.read_text(), exclude)
    return out


def exclusions_markdown(items: list[Exclusion]) -> str:
    """The README table: one row per excluded block, then the totals."""
    rows = ["| Where | Lines | Statements | Why it is not measured |", "|---|---:|---:|---|"]
    rows += [f"| `{e.path}:{e.line}` | {e.lines} | {e.statements} | {e.reason} |" for e in items]
    rows.append(f"| **{len(items)} blocks** | **{sum(e.lines for e in items)}** | "
                f"**{sum(e.statements for e in items)}** | |")
    return "\n".join(rows) + "\n"


def _replace(text: str, start: str, end: str, body: str) -> str:
    block = f"{start}\n{body}{end}"
    return re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)


def render_readme(text: str) -> str:
    text = _replace(text, START, END, markdown())
    return _replace(text, EXCLUSIONS_START, EXCLUSIONS_END, exclusions_markdown(exclusions()))


if __name__ == "__main__":
    README.write_text(render_readme(README.read_text()))
