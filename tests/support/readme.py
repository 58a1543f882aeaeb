"""The README's copy-paste blocks: fenced ```sh, ```python, ```django and ```js.

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


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    not_run: str | None

    @property
    def host_file(self) -> str | None:
        """``settings.py`` or ``urls.py`` for the blocks that go into the reader's own site."""
        first = self.code.splitlines()[0]
        return first[2:] if self.lang == "python" and first in ("# settings.py", "# urls.py") else None

    @property
    def for_host_site(self) -> bool:
        return self.host_file is not None or self.lang == "django" or DISTRIBUTION in self.code

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def readme_blocks() -> list[Block]:
    text = (ROOT / "README.md").read_text()
    return [
        Block(match["lang"], match["code"], text.count("\n", 0, match.start("code")), match["reason"])
        for match in FENCE.finditer(text)
    ]
