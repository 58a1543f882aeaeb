"""The copy-paste blocks of the README and the docs (docs/*.md): fenced ```sh, ```python, ```django and ```js.

A block that cannot run on a test machine says why in an HTML comment on the line above it, which
GitHub does not show: ``<!-- not run: plays on the default audio device, and the test machine has none -->``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from speech import DISTRIBUTION
from tests.support.server import ROOT

FENCE = re.compile(
    r"^(?:<!-- not run: (?P<reason>.+?) -->\n)?```(?P<lang>sh|python|django|js)\n(?P<code>.*?)^```$", re.M | re.S
)


# The pages whose blocks the README tests run, in the order a reader follows them (the host-site blocks
# build one site). The other pages' examples are run by the tests of what they show (docs/live-text.md by
# tests/test_live_response.py, docs/reader.md by tests/e2e/test_reader.py, docs/kokoro.md by its tests).
HOST_GUIDE = "docs/host-site.md"  # every block of it goes into the reader's own site
DOCS = ["README.md", HOST_GUIDE]


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    not_run: str | None
    file: str = "README.md"

    @property
    def host_file(self) -> str | None:
        """``settings.py`` or ``urls.py`` for the blocks that go into the reader's own site."""
        first = self.code.splitlines()[0]
        return first[2:] if self.lang == "python" and first in ("# settings.py", "# urls.py") else None

    @property
    def for_host_site(self) -> bool:
        return (
            self.file == HOST_GUIDE or self.host_file is not None or self.lang == "django" or DISTRIBUTION in self.code
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.lang})"


def readme_blocks() -> list[Block]:
    """Every block of the README and the docs."""
    blocks = []
    for name in DOCS:
        path = ROOT / name
        if not path.exists():
            continue
        text = path.read_text()
        blocks += [
            Block(match["lang"], match["code"], text.count("\n", 0, match.start("code")), match["reason"], name)
            for match in FENCE.finditer(text)
        ]
    return blocks
