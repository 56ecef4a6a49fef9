"""Keep generated README sections in sync: `python -m infra.readme_sync` rewrites them in place."""
from __future__ import annotations

import re
from pathlib import Path

from infra.config_docs import markdown

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def render_readme(text: str) -> str:
    block = f"{START}\n{markdown()}{END}"
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)


if __name__ == "__main__":
    README.write_text(render_readme(README.read_text()))
