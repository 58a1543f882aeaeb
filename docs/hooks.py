"""MkDocs hooks: pages that show a file of the repository's root (BENCHMARKS.md, CHANGELOG.md).

A page whose whole text is ``<!-- include: NAME -->`` shows the root file ``NAME``, with its links
into ``docs/`` made relative to the docs (``docs/img/a.svg`` -> ``img/a.svg``), so the same file reads
right on the repository's front page and in the site.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

INCLUDE = re.compile(r"^<!-- include: (?P<name>[\w.-]+) -->\s*$")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    match = INCLUDE.match(markdown.strip())
    if match is None:
        return markdown
    root = Path(config["config_file_path"]).parent
    text = (root / match["name"]).read_text()
    return text.replace("](docs/", "](")
